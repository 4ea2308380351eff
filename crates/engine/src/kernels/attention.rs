//! Causal attention over a key/value cache of f16 or Q8_0 values.
//!
//! With f16 (the default) the arithmetic follows llama.cpp's CPU path without flash attention,
//! which stores keys and values as f16, multiplies with the query rounded to f16, and rounds
//! the softmax weights to f16 before weighting the values; each of those products is then
//! exact in f32. Scores are summed in eight lanes ([`super::ops::dot8`]), the weighted values
//! in position order.
//!
//! With Q8_0 each cached row is quantized per block of 32 like an activation row
//! ([`super::QActivations`]) and stored in ggml's `block_q8_0` layout. Scores are then the
//! engine's Q8_0 matrix kernel applied to a page of keys with the query quantized the same
//! way (as llama.cpp multiplies a Q8_0 key cache), and values are dequantized row by row.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use half::f16;
use omp_protocol::KvCacheType;

use super::ops::{dot8, round_f16, softmax_f16};
use super::{rows_kernel, scalar, QActivations, WeightType, BLOCK};

/// Positions per page of the cache.
const PAGE: usize = 64;

/// Bytes one cached row of `head_dim` values takes in `kind` (Q8_0: 34 bytes per 32 values).
/// Memory estimates use it too.
pub fn row_bytes(kind: KvCacheType, head_dim: usize) -> usize {
    match kind {
        KvCacheType::F16 => 2 * head_dim,
        KvCacheType::Q8_0 => head_dim / BLOCK * WeightType::Q8_0.block_bytes(),
    }
}

/// The storage a cache for rows of `head_dim` values really uses when `kind` is asked for:
/// Q8_0 needs whole blocks, so other widths keep f16.
pub fn effective_kind(kind: KvCacheType, head_dim: usize) -> KvCacheType {
    match kind {
        KvCacheType::Q8_0 if head_dim.is_multiple_of(BLOCK) => KvCacheType::Q8_0,
        _ => KvCacheType::F16,
    }
}

/// Keys and values of past positions for one layer, in pages of [`PAGE`] positions allocated
/// as the context fills: appending never moves what is already cached, and memory follows the
/// tokens actually used rather than the whole context (a tab's memory never shrinks, so
/// reserving 2048 positions up front cost as much as filling them). Within a page the layout
/// is `[head][position][row]`, a row being `head_dim` f16 values (little-endian bits) or
/// `head_dim / 32` Q8_0 blocks.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<Box<[u8]>>,
    v: Vec<Box<[u8]>>,
    kind: KvCacheType,
    heads: usize,
    head_dim: usize,
    /// Bytes of one cached row (one head at one position).
    row: usize,
    capacity: usize,
    len: usize,
}

impl KvCache {
    /// Room for up to `capacity` positions of `heads` heads of width `head_dim`, stored as
    /// `kind` (see [`effective_kind`]).
    pub fn new(kind: KvCacheType, heads: usize, capacity: usize, head_dim: usize) -> Self {
        let kind = effective_kind(kind, head_dim);
        Self {
            k: Vec::new(),
            v: Vec::new(),
            kind,
            heads,
            head_dim,
            row: row_bytes(kind, head_dim),
            capacity,
            len: 0,
        }
    }

    /// How values are stored.
    pub fn kind(&self) -> KvCacheType {
        self.kind
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
        (self.k.len() + self.v.len()) * self.page_bytes()
    }

    /// Bytes the cache holds once all `capacity` positions are used.
    pub fn full_bytes(&self) -> usize {
        2 * self.heads * self.capacity * self.row
    }

    fn page_bytes(&self) -> usize {
        self.heads * PAGE * self.row
    }

    /// Forgets positions from `len` on (their pages stay allocated for reuse).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Appends rows of keys and values (`n` rows of `heads * head_dim`), rounding them to the
    /// cache's type. The caller checks that they fit.
    pub fn append(&mut self, k: &[f32], v: &[f32]) {
        let width = self.heads * self.head_dim;
        let n = k.len() / width;
        debug_assert!(self.len + n <= self.capacity);
        let (hd, row) = (self.head_dim, self.row);
        for i in 0..n {
            let t = self.len + i;
            let (page, slot) = (t / PAGE, t % PAGE);
            while self.k.len() <= page {
                let zeros = vec![0u8; self.page_bytes()].into_boxed_slice();
                self.k.push(zeros.clone());
                self.v.push(zeros);
            }
            for h in 0..self.heads {
                let src = i * width + h * hd;
                let dst = (h * PAGE + slot) * row;
                let kind = self.kind;
                store(kind, &k[src..src + hd], &mut self.k[page][dst..dst + row]);
                store(kind, &v[src..src + hd], &mut self.v[page][dst..dst + row]);
            }
        }
        self.len += n;
    }

    fn at(&self, head: usize, t: usize) -> (usize, std::ops::Range<usize>) {
        let at = (head * PAGE + t % PAGE) * self.row;
        (t / PAGE, at..at + self.row)
    }

    fn value(&self, head: usize, t: usize) -> &[u8] {
        let (p, r) = self.at(head, t);
        &self.v[p][r]
    }

    /// The keys of `head` at positions `t..t + count`, all within one page: `count` rows.
    fn keys(&self, head: usize, t: usize, count: usize) -> &[u8] {
        let (p, r) = self.at(head, t);
        &self.k[p][r.start..r.start + count * self.row]
    }

    /// The values of `head` at positions `t..t + count`, all within one page: `count` rows.
    fn values(&self, head: usize, t: usize, count: usize) -> &[u8] {
        let (p, r) = self.at(head, t);
        &self.v[p][r.start..r.start + count * self.row]
    }
}

/// Writes one row of values into `out` in `kind`'s layout.
fn store(kind: KvCacheType, x: &[f32], out: &mut [u8]) {
    match kind {
        KvCacheType::F16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
            }
        }
        KvCacheType::Q8_0 => {
            let mut q = [0i8; BLOCK];
            for (blk, x) in out.chunks_exact_mut(34).zip(x.chunks_exact(BLOCK)) {
                let (d, _) = scalar::quantize_block(x, &mut q);
                blk[..2].copy_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
                for (o, &v) in blk[2..].iter_mut().zip(&q) {
                    *o = v as u8;
                }
            }
        }
    }
}

/// Reusable buffers for [`attention`]: one set per key/value head, so that the heads' groups
/// can run on different threads.
#[derive(Debug, Default)]
pub struct AttentionScratch {
    groups: Vec<Mutex<GroupScratch>>,
    /// Every group's output rows, group after group (`n` rows of a group's width each).
    out: Vec<f32>,
    /// The buffers of [`attend_split`].
    split: SplitScratch,
}

/// Buffers of [`attend_split`], each written tile by tile by the pool.
#[derive(Debug, Default)]
struct SplitScratch {
    /// The query heads rounded to f16.
    q: Vec<f32>,
    /// Scores by tile: `[group][position chunk][head of the group][SPLIT_POSITIONS]`.
    scores: Vec<f32>,
    /// Softmax weights, rounded to f16: `[head][position]`.
    weights: Vec<f32>,
    /// Weighted values by tile: `[group][dimension chunk][head of the group][SPLIT_DIMS]`.
    out: Vec<f32>,
}

/// Positions per score tile of [`attend_split`] (divides [`PAGE`], so a tile's keys are in one
/// page).
const SPLIT_POSITIONS: usize = 32;

/// Dimensions per weighted-value tile of [`attend_split`] (a multiple of the fused kernels' 8).
/// Why 32: a tile then reads 64 bytes of each value row, a cache line's worth; with 16, two
/// threads kept reading the same lines and natively the split was slower than group tiles.
const SPLIT_DIMS: usize = 32;

/// Cached positions from which a one-row attention on several threads takes [`attend_split`].
/// Why not always: its three pool jobs instead of one cost more than they balance at short
/// contexts, where attention is a small part of a step.
const SPLIT_FROM: usize = 256;

/// Buffers of one group of query heads.
#[derive(Debug, Default)]
struct GroupScratch {
    scores: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    acc: Vec<f32>,
    /// The group's query heads, quantized (Q8_0 caches).
    qa: QActivations,
}

/// One platform's fused kernels for the f16 cache, for a group of `G` query heads sharing a
/// key/value head (`hd`, the head width, a multiple of 8): the arithmetic of the plain loops in
/// [`f16_scores`] and [`f16_weighted_sum`], bit for bit, with each cached row widened once for
/// the whole group and kept in registers.
pub(crate) trait FusedF16 {
    /// `out[j * stride + i] = dot8(q head j, key i) * scale` for the `keys.len() / (2 * hd)`
    /// key rows.
    ///
    /// # Safety
    /// The platform's instructions must be available.
    unsafe fn scores<const G: usize>(
        keys: &[u8],
        hd: usize,
        q: &[f32],
        scale: f32,
        out: &mut [f32],
        stride: usize,
    );

    /// `acc[j * w + d - dims.start] += p[j * stride + i] * value i [d]` for each value row `i`
    /// in order and each dimension `d` in `dims` (`w = dims.len()`; both ends multiples of 8).
    ///
    /// # Safety
    /// As [`FusedF16::scores`].
    unsafe fn weighted<const G: usize>(
        values: &[u8],
        hd: usize,
        p: &[f32],
        stride: usize,
        acc: &mut [f32],
        dims: Range<usize>,
    );
}

/// `K`'s scores for groups of 1 to 4 heads (their accumulators fit in registers), head by head
/// past that.
///
/// # Safety
/// As [`FusedF16::scores`].
unsafe fn fused_scores<K: FusedF16>(
    keys: &[u8],
    hd: usize,
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
    stride: usize,
) {
    // SAFETY: the caller's guarantee is the kernels'.
    unsafe {
        match group {
            1 => K::scores::<1>(keys, hd, q, scale, out, stride),
            2 => K::scores::<2>(keys, hd, q, scale, out, stride),
            3 => K::scores::<3>(keys, hd, q, scale, out, stride),
            4 => K::scores::<4>(keys, hd, q, scale, out, stride),
            _ => {
                for j in 0..group {
                    K::scores::<1>(keys, hd, &q[j * hd..], scale, &mut out[j * stride..], stride);
                }
            }
        }
    }
}

/// `K`'s weighted values over `dims` (see [`FusedF16::weighted`]), grouped as
/// [`fused_scores`].
///
/// # Safety
/// As [`FusedF16::weighted`].
unsafe fn fused_weighted<K: FusedF16>(
    values: &[u8],
    hd: usize,
    p: &[f32],
    stride: usize,
    group: usize,
    acc: &mut [f32],
    dims: Range<usize>,
) {
    // SAFETY: the caller's guarantee is the kernels'.
    unsafe {
        match group {
            1 => K::weighted::<1>(values, hd, p, stride, acc, dims),
            2 => K::weighted::<2>(values, hd, p, stride, acc, dims),
            3 => K::weighted::<3>(values, hd, p, stride, acc, dims),
            4 => K::weighted::<4>(values, hd, p, stride, acc, dims),
            _ => {
                let w = dims.len();
                for j in 0..group {
                    K::weighted::<1>(
                        values,
                        hd,
                        &p[j * stride..],
                        stride,
                        &mut acc[j * w..],
                        dims.clone(),
                    );
                }
            }
        }
    }
}

/// Scores of the `group` query heads in `q` (`hd` f16-rounded values each) against `count`
/// f16 key rows: `out[j * stride + i] = dot8(head j, key i) * scale`. `k` is room for one
/// widened row where there is no fused kernel.
#[allow(clippy::too_many_arguments)]
fn f16_scores(
    keys: &[u8],
    hd: usize,
    q: &[f32],
    group: usize,
    scale: f32,
    out: &mut [f32],
    stride: usize,
    k: &mut [f32],
) {
    if has_fused(hd) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        // SAFETY: simd128 is enabled at compile time.
        return unsafe { fused_scores::<super::wasm::Simd128>(keys, hd, q, group, scale, out, stride) };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and F16C (`has_fused` checked).
        return unsafe { fused_scores::<super::x86::Avx2F16c>(keys, hd, q, group, scale, out, stride) };
    }
    for (i, key) in keys.chunks_exact(2 * hd).enumerate() {
        widen_f16(key, k);
        for j in 0..group {
            out[j * stride + i] = dot8(&q[j * hd..(j + 1) * hd], k) * scale;
        }
    }
}

/// Adds the `count` f16 value rows weighted by `p[j * stride + i]` into head `j`'s dimensions
/// `dims`, `acc[j * w..(j + 1) * w]` (`w = dims.len()`), in position order. `v` is room for
/// one widened row where there is no fused kernel.
#[allow(clippy::too_many_arguments)]
fn f16_weighted_sum(
    values: &[u8],
    hd: usize,
    p: &[f32],
    stride: usize,
    group: usize,
    acc: &mut [f32],
    dims: Range<usize>,
    v: &mut [f32],
) {
    if has_fused(hd) {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        // SAFETY: simd128 is enabled at compile time.
        return unsafe { fused_weighted::<super::wasm::Simd128>(values, hd, p, stride, group, acc, dims) };
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has AVX2 and F16C (`has_fused` checked).
        return unsafe { fused_weighted::<super::x86::Avx2F16c>(values, hd, p, stride, group, acc, dims) };
    }
    let w = dims.len();
    for (i, row) in values.chunks_exact(2 * hd).enumerate() {
        widen_f16(row, v);
        for j in 0..group {
            let pw = p[j * stride + i];
            for (a, &x) in acc[j * w..(j + 1) * w].iter_mut().zip(&v[dims.clone()]) {
                *a += pw * x;
            }
        }
    }
}

/// Whether this platform has fused f16 kernels for heads of width `hd`.
fn has_fused(hd: usize) -> bool {
    if !hd.is_multiple_of(8) {
        return false;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return true;
    #[cfg(target_arch = "x86_64")]
    return super::x86::has_f16_attention();
    #[allow(unreachable_code)]
    false
}

/// Widens little-endian f16 bits into `out` (see [`super::f16_to_f32`]).
#[inline(always)]
fn widen_f16(bits: &[u8], out: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    super::wasm::widen_f16(bits, out);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    for (o, b) in out.iter_mut().zip(bits.chunks_exact(2)) {
        *o = super::f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// Attention of `n` query rows (the last `n` positions in `cache`) with `heads` query heads
/// sharing `cache`'s heads in groups; writes `n` rows of `heads * head_dim` into `out`.
///
/// Each cached key and value is widened once per group of query heads that shares it, and
/// each query head's products are the same as if it were computed alone. The groups (and runs
/// of rows, or at long contexts finer tiles) are the thread pool's tasks; the arithmetic does
/// not depend on which thread runs it.
///
/// `window` bounds how far back a row looks: a query at position `p` sees positions
/// `p + 1 - window ..= p` (sliding-window attention, as llama.cpp masks it); `usize::MAX` for
/// full causal attention.
pub fn attention(
    q: &[f32],
    cache: &KvCache,
    heads: usize,
    scale: f32,
    window: usize,
    out: &mut [f32],
    s: &mut AttentionScratch,
) {
    let n = q.len() / (heads * cache.head_dim);
    let whole = window >= cache.len;
    if n == 1 && whole && cache.len >= SPLIT_FROM && crate::pool::threads() > 1 && splits(cache) {
        attend_split(q, cache, heads, scale, out, &mut s.split);
    } else {
        attend_by_group(q, cache, heads, scale, window, out, s);
    }
}

/// [`attention`] with a group of query heads and a run of query rows as each pool tile: every
/// row of a group when there is one row, else up to [`ROW_TILES`] runs of rows per group.
///
/// Why rows too: with SmolLM2's 3 groups as the only tiles, one of 2 threads took two of them,
/// 2/3 of a prefill's attention, which is a large part of a long prompt's prefill. Each row's
/// arithmetic is the same whichever tile or thread computes it, so the bits do not change.
fn attend_by_group(
    q: &[f32],
    cache: &KvCache,
    heads: usize,
    scale: f32,
    window: usize,
    out: &mut [f32],
    s: &mut AttentionScratch,
) {
    let hd = cache.head_dim;
    let width = heads * hd;
    let n = q.len() / width;
    let gw = heads / cache.heads * hd;
    if n == 0 {
        return;
    }
    let rows_per_tile = n.div_ceil(ROW_TILES);
    let per_group = n.div_ceil(rows_per_tile);
    let tiles = cache.heads * per_group;
    if s.groups.len() < tiles {
        s.groups.resize_with(tiles, Default::default);
    }
    // `[group][tile of the group][row of the tile]`, a tile's rows padded to `rows_per_tile`.
    s.out.resize(tiles * rows_per_tile * gw, 0.0);
    let groups = &s.groups;
    crate::pool::for_each_chunk(&mut s.out, rows_per_tile * gw, &|t, tile_out| {
        let (g, r0) = (t / per_group, t % per_group * rows_per_tile);
        let rows = r0..(r0 + rows_per_tile).min(n);
        // Each task locks only its own tile's buffers, so the lock is never contended (and a
        // panic elsewhere cannot poison what this tile needs).
        let mut gs = groups[t].lock().unwrap_or_else(PoisonError::into_inner);
        attend_group(q, cache, heads, g, rows, scale, window, tile_out, &mut gs);
    });
    for g in 0..cache.heads {
        for i in 0..n {
            let src = (g * per_group * rows_per_tile + i) * gw;
            out[i * width + g * gw..i * width + (g + 1) * gw].copy_from_slice(&s.out[src..src + gw]);
        }
    }
}

/// Runs of query rows per group in a several-row (prefill) attention: with 3 groups, 12 tiles,
/// which 2 to 4 threads share evenly enough. Each has its own scores buffer over the context.
pub(crate) const ROW_TILES: usize = 4;

/// Whether [`attend_split`] can take `cache`: f16 rows with fused kernels whose width the
/// dimension tiles divide.
fn splits(cache: &KvCache) -> bool {
    cache.kind == KvCacheType::F16 && has_fused(cache.head_dim) && cache.head_dim.is_multiple_of(SPLIT_DIMS)
}

/// One query row's attention as three pool jobs whose tiles are finer than a group, for the
/// same bits as [`attend_group`]: the scores by (group, chunk of [`SPLIT_POSITIONS`]
/// positions), then the softmax by query head, then the weighted values by (group, chunk of
/// [`SPLIT_DIMS`] dimensions), each dimension still summed in position order.
///
/// Why: SmolLM2 has 3 key/value groups, so with the groups as tiles one of 2 threads takes
/// two of them (2/3 of the work instead of 1/2) and a fourth thread has none; at long contexts
/// attention is most of a decode step. Needs [`splits`].
fn attend_split(q: &[f32], cache: &KvCache, heads: usize, scale: f32, out: &mut [f32], s: &mut SplitScratch) {
    let hd = cache.head_dim;
    let group = heads / cache.heads;
    let visible = cache.len;
    let chunks = visible.div_ceil(SPLIT_POSITIONS);
    s.q.clear();
    s.q.extend(q[..heads * hd].iter().map(|&x| round_f16(x)));
    s.scores
        .resize(cache.heads * chunks * group * SPLIT_POSITIONS, 0.0);
    let qr = &s.q;
    crate::pool::for_each_chunk(&mut s.scores, group * SPLIT_POSITIONS, &|t, o| {
        let (g, t0) = (t / chunks, t % chunks * SPLIT_POSITIONS);
        let count = SPLIT_POSITIONS.min(visible - t0);
        let keys = cache.keys(g, t0, count);
        let q = &qr[g * group * hd..(g + 1) * group * hd];
        f16_scores(keys, hd, q, group, scale, o, SPLIT_POSITIONS, &mut []);
    });
    s.weights.resize(heads * visible, 0.0);
    let scores = &s.scores;
    crate::pool::for_each_chunk(&mut s.weights, visible, &|h, w| {
        let (g, j) = (h / group, h % group);
        for (c, w) in w.chunks_mut(SPLIT_POSITIONS).enumerate() {
            let at = ((g * chunks + c) * group + j) * SPLIT_POSITIONS;
            w.copy_from_slice(&scores[at..at + w.len()]);
        }
        // The weights multiply the values as f16 (see the module's notes).
        softmax_f16(w);
    });
    let dim_chunks = hd / SPLIT_DIMS;
    s.out.resize(cache.heads * dim_chunks * group * SPLIT_DIMS, 0.0);
    let weights = &s.weights;
    crate::pool::for_each_chunk(&mut s.out, group * SPLIT_DIMS, &|t, acc| {
        let (g, d0) = (t / dim_chunks, t % dim_chunks * SPLIT_DIMS);
        acc.iter_mut().for_each(|a| *a = 0.0);
        let p = &weights[g * group * visible..(g + 1) * group * visible];
        for t0 in (0..visible).step_by(PAGE) {
            let count = PAGE.min(visible - t0);
            let values = cache.values(g, t0, count);
            f16_weighted_sum(
                values,
                hd,
                &p[t0..],
                visible,
                group,
                acc,
                d0..d0 + SPLIT_DIMS,
                &mut [],
            );
        }
    });
    for (t, acc) in s.out.chunks_exact(group * SPLIT_DIMS).enumerate() {
        let (g, d0) = (t / dim_chunks, t % dim_chunks * SPLIT_DIMS);
        for (j, a) in acc.chunks_exact(SPLIT_DIMS).enumerate() {
            let at = (g * group + j) * hd + d0;
            out[at..at + SPLIT_DIMS].copy_from_slice(a);
        }
    }
}

/// The query heads of group `g` over its cached keys and values, for query rows `rows` of the
/// `n` in `q`; writes those rows of the group's width into `out`, from its start. Row `i` sees
/// the positions `lo..visible` of its window (see [`attention`]).
#[allow(clippy::too_many_arguments)]
fn attend_group(
    q: &[f32],
    cache: &KvCache,
    heads: usize,
    g: usize,
    rows: Range<usize>,
    scale: f32,
    window: usize,
    out: &mut [f32],
    s: &mut GroupScratch,
) {
    let hd = cache.head_dim;
    let width = heads * hd;
    let n = q.len() / width;
    let group = heads / cache.heads;
    let first = cache.len - n;
    s.q.resize(group * hd, 0.0);
    s.k.resize(hd, 0.0);
    s.acc.resize(group * hd, 0.0);
    // The cached keys come from `quantize_block`, whose values lie in -127..=127.
    let kernel = rows_kernel(WeightType::Q8_0, false);
    let heads_of_g = g * group..(g + 1) * group;
    let r0 = rows.start;
    for i in rows {
        let visible = first + i + 1;
        let lo = visible.saturating_sub(window);
        s.scores.resize(group * visible, 0.0);
        let q_rows = &q[i * width + heads_of_g.start * hd..i * width + heads_of_g.end * hd];
        match cache.kind {
            KvCacheType::F16 => {
                for (dst, &x) in s.q.iter_mut().zip(q_rows) {
                    *dst = round_f16(x);
                }
                for (t0, count) in page_runs(lo, visible) {
                    let keys = cache.keys(g, t0, count);
                    f16_scores(
                        keys,
                        hd,
                        &s.q,
                        group,
                        scale,
                        &mut s.scores[t0..],
                        visible,
                        &mut s.k,
                    );
                }
            }
            KvCacheType::Q8_0 => {
                s.qa.quantize(q_rows, group, hd);
                for (t0, count) in page_runs(lo, visible) {
                    let keys = cache.keys(g, t0, count);
                    for j in 0..group {
                        let scores = &mut s.scores[j * visible + t0..j * visible + t0 + count];
                        kernel(keys, cache.row, &s.qa.row(j), scores);
                        scores.iter_mut().for_each(|x| *x *= scale);
                    }
                }
            }
        }
        for j in 0..group {
            let weights = &mut s.scores[j * visible + lo..(j + 1) * visible];
            // The weights multiply the values as f16 (see the module's notes).
            softmax_f16(weights);
        }
        s.acc.iter_mut().for_each(|a| *a = 0.0);
        match cache.kind {
            KvCacheType::F16 => {
                for (t0, count) in page_runs(lo, visible) {
                    let values = cache.values(g, t0, count);
                    let p = &s.scores[t0..];
                    f16_weighted_sum(values, hd, p, visible, group, &mut s.acc, 0..hd, &mut s.k);
                }
            }
            KvCacheType::Q8_0 => {
                for t in lo..visible {
                    scalar::dequantize_row(WeightType::Q8_0, cache.value(g, t), &mut s.k);
                    for j in 0..group {
                        let p = s.scores[j * visible + t];
                        for (a, &v) in s.acc[j * hd..(j + 1) * hd].iter_mut().zip(&s.k) {
                            *a += p * v;
                        }
                    }
                }
            }
        }
        out[(i - r0) * group * hd..(i - r0 + 1) * group * hd].copy_from_slice(&s.acc);
    }
}

/// Positions `lo..hi` as runs `(start, count)` that each lie within one cache page.
fn page_runs(lo: usize, hi: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut t = lo;
    std::iter::from_fn(move || {
        (t < hi).then(|| {
            let count = (PAGE - t % PAGE).min(hi - t);
            let run = (t, count);
            t += count;
            run
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::ops::softmax;
    // In wasm they run in Chromium with the vector widening and the Q8_0 row kernels.
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn one_position_returns_its_value() {
        let mut c = KvCache::new(KvCacheType::F16, 1, 4, 2);
        c.append(&[1.0, 0.0], &[3.0, -2.0]);
        let mut out = [0f32; 4];
        attention(
            &[0.5, 0.5, 9.0, 9.0],
            &c,
            2,
            1.0,
            usize::MAX,
            &mut out,
            &mut AttentionScratch::default(),
        );
        assert_eq!(out, [3.0, -2.0, 3.0, -2.0]);
    }

    #[test]
    fn later_rows_see_more_positions_and_weights_follow_scores() {
        let mut c = KvCache::new(KvCacheType::F16, 1, 4, 2);
        c.append(&[1.0, 0.0, 0.0, 1.0], &[1.0, 0.0, 0.0, 1.0]);
        let mut out = [0f32; 4];
        // Row 0 sees only position 0; row 1 prefers position 1 (its key matches the query).
        attention(
            &[5.0, 0.0, 0.0, 5.0],
            &c,
            1,
            1.0,
            usize::MAX,
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
    /// and values gives, for every query head of a group. The shapes cover the fused kernels'
    /// (simd128, AVX2) groups of 1 to 4 heads and the head-by-head path past 4, with
    /// SmolLM2's (3 groups of 3 heads of 64).
    #[test]
    fn paged_cache_matches_plain_attention_across_pages() {
        for (kv_heads, heads, hd) in [(2, 6, 8), (3, 9, 64), (1, 5, 16), (2, 2, 64), (1, 4, 24)] {
            paged_attention_matches_plain(kv_heads, heads, hd);
        }
    }

    fn paged_attention_matches_plain(kv_heads: usize, heads: usize, hd: usize) {
        let total = 2 * PAGE + 5;
        let mut rng = crate::sampling::Rng::new(3);
        let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect() };
        let (ks, vs) = (r(total * kv_heads * hd), r(total * kv_heads * hd));
        let mut c = KvCache::new(KvCacheType::F16, kv_heads, total, hd);
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
        attention(
            &q,
            &c,
            heads,
            0.3,
            usize::MAX,
            &mut out,
            &mut AttentionScratch::default(),
        );
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
            assert_eq!(
                &out[h * hd..(h + 1) * hd],
                &want[..],
                "{heads} heads of {hd}, head {h}"
            );
        }
    }

    /// The Q8_0 cache: scores are the Q8_0 kernel's products of the quantized query with the
    /// quantized keys, read across page boundaries, and values are the dequantized rows; each
    /// query head gets what a plain computation over the same quantized rows gives.
    #[test]
    fn q8_cache_matches_plain_attention_over_its_quantized_rows() {
        let (kv_heads, heads, hd) = (3, 9, 64);
        let total = PAGE + 7;
        let mut rng = crate::sampling::Rng::new(11);
        let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f32() * 4.0 - 2.0).collect() };
        let (ks, vs) = (r(total * kv_heads * hd), r(total * kv_heads * hd));
        let mut c = KvCache::new(KvCacheType::Q8_0, kv_heads, total, hd);
        let w = kv_heads * hd;
        c.append(&ks[..5 * w], &vs[..5 * w]);
        c.append(&ks[5 * w..], &vs[5 * w..]);
        assert_eq!(c.kind(), KvCacheType::Q8_0);
        assert_eq!(c.full_bytes(), 2 * kv_heads * total * 68);
        let q = r(heads * hd);
        let mut out = vec![0f32; heads * hd];
        attention(
            &q,
            &c,
            heads,
            0.125,
            usize::MAX,
            &mut out,
            &mut AttentionScratch::default(),
        );
        let quantized = |x: &[f32]| {
            let mut row = vec![0u8; 68];
            store(KvCacheType::Q8_0, x, &mut row);
            row
        };
        for h in 0..heads {
            let g = h / (heads / kv_heads);
            let mut qa = QActivations::default();
            qa.quantize(&q[h * hd..(h + 1) * hd], 1, hd);
            let mut scores: Vec<f32> = (0..total)
                .map(|t| {
                    let k = quantized(&ks[(t * kv_heads + g) * hd..][..hd]);
                    scalar::dot(WeightType::Q8_0, &k, &qa.row(0)) * 0.125
                })
                .collect();
            softmax(&mut scores);
            let mut want = vec![0f32; hd];
            let mut v = vec![0f32; hd];
            for (t, &p) in scores.iter().enumerate() {
                let row = quantized(&vs[(t * kv_heads + g) * hd..][..hd]);
                scalar::dequantize_row(WeightType::Q8_0, &row, &mut v);
                for d in 0..hd {
                    want[d] += round_f16(p) * v[d];
                }
            }
            assert_eq!(&out[h * hd..(h + 1) * hd], &want[..], "head {h}");
        }
        // And it stays close to the f16 cache's answer: 8 bits per value lose little.
        let mut f = KvCache::new(KvCacheType::F16, kv_heads, total, hd);
        f.append(&ks, &vs);
        let mut exact = vec![0f32; heads * hd];
        attention(
            &q,
            &f,
            heads,
            0.125,
            usize::MAX,
            &mut exact,
            &mut AttentionScratch::default(),
        );
        let worst = out
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst > 0.0 && worst < 0.05,
            "largest difference from f16: {worst}"
        );
    }

    /// The finer tiles of a long context's one-row attention (scores by chunk of positions,
    /// softmax by head, weighted values by chunk of dimensions) give the same bits as a group
    /// per tile, for groups of 1 to 5 heads, position counts on and off the tiles' and pages'
    /// boundaries, and on however many threads the pool has.
    #[test]
    fn split_tiles_give_the_bits_of_group_tiles() {
        // Groups of 3 (SmolLM2's shape), 2, 4, 5 and 1 heads; 1 to 3 dimension tiles.
        for (kv_heads, heads, hd) in [
            (3, 9, 64),
            (2, 4, 32),
            (1, 4, 64),
            (1, 5, 32),
            (2, 2, 64),
            (1, 2, 96),
        ] {
            for total in [1, SPLIT_POSITIONS, PAGE + 3, 2 * PAGE + 37, SPLIT_FROM + 1] {
                let mut rng = crate::sampling::Rng::new(total as u64);
                let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f32() * 4.0 - 2.0).collect() };
                let (ks, vs) = (r(total * kv_heads * hd), r(total * kv_heads * hd));
                let mut c = KvCache::new(KvCacheType::F16, kv_heads, total, hd);
                c.append(&ks, &vs);
                assert!(hd.is_multiple_of(SPLIT_DIMS));
                if !splits(&c) {
                    continue; // no fused kernels on this platform: `attention` never splits
                }
                let q = r(heads * hd);
                let mut s = AttentionScratch::default();
                let mut want = vec![0f32; heads * hd];
                attend_by_group(&q, &c, heads, 0.25, usize::MAX, &mut want, &mut s);
                let mut got = vec![f32::NAN; heads * hd];
                attend_split(&q, &c, heads, 0.25, &mut got, &mut s.split);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{heads} heads of {hd}, {total} positions"
                );
                // And through `attention`, whichever tiles it picks here.
                let mut through = vec![f32::NAN; heads * hd];
                attention(&q, &c, heads, 0.25, usize::MAX, &mut through, &mut s);
                assert_eq!(bits(&through), bits(&want));
            }
        }
    }

    /// The fused f16 kernels (wasm, AVX2) against their definitions, score by score and sum by
    /// sum: `dot8` of the f16-rounded query head with the widened key, times the scale; values
    /// added in position order. Position counts on and off the wasm scores' four-row steps, and
    /// groups of 1 to 5 heads. The whole-attention tests cannot see an ulp in a score, which
    /// the softmax's f16 weights mostly absorb.
    #[test]
    fn fused_scores_and_sums_equal_their_definitions() {
        for (group, hd) in [(1, 64), (2, 32), (3, 64), (4, 16), (5, 8), (3, 24)] {
            for count in [0, 1, 3, 4, 5, 8, 11, 37] {
                let mut rng = crate::sampling::Rng::new((group * 100 + count) as u64);
                let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.next_f32() * 6.0 - 3.0).collect() };
                let keys: Vec<u8> = r(count * hd)
                    .iter()
                    .flat_map(|&x| f16::from_f32(x).to_le_bytes())
                    .collect();
                let q: Vec<f32> = r(group * hd).iter().map(|&x| round_f16(x)).collect();
                let stride = count.max(1);
                let p: Vec<f32> = r(group * stride).iter().map(|&x| round_f16(x)).collect();
                let mut out = vec![f32::NAN; group * stride];
                f16_scores(&keys, hd, &q, group, 0.37, &mut out, stride, &mut vec![0.0; hd]);
                let mut acc = vec![0f32; group * hd];
                f16_weighted_sum(&keys, hd, &p, stride, group, &mut acc, 0..hd, &mut vec![0.0; hd]);
                let mut want_acc = vec![0f32; group * hd];
                for i in 0..count {
                    let mut k = vec![0f32; hd];
                    widen_f16(&keys[i * 2 * hd..(i + 1) * 2 * hd], &mut k);
                    for j in 0..group {
                        let want = dot8(&q[j * hd..(j + 1) * hd], &k) * 0.37;
                        let got = out[j * stride + i];
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{group}×{hd}, {count} rows: [{j}][{i}]"
                        );
                        for (a, &x) in want_acc[j * hd..(j + 1) * hd].iter_mut().zip(&k) {
                            *a += p[j * stride + i] * x;
                        }
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&acc), bits(&want_acc), "{group}×{hd}, {count} rows: sums");
            }
        }
    }

    #[test]
    fn q8_needs_whole_blocks_and_other_widths_keep_f16() {
        assert_eq!(effective_kind(KvCacheType::Q8_0, 64), KvCacheType::Q8_0);
        assert_eq!(effective_kind(KvCacheType::Q8_0, 48), KvCacheType::F16);
        let c = KvCache::new(KvCacheType::Q8_0, 1, 4, 8);
        assert_eq!(c.kind(), KvCacheType::F16);
        assert_eq!(row_bytes(KvCacheType::Q8_0, 64), 68);
        assert_eq!(row_bytes(KvCacheType::F16, 64), 128);
    }

    /// Several query rows at once (a prefill), with runs of rows of each group on the thread
    /// pool, give for each row exactly what that row alone gives over the positions it may see.
    #[test]
    fn rows_at_once_equal_rows_one_by_one_for_every_group() {
        // Row counts under, at and over `ROW_TILES`, and ones it does not divide.
        for (kind, n) in [KvCacheType::F16, KvCacheType::Q8_0]
            .into_iter()
            .flat_map(|k| [1, 2, 4, 5, 9, 17].map(|n| (k, n)))
        {
            let (kv_heads, heads, hd, total) = (3, 9, 32, 70);
            let mut rng = crate::sampling::Rng::new(5);
            let mut r = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.next_f32() * 2.0 - 1.0).collect() };
            let (ks, vs) = (r(total * kv_heads * hd), r(total * kv_heads * hd));
            let q = r(n * heads * hd);
            let mut c = KvCache::new(kind, kv_heads, total, hd);
            c.append(&ks, &vs);
            let mut all = vec![0f32; n * heads * hd];
            let mut s = AttentionScratch::default();
            attention(&q, &c, heads, 0.2, usize::MAX, &mut all, &mut s);
            for i in 0..n {
                let mut shorter = c.clone();
                shorter.truncate(total - n + i + 1);
                let mut one = vec![0f32; heads * hd];
                attention(
                    &q[i * heads * hd..(i + 1) * heads * hd],
                    &shorter,
                    heads,
                    0.2,
                    usize::MAX,
                    &mut one,
                    &mut s,
                );
                assert_eq!(
                    &all[i * heads * hd..(i + 1) * heads * hd],
                    &one[..],
                    "{kind:?} row {i} of {n}"
                );
            }
        }
    }

    /// A sliding window sees exactly the last `window` positions: the same bits as full
    /// attention over a cache holding only those, for every row of a prefill, across page
    /// boundaries, for both cache types.
    #[test]
    fn a_window_equals_attention_over_the_last_positions_only() {
        let (kv_heads, heads, hd) = (2, 4, 32);
        let total = 150;
        let mut r = crate::sampling::Rng::new(77);
        let mut rnd = |n: usize| -> Vec<f32> { (0..n).map(|_| r.next_f32() * 2.0 - 1.0).collect() };
        let ks = rnd(total * kv_heads * hd);
        let vs = rnd(total * kv_heads * hd);
        for kind in [KvCacheType::F16, KvCacheType::Q8_0] {
            for window in [1, 5, 64, 70, 149, 150, 1000] {
                let mut c = KvCache::new(kind, kv_heads, total, hd);
                c.append(&ks, &vs);
                let n = 9;
                let q = rnd(n * heads * hd);
                let mut all = vec![0f32; n * heads * hd];
                let mut s = AttentionScratch::default();
                attention(&q, &c, heads, 0.3, window, &mut all, &mut s);
                for i in 0..n {
                    let p = total - n + i;
                    let lo = (p + 1).saturating_sub(window);
                    let w = kv_heads * hd;
                    let mut only = KvCache::new(kind, kv_heads, total, hd);
                    only.append(&ks[lo * w..(p + 1) * w], &vs[lo * w..(p + 1) * w]);
                    let mut one = vec![0f32; heads * hd];
                    let row = &q[i * heads * hd..(i + 1) * heads * hd];
                    attention(row, &only, heads, 0.3, usize::MAX, &mut one, &mut s);
                    assert_eq!(
                        &all[i * heads * hd..(i + 1) * heads * hd],
                        &one[..],
                        "{kind:?} window {window} row {i}"
                    );
                }
            }
        }
    }
}
