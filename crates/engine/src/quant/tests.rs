//! Block format tests: quantize-then-dequantize stays within each format's step, degenerate
//! blocks are exact, and natively the formats agree with candle's independent implementation.

use super::*;
use crate::sampling::Rng;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Every format with its name and the largest error a round trip may make, as a fraction of the
/// block's largest magnitude: about half a step, or a whole one for the `_0` types, whose
/// scale is set by the signed extreme so the other side may clamp one step short.
const FORMATS: [(&str, f32); 13] = [
    ("F16", 1e-3),
    ("BF16", 8e-3),
    ("Q4_0", 0.13),
    ("Q4_1", 0.07),
    ("Q5_0", 0.07),
    ("Q5_1", 0.035),
    ("Q8_0", 0.005),
    ("Q2_K", 0.6),
    ("Q3_K", 0.3),
    ("Q4_K", 0.15),
    ("Q5_K", 0.08),
    ("Q6_K", 0.04),
    ("Q8_K", 0.005),
];

fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (r.next_f32() * 2.0 - 1.0) * scale).collect()
}

fn codec(name: &str) -> Codec {
    Codec::of(GgmlType::from_name(name).unwrap()).unwrap()
}

#[test]
fn nearest_int_rounds_half_to_even() {
    for i in -40_000..40_000 {
        let v = i as f32 * 0.25;
        assert_eq!(k_quants::nearest_int(v), v.round_ties_even() as i32, "{v}");
    }
}

#[test]
fn round_trips_stay_within_a_step() {
    for (name, tolerance) in FORMATS {
        let c = codec(name);
        for (seed, scale) in [(1, 1.0), (2, 0.01), (3, 300.0)] {
            let x = random(4 * 256, seed, scale);
            let q = c.quantize(&x);
            assert_eq!(q.len(), x.len() / c.elems * c.bytes, "{name}");
            let mut y = vec![0f32; x.len()];
            c.dequantize(&q, &mut y);
            for (b, (xs, ys)) in x.chunks(256).zip(y.chunks(256)).enumerate() {
                let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (i, (a, b2)) in xs.iter().zip(ys).enumerate() {
                    assert!(
                        (a - b2).abs() <= tolerance * amax,
                        "{name} scale {scale} block {b} [{i}]: {a} became {b2}"
                    );
                }
            }
        }
    }
}

#[test]
fn zero_and_constant_blocks() {
    for (name, _) in FORMATS {
        let c = codec(name);
        let zeros = vec![0f32; 256];
        let mut y = vec![1f32; 256];
        c.dequantize(&c.quantize(&zeros), &mut y);
        assert!(y.iter().all(|&v| v == 0.0), "{name}: {y:?}");
        // A block of one repeated value comes back close to it (formats with a minimum, and
        // the signed ones through their largest level).
        let ones = vec![0.5f32; 256];
        c.dequantize(&c.quantize(&ones), &mut y);
        assert!(y.iter().all(|&v| (v - 0.5).abs() < 0.02), "{name}: {:?}", &y[..8]);
    }
}

/// Natively only: candle is a test-only dependency and never built for wasm.
#[cfg(not(target_arch = "wasm32"))]
mod against_candle {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    fn dtype(name: &str) -> GgmlDType {
        match name {
            "F16" => GgmlDType::F16,
            "BF16" => GgmlDType::BF16,
            "Q4_0" => GgmlDType::Q4_0,
            "Q4_1" => GgmlDType::Q4_1,
            "Q5_0" => GgmlDType::Q5_0,
            "Q5_1" => GgmlDType::Q5_1,
            "Q8_0" => GgmlDType::Q8_0,
            "Q2_K" => GgmlDType::Q2K,
            "Q3_K" => GgmlDType::Q3K,
            "Q4_K" => GgmlDType::Q4K,
            "Q5_K" => GgmlDType::Q5K,
            "Q6_K" => GgmlDType::Q6K,
            "Q8_K" => GgmlDType::Q8K,
            _ => unreachable!("{name}"),
        }
    }

    /// candle's bytes and its own dequantization of them.
    fn candle(name: &str, x: &[f32]) -> (Vec<u8>, Vec<f32>) {
        let t = Tensor::from_slice(x, (x.len() / 256, 256), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, dtype(name)).unwrap();
        let deq = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        (q.data().unwrap().into_owned(), deq)
    }

    /// Dequantization is fully specified by the format: ours must give candle's bits for
    /// blocks candle wrote.
    #[test]
    fn dequantization_equals_candles() {
        for (name, _) in FORMATS {
            for seed in 0..4 {
                let x = random(8 * 256, 100 + seed, 10f32.powi(seed as i32 - 2));
                let (bytes, expected) = candle(name, &x);
                let mut y = vec![0f32; x.len()];
                codec(name).dequantize(&bytes, &mut y);
                let same = y.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{name} seed {seed}");
            }
        }
    }

    /// For the float and 32-element formats candle ports ggml's reference quantizers, so both
    /// must write the same bytes. (Its K-quant quantizers are an older ggml version's, so those
    /// bytes differ; the K-quant round trips are checked above instead.)
    #[test]
    fn quantization_equals_candles() {
        for (name, _) in FORMATS.iter().filter(|(n, _)| !n.ends_with("_K")) {
            for seed in 0..4 {
                let x = random(8 * 256, 200 + seed, 10f32.powi(seed as i32 - 2));
                let (bytes, _) = candle(name, &x);
                let ours = codec(name).quantize(&x);
                let differ = bytes.iter().zip(&ours).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "{name} seed {seed}: {differ} bytes differ");
            }
        }
    }
}
