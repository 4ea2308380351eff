//! Causal attention over an f16 key/value cache.
//!
//! The arithmetic follows llama.cpp's CPU path without flash attention, which stores keys and
//! values as f16, multiplies with the query rounded to f16, and rounds the softmax weights to
//! f16 before weighting the values; each of those products is then exact in f32. Scores are
//! summed in eight lanes ([`super::ops::dot8`]), the weighted values in position order.

use half::f16;

use super::ops::{dot8, round_f16, softmax};

/// Positions per page of the cache.
const PAGE: usize = 64;

/// Bytes per cached key or value (f16); memory estimates use it too.
pub const BYTES_PER_VALUE: usize = 2;

/// Keys and values of past positions for one layer, in pages of [`PAGE`] positions allocated
/// as the context fills: appending never moves what is already cached, and memory follows the
/// tokens actually used rather than the whole context (a tab's memory never shrinks, so
/// reserving 2048 positions up front cost as much as filling them). Within a page the layout
/// is `[head][position][dim]`, f16 bits.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<Box<[u16]>>,
    v: Vec<Box<[u16]>>,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// Room for up to `capacity` positions of `heads` heads of width `head_dim`.
    pub fn new(heads: usize, capacity: usize, head_dim: usize) -> Self {
        Self {
            k: Vec::new(),
            v: Vec::new(),
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

    /// Bytes held (pages allocated so far).
    pub fn bytes(&self) -> usize {
        (self.k.len() + self.v.len()) * self.page_len() * BYTES_PER_VALUE
    }

    /// Bytes the cache holds once all `capacity` positions are used.
    pub fn full_bytes(&self) -> usize {
        2 * self.heads * self.capacity * self.head_dim * BYTES_PER_VALUE
    }

    fn page_len(&self) -> usize {
        self.heads * PAGE * self.head_dim
    }

    /// Forgets positions from `len` on (their pages stay allocated for reuse).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends rows of keys and values (`n` rows of `heads * head_dim`), rounding them to f16.
    /// The caller checks that they fit.
    pub fn append(&mut self, k: &[f32], v: &[f32]) {
        let width = self.heads * self.head_dim;
        let n = k.len() / width;
        debug_assert!(self.len + n <= self.capacity);
        let hd = self.head_dim;
        for i in 0..n {
            let t = self.len + i;
            let (page, slot) = (t / PAGE, t % PAGE);
            while self.k.len() <= page {
                let zeros = vec![0u16; self.page_len()].into_boxed_slice();
                self.k.push(zeros.clone());
                self.v.push(zeros);
            }
            for h in 0..self.heads {
                let src = i * width + h * hd;
                let dst = (h * PAGE + slot) * hd;
                for d in 0..hd {
                    self.k[page][dst + d] = f16::from_f32(k[src + d]).to_bits();
                    self.v[page][dst + d] = f16::from_f32(v[src + d]).to_bits();
                }
            }
        }
        self.len += n;
    }

    fn at(&self, head: usize, t: usize) -> (usize, std::ops::Range<usize>) {
        let at = (head * PAGE + t % PAGE) * self.head_dim;
        (t / PAGE, at..at + self.head_dim)
    }

    fn key(&self, head: usize, t: usize) -> &[u16] {
        let (p, r) = self.at(head, t);
        &self.k[p][r]
    }

    fn value(&self, head: usize, t: usize) -> &[u16] {
        let (p, r) = self.at(head, t);
        &self.v[p][r]
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

/// Widens f16 bits into `out` (see [`super::f16_to_f32`]).
#[inline(always)]
fn widen(bits: &[u16], out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    super::wasm::widen_f16(bits, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    for (o, &b) in out.iter_mut().zip(bits) {
        *o = super::f16_to_f32(b);
    }
}

/// Attention of `n` query rows (the last `n` positions in `cache`) with `heads` query heads
/// sharing `cache`'s heads in groups; writes `n` rows of `heads * head_dim` into `out`.
///
/// Each cached key and value is widened once per group of query heads that shares it, and
/// each query head's products are the same as if it were computed alone.
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
    s.q.resize(group * hd, 0.0);
    s.k.resize(hd, 0.0);
    s.acc.resize(group * hd, 0.0);
    for i in 0..n {
        let visible = first + i + 1;
        s.scores.resize(group * visible, 0.0);
        for g in 0..cache.heads {
            let heads_of_g = g * group..(g + 1) * group;
            let q_rows = &q[i * width + heads_of_g.start * hd..i * width + heads_of_g.end * hd];
            for (dst, &x) in s.q.iter_mut().zip(q_rows) {
                *dst = round_f16(x);
            }
            for t in 0..visible {
                widen(cache.key(g, t), &mut s.k);
                for j in 0..group {
                    s.scores[j * visible + t] = dot8(&s.q[j * hd..(j + 1) * hd], &s.k) * scale;
                }
            }
            for j in 0..group {
                softmax(&mut s.scores[j * visible..(j + 1) * visible]);
            }
            s.acc.iter_mut().for_each(|a| *a = 0.0);
            for t in 0..visible {
                widen(cache.value(g, t), &mut s.k);
                for j in 0..group {
                    let p = round_f16(s.scores[j * visible + t]);
                    for (a, &v) in s.acc[j * hd..(j + 1) * hd].iter_mut().zip(&s.k) {
                        *a += p * v;
                    }
                }
            }
            out[i * width + heads_of_g.start * hd..i * width + heads_of_g.end * hd].copy_from_slice(&s.acc);
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

    /// Regression for the paged cache: positions on both sides of page boundaries, appended in
    /// uneven batches, give exactly what a plain per-head computation over the same f16 keys
    /// and values gives, for every query head of a group.
    #[test]
    fn paged_cache_matches_plain_attention_across_pages() {
        let (kv_heads, heads, hd) = (2, 6, 8);
        let total = 2 * PAGE + 5;
        let mut rng = crate::sampling::Rng::new(3);
        let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect() };
        let (ks, vs) = (r(total * kv_heads * hd), r(total * kv_heads * hd));
        let mut c = KvCache::new(kv_heads, total, hd);
        let mut at = 0;
        for step in [1, 63, 1, 60, total - 125] {
            let w = kv_heads * hd;
            c.append(&ks[at * w..(at + step) * w], &vs[at * w..(at + step) * w]);
            at += step;
        }
        assert_eq!(c.len(), total);
        assert_eq!(c.bytes(), c.full_bytes() / total * 3 * PAGE);
        let q = r(heads * hd);
        let mut out = vec![0f32; heads * hd];
        attention(&q, &c, heads, 0.3, &mut out, &mut AttentionScratch::default());
        let f = |x: f32| f16::from_f32(x).to_f32();
        for h in 0..heads {
            let g = h / (heads / kv_heads);
            let qh: Vec<f32> = q[h * hd..(h + 1) * hd].iter().map(|&x| f(x)).collect();
            let mut scores: Vec<f32> = (0..total)
                .map(|t| {
                    let k: Vec<f32> = (0..hd).map(|d| f(ks[(t * kv_heads + g) * hd + d])).collect();
                    dot8(&qh, &k) * 0.3
                })
                .collect();
            softmax(&mut scores);
            let mut want = vec![0f32; hd];
            for (t, &p) in scores.iter().enumerate() {
                for d in 0..hd {
                    want[d] += round_f16(p) * f(vs[(t * kv_heads + g) * hd + d]);
                }
            }
            assert_eq!(&out[h * hd..(h + 1) * hd], &want[..], "head {h}");
        }
    }
}
