//! SentencePiece-style BPE (`tokenizer.ggml.model = llama`): spaces become `▁`, adjacent
//! symbols merge while their concatenation is a vocabulary entry, highest score first, and
//! characters without an entry fall back to `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::Vocab;

/// A symbol of the text being merged: a byte range, linked to its neighbours.
#[derive(Debug, Clone, Copy)]
struct Sym {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge. Ordered so that the heap pops the highest score, leftmost on ties.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bigram {
    score: f32,
    left: usize,
    size: usize,
}

impl Eq for Bigram {}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Tokenizes `text` (spaces already escaped to `▁`), appending ids to `out`.
pub(crate) fn encode(vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
    let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
    for (i, (start, c)) in text.char_indices().enumerate() {
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
    let mut heap = BinaryHeap::new();
    let try_add = |heap: &mut BinaryHeap<Bigram>, syms: &[Sym], left: usize| {
        let Some(right) = syms[left].next else { return };
        let (l, r) = (syms[left], syms[right]);
        let merged = &text[l.start..r.start + r.len];
        if let Some(id) = vocab.id(merged) {
            heap.push(Bigram {
                score: vocab.score(id),
                left,
                size: merged.len(),
            });
        }
    };
    for i in 0..syms.len() {
        try_add(&mut heap, &syms, i);
    }
    while let Some(b) = heap.pop() {
        let Some(right) = syms[b.left].next else {
            continue;
        };
        let (l, r) = (syms[b.left], syms[right]);
        if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
            continue;
        }
        syms[b.left].len += r.len;
        syms[right].len = 0;
        syms[b.left].next = r.next;
        if let Some(n) = r.next {
            syms[n].prev = Some(b.left);
        }
        if let Some(p) = syms[b.left].prev {
            try_add(&mut heap, &syms, p);
        }
        try_add(&mut heap, &syms, b.left);
    }
    let mut cur = if syms.is_empty() { None } else { Some(0) };
    while let Some(i) = cur {
        let s = syms[i];
        let piece = &text[s.start..s.start + s.len];
        match vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    if let Some(id) = vocab.byte_token(b) {
                        out.push(id);
                    }
                }
            }
        }
        cur = s.next;
    }
}
