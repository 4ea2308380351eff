//! GPT-2's reversible byte-to-character mapping: byte-level BPE vocabularies store every byte
//! as a printable character (a space is `Ġ`, a newline `Ċ`).

use std::sync::OnceLock;

struct Tables {
    to_char: [char; 256],
    /// Indexed by the code point minus 0; only code points below 0x180 are used.
    from_char: [Option<u8>; 0x180],
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let mut to_char = ['\0'; 256];
        let mut from_char = [None; 0x180];
        let printable =
            |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        let mut next = 256u32;
        for b in 0u32..256 {
            let cp = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            // Every code point here is below 0x180, so it is a valid char.
            let c = char::from_u32(cp).unwrap_or('\u{fffd}');
            to_char[b as usize] = c;
            from_char[cp as usize] = Some(b as u8);
        }
        Tables { to_char, from_char }
    })
}

/// Maps raw bytes to the vocabulary's character form.
pub(crate) fn encode(bytes: &[u8], out: &mut String) {
    let t = tables();
    out.extend(bytes.iter().map(|&b| t.to_char[b as usize]));
}

/// Maps a vocabulary string back to bytes; a character outside the mapping (which a
/// well-formed vocabulary never has) is kept as its UTF-8 bytes.
pub(crate) fn decode(s: &str, out: &mut Vec<u8>) {
    let t = tables();
    for c in s.chars() {
        match t.from_char.get(c as usize).copied().flatten() {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let mut s = String::new();
        encode(&all, &mut s);
        assert_eq!(s.chars().count(), 256);
        assert!(s.starts_with('Ā'));
        let mut back = Vec::new();
        decode(&s, &mut back);
        assert_eq!(back, all);
        let mut sp = String::new();
        encode(b" \n", &mut sp);
        assert_eq!(sp, "ĠĊ");
    }
}
