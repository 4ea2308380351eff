//! AVX2 versions of the dot products, chosen at run time. Same lanes, same operations and the
//! same order as [`super::scalar::dot`], so the results are identical.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{hsum4, hsum8, QRow, RowsKernel, RowsKernel4, WeightType, BLOCK};

pub(crate) fn rows_kernel(ty: WeightType) -> Option<RowsKernel> {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")) {
        return None;
    }
    Some(match ty {
        WeightType::Q4_0 => |w, rb, x, o| unsafe { rows_q4_0_avx2::<1>(w, rb, &[*x], o, 0) },
        WeightType::Q4_1 => |w, rb, x, o| unsafe { rows_avx2::<1>(w, rb, x, o) },
        WeightType::Q5_0 => |w, rb, x, o| unsafe { rows_avx2::<2>(w, rb, x, o) },
        WeightType::Q5_1 => |w, rb, x, o| unsafe { rows_avx2::<3>(w, rb, x, o) },
        WeightType::Q8_0 => |w, rb, x, o| unsafe { rows_avx2::<4>(w, rb, x, o) },
    })
}

pub(crate) fn rows_kernel4(ty: WeightType) -> Option<RowsKernel4> {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")) {
        return None;
    }
    Some(match ty {
        WeightType::Q4_0 => |w, rb, xs, o, s| unsafe { rows_q4_0_avx2::<4>(w, rb, xs, o, s) },
        WeightType::Q4_1 => |w, rb, xs, o, s| unsafe { rows4_avx2::<1>(w, rb, xs, o, s) },
        WeightType::Q5_0 => |w, rb, xs, o, s| unsafe { rows4_avx2::<2>(w, rb, xs, o, s) },
        WeightType::Q5_1 => |w, rb, xs, o, s| unsafe { rows4_avx2::<3>(w, rb, xs, o, s) },
        WeightType::Q8_0 => |w, rb, xs, o, s| unsafe { rows4_avx2::<4>(w, rb, xs, o, s) },
    })
}

const fn block_bytes(ty: u8) -> usize {
    match ty {
        0 => 18,
        1 => 20,
        2 => 22,
        3 => 24,
        _ => 34,
    }
}

/// f16 at `p` to f32 (exact, as the scalar conversion).
#[inline(always)]
unsafe fn f16(p: *const u8) -> f32 {
    let bits = u16::from_le_bytes([*p, *p.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// Expands the 32 bits of `qh` to bytes: byte `i` is 0x10 when bit `i` is set, else 0.
#[inline(always)]
unsafe fn high_bits(qh: u32) -> __m256i {
    let v = _mm256_set1_epi32(qh as i32);
    // Byte i takes the byte of qh that holds bit i.
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
    );
    let bytes = _mm256_shuffle_epi8(v, shuf);
    let mask = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, mask), mask);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// The 32 weights of a 4-bit block as bytes 0..=15, low nibbles first.
#[inline(always)]
unsafe fn nibbles(qs: *const u8) -> __m256i {
    let raw = _mm_loadu_si128(qs as *const __m128i);
    let lo = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
    let hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f));
    _mm256_set_m128i(hi, lo)
}

/// The 32 weights of a block as bytes, and whether they are signed (the `_0` types and Q8_0,
/// offset applied) or unsigned (the `_1` types).
#[inline(always)]
unsafe fn block_weights<const TY: u8>(blk: *const u8) -> (__m256i, bool) {
    match TY {
        0 => (_mm256_sub_epi8(nibbles(blk.add(2)), _mm256_set1_epi8(8)), true),
        1 => (nibbles(blk.add(4)), false),
        2 => {
            let qh = u32::from_le_bytes([*blk.add(2), *blk.add(3), *blk.add(4), *blk.add(5)]);
            let v = _mm256_or_si256(nibbles(blk.add(6)), high_bits(qh));
            (_mm256_sub_epi8(v, _mm256_set1_epi8(16)), true)
        }
        3 => {
            let qh = u32::from_le_bytes([*blk.add(4), *blk.add(5), *blk.add(6), *blk.add(7)]);
            (_mm256_or_si256(nibbles(blk.add(8)), high_bits(qh)), false)
        }
        _ => (_mm256_loadu_si256(blk.add(2) as *const __m256i), true),
    }
}

/// Lane sums (as floats, exact) of one block's weights `w` ([`block_weights`]) against
/// activations `q`: lane `l` is the sum of the products of elements `4l..4l+4`.
#[inline(always)]
unsafe fn block_lanes((w, signed): (__m256i, bool), q: __m256i) -> __m256 {
    // maddubs multiplies unsigned by signed bytes: move the weights' signs onto q. No pair sum
    // can saturate 16 bits (|w| <= 128, |q| <= 127).
    let pairs = if signed {
        _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(q, w))
    } else {
        _mm256_maddubs_epi16(w, q)
    };
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

/// `TY`: 1 = Q4_1, 2 = Q5_0, 3 = Q5_1, 4 = Q8_0 (Q4_0 sums whole blocks: [`rows_q4_0_avx2`]).
///
/// One weight row at a time, its blocks in order, so the matrix is read strictly in address
/// order. Why not several rows at once (which shares each activation load): decode reads each
/// weight once, and interleaving four rows read memory at about half the sequential rate, so
/// decode was twice as slow (docs/performance.md); the wasm kernels walk one row at a time too.
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows_avx2<const TY: u8>(w: &[u8], row_bytes: usize, x: &QRow<'_>, out: &mut [f32]) {
    let bb = block_bytes(TY);
    let nb = x.d.len();
    let rows = out.len();
    assert!(
        row_bytes == nb * bb && w.len() >= rows * row_bytes && x.qs.len() >= nb * BLOCK && x.s.len() >= nb
    );
    let has_min = TY == 1 || TY == 3;
    for (r, o) in out.iter_mut().enumerate() {
        let base = w.as_ptr().add(r * row_bytes);
        let mut acc = _mm256_setzero_ps();
        let mut summs = 0f32;
        for b in 0..nb {
            let q = _mm256_loadu_si256(x.qs.as_ptr().add(b * BLOCK) as *const __m256i);
            let blk = base.add(b * bb);
            let lanes = block_lanes(block_weights::<TY>(blk), q);
            let dd = _mm256_set1_ps(f16(blk) * *x.d.get_unchecked(b));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(dd, lanes));
            if has_min {
                summs += f16(blk.add(2)) * *x.s.get_unchecked(b);
            }
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        *o = hsum8(lanes) + summs;
    }
}

/// [`rows_avx2`] for four activation rows (a prefill): each weight block is unpacked once and
/// multiplied into the four, each pair of rows accumulating exactly as `rows_avx2` does, so the
/// bits are its. The weights are still read one row at a time, in address order.
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows4_avx2<const TY: u8>(
    w: &[u8],
    row_bytes: usize,
    xs: &[QRow<'_>; 4],
    out: &mut [f32],
    stride: usize,
) {
    let bb = block_bytes(TY);
    let nb = xs[0].d.len();
    assert!(row_bytes == nb * bb);
    for x in xs {
        assert!(x.d.len() == nb && x.qs.len() >= nb * BLOCK && x.s.len() >= nb);
    }
    let rows = w.len() / row_bytes;
    assert!(rows == 0 || out.len() >= 3 * stride + rows);
    let has_min = TY == 1 || TY == 3;
    for j in 0..rows {
        let base = w.as_ptr().add(j * row_bytes);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut summs = [0f32; 4];
        for b in 0..nb {
            let blk = base.add(b * bb);
            let wv = block_weights::<TY>(blk);
            let (dw, mw) = (f16(blk), if has_min { f16(blk.add(2)) } else { 0.0 });
            for r in 0..4 {
                let x = &xs[r];
                let q = _mm256_loadu_si256(x.qs.as_ptr().add(b * BLOCK) as *const __m256i);
                let lanes = block_lanes(wv, q);
                let dd = _mm256_set1_ps(dw * *x.d.get_unchecked(b));
                acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(dd, lanes));
                if has_min {
                    summs[r] += mw * *x.s.get_unchecked(b);
                }
            }
        }
        for r in 0..4 {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r]);
            out[r * stride + j] = hsum8(lanes) + summs[r];
        }
    }
}

/// Q4_0 rows against `N` activation rows (`out[r * stride + j]` for activation row `r` and
/// weight row `j`), each block summed whole as Q4_0's definition does
/// ([`super::scalar::dot_whole_blocks`]): four blocks' integer sums gathered into one vector
/// (lane `k`: block `b + k`) and scaled, converted, multiplied and added at once, lane `k`
/// being accumulator `(b + k) % 4`. Exact integers, and every float operation the definition's.
///
/// Natively this is a little slower than the eight-lane kernel was (256-bit registers already
/// held a block's eight lanes in one); the definition serves the browser, where it is faster.
#[target_feature(enable = "avx2,f16c")]
unsafe fn rows_q4_0_avx2<const N: usize>(
    w: &[u8],
    row_bytes: usize,
    xs: &[QRow<'_>; N],
    out: &mut [f32],
    stride: usize,
) {
    let bb = block_bytes(0);
    let nb = xs[0].d.len();
    assert!(N > 0 && row_bytes == nb * bb);
    for x in xs {
        assert!(x.d.len() == nb && x.qs.len() >= nb * BLOCK);
    }
    let rows = w.len() / row_bytes;
    assert!(rows == 0 || out.len() >= (N - 1) * stride + rows);
    // A block's products with activation block `q` in eight i32 lanes; as in `block_lanes`,
    // no pair sum saturates 16 bits (|w| <= 8, |q| <= 127).
    let lanes8 = |(wv, aw): (__m256i, __m256i), q: *const i8| {
        let q = _mm256_loadu_si256(q as *const __m256i);
        _mm256_madd_epi16(
            _mm256_maddubs_epi16(aw, _mm256_sign_epi8(q, wv)),
            _mm256_set1_epi16(1),
        )
    };
    let halves = |l: __m256i| _mm_add_epi32(_mm256_castsi256_si128(l), _mm256_extracti128_si256::<1>(l));
    let weights = |blk: *const u8| {
        let (wv, _) = block_weights::<0>(blk);
        (wv, _mm256_sign_epi8(wv, wv))
    };
    for j in 0..rows {
        let base = w.as_ptr().add(j * row_bytes);
        let mut acc = [_mm_setzero_ps(); N];
        let mut b = 0;
        while b + 4 <= nb {
            let wk: [_; 4] = std::array::from_fn(|k| weights(base.add((b + k) * bb)));
            let t: [[__m256i; 4]; N] = std::array::from_fn(|r| {
                std::array::from_fn(|k| lanes8(wk[k], xs[r].qs.as_ptr().add((b + k) * BLOCK)))
            });
            // The four blocks' f16 scales, widened together (exact).
            let at = |k: usize| (base.add((b + k) * bb) as *const i16).read_unaligned();
            let dw = _mm_cvtph_ps(_mm_setr_epi16(at(0), at(1), at(2), at(3), 0, 0, 0, 0));
            for r in 0..N {
                let t = &t[r];
                // Per 128-bit half: lane k holds block b + k's half sum; the halves add up.
                let sums = halves(_mm256_hadd_epi32(
                    _mm256_hadd_epi32(t[0], t[1]),
                    _mm256_hadd_epi32(t[2], t[3]),
                ));
                let dd = _mm_mul_ps(dw, _mm_loadu_ps(xs[r].d.as_ptr().add(b)));
                acc[r] = _mm_add_ps(acc[r], _mm_mul_ps(dd, _mm_cvtepi32_ps(sums)));
            }
            b += 4;
        }
        let mut a = [[0f32; 4]; N];
        for r in 0..N {
            _mm_storeu_ps(a[r].as_mut_ptr(), acc[r]);
        }
        while b < nb {
            let blk = base.add(b * bb);
            let wk = weights(blk);
            let dw = f16(blk);
            for r in 0..N {
                let h = halves(lanes8(wk, xs[r].qs.as_ptr().add(b * BLOCK)));
                let h = _mm_add_epi32(h, _mm_shuffle_epi32::<0b01_00_11_10>(h));
                let h = _mm_add_epi32(h, _mm_shuffle_epi32::<0b10_11_00_01>(h));
                a[r][b % 4] += (dw * *xs[r].d.get_unchecked(b)) * _mm_cvtsi128_si32(h) as f32;
            }
            b += 1;
        }
        for r in 0..N {
            out[r * stride + j] = hsum4(a[r]);
        }
    }
}

/// Whether the fused f16 attention kernels below can run.
pub(crate) fn has_f16_attention() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")
}

/// The AVX2 + F16C fused f16 attention kernels ([`super::attention::FusedF16`]): each cached
/// row is widened eight values per instruction (`vcvtph2ps`, exact, NaNs quieted as
/// [`super::f16_to_f32`] does) and multiplied into every head of the group, the scores in the
/// eight lanes of [`super::ops::dot8`] and its lane tree, the weighted values in position
/// order, so the bits are the plain loops'.
pub(crate) struct Avx2F16c;

impl super::attention::FusedF16 for Avx2F16c {
    /// # Safety
    /// The CPU must have AVX2 and F16C ([`has_f16_attention`]).
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

    /// # Safety
    /// As `scores`.
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

#[target_feature(enable = "avx2,f16c")]
unsafe fn scores_g<const G: usize>(
    keys: &[u8],
    hd: usize,
    q: &[f32],
    scale: f32,
    out: &mut [f32],
    stride: usize,
) {
    let count = keys.len() / (2 * hd);
    assert!(hd.is_multiple_of(8) && q.len() >= G * hd);
    assert!(count == 0 || out.len() >= (G - 1) * stride + count);
    for (i, row) in keys.chunks_exact(2 * hd).enumerate() {
        let mut acc = [_mm256_setzero_ps(); G];
        for c in 0..hd / 8 {
            // SAFETY: the row holds `hd` f16 values and each head of `q` `hd` f32 (checked
            // above); `c < hd / 8`.
            let k = _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(16 * c) as *const __m128i));
            for (j, a) in acc.iter_mut().enumerate() {
                let qj = _mm256_loadu_ps(q.as_ptr().add(j * hd + 8 * c));
                *a = _mm256_add_ps(*a, _mm256_mul_ps(qj, k));
            }
        }
        for (j, a) in acc.iter().enumerate() {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), *a);
            // `+ 0.0`: `dot8`'s (empty) tail, which turns a -0 sum into +0 as it does.
            out[j * stride + i] = (hsum8(lanes) + 0.0) * scale;
        }
    }
}

#[target_feature(enable = "avx2,f16c")]
unsafe fn weighted_g<const G: usize>(
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
    let a = acc.as_mut_ptr();
    for c in dims.start / 8..dims.end / 8 {
        let at = 8 * c - dims.start;
        // SAFETY (the pointer reads and writes): `acc` holds `G * w` values, `at + 8 <= w`, and
        // `p` every `j * stride + i` read (checked above); each value row holds `hd` f16
        // values and `8 * c + 8 <= hd`.
        let mut sums = [_mm256_setzero_ps(); G];
        for (j, sum) in sums.iter_mut().enumerate() {
            *sum = _mm256_loadu_ps(a.add(j * w + at));
        }
        for i in 0..count {
            let v = _mm256_cvtph_ps(_mm_loadu_si128(
                values.as_ptr().add(i * 2 * hd + 16 * c) as *const __m128i
            ));
            for (j, sum) in sums.iter_mut().enumerate() {
                let w = _mm256_set1_ps(*p.get_unchecked(j * stride + i));
                *sum = _mm256_add_ps(*sum, _mm256_mul_ps(w, v));
            }
        }
        for (j, sum) in sums.iter().enumerate() {
            _mm256_storeu_ps(a.add(j * w + at), *sum);
        }
    }
}

/// [`super::ops::softmax_f16`] eight lanes at a time (as the wasm version takes four): the
/// maximum, [`expf8`], the scaling and the f16 rounding in vectors with the scalar definition's
/// operations; the f64 sum one term at a time, in index order.
///
/// # Safety
/// The CPU must have AVX2 and F16C ([`has_f16_attention`]).
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn softmax_f16(x: &mut [f32]) {
    let vn = x.len() / 8 * 8;
    // `max_ps(v, m)` returns `m` when `v` is NaN: NaNs are skipped, as `f32::max` skips them,
    // and `m` starts at -inf, so it never holds one.
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in x[..vn].chunks_exact(8) {
        m = _mm256_max_ps(_mm256_loadu_ps(c.as_ptr()), m);
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), m);
    let max = lanes
        .into_iter()
        .chain(x[vn..].iter().copied())
        .fold(f32::NEG_INFINITY, f32::max);
    let mv = _mm256_set1_ps(max);
    let mut sum = 0f64;
    for c in x[..vn].chunks_exact_mut(8) {
        let e = expf8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), mv));
        _mm256_storeu_ps(c.as_mut_ptr(), e);
        for &v in c.iter() {
            sum += f64::from(v);
        }
    }
    for v in &mut x[vn..] {
        *v = super::ops::expf(*v - max);
        sum += f64::from(*v);
    }
    let inv = (1.0 / sum) as f32;
    let iv = _mm256_set1_ps(inv);
    for c in x[..vn].chunks_exact_mut(8) {
        let p = _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), iv);
        // `vcvtps2ph` rounds to nearest, ties to even, overflowing to infinity: `half`'s
        // conversion (NaNs stay NaNs).
        let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(p);
        _mm256_storeu_ps(c.as_mut_ptr(), _mm256_cvtph_ps(h));
    }
    for v in &mut x[vn..] {
        *v = super::ops::round_f16(*v * inv);
    }
}

/// [`super::ops::expf`] on eight lanes: the same operations in the same order (no fused
/// multiply-adds), and the same results for NaN, large and very negative inputs, selected
/// after.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn expf8(x: __m256) -> __m256 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let n = _mm256_floor_ps(_mm256_add_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _mm256_set1_ps(0.5),
    ));
    let r = _mm256_sub_ps(
        _mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(LN2_HI))),
        _mm256_mul_ps(n, _mm256_set1_ps(LN2_LO)),
    );
    let mut p = _mm256_set1_ps(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm256_add_ps(_mm256_set1_ps(c), _mm256_mul_ps(r, p));
    }
    // Out of range (the special inputs below) the integer is 0x80000000 and the factors are
    // garbage; those lanes are replaced.
    let n = _mm256_cvttps_epi32(n);
    let big = _mm256_cmpgt_epi32(n, _mm256_set1_epi32(127));
    let small = _mm256_cmpgt_epi32(_mm256_set1_epi32(-126), n);
    let n1 = _mm256_blendv_epi8(
        _mm256_blendv_epi8(n, _mm256_add_epi32(n, _mm256_set1_epi32(64)), small),
        _mm256_set1_epi32(127),
        big,
    );
    let n2 = _mm256_blendv_epi8(
        _mm256_and_si256(_mm256_set1_epi32(-64), small),
        _mm256_sub_epi32(n, _mm256_set1_epi32(127)),
        big,
    );
    let bias = _mm256_set1_epi32(127);
    let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
    let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
    let e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    let e = _mm256_blendv_ps(
        e,
        _mm256_set1_ps(f32::INFINITY),
        _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(88.722_83)),
    );
    let e = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-103.972_08)), e);
    _mm256_blendv_ps(e, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
}
