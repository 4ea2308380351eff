//! Tokenizers built from GGUF metadata alone (`tokenizer.ggml.*`), matching llama.cpp.
//!
//! Two families: byte-level BPE (`gpt2`, with a pre-tokenizer named by `tokenizer.ggml.pre`)
//! and SentencePiece-style BPE (`llama`, with scores and `<0xXX>` byte fallback). Special tokens
//! (control and user-defined entries) are found in the text first; control tokens only when the
//! caller asks for special-token parsing, user-defined ones always (as llama.cpp does).

mod bpe;
mod bytes;
mod pretokenize;
mod spm;
mod stream;

use std::collections::{HashMap, HashSet};

pub use pretokenize::PreTokenizer;
pub use stream::TextStream;

/// Writes raw bytes in the character form byte-level BPE vocabularies use (`Ġ` for a space).
pub fn bytes_to_vocab_chars(raw: &[u8], out: &mut String) {
    bytes::encode(raw, out)
}

use crate::error::{Error, Result};
use crate::gguf::{Array, Gguf};

/// Kinds of vocabulary entry (`tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Ordinary text.
    Normal,
    /// The unknown-token placeholder.
    Unknown,
    /// Control tokens such as `<|im_start|>`: never produced from plain text, rendered as
    /// nothing unless asked for.
    Control,
    /// Added tokens that are matched in text even without special-token parsing.
    UserDefined,
    /// Reserved, unused entries.
    Unused,
    /// `<0xXX>` byte tokens.
    Byte,
}

impl TokenKind {
    fn from_type(t: i64) -> Self {
        match t {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }
}

/// The vocabulary shared by both tokenizer families.
#[derive(Debug, Clone)]
pub(crate) struct Vocab {
    texts: Vec<String>,
    kinds: Vec<TokenKind>,
    scores: Vec<f32>,
    index: HashMap<String, u32>,
}

impl Vocab {
    pub(crate) fn id(&self, text: &str) -> Option<u32> {
        self.index.get(text).copied()
    }

    pub(crate) fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    /// The token for one raw byte in SentencePiece vocabularies: `<0xXX>`, else the byte itself.
    pub(crate) fn byte_token(&self, b: u8) -> Option<u32> {
        self.id(&format!("<0x{b:02X}>"))
            .or_else(|| std::str::from_utf8(&[b]).ok().and_then(|s| self.id(s)))
    }
}

#[derive(Debug, Clone)]
enum Model {
    Bpe(bpe::Bpe),
    Spm,
}

/// Special token ids from the metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// End of turn.
    pub eot: Option<u32>,
    /// Unknown.
    pub unk: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
}

/// A tokenizer for one model.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    /// Ids matched in text before tokenizing, longest text first.
    special_by_length: Vec<u32>,
    specials: SpecialTokens,
    /// Tokens that end a generation (EOS, EOT and the usual end-of-turn texts).
    end_of_generation: HashSet<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    /// Bytes each token renders to (special tokens: their text).
    pieces: Vec<Vec<u8>>,
    /// Problems found and worked around while building (e.g. a special id outside the vocabulary).
    warnings: Vec<String>,
    model_name: String,
}

/// Texts that mark the end of a turn in common chat formats; such tokens end a generation.
const END_OF_GENERATION_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

impl Tokenizer {
    /// Builds the tokenizer described by the file's metadata.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self> {
        let model_name = gguf.str("tokenizer.ggml.model")?.to_string();
        let texts = match gguf.array("tokenizer.ggml.tokens")? {
            Array::Str(v) => v.clone(),
            other => {
                return Err(Error::BadMetadata {
                    key: "tokenizer.ggml.tokens".into(),
                    reason: format!(
                        "expected an array of strings, found an array of {}",
                        other.type_name()
                    ),
                })
            }
        };
        let n = texts.len();
        if n == 0 {
            return Err(Error::Tokenizer(
                "the vocabulary (tokenizer.ggml.tokens) is empty".into(),
            ));
        }
        if u32::try_from(n).is_err() {
            return Err(Error::Tokenizer(format!(
                "the vocabulary has {n} entries, too many"
            )));
        }
        let kinds: Vec<TokenKind> = match gguf.get("tokenizer.ggml.token_type") {
            None => vec![TokenKind::Normal; n],
            Some(_) => {
                let arr = gguf.array("tokenizer.ggml.token_type")?;
                let v = arr.to_i64s().ok_or_else(|| Error::BadMetadata {
                    key: "tokenizer.ggml.token_type".into(),
                    reason: format!("expected integers, found {}", arr.type_name()),
                })?;
                if v.len() != n {
                    return Err(Error::BadMetadata {
                        key: "tokenizer.ggml.token_type".into(),
                        reason: format!("{} entries for {n} tokens", v.len()),
                    });
                }
                v.into_iter().map(TokenKind::from_type).collect()
            }
        };
        let scores = match gguf.get("tokenizer.ggml.scores") {
            None => vec![0.0; n],
            Some(_) => match gguf.array("tokenizer.ggml.scores")? {
                Array::F32(v) if v.len() == n => v.clone(),
                Array::F32(v) => {
                    return Err(Error::BadMetadata {
                        key: "tokenizer.ggml.scores".into(),
                        reason: format!("{} entries for {n} tokens", v.len()),
                    })
                }
                other => {
                    return Err(Error::BadMetadata {
                        key: "tokenizer.ggml.scores".into(),
                        reason: format!("expected f32 values, found {}", other.type_name()),
                    })
                }
            },
        };
        let mut index = HashMap::with_capacity(n);
        for (i, t) in texts.iter().enumerate() {
            // The first entry wins when a text appears twice, as in llama.cpp's map.
            index.entry(t.clone()).or_insert(i as u32);
        }
        let vocab = Vocab {
            texts,
            kinds,
            scores,
            index,
        };

        let pre_name = gguf.opt_str("tokenizer.ggml.pre")?;
        let (model, mut specials, default_bos, default_space_prefix) = match model_name.as_str() {
            "gpt2" => {
                let merges = match gguf.array("tokenizer.ggml.merges") {
                    Ok(Array::Str(v)) => v,
                    Ok(other) => {
                        return Err(Error::BadMetadata {
                            key: "tokenizer.ggml.merges".into(),
                            reason: format!("expected strings, found {}", other.type_name()),
                        })
                    }
                    Err(e) => return Err(e),
                };
                let pre = PreTokenizer::from_name(pre_name)?;
                let add_bos = pre.default_add_bos();
                let specials = SpecialTokens {
                    bos: Some(11),
                    eos: Some(11),
                    ..SpecialTokens::default()
                };
                (Model::Bpe(bpe::Bpe::new(merges, pre)?), specials, add_bos, false)
            }
            "llama" => {
                let specials = SpecialTokens {
                    bos: Some(1),
                    eos: Some(2),
                    unk: Some(0),
                    ..SpecialTokens::default()
                };
                (Model::Spm, specials, true, true)
            }
            other => {
                return Err(Error::Tokenizer(format!(
                    "unsupported tokenizer model {other:?} (tokenizer.ggml.model); supported: gpt2, llama"
                )))
            }
        };

        let mut warnings = Vec::new();
        let mut special_id = |key: &str, slot: &mut Option<u32>| -> Result<()> {
            if let Some(v) = gguf.opt_uint(key)? {
                if v < n as u64 {
                    *slot = Some(v as u32);
                } else {
                    warnings.push(format!("{key} = {v} is outside the vocabulary of {n}; ignored"));
                    *slot = None;
                }
            } else if slot.is_some_and(|id| id as usize >= n) {
                *slot = None;
            }
            Ok(())
        };
        special_id("tokenizer.ggml.bos_token_id", &mut specials.bos)?;
        special_id("tokenizer.ggml.eos_token_id", &mut specials.eos)?;
        special_id("tokenizer.ggml.eot_token_id", &mut specials.eot)?;
        special_id("tokenizer.ggml.unknown_token_id", &mut specials.unk)?;
        special_id("tokenizer.ggml.padding_token_id", &mut specials.pad)?;

        let add_bos = gguf
            .opt_bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(default_bos)
            && specials.bos.is_some();
        let add_eos =
            gguf.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false) && specials.eos.is_some();
        let add_space_prefix = gguf
            .opt_bool("tokenizer.ggml.add_space_prefix")?
            .unwrap_or(default_space_prefix);

        let mut end_of_generation: HashSet<u32> = HashSet::new();
        let mut kinds = vocab.kinds.clone();
        for text in END_OF_GENERATION_TEXTS {
            if let Some(id) = vocab.id(text) {
                end_of_generation.insert(id);
                // llama.cpp treats such a token as control even when the file says otherwise.
                kinds[id as usize] = TokenKind::Control;
            }
        }
        end_of_generation.extend(specials.eos);
        end_of_generation.extend(specials.eot);
        let vocab = Vocab { kinds, ..vocab };

        let mut special_by_length: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                matches!(
                    vocab.kinds[id as usize],
                    TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown
                ) && !vocab.texts[id as usize].is_empty()
            })
            .collect();
        special_by_length.sort_by_key(|&id| (std::cmp::Reverse(vocab.texts[id as usize].len()), id));

        let pieces = (0..n).map(|i| render_piece(&vocab, &model, i)).collect();

        Ok(Self {
            vocab,
            model,
            special_by_length,
            specials,
            end_of_generation,
            add_bos,
            add_eos,
            add_space_prefix,
            pieces,
            warnings,
            model_name,
        })
    }

    /// Number of entries in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab.texts.len()
    }

    /// `gpt2` or `llama`.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// The pre-tokenizer name for BPE vocabularies.
    pub fn pre_tokenizer(&self) -> Option<&str> {
        match &self.model {
            Model::Bpe(b) => Some(b.pre.name()),
            Model::Spm => None,
        }
    }

    /// Special token ids.
    pub fn specials(&self) -> SpecialTokens {
        self.specials
    }

    /// Whether `encode(.., add_special = true)` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Problems found while building that were worked around.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether this token ends a generation.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.contains(&id)
    }

    /// The vocabulary text of a token (as stored: `Ġ` for a space in byte-level vocabularies).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.texts.get(id as usize).map(String::as_str)
    }

    /// The kind of a token.
    pub fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.vocab.kinds.get(id as usize).copied()
    }

    /// The id of an exact vocabulary text.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// Tokenizes `text`. `add_special` prepends BOS / appends EOS when the model asks for it;
    /// `parse_special` lets control tokens written in the text (e.g. `<|im_start|>`) become
    /// their ids instead of being tokenized as plain text.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let fragments = self.partition(text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.specials.bos);
        }
        match &self.model {
            Model::Bpe(bpe) => {
                for f in fragments {
                    match f {
                        Fragment::Text(t) => bpe.encode(&self.vocab, t, &mut out),
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            Model::Spm => {
                let mut prev_special = true;
                let mut buf = String::new();
                for f in fragments {
                    match f {
                        Fragment::Text(t) => {
                            buf.clear();
                            if self.add_space_prefix && prev_special {
                                buf.push('\u{2581}');
                            }
                            for c in t.chars() {
                                buf.push(if c == ' ' { '\u{2581}' } else { c });
                            }
                            spm::encode(&self.vocab, &buf, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.specials.eos);
        }
        out
    }

    /// Splits text at special tokens (longest first), as llama.cpp's `tokenizer_st_partition`.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Fragment::Text(text));
        for &id in &self.special_by_length {
            let kind = self.vocab.kinds[id as usize];
            if !parse_special && matches!(kind, TokenKind::Control | TokenKind::Unknown) {
                continue;
            }
            let needle = self.vocab.texts[id as usize].as_str();
            if !frags
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                match f {
                    Fragment::Text(mut t) => {
                        while let Some(pos) = t.find(needle) {
                            if pos > 0 {
                                next.push(Fragment::Text(&t[..pos]));
                            }
                            next.push(Fragment::Token(id));
                            t = &t[pos + needle.len()..];
                        }
                        if !t.is_empty() {
                            next.push(Fragment::Text(t));
                        }
                    }
                    tok => next.push(tok),
                }
            }
            frags = next;
        }
        frags
    }

    /// The bytes a token renders to. Control and unknown tokens render as nothing unless
    /// `special` is set.
    pub fn piece(&self, id: u32, special: bool) -> &[u8] {
        let Some(p) = self.pieces.get(id as usize) else {
            return &[];
        };
        match self.vocab.kinds[id as usize] {
            TokenKind::Control | TokenKind::Unknown if !special => &[],
            _ => p,
        }
    }

    /// Whether decoding drops the space a SentencePiece model put in front of the first word.
    pub(crate) fn strips_leading_space(&self) -> bool {
        matches!(self.model, Model::Spm) && self.add_space_prefix
    }

    /// Renders tokens to text (invalid UTF-8 from partial byte tokens is replaced).
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        let mut stream = TextStream::new(self.strips_leading_space());
        let mut text = String::new();
        for &id in ids {
            text.push_str(&stream.push(self.piece(id, special)));
        }
        text.push_str(&stream.finish());
        text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// The bytes a token stands for: its text for special tokens, decoded bytes for normal ones.
fn render_piece(vocab: &Vocab, model: &Model, i: usize) -> Vec<u8> {
    let text = &vocab.texts[i];
    match vocab.kinds[i] {
        TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown => text.as_bytes().to_vec(),
        TokenKind::Byte => parse_byte_token(text).map_or_else(|| text.as_bytes().to_vec(), |b| vec![b]),
        // llama.cpp renders unused entries as nothing.
        TokenKind::Unused => Vec::new(),
        TokenKind::Normal => match model {
            Model::Bpe(_) => {
                let mut out = Vec::with_capacity(text.len());
                bytes::decode(text, &mut out);
                out
            }
            Model::Spm => text.replace('\u{2581}', " ").into_bytes(),
        },
    }
}

/// `<0xAB>` → 0xAB.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests;
