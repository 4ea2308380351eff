use serde::{Deserialize, Serialize};

/// How the next token is chosen. The defaults follow llama.cpp's command-line defaults so that a
/// learner comparing the two sees the same behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Softmax temperature; `0` (or below) means greedy: always the most likely token.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `0` disables the filter.
    pub top_k: u32,
    /// Keep the smallest set of tokens whose probabilities add up to `top_p`; `1` disables it.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; `0` disables it.
    pub min_p: f32,
    /// Divide (or multiply, for negative logits) the logits of recently seen tokens by this;
    /// `1` disables it.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens (prompt included) the repeat penalty looks at.
    pub repeat_last_n: u32,
    /// Seed of the random generator: the same seed, prompt and settings give the same text.
    pub seed: u64,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
    /// Generation stops as soon as the text contains one of these strings (not included in the
    /// output).
    pub stop: Vec<String>,
    /// Report this many most likely alternatives with every token (0 = none).
    pub top_alternatives: u32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 42,
            max_tokens: 256,
            stop: Vec::new(),
            top_alternatives: 0,
        }
    }
}

impl SamplingParams {
    /// Settings that always pick the most likely token (temperature 0, no penalties).
    pub fn greedy(max_tokens: u32) -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            max_tokens,
            ..Self::default()
        }
    }

    /// Checks every field for a value the sampler can use, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        let finite = |name: &str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number"))
            }
        };
        finite("temperature", self.temperature)?;
        finite("top_p", self.top_p)?;
        finite("min_p", self.min_p)?;
        finite("repeat_penalty", self.repeat_penalty)?;
        if !(0.0..=10.0).contains(&self.temperature) && self.temperature > 0.0 {
            return Err("temperature must be between 0 and 10".into());
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return Err("top_p must be between 0 and 1".into());
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err("min_p must be between 0 and 1".into());
        }
        if !(0.0..=10.0).contains(&self.repeat_penalty) || self.repeat_penalty == 0.0 {
            return Err("repeat_penalty must be above 0 and at most 10".into());
        }
        if self.top_alternatives > 20 {
            return Err("top_alternatives must be at most 20".into());
        }
        if self.stop.iter().any(|s| s.is_empty()) {
            return Err("stop strings must not be empty".into());
        }
        Ok(())
    }
}

/// Load-time conversion of weights whose matrix kernels are slow (Q4_1, Q5_x and the like have
/// no SIMD kernel in wasm) to a type with a fast kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConvertMode {
    /// Keep every tensor in its stored type.
    #[default]
    None,
    /// Re-quantize slow types to Q8_0: twice the memory of 4-bit types, almost no quality loss.
    Q8_0,
    /// Re-quantize slow types to Q4_0: same memory, a little more rounding error.
    Q4_0,
}

impl ConvertMode {
    /// Short name used on the command line and in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            ConvertMode::None => "none",
            ConvertMode::Q8_0 => "q8_0",
            ConvertMode::Q4_0 => "q4_0",
        }
    }

    /// Parses the short name (`none`, `q8_0`, `q4_0`), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "off" => Some(Self::None),
            "q8_0" | "q8" => Some(Self::Q8_0),
            "q4_0" | "q4" => Some(Self::Q4_0),
            _ => None,
        }
    }
}

/// How the key/value cache stores past positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KvCacheType {
    /// f16, as llama.cpp stores it by default: its greedy continuations are reproduced.
    #[default]
    F16,
    /// 8 bits per value in blocks of 32 with an f16 scale (llama.cpp's `-ctk q8_0`): 53% of
    /// the f16 cache's memory, at the cost of slightly different attention scores.
    Q8_0,
}

impl KvCacheType {
    /// Short name used on the command line, in URLs and in the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            KvCacheType::F16 => "f16",
            KvCacheType::Q8_0 => "q8_0",
        }
    }

    /// Parses the short name (`f16`, `q8_0`), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Some(Self::F16),
            "q8_0" | "q8" => Some(Self::Q8_0),
            _ => None,
        }
    }
}

/// Options that shape how a model is built from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadOptions {
    /// Tokens of context (prompt plus answer) to reserve; clamped to the model's own maximum.
    pub context_length: u32,
    /// Load-time conversion of slow weight types.
    pub convert: ConvertMode,
    /// Storage of the key/value cache.
    pub kv_cache: KvCacheType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            context_length: 2048,
            convert: ConvertMode::None,
            kv_cache: KvCacheType::F16,
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the turn.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_cache_names_round_trip_and_old_messages_default_to_f16() {
        for t in [KvCacheType::F16, KvCacheType::Q8_0] {
            assert_eq!(KvCacheType::parse(t.as_str()), Some(t));
        }
        assert_eq!(KvCacheType::parse("Q8"), Some(KvCacheType::Q8_0));
        assert_eq!(KvCacheType::parse("q4_0"), None);
        let old: LoadOptions = serde_json::from_str(r#"{"context_length":512,"convert":"none"}"#).unwrap();
        assert_eq!(old.kv_cache, KvCacheType::F16);
        let new: LoadOptions = serde_json::from_str(r#"{"kv_cache":"q8_0"}"#).unwrap();
        assert_eq!(new.kv_cache, KvCacheType::Q8_0);
    }

    #[test]
    fn defaults_are_valid_and_greedy_is_greedy() {
        assert_eq!(SamplingParams::default().validate(), Ok(()));
        let g = SamplingParams::greedy(8);
        assert_eq!(g.temperature, 0.0);
        assert_eq!(g.max_tokens, 8);
        assert_eq!(g.validate(), Ok(()));
    }

    #[test]
    fn bad_values_are_named() {
        let p = SamplingParams {
            top_p: 1.5,
            ..SamplingParams::default()
        };
        assert!(p.validate().unwrap_err().contains("top_p"));
        let p = SamplingParams {
            temperature: f32::NAN,
            ..SamplingParams::default()
        };
        assert!(p.validate().unwrap_err().contains("temperature"));
        let p = SamplingParams {
            stop: vec![String::new()],
            ..SamplingParams::default()
        };
        assert!(p.validate().unwrap_err().contains("stop"));
    }

    #[test]
    fn missing_fields_take_defaults() {
        let p: SamplingParams = serde_json::from_str(r#"{"temperature":0}"#).unwrap();
        assert_eq!(p.temperature, 0.0);
        assert_eq!(p.top_k, SamplingParams::default().top_k);
    }

    #[test]
    fn convert_mode_round_trips() {
        for m in [ConvertMode::None, ConvertMode::Q8_0, ConvertMode::Q4_0] {
            assert_eq!(ConvertMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(ConvertMode::parse("q5"), None);
    }
}
