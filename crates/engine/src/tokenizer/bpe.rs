//! Byte-level BPE (`tokenizer.ggml.model = gpt2`): pre-tokenize, map bytes to characters, then
//! merge adjacent symbols by rank.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::pretokenize::PreTokenizer;
use super::{bytes, Vocab};
use crate::error::{Error, Result};

/// Merge ranks and the pre-tokenizer.
#[derive(Debug, Clone)]
pub(crate) struct Bpe {
    /// `left \0 right` → rank (position in `tokenizer.ggml.merges`; lower merges first).
    ranks: HashMap<String, u32>,
    pub(crate) pre: PreTokenizer,
}

/// Separates the two halves of a merge key; never part of a byte-level token.
const SEP: char = '\0';

/// A symbol of the word being merged: a byte range of it, linked to its neighbours.
#[derive(Debug, Clone, Copy)]
struct Sym {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

impl Bpe {
    pub(crate) fn new(merges: &[String], pre: PreTokenizer) -> Result<Self> {
        let mut ranks = HashMap::with_capacity(merges.len());
        for (rank, m) in merges.iter().enumerate() {
            // As llama.cpp: split at the first space after the first byte, so a merge whose
            // left half is a space itself still splits correctly.
            let split = m
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c == ' ')
                .map(|(i, _)| i)
                .ok_or_else(|| {
                    Error::Tokenizer(format!(
                        "merge {rank} ({m:?}) has no space between its two halves"
                    ))
                })?;
            let key = format!("{}{SEP}{}", &m[..split], &m[split + 1..]);
            ranks.entry(key).or_insert(rank as u32);
        }
        Ok(Self { ranks, pre })
    }

    /// Tokenizes text that holds no special tokens, appending ids to `out`.
    pub(crate) fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut word = String::new();
        let mut key = String::new();
        for piece in self.pre.split(text) {
            word.clear();
            bytes::encode(piece.as_bytes(), &mut word);
            if self.pre.ignore_merges() {
                if let Some(id) = vocab.id(&word) {
                    out.push(id);
                    continue;
                }
            }
            self.merge_word(vocab, &word, &mut key, out);
        }
    }

    fn rank(&self, key: &mut String, word: &str, l: &Sym, r: &Sym) -> Option<u32> {
        key.clear();
        key.push_str(&word[l.start..l.start + l.len]);
        key.push(SEP);
        key.push_str(&word[r.start..r.start + r.len]);
        self.ranks.get(key.as_str()).copied()
    }

    fn merge_word(&self, vocab: &Vocab, word: &str, key: &mut String, out: &mut Vec<u32>) {
        let mut syms: Vec<Sym> = Vec::with_capacity(word.len());
        for (i, (start, c)) in word.char_indices().enumerate() {
            syms.push(Sym {
                start,
                len: c.len_utf8(),
                prev: i.checked_sub(1),
                next: None,
            });
            if i > 0 {
                syms[i - 1].next = Some(i);
            }
        }
        // (rank, left index, left len, right len): lowest rank first, leftmost on ties. The
        // lengths let a stale entry (a neighbour already merged) be recognised and skipped.
        let mut heap: BinaryHeap<Reverse<(u32, usize, usize, usize)>> = BinaryHeap::new();
        let push = |heap: &mut BinaryHeap<_>, syms: &[Sym], key: &mut String, left: usize| {
            if let Some(right) = syms[left].next {
                if let Some(rank) = self.rank(key, word, &syms[left], &syms[right]) {
                    heap.push(Reverse((rank, left, syms[left].len, syms[right].len)));
                }
            }
        };
        for i in 0..syms.len() {
            push(&mut heap, &syms, key, i);
        }
        while let Some(Reverse((_, left, left_len, right_len))) = heap.pop() {
            let Some(right) = syms[left].next else {
                continue;
            };
            if syms[left].len != left_len || syms[right].len != right_len || left_len == 0 || right_len == 0 {
                continue;
            }
            syms[left].len += syms[right].len;
            syms[right].len = 0;
            syms[left].next = syms[right].next;
            if let Some(n) = syms[right].next {
                syms[n].prev = Some(left);
            }
            if let Some(p) = syms[left].prev {
                push(&mut heap, &syms, key, p);
            }
            push(&mut heap, &syms, key, left);
        }
        let mut cur = if syms.is_empty() { None } else { Some(0) };
        while let Some(i) = cur {
            let s = syms[i];
            let text = &word[s.start..s.start + s.len];
            match vocab.id(text) {
                Some(id) => out.push(id),
                // A symbol the vocabulary lacks falls back to its single bytes, as in
                // llama.cpp: only ASCII characters can be single-byte entries; the rest is
                // dropped.
                None => {
                    for (j, c) in text.char_indices() {
                        if c.is_ascii() {
                            if let Some(id) = vocab.id(&text[j..j + 1]) {
                                out.push(id);
                            }
                        }
                    }
                }
            }
            cur = s.next;
        }
    }
}
