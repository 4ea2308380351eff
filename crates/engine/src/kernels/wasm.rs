//! simd128 versions of the dot products (the wasm build enables simd128). Same lanes, same
//! operations and the same order as [`super::scalar::dot`], so the results are identical.
//!
//! The activations arrive already widened to i16 and permuted ([`super::PAIR_ORDER`]); the
//! weights get the same permutation with one byte shuffle per 16 bytes (one per block for the
//! 4-bit types, whose low and high nibbles share it). Two `i32x4.dot_i16x8_s` then sum the
//! products of elements `4l..4l + 4` into lane `l` with a single add, where the plain order
//! needed two lane shuffles and the activations' sign extension for every weight row.

#[cfg(target_feature = "simd128")]
use std::arch::wasm32::*;

#[cfg(target_feature = "simd128")]
use super::{f16_at, hsum8, QRow, BLOCK};
use super::{RowsKernel, RowsKernel4, WeightType};
#[cfg(target_feature = "simd128")]
use std::ops::Range;

#[cfg(not(target_feature = "simd128"))]
pub(crate) fn rows_kernel(_ty: WeightType, _minus_128: bool) -> Option<RowsKernel> {
    None
}

/// The kernel for rows of `ty`; `minus_128`: whether a Q8_0 weight may be -128 (then not the
/// relaxed Q8_0 kernel).
#[cfg(target_feature = "simd128")]
pub(crate) fn rows_kernel(ty: WeightType, minus_128: bool) -> Option<RowsKernel> {
    #[cfg(target_feature = "relaxed-simd")]
    if let Some(k) = relaxed::rows_kernel(ty, minus_128) {
        return Some(k);
    }
    let _ = minus_128;
    fn rows<const TY: u8>(w: &[u8], row_bytes: usize, x: &QRow<'_>, out: &mut [f32]) {
        let xs = [*x];
        for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
            *o = dot_n::<TY, 1>(row, &xs)[0];
        }
    }
    Some(match ty {
        WeightType::Q4_0 => rows::<0>,
        WeightType::Q4_1 => rows::<1>,
        WeightType::Q5_0 => rows::<2>,
        WeightType::Q5_1 => rows::<3>,
        WeightType::Q8_0 => rows::<4>,
    })
}

#[cfg(not(target_feature = "simd128"))]
pub(crate) fn rows_kernel4(_ty: WeightType) -> Option<RowsKernel4> {
    None
}

#[cfg(target_feature = "simd128")]
pub(crate) fn rows_kernel4(ty: WeightType) -> Option<RowsKernel4> {
    // The relaxed Q4_0 kernel, run once per row, keeps a prefill's speed (measured in
    // docs/performance.md).
    if cfg!(target_feature = "relaxed-simd") && ty == WeightType::Q4_0 {
        return None;
    }
    // No relaxed version: with the weights widened once for four rows, two i16 dot products
    // per 16 weights and row are as cheap as the relaxed dot product, which V8 lowers to
    // three instructions on x86 without VNNI (docs/performance.md).
    fn rows<const TY: u8>(w: &[u8], row_bytes: usize, xs: &[QRow<'_>; 4], out: &mut [f32], stride: usize) {
        for (j, row) in w.chunks_exact(row_bytes).enumerate() {
            let d = dot_n::<TY, 4>(row, xs);
            for (r, v) in d.into_iter().enumerate() {
                out[r * stride + j] = v;
            }
        }
    }
    Some(match ty {
        WeightType::Q4_0 => rows::<0>,
        WeightType::Q4_1 => rows::<1>,
        WeightType::Q5_0 => rows::<2>,
        WeightType::Q5_1 => rows::<3>,
        WeightType::Q8_0 => rows::<4>,
    })
}

/// [`super::PAIR_ORDER`] as a byte shuffle.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn pair_order(v: v128) -> v128 {
    i8x16_swizzle(v, i8x16(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15))
}

/// Entry `b` has byte `j` set to 0x10 when bit `j` of `b` is set: eight weights' fifth
/// bits in place. Why a table: two 8-byte loads replace five vector operations per 16
/// weights, and the scalar address arithmetic overlaps the vector work.
#[cfg(target_feature = "simd128")]
static FIFTH_BITS: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut j = 0;
        while j < 8 {
            if (b >> j) & 1 == 1 {
                t[b] |= 0x10 << (8 * j);
            }
            j += 1;
        }
        b += 1;
    }
    t
};

/// Expands 16 bits of `bits` to bytes in natural order: byte `i` is 0x10 when bit `i` is set,
/// else 0.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn fifth_bits16(bits: u16) -> v128 {
    u64x2(
        FIFTH_BITS[(bits & 0xff) as usize],
        FIFTH_BITS[(bits >> 8) as usize],
    )
}

/// Expands 16 bits of `bits` to bytes in [`super::PAIR_ORDER`]: byte `k` is 0x10 when bit
/// `PAIR_ORDER[k]` is set, else 0.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn high_bits16(bits: u16) -> v128 {
    pair_order(fifth_bits16(bits))
}

/// The 32 weights of a block as two i8x16 in [`super::PAIR_ORDER`], offsets applied.
/// `TY`: 0 = Q4_0, 1 = Q4_1, 2 = Q5_0, 3 = Q5_1, 4 = Q8_0. `blk` must hold a whole block.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn unpack<const TY: u8>(blk: &[u8]) -> (v128, v128) {
    let low = u8x16_splat(0x0f);
    let nib = |at: usize| -> (v128, v128) {
        debug_assert!(at + 16 <= blk.len());
        // SAFETY: `at + 16 <= blk.len()` for every 4-bit layout.
        let raw = pair_order(unsafe { v128_load(blk.as_ptr().add(at) as *const v128) });
        (v128_and(raw, low), v128_and(u16x8_shr(raw, 4), low))
    };
    match TY {
        0 => {
            let (lo, hi) = nib(2);
            (i8x16_sub(lo, i8x16_splat(8)), i8x16_sub(hi, i8x16_splat(8)))
        }
        1 => nib(4),
        2 => {
            let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
            let (lo, hi) = nib(6);
            let lo = v128_or(lo, high_bits16(qh as u16));
            let hi = v128_or(hi, high_bits16((qh >> 16) as u16));
            (i8x16_sub(lo, i8x16_splat(16)), i8x16_sub(hi, i8x16_splat(16)))
        }
        3 => {
            let qh = u32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]);
            let (lo, hi) = nib(8);
            (
                v128_or(lo, high_bits16(qh as u16)),
                v128_or(hi, high_bits16((qh >> 16) as u16)),
            )
        }
        // SAFETY: a Q8_0 block holds 32 bytes of weights after its 2-byte scale.
        _ => unsafe {
            let p = blk.as_ptr().add(2) as *const v128;
            (pair_order(v128_load(p)), pair_order(v128_load(p.add(1))))
        },
    }
}

/// One weight row dotted with `N` activation rows; see [`unpack`] for `TY`.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn dot_n<const TY: u8, const N: usize>(row: &[u8], xs: &[QRow<'_>; N]) -> [f32; N] {
    if TY == 0 {
        return dot_q4_0(row, xs);
    }
    let ty = match TY {
        1 => WeightType::Q4_1,
        2 => WeightType::Q5_0,
        3 => WeightType::Q5_1,
        _ => WeightType::Q8_0,
    };
    let bb = ty.block_bytes();
    let nb = xs[0].d.len();
    assert!(row.len() >= nb * bb);
    for x in xs {
        assert!(x.d.len() == nb && x.wide.len() >= nb * BLOCK && x.s.len() >= nb);
    }
    let mut acc_lo = [f32x4_splat(0.0); N];
    let mut acc_hi = [f32x4_splat(0.0); N];
    let mut summs = [0f32; N];
    for b in 0..nb {
        // SAFETY: checked above: `row` holds `nb` blocks.
        let blk = unsafe { row.get_unchecked(b * bb..(b + 1) * bb) };
        let (w0, w1) = unpack::<TY>(blk);
        let (w0l, w0h) = (i16x8_extend_low_i8x16(w0), i16x8_extend_high_i8x16(w0));
        let (w1l, w1h) = (i16x8_extend_low_i8x16(w1), i16x8_extend_high_i8x16(w1));
        let dw = f16_at(blk, 0);
        let mw = if TY == 1 || TY == 3 { f16_at(blk, 2) } else { 0.0 };
        for r in 0..N {
            let x = &xs[r];
            // SAFETY: every activation row holds `nb * 32` wide values and `nb` scales and
            // sums (checked above), and `b < nb`.
            let (q0, q1, q2, q3, xd, xs) = unsafe {
                let p = x.wide.as_ptr().add(b * BLOCK) as *const v128;
                (
                    v128_load(p),
                    v128_load(p.add(1)),
                    v128_load(p.add(2)),
                    v128_load(p.add(3)),
                    *x.d.get_unchecked(b),
                    *x.s.get_unchecked(b),
                )
            };
            // Lane l: the products of elements 4l..4l+4 (see `PAIR_ORDER`).
            let l0 = i32x4_add(i32x4_dot_i16x8(w0l, q0), i32x4_dot_i16x8(w0h, q1));
            let l1 = i32x4_add(i32x4_dot_i16x8(w1l, q2), i32x4_dot_i16x8(w1h, q3));
            let dd = f32x4_splat(dw * xd);
            acc_lo[r] = f32x4_add(acc_lo[r], f32x4_mul(dd, f32x4_convert_i32x4(l0)));
            acc_hi[r] = f32x4_add(acc_hi[r], f32x4_mul(dd, f32x4_convert_i32x4(l1)));
            if TY == 1 || TY == 3 {
                summs[r] += mw * xs;
            }
        }
    }
    finish(acc_lo, acc_hi, summs)
}

/// Q4_0's definition ([`super::scalar::dot_whole_blocks`]) for `N` activation rows: with one,
/// [`whole_blocks`]; with four (a prefill in builds without relaxed SIMD), each block's weights
/// are unpacked once for the four rows and its sums taken one at a time.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn dot_q4_0<const N: usize>(row: &[u8], xs: &[QRow<'_>; N]) -> [f32; N] {
    let bb = WeightType::Q4_0.block_bytes();
    let nb = xs[0].d.len();
    assert!(row.len() >= nb * bb);
    for x in xs {
        assert!(x.d.len() == nb && x.wide.len() >= nb * BLOCK);
    }
    // Block `b`'s products with activation row `x` in four lanes (the weights and activations
    // share one permutation, so the lanes add up to the block's sum).
    let lanes = |w: [v128; 4], x: &QRow<'_>, b: usize| {
        // SAFETY: every activation row holds `nb * 32` wide values (checked above); `b < nb`.
        let q: [v128; 4] = std::array::from_fn(|i| unsafe {
            v128_load((x.wide.as_ptr().add(b * BLOCK) as *const v128).add(i))
        });
        i32x4_add(
            i32x4_add(i32x4_dot_i16x8(w[0], q[0]), i32x4_dot_i16x8(w[1], q[1])),
            i32x4_add(i32x4_dot_i16x8(w[2], q[2]), i32x4_dot_i16x8(w[3], q[3])),
        )
    };
    let weights = |b: usize| {
        // SAFETY: every caller has `b < nb`, and `row` holds `nb` blocks (checked above).
        let blk = unsafe { row.get_unchecked(b * bb..(b + 1) * bb) };
        let (w0, w1) = unpack::<0>(blk);
        [
            i16x8_extend_low_i8x16(w0),
            i16x8_extend_high_i8x16(w0),
            i16x8_extend_low_i8x16(w1),
            i16x8_extend_high_i8x16(w1),
        ]
    };
    if N == 1 {
        return [whole_blocks::<false>(row, &xs[0], |b| lanes(weights(b), &xs[0], b)); N];
    }
    // Block `b` into `acc` (accumulator `b % 4` of every row).
    let step = |b: usize, acc: &mut [f32; N]| {
        let w = weights(b);
        // SAFETY: `b < nb` and `row` holds `nb` blocks.
        let dw = f16_at(unsafe { row.get_unchecked(b * bb..(b + 1) * bb) }, 0);
        for r in 0..N {
            let sum = hsum_i32x4(lanes(w, &xs[r], b));
            // SAFETY: every activation row holds `nb` scales (checked above); `b < nb`.
            acc[r] += (dw * unsafe { *xs[r].d.get_unchecked(b) }) * sum as f32;
        }
    };
    let mut acc = [[0f32; N]; 4];
    let mut b = 0;
    while b + 4 <= nb {
        let [a0, a1, a2, a3] = &mut acc;
        step(b, a0);
        step(b + 1, a1);
        step(b + 2, a2);
        step(b + 3, a3);
        b += 4;
    }
    while b < nb {
        step(b, &mut acc[b % 4]);
        b += 1;
    }
    std::array::from_fn(|r| super::hsum4([acc[0][r], acc[1][r], acc[2][r], acc[3][r]]))
}

/// Q4_0's definition ([`super::scalar::dot_whole_blocks`]) for one activation row, given
/// `lanes(b)`: block `b`'s products split into lanes any way (exact), as four i32 lanes, or
/// with `RELAXED` as eight i16 lanes of products of unsigned weights, to which the block's
/// offset (`block_offsets[b]`) is added. Four blocks' lanes are added into one vector (lane
/// `k`: block `b + k`, whole), and the four blocks' scales, conversions, products and adds are
/// one vector operation each: lane `k` is accumulator `(b + k) % 4`. The last one to three
/// blocks are a group of four like the others, its missing blocks adding -0.0.
///
/// Why: the eight-lane form spent two conversions, multiplies and adds per block on top of the
/// integer work; this spends one of each per four blocks. The i16 lanes are added before
/// widening, and the last blocks form one masked group (576-wide rows are 18 blocks). Timings
/// are in docs/performance.md.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn whole_blocks<const RELAXED: bool>(row: &[u8], x: &QRow<'_>, lanes: impl Fn(usize) -> v128) -> f32 {
    let bb = WeightType::Q4_0.block_bytes();
    let nb = x.d.len();
    let offsets = if RELAXED { x.block_offsets } else { &[] };
    assert!(row.len() >= nb * bb && (!RELAXED || offsets.len() >= nb));
    let mut acc = f32x4_splat(0.0);
    // The largest magnitude of the weight scales, checked once after the row.
    let mut mags = u16x8_splat(0);
    let mut b = 0;
    while b + 4 <= nb {
        let sums = sums_of::<RELAXED>(|k| lanes(b + k));
        // SAFETY: blocks `b..b + 4` lie within `row` and the activation row holds `nb`
        // scales and offsets (checked above); each block starts with its f16 scale.
        let ((dw, _, mag), xd, offs) = unsafe {
            (
                scales4(row.as_ptr().add(b * bb), bb, false),
                v128_load(x.d.as_ptr().add(b) as *const v128),
                if !RELAXED {
                    i32x4_splat(0)
                } else {
                    v128_load(offsets.as_ptr().add(b) as *const v128)
                },
            )
        };
        mags = u16x8_max(mags, mag);
        let sums = f32x4_convert_i32x4(i32x4_add(sums, offs));
        acc = f32x4_add(acc, f32x4_mul(f32x4_mul(dw, xd), sums));
        b += 4;
    }
    if b < nb {
        // The last one to three blocks as a group of four whose missing blocks add -0.0 (which
        // leaves every accumulator as it is); lane k is still accumulator (b + k) % 4.
        let n = nb - b;
        let part = |k: usize| if k < n { lanes(b + k) } else { i32x4_splat(0) };
        let sums = sums_of::<RELAXED>(part);
        let (mut dw, mut xd, mut offs) = ([0u16; 4], [0f32; 4], [0i32; 4]);
        for k in 0..n {
            dw[k] = u16::from_le_bytes([row[(b + k) * bb], row[(b + k) * bb + 1]]);
            xd[k] = x.d[b + k];
            offs[k] = offsets.get(b + k).copied().unwrap_or(0);
        }
        let (dw, _, mag) = f16x8_finite(u16x8(dw[0], dw[1], dw[2], dw[3], 0, 0, 0, 0));
        mags = u16x8_max(mags, mag);
        let xd = f32x4(xd[0], xd[1], xd[2], xd[3]);
        let sums = f32x4_convert_i32x4(i32x4_add(sums, i32x4(offs[0], offs[1], offs[2], offs[3])));
        let keep = i32x4_gt(i32x4_splat(n as i32), i32x4(0, 1, 2, 3));
        let terms = f32x4_mul(f32x4_mul(dw, xd), sums);
        acc = f32x4_add(acc, v128_bitselect(terms, f32x4_splat(-0.0), keep));
    }
    if any_special(mags) {
        // An infinite or NaN weight scale (never in a real model) was widened wrongly.
        return super::scalar::dot_whole_blocks(WeightType::Q4_0, row, x);
    }
    super::hsum4([
        f32x4_extract_lane::<0>(acc),
        f32x4_extract_lane::<1>(acc),
        f32x4_extract_lane::<2>(acc),
        f32x4_extract_lane::<3>(acc),
    ])
}

/// Lane k: the sum of the lanes of `part(k)`, i16 lanes with `I16` (each at most a quarter of
/// `i16::MAX`, so the pairwise adds here cannot overflow), else i32.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn sums_of<const I16: bool>(part: impl Fn(usize) -> v128) -> v128 {
    if I16 {
        // Lanes 0..4 of `h01`: block b's halves added; 4..8: block b + 1's.
        let (t0, t1) = (part(0), part(1));
        let h01 = i16x8_add(i64x2_shuffle::<0, 2>(t0, t1), i64x2_shuffle::<1, 3>(t0, t1));
        let (t2, t3) = (part(2), part(3));
        let h23 = i16x8_add(i64x2_shuffle::<0, 2>(t2, t3), i64x2_shuffle::<1, 3>(t2, t3));
        // 32-bit lane k: two i16 partial sums of block b + k.
        i32x4_extadd_pairwise_i16x8(i16x8_add(
            i32x4_shuffle::<0, 2, 4, 6>(h01, h23),
            i32x4_shuffle::<1, 3, 5, 7>(h01, h23),
        ))
    } else {
        let (t0, t1) = (part(0), part(1));
        let s01 = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(t0, t1),
            i32x4_shuffle::<2, 6, 3, 7>(t0, t1),
        );
        let (t2, t3) = (part(2), part(3));
        let s23 = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(t2, t3),
            i32x4_shuffle::<2, 6, 3, 7>(t2, t3),
        );
        i32x4_add(
            i32x4_shuffle::<0, 1, 4, 5>(s01, s23),
            i32x4_shuffle::<2, 3, 6, 7>(s01, s23),
        )
    }
}

/// The sum of the four lanes of `v` (wrapping, which the exact block sums never need).
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn hsum_i32x4(v: v128) -> i32 {
    let v = i32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let v = i32x4_add(v, i32x4_shuffle::<1, 0, 3, 2>(v, v));
    i32x4_extract_lane::<0>(v)
}

/// Walks the `nb` blocks of a weight row (`bb` bytes each, `nb` taken from the activations)
/// for `N` activation rows: calls `body(b, block, dd)` in block order, where `dd[r]` is the
/// definition's `d_w * d_x` for row `r`, splatted; returns the `_1` types' offset sums
/// (`min`), added in block order as the definition does, or `None` when a scale or minimum
/// is an infinity or NaN (never in a real model), whose widening here is wrong: the caller
/// then takes the scalar definition.
///
/// Why in groups of four: converting a block's f16 scale (and minimum) one at a time costs
/// about as many instructions as the block's integer work. Here four blocks' scales are read
/// into one vector, widened together ([`f16x8_finite`], exact) and multiplied by four
/// activation scales at once; each product is the same rounded f32 as the scalar one.
///
/// Only the relaxed kernels use it: in the plain simd128 kernels, whose blocks need more
/// registers (four widened weight vectors), V8 spilled and they got slower, while the relaxed
/// kernels gained (docs/performance.md).
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
pub(crate) fn for_blocks<const N: usize>(
    row: &[u8],
    bb: usize,
    min: bool,
    xs: &[QRow<'_>; N],
    mut body: impl FnMut(usize, &[u8], [v128; N]),
) -> Option<[f32; N]> {
    let nb = xs[0].d.len();
    assert!(row.len() >= nb * bb);
    for x in xs {
        assert!(x.d.len() == nb && x.s.len() == nb);
    }
    let mut summs = [0f32; N];
    // The largest magnitudes of the scales (and minimums) widened four at a time.
    let mut mags = u16x8_splat(0);
    let mut b = 0;
    while b + 4 <= nb {
        // SAFETY: blocks `b..b + 4` lie within `row` (checked above); each block starts with
        // its f16 scale and, for `_1` types, its f16 minimum.
        let (dw, mw, mag) = unsafe { scales4(row.as_ptr().add(b * bb), bb, min) };
        mags = u16x8_max(mags, mag);
        let mut dd = [f32x4_splat(0.0); N];
        let mut ms = [f32x4_splat(0.0); N];
        for r in 0..N {
            // SAFETY: every activation row holds `nb` scales and sums (checked above).
            let (xd, xsum) = unsafe {
                (
                    v128_load(xs[r].d.as_ptr().add(b) as *const v128),
                    v128_load(xs[r].s.as_ptr().add(b) as *const v128),
                )
            };
            dd[r] = f32x4_mul(dw, xd);
            ms[r] = f32x4_mul(mw, xsum);
        }
        // Spelled out rather than a loop: LLVM does not always unroll one, and then picks
        // each lane through a jump table, a third slower.
        let mut block = |k: usize| {
            // SAFETY: `b + k < nb`, so the block lies within `row`.
            let blk = unsafe { row.get_unchecked((b + k) * bb..(b + k + 1) * bb) };
            body(b + k, blk, dd.map(|v| splat_lane(v, k)));
            if min {
                for r in 0..N {
                    summs[r] += lane(ms[r], k);
                }
            }
        };
        block(0);
        block(1);
        block(2);
        block(3);
        b += 4;
    }
    while b < nb {
        // SAFETY: `b < nb`, so the block lies within `row`.
        let blk = unsafe { row.get_unchecked(b * bb..(b + 1) * bb) };
        let dw = f16_at(blk, 0);
        body(b, blk, std::array::from_fn(|r| f32x4_splat(dw * xs[r].d[b])));
        if min {
            let mw = f16_at(blk, 2);
            for r in 0..N {
                summs[r] += mw * xs[r].s[b];
            }
        }
        b += 1;
    }
    (!any_special(mags)).then_some(summs)
}

/// Lane `k` (0..4) of `v` in every lane.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn splat_lane(v: v128, k: usize) -> v128 {
    match k {
        0 => i32x4_shuffle::<0, 0, 0, 0>(v, v),
        1 => i32x4_shuffle::<1, 1, 1, 1>(v, v),
        2 => i32x4_shuffle::<2, 2, 2, 2>(v, v),
        _ => i32x4_shuffle::<3, 3, 3, 3>(v, v),
    }
}

/// Lane `k` (0..4) of `v`.
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn lane(v: v128, k: usize) -> f32 {
    match k {
        0 => f32x4_extract_lane::<0>(v),
        1 => f32x4_extract_lane::<1>(v),
        2 => f32x4_extract_lane::<2>(v),
        _ => f32x4_extract_lane::<3>(v),
    }
}

/// The f16 scales (bytes 0..2) of the four blocks at `p`, `p + stride`, `p + 2 * stride` and
/// `p + 3 * stride`, widened as finite values ([`f16x8_finite`]), and with `min` their f16
/// minimums (bytes 2..4), else zeros; then the magnitude bits of all eight (u16 lanes), for
/// [`any_special`].
///
/// Why one 4-byte read per block: a `_1` block's scale and minimum are adjacent, so four reads
/// and one byte shuffle gather both vectors, where two-byte reads needed eight reads and six
/// lane inserts.
///
/// Why the caller checks the magnitudes once per row, not here: a branch to a widening of
/// infinities and NaNs in every group of four blocks made V8 keep the live vectors on the
/// stack around the (never taken) call. With the check after the row and the cheaper
/// widening of [`f16x8_finite`] (one magnitude mask for scales and minimums), every type
/// decodes faster (docs/performance.md).
///
/// # Safety
/// The four blocks' first two bytes (four with `min`) must be in bounds.
#[cfg(target_feature = "simd128")]
#[inline(always)]
unsafe fn scales4(p: *const u8, stride: usize, min: bool) -> (v128, v128, v128) {
    // SAFETY: the caller guarantees the reads are in bounds; they may be unaligned.
    unsafe {
        if min {
            let at = |k: usize| p.add(k * stride) as *const u32;
            let v = v128_load32_zero(at(0));
            let v = v128_load32_lane::<1>(v, at(1));
            let v = v128_load32_lane::<2>(v, at(2));
            let v = v128_load32_lane::<3>(v, at(3));
            // u16 lanes d0 m0 d1 m1 d2 m2 d3 m3 -> d0 d1 d2 d3 m0 m1 m2 m3.
            let v = i8x16_shuffle::<0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15>(v, v);
            f16x8_finite(v)
        } else {
            let at = |k: usize| p.add(k * stride) as *const u16;
            let v = v128_load16_lane::<0>(u32x4_splat(0), at(0));
            let v = v128_load16_lane::<1>(v, at(1));
            let v = v128_load16_lane::<2>(v, at(2));
            let v = v128_load16_lane::<3>(v, at(3));
            // Lanes 4..8 are zeros: minimums of zero, and no magnitude.
            f16x8_finite(v)
        }
    }
}

/// Whether any u16 lane of `mags` (magnitude bits from [`f16x8_finite`]) is an infinity's or
/// NaN's.
#[cfg(target_feature = "simd128")]
#[inline(always)]
pub(crate) fn any_special(mags: v128) -> bool {
    v128_any_true(u16x8_gt(mags, u16x8_splat(0x7bff)))
}

/// [`super::scalar::quantize_block`] for every block of `x` (32 values each) into `qs`, with
/// the blocks' scales and scaled sums in `d` and `s`: the same values. Why: quantizing each
/// matrix product's activations is serial work between the pool's jobs (2% of a 1-thread
/// decode step as scalar code, twice that share on 2 threads).
///
/// Equal to the scalar code: the largest magnitude by `f32x4.pmax` (which, like `f32::max`
/// from zero, skips NaNs; the rest is order-free), the products rounded half to even
/// (`f32x4.nearest`), converted with saturation as `as i32` does, then truncated to a byte as
/// `as i8` does (a byte shuffle, not the saturating narrow: they differ when the scale
/// overflows to infinity), and the sum added with wrapping.
#[cfg(target_feature = "simd128")]
pub(crate) fn quantize_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    let blocks = x.len() / BLOCK;
    assert!(qs.len() >= blocks * BLOCK && d.len() >= blocks && s.len() >= blocks);
    for b in 0..blocks {
        // SAFETY: block `b` holds 32 values of `x` (`b < blocks`).
        let v: [v128; 8] =
            std::array::from_fn(|i| unsafe { v128_load(x.as_ptr().add(b * BLOCK + 4 * i) as *const v128) });
        let mut m = f32x4_splat(0.0);
        for &v in &v {
            m = f32x4_pmax(m, f32x4_abs(v));
        }
        m = f32x4_pmax(m, i32x4_shuffle::<2, 3, 0, 1>(m, m));
        m = f32x4_pmax(m, i32x4_shuffle::<1, 0, 3, 2>(m, m));
        let amax = f32x4_extract_lane::<0>(m);
        let scale = amax / 127.0;
        let id = f32x4_splat(if amax != 0.0 { 127.0 / amax } else { 0.0 });
        let r: [v128; 8] = v.map(|v| i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(v, id))));
        let total = [
            i32x4_add(i32x4_add(r[0], r[1]), i32x4_add(r[2], r[3])),
            i32x4_add(i32x4_add(r[4], r[5]), i32x4_add(r[6], r[7])),
        ];
        let t = i32x4_add(total[0], total[1]);
        let t = i32x4_add(t, i32x4_shuffle::<2, 3, 0, 1>(t, t));
        let t = i32x4_add(t, i32x4_shuffle::<1, 0, 3, 2>(t, t));
        let sum = i32x4_extract_lane::<0>(t);
        // The low byte of each 32-bit lane, four vectors into one.
        let low = |a: v128, b: v128| {
            i8x16_shuffle::<0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28>(a, b)
        };
        let q0 = i64x2_shuffle::<0, 2>(low(r[0], r[1]), low(r[2], r[3]));
        let q1 = i64x2_shuffle::<0, 2>(low(r[4], r[5]), low(r[6], r[7]));
        // SAFETY: `qs` holds `blocks * 32` values (checked above).
        unsafe {
            let p = qs.as_mut_ptr().add(b * BLOCK) as *mut v128;
            v128_store(p, q0);
            v128_store(p.add(1), q1);
        }
        d[b] = half::f16::from_f32(scale).to_f32();
        s[b] = half::f16::from_f32(scale * sum as f32).to_f32();
    }
}

/// The activations as i16 in [`super::PAIR_ORDER`] per 16 values (`wide`) and, with relaxed
/// SIMD, minus eight times each sum of four consecutive values (`offset_sums`, else empty):
/// what [`super::QActivations::quantize`] otherwise computes value by value.
#[cfg(target_feature = "simd128")]
pub(crate) fn widen_activations(qs: &[i8], wide: &mut [i16], offset_sums: &mut [i32]) {
    for (k, q) in qs.chunks_exact(16).enumerate() {
        // SAFETY: `q` holds 16 bytes.
        let v = unsafe { v128_load(q.as_ptr() as *const v128) };
        if let Some(w) = wide.get_mut(16 * k..16 * k + 16) {
            let p = pair_order(v);
            // SAFETY: `w` holds 16 i16.
            unsafe {
                v128_store(w.as_mut_ptr() as *mut v128, i16x8_extend_low_i8x16(p));
                v128_store(w.as_mut_ptr().add(8) as *mut v128, i16x8_extend_high_i8x16(p));
            }
        }
        if let Some(o) = offset_sums.get_mut(4 * k..4 * k + 4) {
            let fours = i32x4_extadd_pairwise_i16x8(i16x8_extadd_pairwise_i8x16(v));
            // SAFETY: `o` holds 4 i32.
            unsafe { v128_store(o.as_mut_ptr() as *mut v128, i32x4_mul(fours, i32x4_splat(-8))) };
        }
    }
}

/// Whether any weight of these Q8_0 blocks (34 bytes each) is -128: read at load for every
/// Q8_0 matrix (see `relaxed::dot_q8`).
///
/// Why vector compares: a byte-by-byte fold made loading a Q8_0 model several times slower.
#[cfg(target_feature = "relaxed-simd")]
pub(crate) fn holds_minus_128(blocks: &[u8]) -> bool {
    let min = i8x16_splat(-128);
    let mut seen = i8x16_splat(0);
    for blk in blocks.chunks_exact(WeightType::Q8_0.block_bytes()) {
        // SAFETY: each chunk holds 34 bytes; the loads cover bytes 2..18 and 18..34.
        let (w0, w1) = unsafe {
            let p = blk.as_ptr().add(2) as *const v128;
            (v128_load(p), v128_load(p.add(1)))
        };
        seen = v128_or(seen, v128_or(i8x16_eq(w0, min), i8x16_eq(w1, min)));
    }
    v128_any_true(seen)
}

/// [`super::ops::dot8`] for equal lengths that are a multiple of 8: lanes 0..4 and 4..8 of
/// the eight accumulators are two f32x4, so every lane sees the same products and sums.
#[cfg(target_feature = "simd128")]
pub(crate) fn dot8(a: &[f32], b: &[f32]) -> f32 {
    assert!(a.len() == b.len() && a.len().is_multiple_of(8));
    let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
    for (a, b) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        // SAFETY: each chunk holds eight f32.
        unsafe {
            let (pa, pb) = (a.as_ptr() as *const v128, b.as_ptr() as *const v128);
            lo = f32x4_add(lo, f32x4_mul(v128_load(pa), v128_load(pb)));
            hi = f32x4_add(hi, f32x4_mul(v128_load(pa.add(1)), v128_load(pb.add(1))));
        }
    }
    finish([lo], [hi], [0.0])[0]
}

/// [`super::f16_to_f32`] over a slice of little-endian f16 bits: eight values per step (the attention widens every
/// cached key and value it reads, about two million per token at a 170-token context).
#[cfg(target_feature = "simd128")]
pub(crate) fn widen_f16(bits: &[u8], out: &mut [f32]) {
    let n = (bits.len() / 2).min(out.len());
    let (bits, out) = (&bits[..2 * n], &mut out[..n]);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`, `bits` holds `2n` bytes and `out` `n` values.
        unsafe {
            let (lo, hi) = f16x8_to_f32x8(v128_load(bits.as_ptr().add(2 * i) as *const v128));
            let o = out.as_mut_ptr().add(i) as *mut v128;
            v128_store(o, lo);
            v128_store(o.add(1), hi);
        }
        i += 8;
    }
    for (o, b) in out[i..].iter_mut().zip(bits[2 * i..].chunks_exact(2)) {
        *o = super::f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    }
}

/// [`super::ops::softmax_f16`] four lanes at a time: the maximum, [`super::ops::expf`], the
/// scaling and the f16 rounding in vectors with the scalar definition's operations; only the
/// f64 sum stays one term at a time, in index order, as the definition sums.
#[cfg(target_feature = "simd128")]
pub(crate) fn softmax_f16(x: &mut [f32]) {
    let vn = x.len() / 4 * 4;
    // `pmax(m, v)` is `m < v ? v : m`: a NaN in `x` leaves `m` as it was, as `f32::max` skips
    // NaNs, and `m` starts at -inf, so it never holds one.
    let mut m = f32x4_splat(f32::NEG_INFINITY);
    for c in x[..vn].chunks_exact(4) {
        // SAFETY: each chunk holds four f32.
        m = f32x4_pmax(m, unsafe { v128_load(c.as_ptr() as *const v128) });
    }
    let max = [
        f32x4_extract_lane::<0>(m),
        f32x4_extract_lane::<1>(m),
        f32x4_extract_lane::<2>(m),
        f32x4_extract_lane::<3>(m),
    ]
    .into_iter()
    .chain(x[vn..].iter().copied())
    .fold(f32::NEG_INFINITY, f32::max);
    let mv = f32x4_splat(max);
    let mut sum = 0f64;
    for c in x[..vn].chunks_exact_mut(4) {
        let p = c.as_mut_ptr() as *mut v128;
        // SAFETY: each chunk holds four f32.
        let e = unsafe {
            let e = expf4(f32x4_sub(v128_load(p), mv));
            v128_store(p, e);
            e
        };
        sum += f64::from(f32x4_extract_lane::<0>(e));
        sum += f64::from(f32x4_extract_lane::<1>(e));
        sum += f64::from(f32x4_extract_lane::<2>(e));
        sum += f64::from(f32x4_extract_lane::<3>(e));
    }
    for v in &mut x[vn..] {
        *v = super::ops::expf(*v - max);
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    let iv = f32x4_splat(inv);
    for c in x[..vn].chunks_exact_mut(4) {
        let p = c.as_mut_ptr() as *mut v128;
        // SAFETY: each chunk holds four f32.
        unsafe { v128_store(p, round_f16x4(f32x4_mul(v128_load(p), iv))) };
    }
    for v in &mut x[vn..] {
        *v = super::ops::round_f16(*v * inv);
    }
}

/// [`super::ops::expf`] on four lanes: the same operations in the same order (range
/// reduction, the polynomial from its innermost term, the exponent as two factors), and the
/// same results for NaN, large and very negative inputs, selected after.
#[cfg(target_feature = "simd128")]
#[inline(always)]
pub(crate) fn expf4(x: v128) -> v128 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let n = f32x4_floor(f32x4_add(
        f32x4_mul(x, f32x4_splat(std::f32::consts::LOG2_E)),
        f32x4_splat(0.5),
    ));
    let r = f32x4_sub(
        f32x4_sub(x, f32x4_mul(n, f32x4_splat(LN2_HI))),
        f32x4_mul(n, f32x4_splat(LN2_LO)),
    );
    let mut p = f32x4_splat(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = f32x4_add(f32x4_splat(c), f32x4_mul(r, p));
    }
    // Out of range (the special inputs below) the integer is saturated or wraps; those lanes
    // are replaced.
    let n = i32x4_trunc_sat_f32x4(n);
    let big = i32x4_gt(n, i32x4_splat(127));
    let small = i32x4_lt(n, i32x4_splat(-126));
    let n1 = v128_bitselect(
        i32x4_splat(127),
        v128_bitselect(i32x4_add(n, i32x4_splat(64)), n, small),
        big,
    );
    let n2 = v128_bitselect(
        i32x4_sub(n, i32x4_splat(127)),
        v128_and(i32x4_splat(-64), small),
        big,
    );
    let scale = |k: v128| i32x4_shl(i32x4_add(k, i32x4_splat(127)), 23);
    let e = f32x4_mul(f32x4_mul(p, scale(n1)), scale(n2));
    let e = v128_bitselect(f32x4_splat(f32::INFINITY), e, f32x4_gt(x, f32x4_splat(88.722_83)));
    let e = v128_andnot(e, f32x4_lt(x, f32x4_splat(-103.972_08)));
    v128_bitselect(x, e, f32x4_ne(x, x))
}

/// [`super::ops::round_f16`] on four lanes: f32 rounded to the nearest f16 value, ties to
/// even, exactly as `half` converts there and back.
///
/// How: from 2^-14 up, f16 keeps 10 of the 23 mantissa bits, so adding `0xfff` plus the last
/// kept bit and clearing the 13 dropped bits rounds half to even (a carry moves into the
/// exponent, as it should). Below 2^-14, f16 values are multiples of 2^-24, the spacing of
/// f32s in [0.5, 1): `(|x| + 0.5) - 0.5` rounds to them, ties to even, and the subtraction is
/// exact. Magnitudes from 65520 (which round to infinity), infinities and NaNs take the
/// scalar conversion; softmax weights never do.
#[cfg(target_feature = "simd128")]
#[inline(always)]
pub(crate) fn round_f16x4(x: v128) -> v128 {
    let mag = v128_and(x, u32x4_splat(0x7fff_ffff));
    if v128_any_true(i32x4_ge(mag, i32x4_splat(0x477f_f000))) {
        let mut lanes = [0f32; 4];
        // SAFETY: `lanes` holds four f32.
        unsafe { v128_store(lanes.as_mut_ptr() as *mut v128, x) };
        lanes = lanes.map(super::ops::round_f16);
        // SAFETY: as above.
        return unsafe { v128_load(lanes.as_ptr() as *const v128) };
    }
    let kept = v128_and(u32x4_shr(mag, 13), u32x4_splat(1));
    let normal = v128_and(
        i32x4_add(mag, i32x4_add(kept, u32x4_splat(0xfff))),
        u32x4_splat(!0x1fff),
    );
    let tiny = f32x4_sub(f32x4_add(mag, f32x4_splat(0.5)), f32x4_splat(0.5));
    let r = v128_bitselect(normal, tiny, i32x4_ge(mag, i32x4_splat(0x3880_0000)));
    v128_or(r, v128_and(x, u32x4_splat(0x8000_0000)))
}

/// The simd128 fused f16 attention kernels ([`super::attention::FusedF16`]).
///
/// Why fused: each cached row is widened in registers, eight values at a time
/// ([`f16x8_to_f32x8`]), and multiplied into every head of the group at once, where widening a
/// row into a buffer (a call per row) and then reading it back once per head made widening
/// alone 8% of a decode step.
#[cfg(target_feature = "simd128")]
pub(crate) struct Simd128;

#[cfg(target_feature = "simd128")]
impl super::attention::FusedF16 for Simd128 {
    unsafe fn scores<const G: usize>(
        keys: &[u8],
        hd: usize,
        q: &[f32],
        scale: f32,
        out: &mut [f32],
        stride: usize,
    ) {
        scores_g::<G>(keys, hd, q, scale, out, stride)
    }

    unsafe fn weighted<const G: usize>(
        values: &[u8],
        hd: usize,
        p: &[f32],
        stride: usize,
        acc: &mut [f32],
        dims: Range<usize>,
    ) {
        weighted_g::<G>(values, hd, p, stride, acc, dims)
    }
}

/// Scores in the eight lanes of `dot8`, as two f32x4 per head.
///
/// Four rows at a time end together: their lane sums are transposed so that the fixed tree of
/// [`finish`] (`hi + lo`, then lanes 0 + 2 and 1 + 3, then those two) runs once for the four,
/// as vector additions of the same operands, instead of as eight lane extractions and seven
/// scalar additions per row and head.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn scores_g<const G: usize>(keys: &[u8], hd: usize, q: &[f32], scale: f32, out: &mut [f32], stride: usize) {
    let count = keys.len() / (2 * hd);
    assert!(hd.is_multiple_of(8) && q.len() >= G * hd);
    assert!(count == 0 || out.len() >= (G - 1) * stride + count);
    // The eight lane sums of one row, for every head.
    let row_lanes = |row: &[u8]| {
        let mut lo = [f32x4_splat(0.0); G];
        let mut hi = [f32x4_splat(0.0); G];
        for c in 0..hd / 8 {
            // SAFETY: the row holds `hd` f16 values and each head of `q` `hd` f32 (checked
            // above); `c < hd / 8`.
            unsafe {
                let (k0, k1) = f16x8_to_f32x8(v128_load(row.as_ptr().add(16 * c) as *const v128));
                for j in 0..G {
                    let p = q.as_ptr().add(j * hd + 8 * c) as *const v128;
                    lo[j] = f32x4_add(lo[j], f32x4_mul(v128_load(p), k0));
                    hi[j] = f32x4_add(hi[j], f32x4_mul(v128_load(p.add(1)), k1));
                }
            }
        }
        (lo, hi)
    };
    let quads = count / 4;
    for i in (0..quads * 4).step_by(4) {
        // `t[r][j]`: lanes `4 + l` plus lanes `l` of row `i + r`, head `j` (the tree's first
        // level).
        let t: [[v128; G]; 4] = std::array::from_fn(|r| {
            let (lo, hi) = row_lanes(&keys[(i + r) * 2 * hd..(i + r + 1) * 2 * hd]);
            std::array::from_fn(|j| f32x4_add(hi[j], lo[j]))
        });
        for j in 0..G {
            let (a, b) = (
                i32x4_shuffle::<0, 4, 1, 5>(t[0][j], t[1][j]),
                i32x4_shuffle::<2, 6, 3, 7>(t[0][j], t[1][j]),
            );
            let (c, d) = (
                i32x4_shuffle::<0, 4, 1, 5>(t[2][j], t[3][j]),
                i32x4_shuffle::<2, 6, 3, 7>(t[2][j], t[3][j]),
            );
            // Lanes 0 + 2 of rows 0, 1 then lanes 1 + 3 of rows 0, 1; the same for rows 2, 3.
            let (u, v) = (f32x4_add(a, b), f32x4_add(c, d));
            let sum = f32x4_add(
                i32x4_shuffle::<0, 1, 4, 5>(u, v),
                i32x4_shuffle::<2, 3, 6, 7>(u, v),
            );
            // `finish` adds the (here zero) offset term: `-0.0 + 0.0` is `+0.0`.
            let dots = f32x4_mul(f32x4_add(sum, f32x4_splat(0.0)), f32x4_splat(scale));
            let o = &mut out[j * stride + i..j * stride + i + 4];
            // SAFETY: `o` holds four f32.
            unsafe { v128_store(o.as_mut_ptr() as *mut v128, dots) };
        }
    }
    for i in quads * 4..count {
        let (lo, hi) = row_lanes(&keys[i * 2 * hd..(i + 1) * 2 * hd]);
        let dots = finish(lo, hi, [0.0; G]);
        for j in 0..G {
            out[j * stride + i] = dots[j] * scale;
        }
    }
}

/// Weighted values: eight dimensions of every head accumulate in registers over the rows.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn weighted_g<const G: usize>(
    values: &[u8],
    hd: usize,
    p: &[f32],
    stride: usize,
    acc: &mut [f32],
    dims: Range<usize>,
) {
    let count = values.len() / (2 * hd);
    let w = dims.len();
    assert!(hd.is_multiple_of(8) && dims.start.is_multiple_of(8) && w.is_multiple_of(8) && dims.end <= hd);
    assert!(acc.len() >= G * w);
    assert!(count == 0 || p.len() >= (G - 1) * stride + count);
    for c in dims.start / 8..dims.end / 8 {
        let at = 8 * c - dims.start;
        // SAFETY: `acc` holds `G * w` values and `at + 8 <= w` (checked above); each value
        // row holds `hd` f16 values and `8 * c + 8 <= hd`; `p` holds every `j * stride + i`
        // read (checked above).
        unsafe {
            let a = acc.as_mut_ptr();
            let mut lo: [v128; G] = std::array::from_fn(|j| v128_load(a.add(j * w + at) as *const v128));
            let mut hi: [v128; G] = std::array::from_fn(|j| v128_load(a.add(j * w + at + 4) as *const v128));
            for i in 0..count {
                let h = v128_load(values.as_ptr().add(i * 2 * hd + 16 * c) as *const v128);
                let (v0, v1) = f16x8_to_f32x8(h);
                for j in 0..G {
                    let w = f32x4_splat(*p.get_unchecked(j * stride + i));
                    lo[j] = f32x4_add(lo[j], f32x4_mul(w, v0));
                    hi[j] = f32x4_add(hi[j], f32x4_mul(w, v1));
                }
            }
            for j in 0..G {
                v128_store(a.add(j * w + at) as *mut v128, lo[j]);
                v128_store(a.add(j * w + at + 4) as *mut v128, hi[j]);
            }
        }
    }
}

/// [`super::f16_to_f32`] on eight f16 values (the u16 lanes of `h`): lanes 0..4 and 4..8.
/// Infinities and NaNs, which real scales never and caches rarely hold, take
/// [`f16x4_specials`]; the kernels' scales use [`f16x8_finite`] and check once per row.
#[cfg(target_feature = "simd128")]
#[inline(always)]
pub(crate) fn f16x8_to_f32x8(h: v128) -> (v128, v128) {
    let (lo, hi, mags) = f16x8_finite(h);
    if any_special(mags) {
        return (
            f16x4_specials(u32x4_extend_low_u16x8(h)),
            f16x4_specials(u32x4_extend_high_u16x8(h)),
        );
    }
    (lo, hi)
}

/// [`super::f16_to_f32`] on eight f16 values (the u16 lanes of `h`), exact where they are
/// finite: lanes 0..4 and 4..8 widened, and each value's magnitude bits (u16 lanes), where
/// anything above `0x7bff` ([`any_special`]) is an infinity or NaN, widened wrongly.
///
/// How: each value is sign-extended to 32 bits and shifted left by 13, which puts the sign in
/// bit 31 (and copies of it in bits 28..31, cleared by a mask) and the exponent and mantissa
/// where an f32's go; the multiply by 2^112 then rebiases the exponent (exactly, subnormals
/// included).
#[cfg(target_feature = "simd128")]
#[inline(always)]
pub(crate) fn f16x8_finite(h: v128) -> (v128, v128, v128) {
    let widen = |x: v128| {
        let bits = v128_and(i32x4_shl(x, 13), u32x4_splat(0x8fff_ffff));
        f32x4_mul(bits, f32x4_splat(f32::from_bits(0x7780_0000)))
    };
    (
        widen(i32x4_extend_low_i16x8(h)),
        widen(i32x4_extend_high_i16x8(h)),
        v128_and(h, u16x8_splat(0x7fff)),
    )
}

/// [`super::f16_to_f32`] on four lanes (each holding f16 bits in its low half) that may hold
/// infinities and NaNs: each lane's finite or special widening, selected.
#[cfg(target_feature = "simd128")]
#[inline(never)]
fn f16x4_specials(h: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
    let mag = v128_and(h, u32x4_splat(0x7fff));
    let normal = f32x4_mul(i32x4_shl(mag, 13), f32x4_splat(f32::from_bits(0x7780_0000)));
    let man = v128_and(mag, u32x4_splat(0x3ff));
    let quiet = v128_bitselect(
        u32x4_splat(0x7f80_0000),
        u32x4_splat(0x7fc0_0000),
        i32x4_eq(man, u32x4_splat(0)),
    );
    let special = v128_or(quiet, i32x4_shl(man, 13));
    let is_special = i32x4_gt(mag, u32x4_splat(0x7bff));
    v128_or(v128_bitselect(special, normal, is_special), sign)
}

/// The definition's last steps for `N` rows: the eight lane accumulators (`lo` holds lanes
/// 0..4, `hi` 4..8) summed in the fixed tree, plus the `_1` types' offset term.
#[cfg(target_feature = "simd128")]
#[inline(always)]
pub(crate) fn finish<const N: usize>(lo: [v128; N], hi: [v128; N], summs: [f32; N]) -> [f32; N] {
    let mut out = [0f32; N];
    for r in 0..N {
        let (a, c) = (lo[r], hi[r]);
        let lanes = [
            f32x4_extract_lane::<0>(a),
            f32x4_extract_lane::<1>(a),
            f32x4_extract_lane::<2>(a),
            f32x4_extract_lane::<3>(a),
            f32x4_extract_lane::<0>(c),
            f32x4_extract_lane::<1>(c),
            f32x4_extract_lane::<2>(c),
            f32x4_extract_lane::<3>(c),
        ];
        out[r] = hsum8(lanes) + summs[r];
    }
    out
}

/// Kernels for builds with relaxed SIMD (`-C target-feature=+relaxed-simd`; the app ships such
/// a worker next to the plain one and picks it when the browser validates relaxed SIMD).
///
/// `i32x4.relaxed_dot_i8x16_i7x16_add_s` sums the products of four adjacent bytes into each
/// lane: exactly lane `l` of the definition, in one instruction per 16 weights. Its result is
/// implementation-defined only when the second operand has its top bit set, so the weights go
/// in unsigned (0..15 for 4-bit, 0..31 for 5-bit) and Q5_0's offset is removed by starting
/// each lane from `-16 * (sum of its four activations)`, precomputed once per product and
/// passed as the instruction's accumulator (instead of a multiply and a subtract per lane
/// vector). Q4_0 sums whole blocks ([`dot_q4_0`]), its offset added once per block. The `_1`
/// types have nothing to accumulate and use the 16-bit form and a pairwise widening instead,
/// which skips V8's add of a zero accumulator. The integer lanes are the definition's, so results stay
/// bit-identical. Q8_0's weights are signed: [`dot_q8`] moves their signs onto the
/// activations.
#[cfg(target_feature = "relaxed-simd")]
mod relaxed {
    use std::arch::wasm32::*;

    use super::super::{QRow, RowsKernel, WeightType, BLOCK};

    pub(super) fn rows_kernel(ty: WeightType, minus_128: bool) -> Option<RowsKernel> {
        fn rows<const TY: u8>(w: &[u8], row_bytes: usize, x: &QRow<'_>, out: &mut [f32]) {
            let xs = [*x];
            for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
                *o = if TY == 4 {
                    dot_q8::<1>(row, &xs)[0]
                } else {
                    dot_n::<TY, 1>(row, &xs)[0]
                };
            }
        }
        fn rows_q4_0(w: &[u8], row_bytes: usize, x: &QRow<'_>, out: &mut [f32]) {
            for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
                *o = dot_q4_0(row, x);
            }
        }
        Some(match ty {
            WeightType::Q4_0 => rows_q4_0,
            WeightType::Q4_1 => rows::<1>,
            WeightType::Q5_0 => rows::<2>,
            WeightType::Q5_1 => rows::<3>,
            WeightType::Q8_0 if minus_128 => return None,
            WeightType::Q8_0 => rows::<4>,
        })
    }

    /// Q4_0's definition ([`super::super::scalar::dot_whole_blocks`]) with the relaxed dot
    /// product, through [`super::whole_blocks`]: each block's 32 products of unsigned weights
    /// (0..=15) in four lanes, and Q4_0's offset added as minus eight times the block's
    /// activation sum (`block_offsets`).
    #[inline(always)]
    fn dot_q4_0(row: &[u8], x: &QRow<'_>) -> f32 {
        let bb = WeightType::Q4_0.block_bytes();
        let nb = x.d.len();
        assert!(row.len() >= nb * bb && x.qs.len() >= nb * BLOCK && x.block_offsets.len() >= nb);
        let low = u8x16_splat(0x0f);
        // Block `b`'s products with its unsigned weights (0..=15), in four lanes. No pair sum
        // leaves 16 bits: two pairs are at most 4 * 15 * 127.
        let lanes = |b: usize| {
            // SAFETY: `b < nb`: the activation row holds its 32 values and `row` its 18 bytes
            // (checked above), the 16 weight bytes at offset 2.
            let (q0, q1, raw) = unsafe {
                let p = x.qs.as_ptr().add(b * BLOCK) as *const v128;
                let w = row.as_ptr().add(b * bb + 2) as *const v128;
                (v128_load(p), v128_load(p.add(1)), v128_load(w))
            };
            let (w0, w1) = (v128_and(raw, low), v128_and(u16x8_shr(raw, 4), low));
            i16x8_add(
                i16x8_relaxed_dot_i8x16_i7x16(q0, w0),
                i16x8_relaxed_dot_i8x16_i7x16(q1, w1),
            )
        };
        super::whole_blocks::<true>(row, x, lanes)
    }

    /// Q8_0 with the relaxed dot product: the weights' magnitudes as its unsigned operand and
    /// the activations with the weights' signs (`|w| * sign(w) x = w x`, as llama.cpp's AVX2
    /// code does with `maddubs`). Pair sums stay within 16 bits (2 * 127 * 127), then widen.
    ///
    /// Only for weights in -127..=127: `|-128|` does not fit the unsigned operand's seven
    /// bits, and the instruction's result then differs between platforms, so a matrix with a
    /// -128 weight keeps the plain kernel (`QMatrix` checks at load). Activations are in
    /// -127..=127 by construction, so negating them is exact.
    ///
    /// Why: the plain kernel widens weights and activations to 16 bits (a byte shuffle and
    /// four extends per block) and converts each block's scale alone; this one takes bytes and
    /// four blocks' scales at once (`for_blocks`); faster by a fifth (docs/performance.md).
    #[inline(always)]
    fn dot_q8<const N: usize>(row: &[u8], xs: &[QRow<'_>; N]) -> [f32; N] {
        let nb = xs[0].d.len();
        for x in xs {
            assert!(x.qs.len() >= nb * BLOCK);
        }
        let zero = i8x16_splat(0);
        let mut acc_lo = [f32x4_splat(0.0); N];
        let mut acc_hi = [f32x4_splat(0.0); N];
        let bb = WeightType::Q8_0.block_bytes();
        let summs = super::for_blocks::<N>(row, bb, false, xs, |b, blk, dd| {
            debug_assert_eq!(blk.len(), bb);
            // SAFETY: a Q8_0 block holds 32 weight bytes after its 2-byte scale.
            let (w0, w1) = unsafe {
                let p = blk.as_ptr().add(2) as *const v128;
                (v128_load(p), v128_load(p.add(1)))
            };
            let (a0, a1) = (i8x16_abs(w0), i8x16_abs(w1));
            let (n0, n1) = (i8x16_lt(w0, zero), i8x16_lt(w1, zero));
            for r in 0..N {
                // SAFETY: every activation row holds `nb * 32` values; `b < nb`.
                let (q0, q1) = unsafe {
                    let p = xs[r].qs.as_ptr().add(b * BLOCK) as *const v128;
                    (v128_load(p), v128_load(p.add(1)))
                };
                // Each mask lane is all ones or all zeros, where the select is deterministic.
                let s0 = i8x16_relaxed_laneselect(i8x16_neg(q0), q0, n0);
                let s1 = i8x16_relaxed_laneselect(i8x16_neg(q1), q1, n1);
                let l0 = i32x4_extadd_pairwise_i16x8(i16x8_relaxed_dot_i8x16_i7x16(s0, a0));
                let l1 = i32x4_extadd_pairwise_i16x8(i16x8_relaxed_dot_i8x16_i7x16(s1, a1));
                acc_lo[r] = f32x4_add(acc_lo[r], f32x4_mul(dd[r], f32x4_convert_i32x4(l0)));
                acc_hi[r] = f32x4_add(acc_hi[r], f32x4_mul(dd[r], f32x4_convert_i32x4(l1)));
            }
        });
        match summs {
            Some(summs) => super::finish(acc_lo, acc_hi, summs),
            None => xs.map(|x| super::super::scalar::dot(WeightType::Q8_0, row, &x)),
        }
    }

    /// `TY`: 1 = Q4_1, 2 = Q5_0, 3 = Q5_1 (Q4_0 sums whole blocks: [`dot_q4_0`]).
    #[inline(always)]
    fn dot_n<const TY: u8, const N: usize>(row: &[u8], xs: &[QRow<'_>; N]) -> [f32; N] {
        let ty = match TY {
            1 => WeightType::Q4_1,
            2 => WeightType::Q5_0,
            _ => WeightType::Q5_1,
        };
        // The offset subtracted from the unsigned weights (`_1` types have none).
        let offset = if TY == 2 { 16 } else { 0 };
        let (bb, at) = match TY {
            1 => (20, 4),
            2 => (22, 6),
            _ => (24, 8),
        };
        debug_assert_eq!(bb, ty.block_bytes());
        let nb = xs[0].d.len();
        for x in xs {
            assert!(x.qs.len() >= nb * BLOCK);
            assert!(offset == 0 || x.offset_sums.len() >= nb * 8);
        }
        let low = u8x16_splat(0x0f);
        let mut acc_lo = [f32x4_splat(0.0); N];
        let mut acc_hi = [f32x4_splat(0.0); N];
        let summs = super::for_blocks::<N>(row, bb, ty.has_min(), xs, |b, blk, dd| {
            debug_assert_eq!(blk.len(), bb);
            // SAFETY: the 16-byte load at `at` ends within the block for every layout here.
            let raw = unsafe { v128_load(blk.as_ptr().add(at) as *const v128) };
            let (mut w0, mut w1) = (v128_and(raw, low), v128_and(u16x8_shr(raw, 4), low));
            if TY >= 2 {
                let qh = u32::from_le_bytes([blk[at - 4], blk[at - 3], blk[at - 2], blk[at - 1]]);
                w0 = v128_or(w0, super::fifth_bits16(qh as u16));
                w1 = v128_or(w1, super::fifth_bits16((qh >> 16) as u16));
            }
            for r in 0..N {
                let x = &xs[r];
                // SAFETY: every activation row holds `nb * 32` values and (for Q5_0) `nb * 8`
                // lane sums (checked above); `b < nb`.
                let (q0, q1) = unsafe {
                    let p = x.qs.as_ptr().add(b * BLOCK) as *const v128;
                    (v128_load(p), v128_load(p.add(1)))
                };
                let (l0, l1) = if offset != 0 {
                    // SAFETY: as above.
                    let (s0, s1) = unsafe {
                        let p = x.offset_sums.as_ptr().add(b * 8) as *const v128;
                        (v128_load(p), v128_load(p.add(1)))
                    };
                    // The offset term enters as the accumulator: `-16 * sum` (twice the stored
                    // `-8 * sum`) plus the four products, exact in 32 bits.
                    let (c0, c1) = (i32x4_shl(s0, 1), i32x4_shl(s1, 1));
                    (
                        i32x4_relaxed_dot_i8x16_i7x16_add(q0, w0, c0),
                        i32x4_relaxed_dot_i8x16_i7x16_add(q1, w1, c1),
                    )
                } else {
                    // No accumulator to add: the 16-bit pair sums and their pairwise
                    // widening (one `pmaddubsw` and one `pmaddwd` on x86) skip the add of
                    // zero that V8 emits for the accumulating form.
                    (
                        i32x4_extadd_pairwise_i16x8(i16x8_relaxed_dot_i8x16_i7x16(q0, w0)),
                        i32x4_extadd_pairwise_i16x8(i16x8_relaxed_dot_i8x16_i7x16(q1, w1)),
                    )
                };
                acc_lo[r] = f32x4_add(acc_lo[r], f32x4_mul(dd[r], f32x4_convert_i32x4(l0)));
                acc_hi[r] = f32x4_add(acc_hi[r], f32x4_mul(dd[r], f32x4_convert_i32x4(l1)));
            }
        });
        match summs {
            Some(summs) => super::finish(acc_lo, acc_hi, summs),
            None => xs.map(|x| super::super::scalar::dot(ty, row, &x)),
        }
    }
}
