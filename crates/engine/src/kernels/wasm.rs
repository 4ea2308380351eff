//! simd128 versions of the dot products (the wasm build enables simd128). Same lanes, same
//! operations and the same order as [`super::scalar::dot`], so the results are identical.

#[cfg(target_feature = "simd128")]
use std::arch::wasm32::*;

#[cfg(target_feature = "simd128")]
use super::{f16_at, hsum8, QRow, BLOCK};
use super::{RowsKernel, WeightType};

#[cfg(not(target_feature = "simd128"))]
pub(crate) fn rows_kernel(_ty: WeightType) -> Option<RowsKernel> {
    None
}

#[cfg(target_feature = "simd128")]
pub(crate) fn rows_kernel(ty: WeightType) -> Option<RowsKernel> {
    fn rows<const TY: u8>(w: &[u8], row_bytes: usize, x: &QRow<'_>, out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
            *o = dot_simd::<TY>(row, x);
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

/// Expands 16 bits of `bits` to bytes: byte `i` is 0x10 when bit `i` is set, else 0.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn high_bits16(bits: u16) -> v128 {
    let v = u16x8_splat(bits);
    let bytes = i8x16_swizzle(v, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
    let mask = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    let set = i8x16_eq(v128_and(bytes, mask), mask);
    v128_and(set, u8x16_splat(0x10))
}

/// The four lane sums of 16 weight/activation byte pairs: lane `l` = products `4l..4l+4`.
#[cfg(target_feature = "simd128")]
#[inline(always)]
fn lanes16(w: v128, q: v128) -> v128 {
    let a = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), i16x8_extend_low_i8x16(q));
    let b = i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), i16x8_extend_high_i8x16(q));
    i32x4_add(
        i32x4_shuffle::<0, 2, 4, 6>(a, b),
        i32x4_shuffle::<1, 3, 5, 7>(a, b),
    )
}

/// `TY`: 0 = Q4_0, 1 = Q4_1, 2 = Q5_0, 3 = Q5_1, 4 = Q8_0.
#[cfg(target_feature = "simd128")]
fn dot_simd<const TY: u8>(row: &[u8], x: &QRow<'_>) -> f32 {
    let ty = match TY {
        0 => WeightType::Q4_0,
        1 => WeightType::Q4_1,
        2 => WeightType::Q5_0,
        3 => WeightType::Q5_1,
        _ => WeightType::Q8_0,
    };
    let bb = ty.block_bytes();
    let nb = x.d.len();
    assert!(row.len() >= nb * bb && x.qs.len() >= nb * BLOCK);
    let mut acc_lo = f32x4_splat(0.0);
    let mut acc_hi = f32x4_splat(0.0);
    let mut summs = 0f32;
    let low = u8x16_splat(0x0f);
    for b in 0..nb {
        let blk = &row[b * bb..(b + 1) * bb];
        // SAFETY: the slices were checked above to hold these 16-byte loads.
        let (q0, q1) = unsafe {
            let p = x.qs.as_ptr().add(b * BLOCK) as *const v128;
            (v128_load(p), v128_load(p.add(1)))
        };
        let nib = |at: usize| -> (v128, v128) {
            // SAFETY: `at + 16 <= blk.len()` for every 4-bit layout.
            let raw = unsafe { v128_load(blk.as_ptr().add(at) as *const v128) };
            (v128_and(raw, low), u8x16_shr(raw, 4))
        };
        let (w0, w1) = match TY {
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
                (v128_load(p), v128_load(p.add(1)))
            },
        };
        let dd = f32x4_splat(f16_at(blk, 0) * x.d[b]);
        acc_lo = f32x4_add(acc_lo, f32x4_mul(dd, f32x4_convert_i32x4(lanes16(w0, q0))));
        acc_hi = f32x4_add(acc_hi, f32x4_mul(dd, f32x4_convert_i32x4(lanes16(w1, q1))));
        if TY == 1 || TY == 3 {
            summs += f16_at(blk, 2) * x.s[b];
        }
    }
    let l = |v: v128, i: usize| match i {
        0 => f32x4_extract_lane::<0>(v),
        1 => f32x4_extract_lane::<1>(v),
        2 => f32x4_extract_lane::<2>(v),
        _ => f32x4_extract_lane::<3>(v),
    };
    let lanes = [
        l(acc_lo, 0),
        l(acc_lo, 1),
        l(acc_lo, 2),
        l(acc_lo, 3),
        l(acc_hi, 0),
        l(acc_hi, 1),
        l(acc_hi, 2),
        l(acc_hi, 3),
    ];
    hsum8(lanes) + summs
}
