//! The 32-element formats: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0. `_0` types store a scale `d` and
//! signed values (`x = d * q`); `_1` types a scale and a minimum (`x = d * q + m`). Scales and
//! minimums are f16; Q5 types keep the fifth bit of each value in a 32-bit mask `qh`.

use super::{f16_at, put_f16, Format};

/// 4-bit, scale only: `d`, then 16 bytes of nibbles (element `j` low, `j + 16` high).
pub struct Q4_0;
/// 4-bit, scale and minimum.
pub struct Q4_1;
/// 5-bit, scale only.
pub struct Q5_0;
/// 5-bit, scale and minimum.
pub struct Q5_1;
/// 8-bit, scale only.
pub struct Q8_0;

/// The value of largest magnitude (the first of equal magnitudes), for the `_0` types' scales.
fn signed_max(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// The minimum and maximum of `x`, as ggml finds them (from `f32::MAX` and `-f32::MAX`).
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// The fifth bits of 32 five-bit values, as ggml lays them out in `qh`.
fn fifth_bits(q: &[u8; 32]) -> u32 {
    let mut qh = 0u32;
    for j in 0..16 {
        qh |= u32::from((q[j] & 0x10) >> 4) << j;
        qh |= u32::from((q[j + 16] & 0x10) >> 4) << (j + 16);
    }
    qh
}

impl Format for Q4_0 {
    const ID: u32 = 2;
    const ELEMS: usize = 32;
    const BYTES: usize = 18;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let d = f16_at(b, 0);
        for j in 0..16 {
            out[j] = (i32::from(b[2 + j] & 0x0f) - 8) as f32 * d;
            out[j + 16] = (i32::from(b[2 + j] >> 4) - 8) as f32 * d;
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let max = signed_max(x);
        let d = max / -8.0;
        let id = inverse(d);
        put_f16(b, 0, d);
        for j in 0..16 {
            // C's float-to-int8 truncation; the value is in 0.5..=16.5 for finite input.
            let lo = ((x[j] * id + 8.5) as i8).min(15) as u8;
            let hi = ((x[j + 16] * id + 8.5) as i8).min(15) as u8;
            b[2 + j] = lo | (hi << 4);
        }
    }
}

impl Format for Q4_1 {
    const ID: u32 = 3;
    const ELEMS: usize = 32;
    const BYTES: usize = 20;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for j in 0..16 {
            out[j] = f32::from(b[4 + j] & 0x0f) * d + m;
            out[j + 16] = f32::from(b[4 + j] >> 4) * d + m;
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        put_f16(b, 0, d);
        put_f16(b, 2, min);
        for j in 0..16 {
            let lo = (((x[j] - min) * id + 0.5) as i8).min(15) as u8;
            let hi = (((x[j + 16] - min) * id + 0.5) as i8).min(15) as u8;
            b[4 + j] = lo | (hi << 4);
        }
    }
}

impl Format for Q5_0 {
    const ID: u32 = 6;
    const ELEMS: usize = 32;
    const BYTES: usize = 22;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let d = f16_at(b, 0);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        for j in 0..16 {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            out[j] = ((u32::from(b[6 + j] & 0x0f) | h0) as i32 - 16) as f32 * d;
            out[j + 16] = ((u32::from(b[6 + j] >> 4) | h1) as i32 - 16) as f32 * d;
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let max = signed_max(x);
        let d = max / -16.0;
        let id = inverse(d);
        put_f16(b, 0, d);
        let mut q = [0u8; 32];
        for (q, &v) in q.iter_mut().zip(x) {
            *q = ((v * id + 16.5) as i8).min(31) as u8;
        }
        b[2..6].copy_from_slice(&fifth_bits(&q).to_le_bytes());
        for j in 0..16 {
            b[6 + j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
        }
    }
}

impl Format for Q5_1 {
    const ID: u32 = 7;
    const ELEMS: usize = 32;
    const BYTES: usize = 24;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        for j in 0..16 {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            out[j] = (u32::from(b[8 + j] & 0x0f) | h0) as f32 * d + m;
            out[j + 16] = (u32::from(b[8 + j] >> 4) | h1) as f32 * d + m;
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        put_f16(b, 0, d);
        put_f16(b, 2, min);
        let mut q = [0u8; 32];
        for (q, &v) in q.iter_mut().zip(x) {
            // ggml does not clamp here: the value is in 0.5..=31.5 for finite input.
            *q = (((v - min) * id + 0.5) as i32 as u8) & 0x1f;
        }
        b[4..8].copy_from_slice(&fifth_bits(&q).to_le_bytes());
        for j in 0..16 {
            b[8 + j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
        }
    }
}

impl Format for Q8_0 {
    const ID: u32 = 8;
    const ELEMS: usize = 32;
    const BYTES: usize = 34;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let d = f16_at(b, 0);
        for (o, &q) in out.iter_mut().zip(&b[2..34]) {
            *o = f32::from(q as i8) * d;
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        // ggml's `MAX(amax, |v|)`: a NaN value makes the scale NaN.
        let amax = x.iter().fold(0f32, |a, v| if a > v.abs() { a } else { v.abs() });
        let d = amax / 127.0;
        let id = inverse(d);
        put_f16(b, 0, d);
        for (q, &v) in b[2..34].iter_mut().zip(x) {
            // C's roundf: halves away from zero.
            *q = (v * id).round() as i8 as u8;
        }
    }
}
