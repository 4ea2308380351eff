//! The non-matrix operations of a forward pass, each with one defined arithmetic so that native
//! and wasm builds agree bit for bit: no libm calls on the hot path (its `expf` differs between
//! glibc and Rust's wasm libm), fixed summation orders, and no fused multiply-adds except where
//! the definition says so.

use half::f16;

/// `e^x` in f32 with a fixed sequence of IEEE operations (range reduction by `ln 2`, a degree-6
/// polynomial, and an exponent built from bits): within 2 ulp of the true value and the same
/// on every platform.
#[inline]
pub fn expf(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x > 88.72283 {
        return f32::INFINITY;
    }
    if x < -103.97208 {
        return 0.0;
    }
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let n = (x * LOG2E + 0.5).floor();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor terms up to r^6 / 720 for |r| <= ln2 / 2.
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let n = n as i32;
    // 2^n as two normal factors, so results near overflow (n = 128) and subnormal results
    // (n < -126) are formed exactly.
    let (n1, n2) = if n > 127 {
        (127, n - 127)
    } else if n < -126 {
        (n + 64, -64)
    } else {
        (n, 0)
    };
    let scale1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let scale2 = f32::from_bits(((n2 + 127) as u32) << 23);
    p * scale1 * scale2
}

/// Rounds to f16 precision (the key/value cache's storage type).
#[inline(always)]
pub fn round_f16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// RMS normalisation of each `width`-long row of `x` into `out`, times `weight`: the mean
/// square is summed in f64 in index order, then `x * (1 / sqrt(mean + eps)) * w` in f32.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let width = weight.len();
    for (row, o) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let mut sum = 0f64;
        for &v in row {
            sum += f64::from(v * v);
        }
        let mean = (sum / width as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &w) in o.iter_mut().zip(row).zip(weight) {
            *o = (v * scale) * w;
        }
    }
}

/// `silu(gate) * up`, elementwise, into `gate`.
pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let s = *g / (1.0 + expf(-*g));
        *g = s * u;
    }
}

/// Rotates adjacent pairs of every head of `x` (rows of `heads * head_dim`) by the angles for
/// positions `pos..`: `(a, b) -> (a cos - b sin, a sin + b cos)`.
pub fn rope(x: &mut [f32], heads: usize, head_dim: usize, pos: usize, cos: &[f32], sin: &[f32]) {
    let half = head_dim / 2;
    for (i, row) in x.chunks_exact_mut(heads * head_dim).enumerate() {
        let c = &cos[(pos + i) * half..(pos + i + 1) * half];
        let s = &sin[(pos + i) * half..(pos + i + 1) * half];
        for head in row.chunks_exact_mut(head_dim) {
            for j in 0..half {
                let (a, b) = (head[2 * j], head[2 * j + 1]);
                head[2 * j] = a * c[j] - b * s[j];
                head[2 * j + 1] = a * s[j] + b * c[j];
            }
        }
    }
}

/// Sum of products of two equally long f32 slices in eight lanes (lane `l` takes indices
/// `l, l + 8, ...`), then the fixed lane tree. Inputs here are f16-rounded, so every product is
/// exact and only the additions round.
#[inline]
pub fn dot8(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if a.len() == b.len() && a.len().is_multiple_of(8) {
        return super::wasm::dot8(a, b);
    }
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut tail = 0f32;
    for i in chunks * 8..a.len() {
        tail += a[i] * b[i];
    }
    super::hsum8(acc) + tail
}

/// [`softmax`], then each weight rounded to f16 precision ([`round_f16`]): the attention's
/// weights, which multiply the values as f16.
///
/// In wasm the whole of it but the f64 sum runs four lanes at a time
/// (`wasm::softmax_f16`, the same operations, so the same bits): at a long context it was a
/// sixth of a decode step as scalar code, `half`'s software rounding included. With AVX2 and
/// F16C it runs eight at a time (`x86::softmax_f16`).
pub fn softmax_f16(x: &mut [f32]) {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        super::wasm::softmax_f16(x);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::x86::has_f16_attention() {
        // SAFETY: the CPU has AVX2 and F16C.
        unsafe { super::x86::softmax_f16(x) };
        return;
    }
    #[allow(unreachable_code)]
    {
        softmax(x);
        x.iter_mut().for_each(|p| *p = round_f16(*p));
    }
}

/// Softmax of `x` in place: `e^(x - max)` with [`expf`], summed in f64 in index order, each
/// term then scaled by the f32 reciprocal of the sum.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = expf(*v - max);
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expf_is_accurate() {
        let mut worst = 0f64;
        let mut x = -103.0f32;
        while x < 88.0 {
            let ours = f64::from(expf(x));
            let exact = f64::from(x).exp();
            if exact > 1e-37 {
                worst = worst.max(((ours - exact) / exact).abs());
            }
            x += 0.001_3;
        }
        assert!(worst < 4.0 * f64::from(f32::EPSILON), "relative error {worst:e}");
        assert_eq!(expf(0.0), 1.0);
        assert_eq!(expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(expf(100.0), f32::INFINITY);
        assert!(expf(-100.0) > 0.0, "subnormal results are kept");
    }

    #[test]
    fn softmax_and_norm() {
        let mut x = [1.0, 2.0, 3.0];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[2] > x[1] && x[1] > x[0]);
        let mut out = [0f32; 4];
        rms_norm(&[2.0, 2.0, 2.0, 2.0], &[1.0, 1.0, 0.5, 1.0], 0.0, &mut out);
        assert_eq!(out, [1.0, 1.0, 0.5, 1.0]);
    }

    #[test]
    fn rope_rotates_pairs() {
        let mut x = [1.0, 0.0];
        rope(&mut x, 1, 2, 0, &[0.0], &[1.0]);
        assert_eq!(x, [0.0, 1.0]);
    }
}
