//! Turning a stream of token bytes into text deltas that are always valid UTF-8.
//!
//! A Korean syllable or an emoji is often split over two or three byte tokens; a naive
//! per-token decode shows replacement characters mid-stream. This buffer holds an incomplete
//! trailing sequence back until the bytes that complete it arrive.

/// Accumulates token bytes and releases complete UTF-8 text.
#[derive(Debug, Clone, Default)]
pub struct TextStream {
    pending: Vec<u8>,
    strip_leading_space: bool,
    started: bool,
}

impl TextStream {
    /// A new stream; with `strip_leading_space`, a space at the very start of the text is
    /// dropped (SentencePiece models put one in front of the first word).
    pub fn new(strip_leading_space: bool) -> Self {
        Self {
            pending: Vec::new(),
            strip_leading_space,
            started: false,
        }
    }

    /// Adds bytes and returns the text they complete (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix up to `valid` is valid UTF-8 by the error's contract.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // An incomplete sequence at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        // Bytes that can never become valid: replace them and go on.
                        Some(bad) => {
                            out.push('\u{fffd}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
        self.emit(out)
    }

    /// Flushes whatever is held back (an incomplete sequence becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        self.emit(rest)
    }

    /// Whether bytes are held back waiting for the rest of a character.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn emit(&mut self, mut s: String) -> String {
        if !self.started && !s.is_empty() {
            self.started = true;
            if self.strip_leading_space && s.starts_with(' ') {
                s.remove(0);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_split_characters() {
        let mut s = TextStream::new(false);
        let han = "한".as_bytes();
        assert_eq!(s.push(&han[..1]), "");
        assert!(s.has_pending());
        assert_eq!(s.push(&han[1..2]), "");
        assert_eq!(s.push(&[han[2], b'!']), "한!");
        let emoji = "😀".as_bytes();
        assert_eq!(s.push(&emoji[..3]), "");
        assert_eq!(s.push(&emoji[3..]), "😀");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn replaces_invalid_bytes_and_flushes_incomplete_ones() {
        let mut s = TextStream::new(false);
        assert_eq!(s.push(&[b'a', 0xff, b'b']), "a\u{fffd}b");
        assert_eq!(s.push(&[0xe2, 0x82]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }

    #[test]
    fn strips_only_the_first_leading_space() {
        let mut s = TextStream::new(true);
        assert_eq!(s.push(b""), "");
        assert_eq!(s.push(b" Hello"), "Hello");
        assert_eq!(s.push(b" world"), " world");
    }
}
