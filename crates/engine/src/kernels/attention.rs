//! Causal attention over an f16 key/value cache.
//!
//! The arithmetic follows llama.cpp's CPU path without flash attention, which stores keys and
//! values as f16, multiplies with the query rounded to f16, and rounds the softmax weights to
//! f16 before weighting the values; each of those products is then exact in f32. Scores are
//! summed in eight lanes ([`super::ops::dot8`]), the weighted values in position order.

use half::f16;

use super::ops::{dot8, round_f16, softmax};

/// Keys and values of past positions for one layer, preallocated for the whole context so that
/// appending never moves what is already cached. Layout: `[head][position][dim]`, f16 bits.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<u16>,
    v: Vec<u16>,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// Room for `capacity` positions of `heads` heads of width `head_dim`.
    pub fn new(heads: usize, capacity: usize, head_dim: usize) -> Self {
        let n = heads * capacity * head_dim;
        Self {
            k: vec![0; n],
            v: vec![0; n],
            heads,
            head_dim,
            capacity,
            len: 0,
        }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions that fit.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * 2
    }

    /// Forgets positions from `len` on.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends rows of keys and values (`n` rows of `heads * head_dim`), rounding them to f16.
    /// The caller checks that they fit.
    pub fn append(&mut self, k: &[f32], v: &[f32]) {
        let width = self.heads * self.head_dim;
        let n = k.len() / width;
        debug_assert!(self.len + n <= self.capacity);
        for i in 0..n {
            let t = self.len + i;
            for h in 0..self.heads {
                let src = i * width + h * self.head_dim;
                let dst = (h * self.capacity + t) * self.head_dim;
                for d in 0..self.head_dim {
                    self.k[dst + d] = f16::from_f32(k[src + d]).to_bits();
                    self.v[dst + d] = f16::from_f32(v[src + d]).to_bits();
                }
            }
        }
        self.len += n;
    }

    fn key(&self, head: usize, t: usize) -> &[u16] {
        let at = (head * self.capacity + t) * self.head_dim;
        &self.k[at..at + self.head_dim]
    }

    fn value(&self, head: usize, t: usize) -> &[u16] {
        let at = (head * self.capacity + t) * self.head_dim;
        &self.v[at..at + self.head_dim]
    }
}

/// Reusable buffers for [`attention`].
#[derive(Debug, Default, Clone)]
pub struct AttentionScratch {
    scores: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    acc: Vec<f32>,
}

/// Attention of `n` query rows (the last `n` positions in `cache`) with `heads` query heads
/// sharing `cache`'s heads in groups; writes `n` rows of `heads * head_dim` into `out`.
pub fn attention(
    q: &[f32],
    cache: &KvCache,
    heads: usize,
    scale: f32,
    out: &mut [f32],
    s: &mut AttentionScratch,
) {
    let hd = cache.head_dim;
    let width = heads * hd;
    let n = q.len() / width;
    let group = heads / cache.heads;
    let first = cache.len - n;
    s.q.resize(hd, 0.0);
    s.k.resize(hd, 0.0);
    s.acc.resize(hd, 0.0);
    for i in 0..n {
        let visible = first + i + 1;
        s.scores.resize(visible, 0.0);
        for h in 0..heads {
            let g = h / group;
            for (dst, &x) in
                s.q.iter_mut()
                    .zip(&q[i * width + h * hd..i * width + (h + 1) * hd])
            {
                *dst = round_f16(x);
            }
            for t in 0..visible {
                for (dst, &bits) in s.k.iter_mut().zip(cache.key(g, t)) {
                    *dst = f16::from_bits(bits).to_f32();
                }
                s.scores[t] = dot8(&s.q, &s.k) * scale;
            }
            softmax(&mut s.scores);
            s.acc.iter_mut().for_each(|a| *a = 0.0);
            for t in 0..visible {
                let p = round_f16(s.scores[t]);
                for (a, &bits) in s.acc.iter_mut().zip(cache.value(g, t)) {
                    *a += p * f16::from_bits(bits).to_f32();
                }
            }
            out[i * width + h * hd..i * width + (h + 1) * hd].copy_from_slice(&s.acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_position_returns_its_value() {
        let mut c = KvCache::new(1, 4, 2);
        c.append(&[1.0, 0.0], &[3.0, -2.0]);
        let mut out = [0f32; 4];
        attention(
            &[0.5, 0.5, 9.0, 9.0],
            &c,
            2,
            1.0,
            &mut out,
            &mut AttentionScratch::default(),
        );
        assert_eq!(out, [3.0, -2.0, 3.0, -2.0]);
    }

    #[test]
    fn later_rows_see_more_positions_and_weights_follow_scores() {
        let mut c = KvCache::new(1, 4, 2);
        c.append(&[1.0, 0.0, 0.0, 1.0], &[1.0, 0.0, 0.0, 1.0]);
        let mut out = [0f32; 4];
        // Row 0 sees only position 0; row 1 prefers position 1 (its key matches the query).
        attention(
            &[5.0, 0.0, 0.0, 5.0],
            &c,
            1,
            1.0,
            &mut out,
            &mut AttentionScratch::default(),
        );
        assert_eq!(&out[..2], &[1.0, 0.0]);
        assert!(out[3] > 0.99 && out[2] < 0.01);
        c.truncate(1);
        assert_eq!(c.len(), 1);
    }
}
