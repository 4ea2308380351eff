//! The engine's own quantized matrix kernels, with one arithmetic defined for every platform.
//!
//! Why not candle's: its kernels differ per platform (AVX on x86, simd128 in wasm, scalar
//! elsewhere), each summing in its own order, so the same model gives slightly different
//! logits natively and in the browser — enough to flip a greedy choice at a near-tie. Here every
//! dot product is defined once:
//!
//! * activations are quantized per block of 32 to 8 bits as llama.cpp does on x86
//!   (`id = 127 / amax`, round half to even, scale stored as f16);
//! * within a block, the integer products of elements `4l..4l+4` form lane `l` (exact);
//! * each lane accumulates `acc[l] += (d_w * d_x) * lane` over the blocks (a rounded multiply
//!   then a rounded add: no fused multiply-add, which wasm SIMD lacks);
//! * the lanes are summed in a fixed tree, then the offset term of `_1` types is added.
//!
//! That is llama.cpp's AVX2 lane structure (it fuses the multiply-add; measured on SmolLM2,
//! fusing or not moves log-probabilities by as much as omp and llama.cpp differ, so nothing is
//! lost by choosing the portable form). The scalar code is the definition; the SIMD versions
//! produce identical bits (tests check this).
//!
//! Q4_0 is the exception: each block's 32 products are summed whole (exact), and block `b`
//! adds `(d_w * d_x) * sum` to accumulator `b % 4`; the four are summed as `(a0 + a1) + (a2 +
//! a3)`. llama.cpp sums Q4_0 blocks whole too (its x86 builds repack Q4_0 at load and sum
//! whole blocks of several rows at once). Why: in the browser the eight-lane form spends more
//! on its per-lane float work (two conversions, multiplies and adds per block) than on the 18
//! bytes of the block, while four whole-block sums share one of each.

pub mod attention;
pub mod ops;
mod scalar;
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::bytes::{Blocks, FileBytes};

/// Elements per quantization block of every supported type.
pub const BLOCK: usize = 32;

/// Weight types with kernels here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightType {
    /// 4-bit, scale only.
    Q4_0,
    /// 4-bit, scale and minimum.
    Q4_1,
    /// 5-bit, scale only.
    Q5_0,
    /// 5-bit, scale and minimum.
    Q5_1,
    /// 8-bit, scale only.
    Q8_0,
}

impl WeightType {
    /// The kernel type for a ggml type id, if there is one.
    pub fn from_ggml_id(id: u32) -> Option<Self> {
        Some(match id {
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            _ => return None,
        })
    }

    /// Bytes per block of 32 weights.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
        }
    }

    /// Whether blocks carry a minimum (the activations then need their sums).
    pub fn has_min(self) -> bool {
        matches!(self, Self::Q4_1 | Self::Q5_1)
    }
}

/// A matrix of quantized rows (`rows` outputs, each a dot product over `cols` inputs), in
/// ggml's block layout.
#[derive(Debug, Clone)]
pub struct QMatrix {
    ty: WeightType,
    rows: usize,
    cols: usize,
    data: Blocks,
    /// The dot-product kernel for these blocks, chosen once: the relaxed-SIMD Q8_0 kernel
    /// cannot take a weight of -128, so a matrix holding one gets the plain kernel.
    kernel: RowsKernel,
    /// The kernel a prefill uses for four activation rows at a time, where the platform has
    /// one (it unpacks each weight block once for the four).
    kernel4: Option<RowsKernel4>,
}

impl QMatrix {
    /// Wraps ggml block bytes. `cols` must be a multiple of 32 and `data` exactly
    /// `rows * cols / 32` blocks.
    pub fn new(ty: WeightType, rows: usize, cols: usize, data: Vec<u8>) -> Option<Self> {
        Self::from_blocks(ty, rows, cols, Blocks::Owned(data))
    }

    /// Points into a model file without copying: `range` of `file` holds the blocks.
    pub fn in_file(
        ty: WeightType,
        rows: usize,
        cols: usize,
        file: &FileBytes,
        range: std::ops::Range<usize>,
    ) -> Option<Self> {
        file.as_slice().get(range.clone())?;
        Self::from_blocks(ty, rows, cols, Blocks::Shared(file.clone(), range))
    }

    fn from_blocks(ty: WeightType, rows: usize, cols: usize, data: Blocks) -> Option<Self> {
        let expected = rows.checked_mul(cols / BLOCK)?.checked_mul(ty.block_bytes())?;
        if !(cols.is_multiple_of(BLOCK) && data.as_slice().len() == expected) {
            return None;
        }
        let minus_128 = ty == WeightType::Q8_0 && holds_minus_128(data.as_slice());
        Some(Self {
            ty,
            rows,
            cols,
            kernel: rows_kernel(ty, minus_128),
            kernel4: rows_kernel4(ty),
            data,
        })
    }

    /// Whether the blocks are the model file's own bytes rather than a copy.
    pub fn borrows_file(&self) -> bool {
        self.data.is_shared()
    }

    /// The raw blocks, row after row.
    pub fn data(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Weight type.
    pub fn ty(&self) -> WeightType {
        self.ty
    }

    /// Output count.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input count.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.as_slice().len()
    }

    /// The raw blocks of row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        let n = self.cols / BLOCK * self.ty.block_bytes();
        &self.data.as_slice()[r * n..(r + 1) * n]
    }

    /// Dequantizes row `r` into `out` (`cols` values), e.g. an embedding lookup.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        scalar::dequantize_row(self.ty, self.row(r), out);
    }

    /// `out[i * rows + j] = dot(row j, x row i)` for the `m` input rows of `x` (quantized
    /// with [`QActivations::quantize`]). Weight rows are taken in tiles so that a prefill of
    /// several rows reads each tile from cache rather than memory; on native builds tiles run
    /// on the thread pool. Every output is the same dot product whatever the tiling or threads.
    pub fn matmul(&self, x: &QActivations, out: &mut [f32]) {
        let m = x.rows;
        assert_eq!(x.cols, self.cols, "activation width");
        assert!(out.len() >= m * self.rows, "output size");
        let tile = if m == 1 { DECODE_TILE_ROWS } else { TILE_ROWS }.min(self.rows);
        let run_tile = |t: usize, out_tile: &mut [f32]| self.tile_product(x, tile, t, out_tile);
        if m == 1 {
            // One activation row: tiles are contiguous in `out`.
            crate::pool::for_each_chunk(&mut out[..self.rows], tile, &run_tile);
            return;
        }
        // Each tile writes its own buffer (`m` rows of `tile` outputs), copied into place after.
        let tiles = self.rows.div_ceil(tile);
        let mut buf = vec![0f32; tiles * m * tile];
        crate::pool::for_each_chunk(&mut buf, m * tile, &run_tile);
        for t in 0..tiles {
            let r0 = t * tile;
            let n = tile.min(self.rows - r0);
            for i in 0..m {
                let src = (t * m + i) * tile;
                out[i * self.rows + r0..i * self.rows + r0 + n].copy_from_slice(&buf[src..src + n]);
            }
        }
    }

    /// `outs[k] = mats[k] · x` for several matrices of the same width, as [`Self::matmul`]
    /// computes each. With one activation row (a decode step) all their tiles go to the
    /// thread pool as one job, which saves dispatches and balances small products.
    pub fn matmul_n<const N: usize>(mats: [&Self; N], x: &QActivations, outs: [&mut [f32]; N]) {
        if x.rows != 1 {
            for (w, out) in mats.into_iter().zip(outs) {
                w.matmul(x, out);
            }
            return;
        }
        let mut k = 0;
        let outs = outs.map(|out| {
            let w = mats[k];
            k += 1;
            assert_eq!(x.cols, w.cols, "activation width");
            assert!(out.len() >= w.rows, "output size");
            &mut out[..w.rows]
        });
        crate::pool::for_each_chunk_of(outs, DECODE_TILE_ROWS, &|k, t, out_tile| {
            mats[k].tile_product(x, DECODE_TILE_ROWS.min(mats[k].rows), t, out_tile)
        });
    }

    /// A gated feed-forward's first half: `gate = act(gate_w · x) * (up_w · x)`, row by row
    /// (`up` holds `up_w · x` after), where `act` is the elementwise step
    /// ([`ops::silu_mul`], [`ops::gelu_mul`]). With one activation row each tile computes the
    /// same rows of both products and applies it to them at once, so the elementwise step runs
    /// on the pool with the products instead of on one thread after them; the arithmetic is
    /// the same, so are the bits.
    pub fn gated_product(
        gate_w: &Self,
        up_w: &Self,
        x: &QActivations,
        gate: &mut [f32],
        up: &mut [f32],
        act: fn(&mut [f32], &[f32]),
    ) {
        let rows = gate_w.rows;
        if x.rows != 1 || up_w.rows != rows {
            Self::matmul_n([gate_w, up_w], x, [&mut *gate, &mut *up]);
            act(&mut gate[..x.rows * rows], &up[..x.rows * rows]);
            return;
        }
        for w in [gate_w, up_w] {
            assert_eq!(x.cols, w.cols, "activation width");
        }
        assert!(gate.len() >= rows && up.len() >= rows, "output size");
        let tile = DECODE_TILE_ROWS.min(rows);
        crate::pool::for_each_chunk_pair(&mut gate[..rows], &mut up[..rows], tile, &|t, g, u| {
            gate_w.tile_product(x, tile, t, g);
            up_w.tile_product(x, tile, t, u);
            act(g, u);
        });
    }

    /// Tile `t` (weight rows `t * tile..`) of the product with `x`, written as `m` rows of
    /// `tile` outputs (the last tile's rows are shorter).
    fn tile_product(&self, x: &QActivations, tile: usize, t: usize, out_tile: &mut [f32]) {
        let m = x.rows;
        let kernel = self.kernel;
        let row_bytes = self.cols / BLOCK * self.ty.block_bytes();
        let r0 = t * tile;
        let r1 = (r0 + tile).min(self.rows);
        let w = &self.data.as_slice()[r0 * row_bytes..r1 * row_bytes];
        let mut first = 0;
        if let Some(k4) = self.kernel4 {
            // A prefill: four activation rows per pass over the tile's weights.
            while first + 4 <= m {
                let xs = [x.row(first), x.row(first + 1), x.row(first + 2), x.row(first + 3)];
                k4(w, row_bytes, &xs, &mut out_tile[first * tile..], tile);
                first += 4;
            }
        }
        for i in first..m {
            let o = &mut out_tile[i * tile..i * tile + (r1 - r0)];
            kernel(w, row_bytes, &x.row(i), o);
        }
    }
}

/// Weight rows per tile: 64 rows of 576 Q4_1 weights are 23 KB, comfortably in L2.
const TILE_ROWS: usize = 64;

/// Weight rows per tile with one activation row (a decode step), where each weight is read
/// once whatever the tiling: smaller tiles only balance the threads better (a 576-row product
/// is 9 tiles of 64, which two threads share 5 to 4, but 18 of 32, shared 9 to 9).
const DECODE_TILE_ROWS: usize = 32;

/// Activations quantized to 8 bits per block of 32, with per-block scales (and sums).
#[derive(Debug, Clone, Default)]
pub struct QActivations {
    rows: usize,
    cols: usize,
    /// Quantized values.
    qs: Vec<i8>,
    /// Block scales, already rounded to f16 and widened.
    d: Vec<f32>,
    /// Block sums times scale, rounded to f16 and widened (for `_1` weight types).
    s: Vec<f32>,
    /// wasm only: the values widened to i16 in [`PAIR_ORDER`] (computed once per matrix
    /// product instead of once per weight row).
    wide: Vec<i16>,
    /// Relaxed-SIMD builds only: per block, minus eight times each of the eight sums of
    /// elements `4l..4l + 4` (the relaxed kernels take unsigned weights and start each lane
    /// from these to remove Q5_0's offset of 16, counted twice).
    offset_sums: Vec<i32>,
    /// Relaxed-SIMD builds only: per block, minus eight times the sum of its 32 values (Q4_0's
    /// offset for the relaxed kernel, which sums whole blocks of unsigned weights).
    block_offsets: Vec<i32>,
}

/// The order in which the wasm kernels take the 16 values of each half block: pairs whose
/// products, summed by `i32x4.dot_i16x8_s` from the first eight and from the last eight, add
/// up lane by lane to the sums of elements `4l..4l + 4` without any shuffle.
pub const PAIR_ORDER: [usize; 16] = [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15];

/// One row of [`QActivations`].
#[derive(Debug, Clone, Copy)]
pub struct QRow<'a> {
    /// Quantized values.
    pub qs: &'a [i8],
    /// Block scales.
    pub d: &'a [f32],
    /// Block scaled sums.
    pub s: &'a [f32],
    /// The values as i16 in [`PAIR_ORDER`] per half block (wasm only; empty elsewhere).
    pub wide: &'a [i16],
    /// Minus eight times the sums of elements `4l..4l + 4`, eight per block (relaxed-SIMD
    /// builds; else empty).
    pub offset_sums: &'a [i32],
    /// Minus eight times each block's sum (relaxed-SIMD builds; else empty).
    pub block_offsets: &'a [i32],
}

impl QActivations {
    /// Quantizes `m` rows of `cols` values (reusing this buffer's allocations).
    pub fn quantize(&mut self, x: &[f32], m: usize, cols: usize) {
        debug_assert_eq!(x.len(), m * cols);
        debug_assert_eq!(cols % BLOCK, 0);
        let blocks = m * cols / BLOCK;
        self.rows = m;
        self.cols = cols;
        self.qs.resize(m * cols, 0);
        self.d.resize(blocks, 0.0);
        self.s.resize(blocks, 0.0);
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            wasm::quantize_blocks(x, &mut self.qs, &mut self.d, &mut self.s);
            self.wide.resize(m * cols, 0);
            let sums = if cfg!(target_feature = "relaxed-simd") {
                m * cols / 4
            } else {
                0
            };
            self.offset_sums.resize(sums, 0);
            wasm::widen_activations(&self.qs, &mut self.wide, &mut self.offset_sums);
            self.sum_block_offsets();
            return;
        }
        #[allow(unreachable_code)]
        for b in 0..blocks {
            let (d, s) = scalar::quantize_block(
                &x[b * BLOCK..(b + 1) * BLOCK],
                &mut self.qs[b * BLOCK..(b + 1) * BLOCK],
            );
            self.d[b] = d;
            self.s[b] = s;
        }
        if cfg!(target_arch = "wasm32") {
            self.wide.resize(m * cols, 0);
            for (w, q) in self.wide.chunks_exact_mut(16).zip(self.qs.chunks_exact(16)) {
                for (w, &p) in w.iter_mut().zip(&PAIR_ORDER) {
                    *w = i16::from(q[p]);
                }
            }
        }
        if cfg!(target_feature = "relaxed-simd") {
            self.offset_sums.resize(m * cols / 4, 0);
            for (s, q) in self.offset_sums.iter_mut().zip(self.qs.chunks_exact(4)) {
                *s = -8 * q.iter().map(|&v| i32::from(v)).sum::<i32>();
            }
        }
        self.sum_block_offsets();
    }

    /// [`Self::block_offsets`] from [`Self::offset_sums`] (empty where those are).
    fn sum_block_offsets(&mut self) {
        self.block_offsets.resize(self.offset_sums.len() / 8, 0);
        for (o, s) in self
            .block_offsets
            .iter_mut()
            .zip(self.offset_sums.chunks_exact(8))
        {
            *o = s.iter().sum();
        }
    }

    fn row(&self, i: usize) -> QRow<'_> {
        let bpr = self.cols / BLOCK;
        QRow {
            qs: &self.qs[i * self.cols..(i + 1) * self.cols],
            d: &self.d[i * bpr..(i + 1) * bpr],
            s: &self.s[i * bpr..(i + 1) * bpr],
            wide: self.wide.get(i * self.cols..(i + 1) * self.cols).unwrap_or(&[]),
            offset_sums: self
                .offset_sums
                .get(i * self.cols / 4..(i + 1) * self.cols / 4)
                .unwrap_or(&[]),
            block_offsets: self.block_offsets.get(i * bpr..(i + 1) * bpr).unwrap_or(&[]),
        }
    }
}

/// Dot products of consecutive weight rows (`row_bytes` each) with one activation row, one
/// output per weight row.
pub(crate) type RowsKernel = fn(w: &[u8], row_bytes: usize, x: &QRow<'_>, out: &mut [f32]);

/// Dot products of consecutive weight rows with four activation rows at once (a prefill):
/// `out[r * stride + j]` is activation row `r` times weight row `j`; every value equals the
/// one-row kernel's.
pub(crate) type RowsKernel4 =
    fn(w: &[u8], row_bytes: usize, xs: &[QRow<'_>; 4], out: &mut [f32], stride: usize);

/// The four-activation-row kernel here for rows of `ty`, if this platform has one.
fn rows_kernel4(ty: WeightType) -> Option<RowsKernel4> {
    #[cfg(target_arch = "x86_64")]
    return x86::rows_kernel4(ty);
    #[cfg(target_arch = "wasm32")]
    return wasm::rows_kernel4(ty);
    #[allow(unreachable_code)]
    {
        let _ = ty;
        None
    }
}

/// The fastest kernel here for rows of `ty`. `minus_128`: whether a Q8_0 weight may be -128,
/// which the relaxed-SIMD Q8_0 kernel cannot take (see `wasm.rs`).
fn rows_kernel(ty: WeightType, minus_128: bool) -> RowsKernel {
    // Only the wasm kernels care.
    let _ = minus_128;
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = x86::rows_kernel(ty) {
        return k;
    }
    #[cfg(target_arch = "wasm32")]
    if let Some(k) = wasm::rows_kernel(ty, minus_128) {
        return k;
    }
    scalar::rows_kernel(ty)
}

/// Whether any weight of these Q8_0 blocks is -128 (llama.cpp's quantizer writes -127..=127;
/// a file can hold anything). Only relaxed-SIMD builds ask: elsewhere every kernel takes -128,
/// and this is `false` without reading the blocks.
fn holds_minus_128(blocks: &[u8]) -> bool {
    #[cfg(target_feature = "relaxed-simd")]
    return wasm::holds_minus_128(blocks);
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        let _ = blocks;
        false
    }
}

/// Reads a little-endian f16 at `at` as f32.
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// f16 bits to f32, exactly (the same bits as `half`'s conversion for every input).
///
/// Why not `half::f16::to_f32`: without hardware f16 support (wasm, and x86 builds without
/// F16C) it is a branchy software routine, and the kernels convert one or two block scales per
/// 32 weights and the attention one value per cached element, millions per token. Here the
/// magnitude bits are moved into an f32 and scaled by 2^112 (exact: a power of two, and the
/// result is normal), which also handles subnormals; only infinities and NaNs need a branch.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let mag = u32::from(h & 0x7fff);
    if mag >= 0x7c00 {
        let man = mag & 0x3ff;
        let bits = if man == 0 {
            0x7f80_0000
        } else {
            0x7fc0_0000 | (man << 13)
        };
        return f32::from_bits(sign | bits);
    }
    let v = f32::from_bits(mag << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(v.to_bits() | sign)
}

/// Sums Q4_0's four block accumulators in the fixed order every kernel uses.
#[inline(always)]
pub(crate) fn hsum4(a: [f32; 4]) -> f32 {
    (a[0] + a[1]) + (a[2] + a[3])
}

/// Sums eight lane accumulators in the fixed order every kernel uses.
#[inline(always)]
pub(crate) fn hsum8(a: [f32; 8]) -> f32 {
    let t = [a[4] + a[0], a[5] + a[1], a[6] + a[2], a[7] + a[3]];
    let u = [t[0] + t[2], t[1] + t[3]];
    u[0] + u[1]
}

#[cfg(test)]
mod tests;
