//! The reference definitions: activation quantization, dequantization and the dot products.
//! Every SIMD kernel must match these bit for bit.

use half::f16;

use super::{f16_at, hsum4, hsum8, QRow, WeightType, BLOCK};

/// Quantizes one block: returns the f16-rounded scale and the f16-rounded scaled sum.
#[inline]
pub(crate) fn quantize_block(x: &[f32], q: &mut [i8]) -> (f32, f32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    // Wrapping: where `127 / amax` overflows to infinity (every magnitude below ~4e-37) a
    // value's `r` saturates to `i32::MAX`, and several of them would overflow the sum.
    let mut sum = 0i32;
    for (q, &v) in q.iter_mut().zip(x) {
        let r = (v * id).round_ties_even() as i32;
        *q = r as i8;
        sum = sum.wrapping_add(r);
    }
    let d16 = f16::from_f32(d).to_f32();
    let s16 = f16::from_f32(d * sum as f32).to_f32();
    (d16, s16)
}

/// The 32 integer weights of block `b` (offsets applied for `_0` types) and its scale and min.
#[inline(always)]
pub(crate) fn unpack(ty: WeightType, blk: &[u8], out: &mut [i32; BLOCK]) -> (f32, f32) {
    match ty {
        WeightType::Q4_0 => {
            for i in 0..16 {
                out[i] = i32::from(blk[2 + i] & 0x0f) - 8;
                out[i + 16] = i32::from(blk[2 + i] >> 4) - 8;
            }
            (f16_at(blk, 0), 0.0)
        }
        WeightType::Q4_1 => {
            for i in 0..16 {
                out[i] = i32::from(blk[4 + i] & 0x0f);
                out[i + 16] = i32::from(blk[4 + i] >> 4);
            }
            (f16_at(blk, 0), f16_at(blk, 2))
        }
        WeightType::Q5_0 => {
            let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
            for i in 0..16 {
                let lo = i32::from(blk[6 + i] & 0x0f) | (((qh >> i) & 1) as i32) << 4;
                let hi = i32::from(blk[6 + i] >> 4) | (((qh >> (i + 16)) & 1) as i32) << 4;
                out[i] = lo - 16;
                out[i + 16] = hi - 16;
            }
            (f16_at(blk, 0), 0.0)
        }
        WeightType::Q5_1 => {
            let qh = u32::from_le_bytes([blk[4], blk[5], blk[6], blk[7]]);
            for i in 0..16 {
                out[i] = i32::from(blk[8 + i] & 0x0f) | (((qh >> i) & 1) as i32) << 4;
                out[i + 16] = i32::from(blk[8 + i] >> 4) | (((qh >> (i + 16)) & 1) as i32) << 4;
            }
            (f16_at(blk, 0), f16_at(blk, 2))
        }
        WeightType::Q8_0 => {
            for i in 0..32 {
                out[i] = i32::from(blk[2 + i] as i8);
            }
            (f16_at(blk, 0), 0.0)
        }
    }
}

pub(crate) fn dequantize_row(ty: WeightType, row: &[u8], out: &mut [f32]) {
    let bb = ty.block_bytes();
    let mut w = [0i32; BLOCK];
    for (b, o) in out.chunks_exact_mut(BLOCK).enumerate() {
        let (d, m) = unpack(ty, &row[b * bb..(b + 1) * bb], &mut w);
        for (o, &q) in o.iter_mut().zip(&w) {
            *o = if ty.has_min() {
                d * q as f32 + m
            } else {
                d * q as f32
            };
        }
    }
}

/// The defining dot product of a weight row and a quantized activation row.
pub(crate) fn dot(ty: WeightType, row: &[u8], x: &QRow<'_>) -> f32 {
    if ty == WeightType::Q4_0 {
        return dot_whole_blocks(ty, row, x);
    }
    let bb = ty.block_bytes();
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    let mut w = [0i32; BLOCK];
    for b in 0..x.d.len() {
        let (dw, mw) = unpack(ty, &row[b * bb..(b + 1) * bb], &mut w);
        let q = &x.qs[b * BLOCK..(b + 1) * BLOCK];
        let dd = dw * x.d[b];
        for (l, acc) in acc.iter_mut().enumerate() {
            let mut s = 0i32;
            for e in 4 * l..4 * l + 4 {
                s += w[e] * i32::from(q[e]);
            }
            *acc += dd * s as f32;
        }
        if ty.has_min() {
            summs += mw * x.s[b];
        }
    }
    hsum8(acc) + summs
}

/// The defining dot product for Q4_0 (see the module notes): each block's 32 integer products
/// summed whole (exact), and `acc[b % 4] += (d_w * d_x) * sum` for block `b`, the four
/// accumulators summed in a fixed tree.
pub(crate) fn dot_whole_blocks(ty: WeightType, row: &[u8], x: &QRow<'_>) -> f32 {
    let bb = ty.block_bytes();
    let mut acc = [0f32; 4];
    let mut w = [0i32; BLOCK];
    for b in 0..x.d.len() {
        let (dw, _) = unpack(ty, &row[b * bb..(b + 1) * bb], &mut w);
        let q = &x.qs[b * BLOCK..(b + 1) * BLOCK];
        let s: i32 = w.iter().zip(q).map(|(&w, &q)| w * i32::from(q)).sum();
        acc[b % 4] += (dw * x.d[b]) * s as f32;
    }
    hsum4(acc)
}

pub(crate) fn rows_kernel(ty: WeightType) -> super::RowsKernel {
    fn rows<const TY: u8>(w: &[u8], row_bytes: usize, x: &QRow<'_>, out: &mut [f32]) {
        let ty = match TY {
            0 => WeightType::Q4_0,
            1 => WeightType::Q4_1,
            2 => WeightType::Q5_0,
            3 => WeightType::Q5_1,
            _ => WeightType::Q8_0,
        };
        for (o, row) in out.iter_mut().zip(w.chunks_exact(row_bytes)) {
            *o = dot(ty, row, x);
        }
    }
    match ty {
        WeightType::Q4_0 => rows::<0>,
        WeightType::Q4_1 => rows::<1>,
        WeightType::Q5_0 => rows::<2>,
        WeightType::Q5_1 => rows::<3>,
        WeightType::Q8_0 => rows::<4>,
    }
}
