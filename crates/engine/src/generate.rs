//! Step-wise generation: every call to [`Generator::step`] does one bounded piece of work (a
//! prefill chunk or one token), so a host can stream output and cancel between steps.

use omp_protocol::{GenStats, SamplingParams, StopReason, TokenAlternative};

use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::model::{Model, PREFILL_CHUNK};
use crate::sampling::{top_alternatives, Sampler};
use crate::tokenizer::TextStream;

/// One generated token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStep {
    /// Token id.
    pub id: u32,
    /// Text that became final with this token: always whole UTF-8 characters, possibly empty
    /// (a character still incomplete, or text held back because it may begin a stop string).
    pub text: String,
    /// The most likely alternatives at this position, when asked for.
    pub alternatives: Vec<TokenAlternative>,
}

/// The outcome of one [`Generator::step`].
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A chunk of the prompt was evaluated.
    Prefill {
        /// Prompt tokens evaluated so far (including reused cached ones).
        done: usize,
        /// Prompt tokens in all.
        total: usize,
    },
    /// A token was generated.
    Token(TokenStep),
    /// Generation is over; further calls return this again.
    Done {
        /// Why.
        reason: StopReason,
        /// Text released at the end (held-back bytes); usually empty.
        text: String,
        /// Final statistics.
        stats: GenStats,
    },
}

/// Generates a continuation of a prompt, one step at a time.
pub struct Generator<'m> {
    model: &'m mut Model,
    params: SamplingParams,
    sampler: Sampler,
    clock: SharedClock,
    prompt: Vec<u32>,
    /// Prompt tokens evaluated (or found in the cache).
    prefilled: usize,
    /// Every token of the sequence: prompt, then generated tokens.
    tokens: Vec<u32>,
    generated: Vec<u32>,
    /// Logits for the next token, once the tokens before it are evaluated.
    next_logits: Option<Vec<f32>>,
    /// The buffer of the last logits used, refilled for the next token. Why: a fresh
    /// vocabulary-sized copy per token (196 KB for SmolLM2) was an allocation in the hot loop.
    spare_logits: Vec<f32>,
    stream: TextStream,
    /// All text produced, and how much of it has been released to the caller.
    text: String,
    released: usize,
    stop_max_len: usize,
    finished: Option<StopReason>,
    t_start: f64,
    t_prefill_end: Option<f64>,
    t_first_token: Option<f64>,
    t_last_token: f64,
    reused: usize,
}

impl Model {
    /// Starts generating after `prompt` (token ids, e.g. from [`Model::encode_chat`]).
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &SamplingParams,
        clock: SharedClock,
    ) -> Result<Generator<'_>> {
        params.validate().map_err(Error::InvalidInput)?;
        if prompt.is_empty() {
            return Err(Error::InvalidInput("the prompt is empty".into()));
        }
        if prompt.len() >= self.context_length() {
            return Err(Error::InvalidInput(format!(
                "the prompt has {} tokens, which leaves no room in the context window of {}",
                prompt.len(),
                self.context_length()
            )));
        }
        let t_start = clock.now_ms();
        let reused = self.reuse_prefix(prompt);
        let strip = self.tokenizer().strips_leading_space();
        Ok(Generator {
            sampler: Sampler::new(params),
            stop_max_len: params.stop.iter().map(String::len).max().unwrap_or(0),
            params: params.clone(),
            clock,
            prompt: prompt.to_vec(),
            prefilled: reused,
            tokens: prompt.to_vec(),
            generated: Vec::new(),
            next_logits: None,
            spare_logits: Vec::new(),
            stream: TextStream::new(strip),
            text: String::new(),
            released: 0,
            finished: None,
            t_start,
            t_prefill_end: None,
            t_first_token: None,
            t_last_token: t_start,
            reused,
            model: self,
        })
    }
}

/// `spare`'s buffer (taken, leaving it empty) holding a copy of `logits`.
fn refill(spare: &mut Vec<f32>, logits: &[f32]) -> Vec<f32> {
    let mut buf = std::mem::take(spare);
    buf.clear();
    buf.extend_from_slice(logits);
    buf
}

impl Generator<'_> {
    /// Does the next piece of work.
    pub fn step(&mut self) -> Result<Step> {
        if let Some(reason) = self.finished {
            return Ok(self.done(reason));
        }
        if self.next_logits.is_none() {
            if self.prefilled < self.prompt.len() {
                let end = (self.prefilled + PREFILL_CHUNK).min(self.prompt.len());
                let logits = self.model.eval(&self.prompt[self.prefilled..end], false)?;
                self.prefilled = end;
                if end < self.prompt.len() {
                    return Ok(Step::Prefill {
                        done: end,
                        total: self.prompt.len(),
                    });
                }
                self.next_logits = Some(refill(&mut self.spare_logits, logits));
                self.t_prefill_end = Some(self.clock.now_ms());
            } else {
                let last = *self
                    .tokens
                    .last()
                    .ok_or_else(|| Error::InvalidInput("empty sequence".into()))?;
                if self.tokens.len() >= self.model.context_length() {
                    return Ok(self.finish(StopReason::ContextFull));
                }
                let logits = self.model.eval(&[last], false)?;
                self.next_logits = Some(refill(&mut self.spare_logits, logits));
            }
        }
        let Some(mut logits) = self.next_logits.take() else {
            return Err(Error::Compute("no logits after evaluation".into()));
        };
        let alternatives = self.alternatives(&logits);
        let window = self.sampler.penalty_window().min(self.tokens.len());
        self.sampler
            .penalize(&mut logits, &self.tokens[self.tokens.len() - window..]);
        let id = self.sampler.sample(&logits);
        self.spare_logits = logits;
        let now = self.clock.now_ms();
        self.t_first_token.get_or_insert(now);
        self.t_last_token = now;

        let tok = self.model.tokenizer();
        if tok.is_end_of_generation(id) {
            return Ok(self.finish(StopReason::EndOfText));
        }
        self.tokens.push(id);
        self.generated.push(id);
        let piece = tok.piece(id, false).to_vec();
        let delta = self.stream.push(&piece);
        self.text.push_str(&delta);
        let (text, stopped) = self.release();
        if stopped {
            self.finished = Some(StopReason::StopString);
        } else if self.generated.len() >= self.params.max_tokens as usize {
            self.finished = Some(StopReason::MaxTokens);
        }
        Ok(Step::Token(TokenStep {
            id,
            text,
            alternatives,
        }))
    }

    /// Ends the generation early (the user pressed Stop).
    pub fn cancel(&mut self) -> Step {
        self.finish(StopReason::Cancelled)
    }

    /// Tokens generated so far.
    pub fn generated(&self) -> &[u32] {
        &self.generated
    }

    /// The text released so far.
    pub fn text(&self) -> &str {
        &self.text[..self.released]
    }

    /// Statistics so far.
    pub fn stats(&self) -> GenStats {
        let prefill_end = self.t_prefill_end.unwrap_or(self.t_start);
        let prefill_ms = prefill_end - self.t_start;
        let evaluated = (self.prompt.len() - self.reused) as f64;
        let first = self.t_first_token.unwrap_or(prefill_end);
        let decode_ms = (self.t_last_token - first).max(0.0);
        let after_first = self.generated.len().saturating_sub(1) as f64;
        GenStats {
            prompt_tokens: self.prompt.len() as u32,
            generated_tokens: self.generated.len() as u32,
            time_to_first_token_ms: first - self.t_start,
            prefill_ms,
            prefill_tokens_per_s: if prefill_ms > 0.0 {
                evaluated * 1000.0 / prefill_ms
            } else {
                0.0
            },
            decode_ms,
            decode_tokens_per_s: if decode_ms > 0.0 {
                after_first * 1000.0 / decode_ms
            } else {
                0.0
            },
            convert: self.model.info().convert.clone(),
        }
    }

    fn alternatives(&self, logits: &[f32]) -> Vec<TokenAlternative> {
        let n = self.params.top_alternatives as usize;
        let tok = self.model.tokenizer();
        top_alternatives(logits, n)
            .into_iter()
            .map(|(id, prob)| TokenAlternative {
                id,
                text: String::from_utf8_lossy(tok.piece(id, true)).into_owned(),
                prob,
            })
            .collect()
    }

    /// Releases text that can no longer turn into a stop string; reports whether a stop string
    /// was found (its text and anything after it are never released).
    fn release(&mut self) -> (String, bool) {
        if self.params.stop.is_empty() {
            let out = self.text[self.released..].to_string();
            self.released = self.text.len();
            return (out, false);
        }
        let search_from = floor_char(&self.text, self.released.saturating_sub(self.stop_max_len));
        let found = self
            .params
            .stop
            .iter()
            .filter_map(|s| self.text[search_from..].find(s.as_str()).map(|p| p + search_from))
            .min();
        if let Some(p) = found {
            let out = self.text[self.released..p.max(self.released)].to_string();
            self.text.truncate(p.max(self.released));
            self.released = self.text.len();
            return (out, true);
        }
        // Hold back the longest tail that is a prefix of some stop string.
        let mut safe = self.text.len();
        for s in &self.params.stop {
            for k in (1..s.len().min(self.text.len() + 1)).rev() {
                let start = self.text.len() - k;
                if self.text.is_char_boundary(start) && s.starts_with(&self.text[start..]) {
                    safe = safe.min(start);
                    break;
                }
            }
        }
        let safe = safe.max(self.released);
        let out = self.text[self.released..safe].to_string();
        self.released = safe;
        (out, false)
    }

    fn finish(&mut self, reason: StopReason) -> Step {
        self.finished = Some(reason);
        self.done(reason)
    }

    fn done(&mut self, reason: StopReason) -> Step {
        let mut text = String::new();
        if reason != StopReason::StopString {
            let tail = self.stream.finish();
            self.text.push_str(&tail);
            text = self.text[self.released..].to_string();
            self.released = self.text.len();
        }
        Step::Done {
            reason,
            text,
            stats: self.stats(),
        }
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
