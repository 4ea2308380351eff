//! Pre-tokenization: splitting text into words before BPE merges, as named by `tokenizer.ggml.pre`.
//!
//! Each pre-tokenizer is a list of splitting rules applied one after another, every rule
//! splitting each piece left by the previous one into the spans it matches and the spans between
//! them (as llama.cpp's `unicode_regex_split` does with its list of regular expressions). The
//! rules are written as small scanners over characters instead of regular expressions: no
//! regex engine (and no Oniguruma) is needed in wasm, and the behaviour at every character class
//! boundary is explicit.

use unicode_general_category::{get_general_category, GeneralCategory as G};

use crate::error::{Error, Result};

/// Character classes the rules use, following Unicode general categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `\p{L}`
    Letter,
    /// `\p{N}`
    Number,
    /// `\s` (the Unicode `White_Space` property)
    Space,
    /// `\p{P}`
    Punct,
    /// everything else
    Other,
}

pub(crate) fn class(c: char) -> Class {
    if c.is_whitespace() {
        return Class::Space;
    }
    if c.is_ascii() {
        return match c {
            'a'..='z' | 'A'..='Z' => Class::Letter,
            '0'..='9' => Class::Number,
            '!'..='/' | ':'..='@' | '['..='`' | '{'..='~' => {
                if matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~') {
                    Class::Other
                } else {
                    Class::Punct
                }
            }
            _ => Class::Other,
        };
    }
    match get_general_category(c) {
        G::UppercaseLetter | G::LowercaseLetter | G::TitlecaseLetter | G::ModifierLetter | G::OtherLetter => {
            Class::Letter
        }
        G::DecimalNumber | G::LetterNumber | G::OtherNumber => Class::Number,
        G::ConnectorPunctuation
        | G::DashPunctuation
        | G::OpenPunctuation
        | G::ClosePunctuation
        | G::InitialPunctuation
        | G::FinalPunctuation
        | G::OtherPunctuation => Class::Punct,
        _ => Class::Other,
    }
}

/// One splitting rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// GPT-2's word pattern:
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    Gpt2,
    /// Llama 3's pattern (Qwen2's with `max_digits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
    ///  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    Llama3 { max_digits: usize },
    /// Runs of characters matching a set, cut into chunks of at most `chunk` characters
    /// (`\p{N}` is `Runs(Number, 1)`, `\p{N}+` is unbounded).
    Runs { set: Set, chunk: Option<usize> },
}

/// Character sets used by [`Rule::Runs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Set {
    /// `\p{N}`
    Number,
    /// `[0-9]`
    AsciiDigit,
    /// `[\p{P}\$\+<=>\^~\|]` (with `` ` `` too for Falcon)
    PunctAndSymbols { backtick: bool },
}

impl Set {
    fn contains(self, c: char) -> bool {
        match self {
            Set::Number => class(c) == Class::Number,
            Set::AsciiDigit => c.is_ascii_digit(),
            Set::PunctAndSymbols { backtick } => {
                class(c) == Class::Punct
                    || matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '~' | '|')
                    || (backtick && c == '`')
            }
        }
    }
}

/// A named pre-tokenizer: its rules in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreTokenizer {
    name: String,
    rules: Vec<Rule>,
}

impl PreTokenizer {
    /// The pre-tokenizer for a `tokenizer.ggml.pre` value (`None` means the key is absent).
    pub fn from_name(name: Option<&str>) -> Result<Self> {
        use Rule::*;
        let gpt2 = vec![Gpt2];
        let rules = match name.unwrap_or("default") {
            "default" => vec![
                Runs {
                    set: Set::PunctAndSymbols { backtick: false },
                    chunk: None,
                },
                Gpt2,
                Runs {
                    set: Set::Number,
                    chunk: None,
                },
                Runs {
                    set: Set::AsciiDigit,
                    chunk: Some(3),
                },
            ],
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "jina-v2-es" | "jina-v2-de" | "gigachat" | "mpt" | "olmo"
            | "jais" | "trillion" | "exaone4" | "a.x-4.0" | "mellum" | "modern-bert" | "roberta-bpe"
            | "jina-v1-en" | "jina-v2-code" => gpt2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
                vec![
                    Runs {
                        set: Set::Number,
                        chunk: Some(1),
                    },
                    Gpt2,
                ]
            }
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
            | "dbrx" | "smaug-bpe" | "chatglm-bpe" | "glm4" => vec![Llama3 { max_digits: 3 }],
            "qwen2" | "deepseek-r1-qwen" | "stablelm2" | "megrez" | "kormo" => vec![Llama3 { max_digits: 1 }],
            "falcon" => vec![
                Runs {
                    set: Set::PunctAndSymbols { backtick: true },
                    chunk: None,
                },
                Gpt2,
                Runs {
                    set: Set::AsciiDigit,
                    chunk: Some(3),
                },
            ],
            other => {
                return Err(Error::Tokenizer(format!(
                    "unknown pre-tokenizer {other:?} (tokenizer.ggml.pre); supported include smollm, gpt-2, llama-bpe, qwen2, falcon, default"
                )))
            }
        };
        Ok(Self {
            name: name.unwrap_or("default").to_string(),
            rules,
        })
    }

    /// The `tokenizer.ggml.pre` name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a word that is itself a vocabulary entry is taken whole, skipping merges
    /// (llama.cpp's `ignore_merges`, set for the Llama 3 family).
    pub(crate) fn ignore_merges(&self) -> bool {
        matches!(
            self.name.as_str(),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        )
    }

    /// Whether this family prepends BOS by default (overridden by `tokenizer.ggml.add_bos_token`).
    pub(crate) fn default_add_bos(&self) -> bool {
        self.ignore_merges()
    }

    /// Splits `text` into words.
    pub fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        // Pieces as char-index ranges.
        let mut pieces: Vec<(usize, usize)> = if chars.is_empty() {
            Vec::new()
        } else {
            vec![(0, chars.len())]
        };
        let cs: Vec<char> = chars.iter().map(|&(_, c)| c).collect();
        for rule in &self.rules {
            let mut next = Vec::with_capacity(pieces.len());
            for &(start, end) in &pieces {
                split_piece(*rule, &cs[start..end], start, &mut next);
            }
            pieces = next;
        }
        let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
        pieces
            .into_iter()
            .map(|(s, e)| &text[byte_at(s)..byte_at(e)])
            .collect()
    }
}

/// Splits `cs` (which starts at char index `base`) by `rule`, appending ranges to `out`.
fn split_piece(rule: Rule, cs: &[char], base: usize, out: &mut Vec<(usize, usize)>) {
    let mut cuts = Cuts { out, base, prev: 0 };
    match rule {
        Rule::Gpt2 => gpt2(cs, &mut cuts),
        Rule::Llama3 { max_digits } => llama3(cs, max_digits, &mut cuts),
        Rule::Runs { set, chunk } => runs(cs, set, chunk, &mut cuts),
    }
    let n = cs.len();
    cuts.cut(n);
}

/// Collects the ranges of a piece; every position up to the last cut is covered.
struct Cuts<'a> {
    out: &'a mut Vec<(usize, usize)>,
    base: usize,
    prev: usize,
}

impl Cuts<'_> {
    /// Ends a word at `end` (relative to the piece); empty words are skipped.
    fn cut(&mut self, end: usize) {
        if end > self.prev {
            self.out.push((self.base + self.prev, self.base + end));
            self.prev = end;
        }
    }
}

fn class_at(cs: &[char], i: usize) -> Option<Class> {
    cs.get(i).map(|&c| class(c))
}

fn is_letter(cs: &[char], i: usize) -> bool {
    class_at(cs, i) == Some(Class::Letter)
}
fn is_number(cs: &[char], i: usize) -> bool {
    class_at(cs, i) == Some(Class::Number)
}
fn is_space(cs: &[char], i: usize) -> bool {
    class_at(cs, i) == Some(Class::Space)
}
/// `[^\s\p{L}\p{N}]`: any character that is not a space, letter or number.
fn is_other(cs: &[char], i: usize) -> bool {
    matches!(class_at(cs, i), Some(Class::Punct | Class::Other))
}

/// Length of a contraction (`'s`, `'ll`, ...) at `i`, matching the letters case-insensitively
/// when `any_case`.
fn contraction(cs: &[char], i: usize, any_case: bool) -> Option<usize> {
    if cs.get(i) != Some(&'\'') {
        return None;
    }
    let low = |j: usize| {
        cs.get(j).map(|&c| {
            if any_case {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            }
        })
    };
    match (low(i + 1), low(i + 2)) {
        (Some('s' | 't' | 'm' | 'd'), _) => Some(2),
        (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => Some(3),
        _ => None,
    }
}

/// Handles the shared whitespace tail of both word patterns: `\s+(?!\S)|\s+`. A run of
/// spaces followed by a non-space gives up its last space to the next word (so " world" keeps
/// its space); at the end of the piece the whole run is one word. Returns the new position.
fn spaces(cs: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    while is_space(cs, j) {
        j += 1;
    }
    let run = j - i;
    if run == 0 {
        None
    } else if run > 1 && j < cs.len() {
        Some(j - 1)
    } else {
        Some(j)
    }
}

fn gpt2(cs: &[char], out: &mut Cuts<'_>) {
    let mut i = 0;
    while i < cs.len() {
        if let Some(n) = contraction(cs, i, false) {
            i += n;
            out.cut(i);
            continue;
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional single space, then a run of one class.
        let start = if cs[i] == ' ' { i + 1 } else { i };
        let run_class = match class_at(cs, start) {
            Some(Class::Letter) => Some(is_letter as fn(&[char], usize) -> bool),
            Some(Class::Number) => Some(is_number as fn(&[char], usize) -> bool),
            Some(Class::Punct | Class::Other) => Some(is_other as fn(&[char], usize) -> bool),
            _ => None,
        };
        if let Some(member) = run_class {
            let mut j = start;
            while member(cs, j) {
                j += 1;
            }
            i = j;
            out.cut(i);
            continue;
        }
        if let Some(j) = spaces(cs, i) {
            i = j;
            out.cut(i);
            continue;
        }
        // Unreachable in practice (every character has a class), kept so the loop always advances.
        i += 1;
        out.cut(i);
    }
}

fn llama3(cs: &[char], max_digits: usize, out: &mut Cuts<'_>) {
    let max_digits = max_digits.max(1);
    let mut i = 0;
    while i < cs.len() {
        if let Some(n) = contraction(cs, i, true) {
            i += n;
            out.cut(i);
            continue;
        }
        let c = cs[i];
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !(c == '\r' || c == '\n' || is_number(cs, i)) && (is_letter(cs, i) || is_letter(cs, i + 1)) {
            let mut j = i + 1;
            while is_letter(cs, j) {
                j += 1;
            }
            i = j;
            out.cut(i);
            continue;
        }
        // `\p{N}{1,max_digits}`
        if is_number(cs, i) {
            let mut j = i;
            while is_number(cs, j) && j - i < max_digits {
                j += 1;
            }
            i = j;
            out.cut(i);
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let start = if c == ' ' { i + 1 } else { i };
        if is_other(cs, start) {
            let mut j = start;
            while is_other(cs, j) {
                j += 1;
            }
            while matches!(cs.get(j), Some('\r' | '\n')) {
                j += 1;
            }
            i = j;
            out.cut(i);
            continue;
        }
        // `\s*[\r\n]+`: a whitespace run containing a line break ends after its last break.
        let mut j = i;
        let mut after_last_break = None;
        while is_space(cs, j) {
            if matches!(cs[j], '\r' | '\n') {
                after_last_break = Some(j + 1);
            }
            j += 1;
        }
        if let Some(end) = after_last_break {
            i = end;
            out.cut(i);
            continue;
        }
        if let Some(j) = spaces(cs, i) {
            i = j;
            out.cut(i);
            continue;
        }
        i += 1;
        out.cut(i);
    }
}

fn runs(cs: &[char], set: Set, chunk: Option<usize>, out: &mut Cuts<'_>) {
    let chunk = chunk.unwrap_or(usize::MAX).max(1);
    let mut i = 0;
    while i < cs.len() {
        if !set.contains(cs[i]) {
            i += 1;
            continue;
        }
        // Text before the run is its own (unmatched) piece.
        out.cut(i);
        let mut j = i;
        while j < cs.len() && set.contains(cs[j]) && j - i < chunk {
            j += 1;
        }
        out.cut(j);
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pre: &str, text: &str) -> Vec<String> {
        PreTokenizer::from_name(Some(pre))
            .unwrap()
            .split(text)
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn gpt2_words_keep_their_leading_space() {
        assert_eq!(
            split("gpt-2", "Hello world!!  ok"),
            ["Hello", " world", "!!", " ", " ok"]
        );
        assert_eq!(split("gpt-2", "it's  \n"), ["it", "'s", "  \n"]);
        assert_eq!(split("gpt-2", "x 123abc"), ["x", " 123", "abc"]);
    }

    #[test]
    fn smollm_splits_every_digit() {
        assert_eq!(
            split("smollm", "in 2024, 12345"),
            ["in", " ", "2", "0", "2", "4", ",", " ", "1", "2", "3", "4", "5"]
        );
    }

    #[test]
    fn llama3_groups_three_digits_and_line_breaks() {
        assert_eq!(
            split("llama-bpe", "12345 abc\n\n  x"),
            ["123", "45", " abc", "\n\n", " ", " x"]
        );
        assert_eq!(split("llama-bpe", "I'LL go"), ["I", "'LL", " go"]);
        assert_eq!(split("qwen2", "v12"), ["v", "1", "2"]);
    }

    #[test]
    fn covers_every_character() {
        let text = "안녕하세요 世界! 😀 \t\r\n 1²³ a\u{a0}b \u{200b}z";
        for pre in ["default", "gpt-2", "smollm", "llama-bpe", "qwen2", "falcon"] {
            let words = split(pre, text);
            assert_eq!(words.concat(), text, "{pre}");
            assert!(words.iter().all(|w| !w.is_empty()), "{pre}");
        }
    }

    #[test]
    fn unknown_pre_tokenizer_is_an_error() {
        assert!(PreTokenizer::from_name(Some("no-such")).is_err());
    }
}
