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

/// LayerNorm of each `width`-long row of `x` into `out`: the mean, then the mean square of the
/// centred values, each summed in f64 in index order; then `((x - mean) * (1 / sqrt(var +
/// eps))) * w + b` in f32 (llama.cpp's order of operations).
pub fn layer_norm(x: &[f32], weight: &[f32], bias: Option<&[f32]>, eps: f32, out: &mut [f32]) {
    let width = weight.len();
    for (row, o) in x.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
        let mean = (sum / width as f64) as f32;
        let mut sq = 0f64;
        for &v in row {
            let c = v - mean;
            sq += f64::from(c * c);
        }
        let var = (sq / width as f64) as f32;
        let scale = 1.0 / (var + eps).sqrt();
        for (i, (o, &v)) in o.iter_mut().zip(row).enumerate() {
            let y = ((v - mean) * scale) * weight[i];
            *o = match bias {
                Some(b) => y + b[i],
                None => y,
            };
        }
    }
}

/// `tanh(x)` from [`expf`]: `(1 - e^-2|x|) / (1 + e^-2|x|)` with the sign of `x`. Within a few
/// ulp where it matters here (GELU's table is rounded to f16; soft-capping scales it).
pub fn tanh(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let t = expf(-2.0 * x.abs());
    let r = (1.0 - t) / (1.0 + t);
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// GELU with the tanh approximation, as ggml defines it in f32.
fn gelu_f32(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const GELU_COEF_A: f32 = 0.044_715;
    0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)))
}

/// GELU of every f16 value, rounded to f16 (ggml's `ggml_table_gelu_f16`).
fn gelu_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|h| f16::from_f32(gelu_f32(super::f16_to_f32(h))).to_bits())
            .collect()
    })
}

/// GELU as llama.cpp's CPU computes it: 0 at or below -10, the identity at or above 10, and in
/// between the tanh approximation looked up for `x` rounded to f16 (so the result has f16
/// precision).
#[inline]
pub fn gelu(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        super::f16_to_f32(gelu_table()[usize::from(f16::from_f32(x).to_bits())])
    }
}

/// `gelu(gate) * up`, elementwise, into `gate` (GeGLU, Gemma's feed-forward).
pub fn gelu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = gelu(*g) * u;
    }
}

/// `gelu(x)` in place (Falcon's feed-forward).
pub fn gelu_in_place(x: &mut [f32]) {
    for v in x {
        *v = gelu(*v);
    }
}

/// Soft-capping: `cap * tanh(x / cap)`, in place.
pub fn softcap(x: &mut [f32], cap: f32) {
    for v in x {
        *v = cap * tanh(*v / cap);
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
    fn tanh_and_gelu_are_accurate() {
        let mut worst = 0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            let t = f64::from(tanh(x));
            worst = worst.max((t - f64::from(x).tanh()).abs());
            x += 0.000_7;
        }
        assert!(worst < 4e-7, "tanh error {worst:e}");
        assert_eq!(gelu(-20.0), 0.0);
        assert_eq!(gelu(20.0), 20.0);
        assert_eq!(gelu(0.0), 0.0);
        // gelu(1) = 0.841192 (tanh form), to f16 precision.
        assert!((gelu(1.0) - 0.841_192).abs() < 5e-4, "{}", gelu(1.0));
        let mut g = [1.0f32, -20.0];
        gelu_mul(&mut g, &[2.0, 5.0]);
        assert_eq!(g, [gelu(1.0) * 2.0, 0.0]);
        let mut c = [100.0f32, -0.5];
        softcap(&mut c, 30.0);
        assert!((c[0] - 30.0 * (100.0f32 / 30.0).tanh()).abs() < 1e-4 && (c[1] + 0.5).abs() < 1e-3);
    }

    #[test]
    fn rope_rotates_pairs() {
        let mut x = [1.0, 0.0];
        rope(&mut x, 1, 2, 0, &[0.0], &[1.0]);
        assert_eq!(x, [0.0, 1.0]);
    }
}
