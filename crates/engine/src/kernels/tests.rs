//! Kernel tests: the platform's kernels equal the scalar definition bit for bit, their
//! unpacking agrees with the block formats' dequantizers, and products are close to exact f32
//! arithmetic. They run natively and
//! as wasm (simd128) in headless Chromium, so both platforms' kernels are checked.

use super::*;
use crate::sampling::Rng;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const TYPES: [(WeightType, &str); 5] = [
    (WeightType::Q4_0, "Q4_0"),
    (WeightType::Q4_1, "Q4_1"),
    (WeightType::Q5_0, "Q5_0"),
    (WeightType::Q5_1, "Q5_1"),
    (WeightType::Q8_0, "Q8_0"),
];

fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (r.next_f32() * 2.0 - 1.0) * scale).collect()
}

/// Quantizes with the block format's reference quantizer.
fn quantized_matrix(ty: WeightType, name: &str, rows: usize, cols: usize, w: &[f32]) -> QMatrix {
    let gt = crate::gguf::GgmlType::from_name(name).unwrap();
    let data = crate::fixtures::encode_tensor(w, gt);
    QMatrix::new(ty, rows, cols, data).unwrap()
}

#[test]
fn platform_kernels_equal_the_definition() {
    for (ty, name) in TYPES {
        for (k, seed) in [(32, 1), (576, 2), (1536, 3)] {
            let rows = 7;
            let mut w = random(rows * k, seed, 1.0);
            // Extreme and degenerate blocks.
            w[..32].iter_mut().for_each(|v| *v = 0.0);
            if k > 64 {
                w[32] = 1000.0;
                w[64..96].iter_mut().for_each(|v| *v = -1.0);
            }
            let m = quantized_matrix(ty, name, rows, k, &w);
            let mut x = random(3 * k, seed + 10, 4.0);
            x[..32].iter_mut().for_each(|v| *v = 0.0);
            let mut q = QActivations::default();
            q.quantize(&x, 3, k);
            let fast = rows_kernel(ty, false);
            let row_bytes = k / BLOCK * ty.block_bytes();
            for i in 0..3 {
                let mut got = vec![0f32; rows];
                fast(m.data(), row_bytes, &q.row(i), &mut got);
                for (j, b) in got.iter().enumerate() {
                    let a = scalar::dot(ty, m.row(j), &q.row(i));
                    assert_eq!(a.to_bits(), b.to_bits(), "{name} k={k} row {j} x {i}: {a} vs {b}");
                }
            }
        }
    }
}

/// The kernels' unpacking (`scalar::unpack`) and the block formats' dequantizers (`quant`)
/// are written separately; they must read every block alike.
#[test]
fn dequantization_matches_the_block_formats() {
    for (ty, name) in TYPES {
        let (rows, cols) = (3, 64);
        let w = random(rows * cols, 5, 2.0);
        let m = quantized_matrix(ty, name, rows, cols, &w);
        let gt = crate::gguf::GgmlType::from_name(name).unwrap();
        let reference = crate::weights::dequantize("t", gt, m.data(), rows * cols).unwrap();
        let mut out = vec![0f32; cols];
        for r in 0..rows {
            m.dequantize_row(r, &mut out);
            assert_eq!(out, reference[r * cols..(r + 1) * cols], "{name} row {r}");
        }
    }
}

#[test]
fn products_are_close_to_float_arithmetic() {
    for (ty, name) in TYPES {
        let (rows, cols, m_rows) = (16, 256, 2);
        let w = random(rows * cols, 9, 1.0);
        let mat = quantized_matrix(ty, name, rows, cols, &w);
        let x = random(m_rows * cols, 11, 1.0);
        let mut q = QActivations::default();
        q.quantize(&x, m_rows, cols);
        let mut out = vec![0f32; m_rows * rows];
        mat.matmul(&q, &mut out);
        let mut deq = vec![0f32; cols];
        for j in 0..rows {
            mat.dequantize_row(j, &mut deq);
            for i in 0..m_rows {
                let exact: f32 = deq
                    .iter()
                    .zip(&x[i * cols..(i + 1) * cols])
                    .map(|(a, b)| a * b)
                    .sum();
                let got = out[i * rows + j];
                // Only the activation rounding to 8 bits separates the two.
                assert!(
                    (got - exact).abs() < 0.05 * (1.0 + exact.abs()),
                    "{name}: {got} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn quantization_rounds_half_to_even_and_keeps_zero_blocks() {
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -3.5;
    let mut q = QActivations::default();
    q.quantize(&x, 1, 32);
    assert_eq!(&q.qs[..3], &[127, 2, -4]);
    assert_eq!(q.d[0], 1.0);
    assert_eq!(q.s[0], 125.0);
    q.quantize(&[0.0; 32], 1, 32);
    assert_eq!(q.d[0], 0.0);
    assert!(q.qs.iter().all(|&v| v == 0));
}

/// Activation quantization (vector code in wasm) gives exactly the scalar definition's bytes,
/// scales, sums, widened values and offset sums, for ordinary rows and for the edge blocks:
/// zeros, ties, NaNs, infinities, and magnitudes so small that `127 / amax` overflows.
#[test]
fn activation_quantization_equals_the_scalar_definition() {
    let mut x = random(3 * 576, 9, 3.0);
    let edges: [&[f32]; 6] = [
        &[0.0; 32],
        &[127.0, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -126.5],
        &[f32::NAN, 1.0, -2.0, f32::NAN],
        &[f32::INFINITY, 1.0, f32::NEG_INFINITY, -0.0],
        &[1e-38, -2e-38, 3e-39, -1e-45, 0.0, 3e-37],
        &[-0.0, 0.0, -0.0],
    ];
    // Each edge block is its values then zeros; the NaN and infinity blocks are also repeated
    // with ordinary values around them.
    for (b, e) in edges.iter().enumerate() {
        x[b * 32..(b + 1) * 32].fill(0.0);
        x[b * 32..b * 32 + e.len()].copy_from_slice(e);
        x[(b + 8) * 32 + 5..(b + 8) * 32 + 5 + e.len()].copy_from_slice(e);
    }
    let mut q = QActivations::default();
    q.quantize(&x, 3, 576);
    for b in 0..x.len() / 32 {
        let mut want = [0i8; 32];
        let (d, s) = scalar::quantize_block(&x[b * 32..(b + 1) * 32], &mut want);
        assert_eq!(&q.qs[b * 32..(b + 1) * 32], &want, "block {b}");
        assert_eq!(
            (q.d[b].to_bits(), q.s[b].to_bits()),
            (d.to_bits(), s.to_bits()),
            "block {b}"
        );
    }
    for i in 0..3 {
        let row = q.row(i);
        for (k, qs) in row.qs.chunks_exact(16).enumerate() {
            if !row.wide.is_empty() {
                let want: Vec<i16> = PAIR_ORDER.iter().map(|&p| i16::from(qs[p])).collect();
                assert_eq!(&row.wide[16 * k..16 * k + 16], &want[..]);
            }
            if !row.offset_sums.is_empty() {
                for l in 0..4 {
                    let sum: i32 = qs[4 * l..4 * l + 4].iter().map(|&v| i32::from(v)).sum();
                    assert_eq!(row.offset_sums[4 * k + l], -8 * sum);
                }
            }
        }
    }
}

#[test]
fn matrix_shapes_are_checked() {
    assert!(QMatrix::new(WeightType::Q8_0, 2, 32, vec![0; 68]).is_some());
    assert!(QMatrix::new(WeightType::Q8_0, 2, 32, vec![0; 67]).is_none());
    assert!(QMatrix::new(WeightType::Q8_0, 2, 33, vec![0; 68]).is_none());
}

#[test]
fn fast_f16_conversion_matches_half_for_every_bit_pattern() {
    for h in 0..=u16::MAX {
        let want = half::f16::from_bits(h).to_f32();
        let got = f16_to_f32(h);
        assert_eq!(got.to_bits(), want.to_bits(), "{h:#06x}");
    }
}

/// The matrix product of several activation rows (a prefill: tiles, the four-row wasm kernel
/// and its remainder, threads natively) gives exactly the definition's dot products.
#[test]
fn matmul_of_many_rows_equals_the_definition() {
    for (ty, name) in TYPES {
        // Nine blocks a row: kernels that take four blocks at a time (Q4_0's) do two groups
        // and one block alone.
        let (rows, k) = (70, 288);
        let m_w = quantized_matrix(ty, name, rows, k, &random(rows * k, 5, 1.0));
        for m in [1, 4, 7] {
            let x = random(m * k, 6 + m as u64, 3.0);
            let mut q = QActivations::default();
            q.quantize(&x, m, k);
            let mut out = vec![0f32; m * rows];
            m_w.matmul(&q, &mut out);
            for i in 0..m {
                for j in 0..rows {
                    let want = scalar::dot(ty, m_w.row(j), &q.row(i));
                    assert_eq!(
                        out[i * rows + j].to_bits(),
                        want.to_bits(),
                        "{name} m={m} x{i} w{j}"
                    );
                }
            }
        }
    }
}

/// Regression for widening four scales at once and checking for infinities and NaNs only
/// after the row: weight scales (and `_1` minimums) that are infinite, NaN, subnormal or the
/// largest finite f16, in a group of four blocks and in the row's last, partial group. Every
/// kernel must still give the definition's value (any NaN where it gives a NaN).
#[test]
fn kernels_equal_the_definition_with_infinite_and_nan_scales() {
    for (ty, name) in TYPES {
        // 18 blocks a row: four groups of four and a partial group of two.
        let (rows, k) = (8, 576);
        let gt = crate::gguf::GgmlType::from_name(name).unwrap();
        let w = random(rows * k, 41, 1.0);
        let mut data = crate::fixtures::encode_tensor(&w, gt);
        let bb = ty.block_bytes();
        let row_bytes = k / BLOCK * bb;
        // (row, block, byte offset in the block: 0 the scale, 2 the minimum, f16 bits).
        let min = if ty.has_min() { 2 } else { 0 };
        let pokes = [
            (0, 1, 0, 0x7c00),
            (1, 17, 0, 0x7e00),
            (2, 5, min, 0xfc00),
            (3, 16, min, 0x7fff),
            (4, 2, 0, 0x0001),
            (5, 9, 0, 0x7bff),
            (6, 0, 0, 0xfe01),
        ];
        for (r, b, at, bits) in pokes {
            let o = r * row_bytes + b * bb + at;
            data[o..o + 2].copy_from_slice(&u16::to_le_bytes(bits));
        }
        let m_w = QMatrix::new(ty, rows, k, data).unwrap();
        for m in [1, 4] {
            let mut q = QActivations::default();
            q.quantize(&random(m * k, 42 + m as u64, 3.0), m, k);
            let mut out = vec![0f32; m * rows];
            m_w.matmul(&q, &mut out);
            for i in 0..m {
                for j in 0..rows {
                    let want = scalar::dot(ty, m_w.row(j), &q.row(i));
                    let got = out[i * rows + j];
                    assert!(
                        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                        "{name} m={m} x{i} w{j}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// Several products in one job (decode's Q/K/V and gate/up) give each matrix's own product:
/// matrices of 70, 192 and 5 rows (partial, whole and single tiles), one and three rows of `x`.
#[test]
fn grouped_matmul_equals_the_definition() {
    for (ty, name) in TYPES {
        let k = 64;
        let ws: Vec<QMatrix> = [70, 192, 5]
            .iter()
            .enumerate()
            .map(|(s, &rows)| quantized_matrix(ty, name, rows, k, &random(rows * k, 20 + s as u64, 1.0)))
            .collect();
        for m in [1, 3] {
            let mut q = QActivations::default();
            q.quantize(&random(m * k, 30 + m as u64, 2.0), m, k);
            let mut outs: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; m * w.rows()]).collect();
            let [a, b, c] = &mut outs[..] else { unreachable!() };
            QMatrix::matmul_n([&ws[0], &ws[1], &ws[2]], &q, [a, b, c]);
            for (w, out) in ws.iter().zip(&outs) {
                for i in 0..m {
                    for j in 0..w.rows() {
                        let want = scalar::dot(ty, w.row(j), &q.row(i));
                        let got = out[i * w.rows() + j];
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "{name} m={m} {} rows, x{i} w{j}",
                            w.rows()
                        );
                    }
                }
            }
        }
    }
}

/// The fused gate/up/SiLU product equals the two products followed by `silu_mul`, bit for
/// bit: 70 rows (a partial last tile), one row of `x` (the fused path) and three (the plain
/// one).
#[test]
fn gated_product_equals_products_then_silu() {
    for (ty, name) in TYPES {
        let (rows, k) = (70, 64);
        let gate_w = quantized_matrix(ty, name, rows, k, &random(rows * k, 40, 1.0));
        let up_w = quantized_matrix(ty, name, rows, k, &random(rows * k, 41, 1.0));
        for m in [1, 3] {
            let mut q = QActivations::default();
            q.quantize(&random(m * k, 50 + m as u64, 2.0), m, k);
            let (mut want_g, mut want_u) = (vec![0f32; m * rows], vec![0f32; m * rows]);
            gate_w.matmul(&q, &mut want_g);
            up_w.matmul(&q, &mut want_u);
            ops::silu_mul(&mut want_g, &want_u);
            let (mut g, mut u) = (vec![f32::NAN; m * rows], vec![f32::NAN; m * rows]);
            QMatrix::gated_product(&gate_w, &up_w, &q, &mut g, &mut u, ops::silu_mul);
            for j in 0..m * rows {
                assert_eq!(g[j].to_bits(), want_g[j].to_bits(), "{name} m={m} gate {j}");
                assert_eq!(u[j].to_bits(), want_u[j].to_bits(), "{name} m={m} up {j}");
            }
        }
    }
}

/// Widens `hs` with the kernels' routine for scales ([`wasm::f16x8_finite`]) and checks each
/// finite lane against the scalar widening, and that exactly the infinite and NaN lanes are
/// flagged; then the same eight with the attention's routine, which widens every lane.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn assert_vector_widening(hs: [u16; 8]) {
    use std::arch::wasm32::*;
    let v = u16x8(hs[0], hs[1], hs[2], hs[3], hs[4], hs[5], hs[6], hs[7]);
    let lanes = |a: v128, b: v128| {
        [
            f32x4_extract_lane::<0>(a),
            f32x4_extract_lane::<1>(a),
            f32x4_extract_lane::<2>(a),
            f32x4_extract_lane::<3>(a),
            f32x4_extract_lane::<0>(b),
            f32x4_extract_lane::<1>(b),
            f32x4_extract_lane::<2>(b),
            f32x4_extract_lane::<3>(b),
        ]
    };
    let (lo, hi, mags) = wasm::f16x8_finite(v);
    let finite = lanes(lo, hi);
    let specials = hs.iter().filter(|&&h| h & 0x7fff > 0x7bff).count();
    assert_eq!(wasm::any_special(mags), specials > 0, "{hs:04x?}");
    let (lo, hi) = wasm::f16x8_to_f32x8(v);
    let all = lanes(lo, hi);
    for ((f, a), &h) in finite.iter().zip(&all).zip(&hs) {
        let want = f16_to_f32(h).to_bits();
        if h & 0x7fff <= 0x7bff {
            assert_eq!(f.to_bits(), want, "f16 bits {h:#06x} in {hs:04x?}");
        }
        assert_eq!(a.to_bits(), want, "f16 bits {h:#06x} in {hs:04x?}, all lanes");
    }
}

/// The kernels widen block scales eight at a time: the scalar widening for every finite f16
/// (subnormals included), and every infinity and NaN flagged.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[test]
fn vector_f16_widening_equals_the_scalar_one_for_every_f16() {
    for h in (0..=u16::MAX).step_by(8) {
        assert_vector_widening(std::array::from_fn(|k| h + k as u16));
    }
}

/// Finite lanes next to infinities and NaNs widen exactly, and one special lane among finite
/// ones is enough to flag the eight.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[test]
fn vector_f16_widening_is_exact_when_finite_and_special_lanes_mix() {
    let mixed: [[u16; 4]; 6] = [
        [0x3c00, 0x7c00, 0x0001, 0xfbff],
        [0xfc00, 0x8001, 0x7e01, 0x3555],
        [0x7bff, 0x7c01, 0xffff, 0x0000],
        [0x8000, 0x03ff, 0x0400, 0xfe00],
        [0x7fff, 0x7fff, 0x7fff, 0x4000],
        [0x7bff, 0xfbff, 0x0001, 0x8400],
    ];
    for pair in mixed.windows(2) {
        assert_vector_widening(std::array::from_fn(|k| pair[k / 4][k % 4]));
        // Through the attention's entry point, which reads f16 bytes.
        let bits: Vec<u16> = pair.concat();
        let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let mut out = [0f32; 8];
        wasm::widen_f16(&bytes, &mut out);
        for (o, &h) in out.iter().zip(&bits) {
            assert_eq!(
                o.to_bits(),
                f16_to_f32(h).to_bits(),
                "f16 bits {h:#06x} in {bits:04x?}"
            );
        }
    }
}

/// The attention widens its cache with the vector routine: every length, every bit pattern.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[test]
fn vector_slice_widening_equals_the_scalar_one() {
    let bits: Vec<u16> = (0..=u16::MAX).rev().collect();
    let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
    for n in [0, 1, 7, 8, 9, 64, 65, bits.len()] {
        let mut out = vec![0f32; n];
        wasm::widen_f16(&bytes[..2 * n], &mut out);
        for (o, &h) in out.iter().zip(&bits) {
            assert_eq!(o.to_bits(), f16_to_f32(h).to_bits(), "n={n} bits {h:#06x}");
        }
    }
}

/// The attention's scores use the vector `dot8` in wasm: same eight lanes, same sums.
#[test]
fn dot8_equals_its_eight_lane_definition() {
    for n in [8, 64, 72] {
        let a = random(n, 40 + n as u64, 3.0);
        let b = random(n, 50 + n as u64, 3.0);
        let mut acc = [0f32; 8];
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            acc[i % 8] += x * y;
        }
        let want = hsum8(acc) + 0.0;
        assert_eq!(ops::dot8(&a, &b).to_bits(), want.to_bits(), "n={n}");
    }
}

/// The relaxed-SIMD Q8_0 kernel cannot take a weight of -128 (its magnitude does not fit the
/// instruction's seven unsigned bits, and results would then differ between platforms): a
/// matrix holding one is found at load, keeps the plain kernel, and gives the definition's bits.
#[test]
fn q8_0_weights_of_minus_128_are_found_and_give_the_definitions_products() {
    let (rows, k) = (5, 96);
    let clean = quantized_matrix(WeightType::Q8_0, "Q8_0", rows, k, &random(rows * k, 60, 1.0));
    assert!(
        !holds_minus_128(clean.data()),
        "ggml's quantizer writes -127..=127"
    );
    let mut data = clean.data().to_vec();
    let bb = WeightType::Q8_0.block_bytes();
    data[2 + 7] = 0x80;
    data[4 * bb + 2 + 31] = 0x80;
    let m = QMatrix::new(WeightType::Q8_0, rows, k, data).unwrap();
    assert_eq!(holds_minus_128(m.data()), cfg!(target_feature = "relaxed-simd"));
    let x = random(2 * k, 61, 3.0);
    let mut q = QActivations::default();
    q.quantize(&x, 2, k);
    let mut out = vec![0f32; 2 * rows];
    m.matmul(&q, &mut out);
    for i in 0..2 {
        for j in 0..rows {
            let want = scalar::dot(WeightType::Q8_0, m.row(j), &q.row(i));
            assert_eq!(out[i * rows + j].to_bits(), want.to_bits(), "x{i} w{j}");
        }
    }
}

/// Four lanes of `v` as f32 bits.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn lane_bits(v: std::arch::wasm32::v128) -> [u32; 4] {
    use std::arch::wasm32::*;
    [
        u32x4_extract_lane::<0>(v),
        u32x4_extract_lane::<1>(v),
        u32x4_extract_lane::<2>(v),
        u32x4_extract_lane::<3>(v),
    ]
}

/// Inputs for the vector `expf`s: a sweep of every exponent, a fine sweep across the range and
/// past both ends, NaNs, infinities and the ends themselves; a multiple of 8 long.
fn expf_inputs() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..=u32::MAX / 65_521)
        .map(|k| f32::from_bits(k * 65_521))
        .collect();
    let mut x = -110.0f32;
    while x < 95.0 {
        xs.push(x);
        x += 0.000_73;
    }
    xs.extend([
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7fa0_0001),
        88.722_83,
        88.722_84,
        -103.972_08,
        -103.972_09,
        -87.336_55,
        -87.336_54,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
    ]);
    while !xs.len().is_multiple_of(8) {
        xs.push(1.0);
    }
    xs
}

/// The attention's softmax takes `e^x` four lanes at a time in wasm: the scalar `expf`'s bits
/// for every input.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[test]
fn vector_expf_equals_the_scalar_one() {
    use std::arch::wasm32::*;
    for c in expf_inputs().chunks_exact(4) {
        let got = lane_bits(wasm::expf4(f32x4(c[0], c[1], c[2], c[3])));
        for (g, &x) in got.iter().zip(c) {
            assert_eq!(*g, ops::expf(x).to_bits(), "expf({x:e}) ({:#010x})", x.to_bits());
        }
    }
}

/// And eight lanes at a time with AVX2: the same bits.
#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_expf_equals_the_scalar_one() {
    use std::arch::x86_64::*;
    if !x86::has_f16_attention() {
        return;
    }
    for c in expf_inputs().chunks_exact(8) {
        let mut got = [0f32; 8];
        // SAFETY: the CPU has AVX2 (checked above); `c` and `got` hold eight f32.
        unsafe { _mm256_storeu_ps(got.as_mut_ptr(), x86::expf8(_mm256_loadu_ps(c.as_ptr()))) };
        for (g, &x) in got.iter().zip(c) {
            assert_eq!(
                g.to_bits(),
                ops::expf(x).to_bits(),
                "expf({x:e}) ({:#010x})",
                x.to_bits()
            );
        }
    }
}

/// The softmax weights are rounded to f16 four lanes at a time: `half`'s conversion there and
/// back for every kind of input (both rounding ranges and the boundary between them, ties,
/// the values that round to infinity, infinities and NaNs, negative values).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[test]
fn vector_f16_rounding_equals_half() {
    use std::arch::wasm32::*;
    let mut bits: Vec<u32> = (0..=u32::MAX / 4093).map(|k| k * 4093).collect();
    // Every pattern around 2^-14 (the subnormal boundary) and 65504..65520 (the largest f16).
    bits.extend(0x3870_0000..0x3890_0000);
    bits.extend(0x477f_0000..0x4780_1000);
    // Exact ties and their neighbours in every exponent f16 can hold, and below.
    for e in 90..=145u32 {
        for m in [
            0x1000, 0x3000, 0x0fff, 0x1001, 0x2fff, 0x3001, 0x7f_f000, 0x7f_efff,
        ] {
            bits.push((e << 23) | m);
        }
    }
    let n = bits.len();
    bits.extend(bits[..n].to_vec().iter().map(|b| b | 0x8000_0000));
    while !bits.len().is_multiple_of(4) {
        bits.push(0);
    }
    for c in bits.chunks_exact(4) {
        let v = wasm::round_f16x4(u32x4(c[0], c[1], c[2], c[3]));
        for (g, &b) in lane_bits(v).iter().zip(c) {
            let want = ops::round_f16(f32::from_bits(b));
            if want.is_nan() {
                assert!(
                    f32::from_bits(*g).is_nan(),
                    "{b:#010x} gave {g:#010x}, want a NaN"
                );
            } else {
                assert_eq!(*g, want.to_bits(), "{b:#010x} ({:e})", f32::from_bits(b));
            }
        }
    }
}

/// The attention's softmax (four lanes in wasm, eight with AVX2) equals its definition
/// (`softmax`, then each weight rounded to f16): every length's tail, many long rows of scores
/// as the attention sees them, rows with masked (-inf), equal, huge and NaN scores, and the
/// empty row.
#[test]
fn softmax_f16_equals_the_definition() {
    let mut rows: Vec<Vec<f32>> = (0..=19).map(|n| random(n, 70 + n as u64, 8.0)).collect();
    // Many long rows: a weight lands next to an f16 rounding boundary about once in 8000, so
    // only this many show a reciprocal that is off by an ulp.
    rows.extend((0..100).map(|k| random(2048, 1000 + k, 12.0)));
    rows.push(random(1001, 91, 0.01));
    rows.push(random(333, 92, 90.0));
    rows.push(vec![3.5; 37]);
    rows.push(vec![f32::NEG_INFINITY; 9]);
    let mut masked = random(50, 93, 4.0);
    masked[10..30].fill(f32::NEG_INFINITY);
    rows.push(masked);
    let mut nan = random(21, 94, 4.0);
    nan[7] = f32::NAN;
    rows.push(nan);
    let mut huge = random(19, 95, 4.0);
    huge[3] = f32::MAX;
    huge[11] = -f32::MAX;
    rows.push(huge);
    for row in rows {
        let mut want = row.clone();
        ops::softmax(&mut want);
        want.iter_mut().for_each(|p| *p = ops::round_f16(*p));
        let mut got = row.clone();
        ops::softmax_f16(&mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            if w.is_nan() {
                assert!(g.is_nan(), "n={} [{i}]: {g} for NaN", row.len());
            } else {
                assert_eq!(g.to_bits(), w.to_bits(), "n={} [{i}]: {g} for {w}", row.len());
            }
        }
    }
}
