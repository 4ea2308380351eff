//! The K-quants: super-blocks of 256 numbers split into sub-blocks of 16 or 32, each with its
//! own small integer scale (and minimum) under one f16 scale of the super-block. Layouts, in
//! byte order:
//!
//! | type | bytes | layout |
//! |---|---|---|
//! | Q2_K | 84 | `scales[16]` (4-bit scale, 4-bit min), `qs[64]` (2-bit), `d`, `dmin` |
//! | Q3_K | 110 | `hmask[32]` (third bits), `qs[64]` (2-bit), `scales[12]` (6-bit, signed with 32), `d` |
//! | Q4_K | 144 | `d`, `dmin`, `scales[12]` (6-bit scale and min per 32), `qs[128]` (4-bit) |
//! | Q5_K | 176 | `d`, `dmin`, `scales[12]`, `qh[32]` (fifth bits), `qs[128]` |
//! | Q6_K | 210 | `ql[128]` (low 4 bits), `qh[64]` (high 2 bits), `scales[16]` (i8), `d` |
//! | Q8_K | 292 | `d` (f32), `qs[256]` (i8), `bsums[16]` (i16 sums of 16) |
//!
//! Dequantization follows ggml's `dequantize_row_*` operation by operation (the products are
//! `(d * scale) * q - (dmin * min)`), so the values are the same bits. The quantizers are
//! ggml's reference ones (`quantize_row_*_ref`, used when no importance matrix is given).

use super::{f16_at, put_f16, round_f16, Format};

/// 2-bit, 16 sub-blocks of 16 with 4-bit scales and minimums.
pub struct Q2K;
/// 3-bit, 16 sub-blocks of 16 with 6-bit signed scales.
pub struct Q3K;
/// 4-bit, 8 sub-blocks of 32 with 6-bit scales and minimums.
pub struct Q4K;
/// 5-bit, 8 sub-blocks of 32 with 6-bit scales and minimums.
pub struct Q5K;
/// 6-bit, 16 sub-blocks of 16 with 8-bit signed scales.
pub struct Q6K;
/// 8-bit with an f32 scale and sums of 16: the activations K-quant products pair with.
pub struct Q8K;

/// Numbers per super-block.
pub const QK_K: usize = 256;

/// ggml's `nearest_int`: round half to even through the f32 mantissa (exact for |v| < 2^22).
#[inline]
pub(crate) fn nearest_int(v: f32) -> i32 {
    let bits = (v + 12_582_912.0).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// Scale and minimum `j` (0..8) of Q4_K's and Q5_K's 12-byte table (ggml's `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q3_K's sixteen 6-bit scales (still offset by 32) from its 12-byte table.
#[inline(always)]
pub(crate) fn q3k_scales(table: &[u8]) -> [i8; 16] {
    let mut s = [0i8; 16];
    for (j, s) in s.iter_mut().enumerate() {
        let low = if j < 8 { table[j] & 0xf } else { table[j - 8] >> 4 };
        let high = (table[8 + j % 4] >> (2 * (j / 4))) & 3;
        *s = (low | (high << 4)) as i8;
    }
    s
}

/// Puts 256 two-bit values into Q2_K's and Q3_K's `qs` order: byte `l` of each 32-byte group
/// holds elements `l`, `l + 32`, `l + 64`, `l + 96` of its 128.
fn pack_2bit(l: &[u8; QK_K], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] = l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// ggml's `make_qx_quants` for the weighting Q6_K uses (`rmse_type` 1: weights `x²`, no
/// importance matrix): a signed scale fitted by weighted least squares over 19 trial scales.
fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < 1e-15 {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let clamp = |l: i32| l.clamp(-nmax, nmax - 1);
    let fit = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let l = clamp(nearest_int(iscale * v)) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let assign = |iscale: f32, l_out: &mut [i8]| {
        for (o, &v) in l_out.iter_mut().zip(x) {
            *o = (nmax + clamp(nearest_int(iscale * v))) as i8;
        }
    };
    let iscale = -(nmax as f32) / max;
    assign(iscale, l_out);
    let (sumlx, suml2) = fit(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = fit(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            assign(iscale, l_out);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_q3_quants` with `do_rmse`: a signed scale refined by moving single values.
fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < 1e-15 {
        l_out.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    let mut l = [0i32; 16];
    for (i, &v) in x.iter().enumerate() {
        l[i] = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        let w = v * v;
        sumlx += w * v * l[i] as f32;
        suml2 += w * l[i] as f32 * l[i] as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for (i, &v) in x.iter().enumerate() {
            let w = v * v;
            let mut slx = sumlx - w * v * l[i] as f32;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * l[i] as f32 * l[i] as f32;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != l[i] {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for (o, &l) in l_out.iter_mut().zip(&l) {
        *o = (l + nmax) as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// ggml's `make_qkx2_quants`: an unsigned scale and a minimum (returned as `-min`, so
/// `x ≈ scale * l - min`) fitted by weighted least squares over `nstep + 1` trial scales.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.iter_mut().for_each(|l| *l = 0);
        return (0.0, -min);
    }
    let err = |d: f32| if use_mad { d.abs() } else { d * d };
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        best_error += weights[i] * err(scale * l as f32 + min - x[i]);
    }
    let mut aux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            aux[i] = l as u8;
            let (w, l) = (weights[i], l as f32);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                cur_error += weights[i] * err(this_scale * f32::from(aux[i]) + this_min - x[i]);
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&aux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Q4_K's and Q5_K's sub-block fit: scales and minimums of the eight sub-blocks of 32, packed
/// as 6-bit values into `table` under the super-block's `d` and `dmin`, then every value
/// re-quantized against the stored scales. Returns the values (0..=nmax) and `(d, dmin)`.
fn fit_k4(x: &[f32], nmax: i32, rmin: f32, nstep: i32, table: &mut [u8]) -> ([u8; QK_K], f32, f32) {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = xs.iter().fold(0.0, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0f32; 32];
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            rmin,
            0.1,
            nstep,
            false,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    table.iter_mut().for_each(|b| *b = 0);
    for j in 0..8 {
        // C stores `nearest_int` into a uint8_t (wrapping), then takes MIN(63, ..).
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            table[j] = ls;
            table[j + 4] = lm;
        } else {
            table[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            table[j - 4] |= (ls >> 4) << 6;
            table[j] |= (lm >> 4) << 6;
        }
    }
    let d = round_f16(max_scale / 63.0);
    let dmin = round_f16(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, table);
        let ds = d * f32::from(sc);
        if ds == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(m);
        for i in 0..32 {
            l[32 * j + i] = nearest_int((x[32 * j + i] + dm) / ds).clamp(0, nmax) as u8;
        }
    }
    (l, d, dmin)
}

impl Format for Q2K {
    const ID: u32 = 10;
    const ELEMS: usize = QK_K;
    const BYTES: usize = 84;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let (scales, qs) = (&b[..16], &b[16..80]);
        let (d, min) = (f16_at(b, 80), f16_at(b, 82));
        let mut y = 0;
        let mut is = 0;
        for n in 0..2 {
            let q = &qs[32 * n..32 * n + 32];
            for shift in [0, 2, 4, 6] {
                for half in [0, 16] {
                    let sc = scales[is];
                    is += 1;
                    let dl = d * f32::from(sc & 0xf);
                    let ml = min * f32::from(sc >> 4);
                    for l in 0..16 {
                        out[y] = dl * f32::from((q[l + half] >> shift) & 3) - ml;
                        y += 1;
                    }
                }
            }
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let mut l = [0u8; QK_K];
        let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            let mut weights = [0f32; 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            let (s, m) = make_qkx2_quants(3, xs, &weights, &mut l[16 * j..16 * j + 16], -0.5, 0.1, 15, true);
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        let table = &mut b[..16];
        if max_scale > 0.0 {
            let iscale = 15.0 / max_scale;
            for j in 0..16 {
                table[j] = nearest_int(iscale * scales[j]) as u8;
            }
        } else {
            table.iter_mut().for_each(|t| *t = 0);
        }
        let d = if max_scale > 0.0 { max_scale / 15.0 } else { 0.0 };
        if max_min > 0.0 {
            let iscale = 15.0 / max_min;
            for j in 0..16 {
                table[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
        }
        let dmin = if max_min > 0.0 { max_min / 15.0 } else { 0.0 };
        let (d, dmin) = (round_f16(d), round_f16(dmin));
        for j in 0..16 {
            let ds = d * f32::from(b[j] & 0xf);
            if ds == 0.0 {
                continue;
            }
            let dm = dmin * f32::from(b[j] >> 4);
            for i in 0..16 {
                l[16 * j + i] = nearest_int((x[16 * j + i] + dm) / ds).clamp(0, 3) as u8;
            }
        }
        pack_2bit(&l, &mut b[16..80]);
        put_f16(b, 80, d);
        put_f16(b, 82, dmin);
    }
}

impl Format for Q3K {
    const ID: u32 = 11;
    const ELEMS: usize = QK_K;
    const BYTES: usize = 110;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let (hm, qs) = (&b[..32], &b[32..96]);
        let scales = q3k_scales(&b[96..108]);
        let d_all = f16_at(b, 108);
        let mut y = 0;
        let mut is = 0;
        let mut m = 1u8;
        for n in 0..2 {
            let q = &qs[32 * n..32 * n + 32];
            for shift in [0, 2, 4, 6] {
                for half in [0, 16] {
                    let dl = d_all * f32::from(scales[is] - 32);
                    is += 1;
                    for l in 0..16 {
                        let high = if hm[l + half] & m != 0 { 0 } else { 4 };
                        out[y] = dl * f32::from(((q[l + half] >> shift) & 3) as i8 - high);
                        y += 1;
                    }
                }
                m <<= 1;
            }
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut amax) = (0f32, 0f32);
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        b[96..108].iter_mut().for_each(|t| *t = 0);
        let d = if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..16 {
                // C keeps `nearest_int` in an int8_t before clamping.
                let v = (nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32;
                let v = v as u8;
                if j < 8 {
                    b[96 + j] = v & 0xf;
                } else {
                    b[96 + j - 8] |= (v & 0xf) << 4;
                }
                b[96 + 8 + j % 4] |= (v >> 4) << (2 * (j / 4));
            }
            round_f16(1.0 / iscale)
        } else {
            0.0
        };
        let sc = q3k_scales(&b[96..108]);
        for j in 0..16 {
            let ds = d * f32::from(sc[j] - 32);
            if ds == 0.0 {
                continue;
            }
            for i in 0..16 {
                l[16 * j + i] = (nearest_int(x[16 * j + i] / ds).clamp(-4, 3) + 4) as i8;
            }
        }
        let mut hmask = [0u8; 32];
        let mut lu = [0u8; QK_K];
        for (j, (&v, u)) in l.iter().zip(lu.iter_mut()).enumerate() {
            // The high bit of element j goes to bit j / 32 of byte j % 32.
            let mut v = v as u8;
            if v > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                v -= 4;
            }
            *u = v;
        }
        b[..32].copy_from_slice(&hmask);
        pack_2bit(&lu, &mut b[32..96]);
        put_f16(b, 108, d);
    }
}

impl Format for Q4K {
    const ID: u32 = 12;
    const ELEMS: usize = QK_K;
    const BYTES: usize = 144;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let (d, min) = (f16_at(b, 0), f16_at(b, 2));
        let (table, qs) = (&b[4..16], &b[16..144]);
        for g in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * g, table);
            let (sc2, m2) = scale_min_k4(2 * g + 1, table);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            let q = &qs[32 * g..32 * g + 32];
            let o = &mut out[64 * g..64 * g + 64];
            for l in 0..32 {
                o[l] = d1 * f32::from(q[l] & 0xf) - m1;
                o[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
            }
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let (l, d, dmin) = fit_k4(x, 15, -1.0, 20, &mut b[4..16]);
        put_f16(b, 0, d);
        put_f16(b, 2, dmin);
        for g in 0..4 {
            for i in 0..32 {
                b[16 + 32 * g + i] = l[64 * g + i] | (l[64 * g + i + 32] << 4);
            }
        }
    }
}

impl Format for Q5K {
    const ID: u32 = 13;
    const ELEMS: usize = QK_K;
    const BYTES: usize = 176;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let (d, min) = (f16_at(b, 0), f16_at(b, 2));
        let (table, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
        let (mut u1, mut u2) = (1u8, 2u8);
        for g in 0..4 {
            let (sc1, m1) = scale_min_k4(2 * g, table);
            let (sc2, m2) = scale_min_k4(2 * g + 1, table);
            let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
            let q = &qs[32 * g..32 * g + 32];
            let o = &mut out[64 * g..64 * g + 64];
            for l in 0..32 {
                let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
                o[l] = d1 * f32::from((q[l] & 0xf) + h1) - m1;
                o[l + 32] = d2 * f32::from((q[l] >> 4) + h2) - m2;
            }
            u1 <<= 2;
            u2 <<= 2;
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let (l, d, dmin) = fit_k4(x, 31, -0.5, 15, &mut b[4..16]);
        put_f16(b, 0, d);
        put_f16(b, 2, dmin);
        let mut qh = [0u8; 32];
        let (mut m1, mut m2) = (1u8, 2u8);
        for g in 0..4 {
            for j in 0..32 {
                let (mut l1, mut l2) = (l[64 * g + j], l[64 * g + j + 32]);
                if l1 > 15 {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if l2 > 15 {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                b[48 + 32 * g + j] = l1 | (l2 << 4);
            }
            m1 <<= 2;
            m2 <<= 2;
        }
        b[16..48].copy_from_slice(&qh);
    }
}

impl Format for Q6K {
    const ID: u32 = 14;
    const ELEMS: usize = QK_K;
    const BYTES: usize = 210;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let d = f16_at(b, 208);
        for n in 0..2 {
            let ql = &b[64 * n..64 * n + 64];
            let qh = &b[128 + 32 * n..128 + 32 * n + 32];
            let sc = &b[192 + 8 * n..192 + 8 * n + 8];
            let o = &mut out[128 * n..128 * n + 128];
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i8 - 32;
                let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                o[l] = d * f32::from(sc[is] as i8) * f32::from(q1);
                o[l + 32] = d * f32::from(sc[is + 2] as i8) * f32::from(q2);
                o[l + 64] = d * f32::from(sc[is + 4] as i8) * f32::from(q3);
                o[l + 96] = d * f32::from(sc[is + 6] as i8) * f32::from(q4);
            }
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut max_abs) = (0f32, 0f32);
        for j in 0..16 {
            scales[j] = make_qx_quants(32, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            if scales[j].abs() > max_abs {
                max_abs = scales[j].abs();
                max_scale = scales[j];
            }
        }
        if max_abs < 1e-15 {
            b.iter_mut().for_each(|v| *v = 0);
            return;
        }
        let iscale = -128.0 / max_scale;
        let d = round_f16(1.0 / iscale);
        put_f16(b, 208, 1.0 / iscale);
        for j in 0..16 {
            b[192 + j] = nearest_int(iscale * scales[j]).min(127) as i8 as u8;
        }
        for j in 0..16 {
            let ds = d * f32::from(b[192 + j] as i8);
            if ds == 0.0 {
                continue;
            }
            for i in 0..16 {
                l[16 * j + i] = (nearest_int(x[16 * j + i] / ds).clamp(-32, 31) + 32) as i8;
            }
        }
        for n in 0..2 {
            for i in 0..32 {
                let v = |k: usize| l[128 * n + i + 32 * k] as u8;
                b[64 * n + i] = (v(0) & 0xf) | ((v(2) & 0xf) << 4);
                b[64 * n + i + 32] = (v(1) & 0xf) | ((v(3) & 0xf) << 4);
                b[128 + 32 * n + i] =
                    (v(0) >> 4) | ((v(1) >> 4) << 2) | ((v(2) >> 4) << 4) | ((v(3) >> 4) << 6);
            }
        }
    }
}

impl Format for Q8K {
    const ID: u32 = 15;
    const ELEMS: usize = QK_K;
    const BYTES: usize = 292;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        for (o, &q) in out.iter_mut().zip(&b[4..260]) {
            *o = d * f32::from(q as i8);
        }
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        let (mut max, mut amax) = (0f32, 0f32);
        for &v in x {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        b.iter_mut().for_each(|v| *v = 0);
        if amax == 0.0 {
            return;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b[4..260].iter_mut().zip(x) {
            *q = nearest_int(iscale * v).min(127) as i8 as u8;
        }
        for j in 0..16 {
            let sum: i32 = b[4 + 16 * j..4 + 16 * j + 16]
                .iter()
                .map(|&q| i32::from(q as i8))
                .sum();
            b[260 + 2 * j..262 + 2 * j].copy_from_slice(&(sum as i16).to_le_bytes());
        }
        b[..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}
