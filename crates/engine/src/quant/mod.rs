//! Block formats: how each ggml tensor type stores numbers, one type per format with its block
//! size, its bytes and its reference dequantizer and quantizer (ggml's `*_ref` routines, which
//! llama.cpp's own quantizer uses when no importance matrix is given).
//!
//! The loader reads norm vectors and converts matrices through these; `omp quantize` and the
//! test fixtures write files with them. The matrix products themselves are in `kernels/`.

mod float;
mod k_quants;
mod legacy;

pub use float::{Bf16, F16, F32};
pub use k_quants::{Q2K, Q3K, Q4K, Q5K, Q6K, Q8K};
pub use legacy::{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0};

use crate::gguf::GgmlType;

/// One block format.
pub trait Format {
    /// ggml's type id.
    const ID: u32;
    /// Numbers per block.
    const ELEMS: usize;
    /// Bytes per block.
    const BYTES: usize;
    /// `out` (`ELEMS` values) from one block (`BYTES` bytes).
    fn dequantize_block(block: &[u8], out: &mut [f32]);
    /// One block (`BYTES` bytes) from `x` (`ELEMS` values), as ggml's reference quantizer.
    fn quantize_block(x: &[f32], block: &mut [u8]);
}

/// A format's row functions, chosen at run time by type id.
#[derive(Clone, Copy)]
pub struct Codec {
    /// Numbers per block.
    pub elems: usize,
    /// Bytes per block.
    pub bytes: usize,
    dequantize: fn(&[u8], &mut [f32]),
    quantize: fn(&[f32], &mut [u8]),
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Codec({} per {} bytes)", self.elems, self.bytes)
    }
}

fn codec<F: Format>() -> Codec {
    Codec {
        elems: F::ELEMS,
        bytes: F::BYTES,
        dequantize: F::dequantize_block,
        quantize: F::quantize_block,
    }
}

impl Codec {
    /// The codec of a type, if the engine can read and write it.
    pub fn of(ty: GgmlType) -> Option<Self> {
        Some(match ty.id {
            F32::ID => codec::<F32>(),
            F16::ID => codec::<F16>(),
            Bf16::ID => codec::<Bf16>(),
            Q4_0::ID => codec::<Q4_0>(),
            Q4_1::ID => codec::<Q4_1>(),
            Q5_0::ID => codec::<Q5_0>(),
            Q5_1::ID => codec::<Q5_1>(),
            Q8_0::ID => codec::<Q8_0>(),
            Q2K::ID => codec::<Q2K>(),
            Q3K::ID => codec::<Q3K>(),
            Q4K::ID => codec::<Q4K>(),
            Q5K::ID => codec::<Q5K>(),
            Q6K::ID => codec::<Q6K>(),
            Q8K::ID => codec::<Q8K>(),
            _ => return None,
        })
    }

    /// Dequantizes whole blocks: `out.len() / elems` blocks of `data` (callers size both from
    /// a validated tensor; a short `data` leaves the rest of `out` untouched).
    pub fn dequantize(&self, data: &[u8], out: &mut [f32]) {
        for (b, o) in data
            .chunks_exact(self.bytes)
            .zip(out.chunks_exact_mut(self.elems))
        {
            (self.dequantize)(b, o);
        }
    }

    /// Quantizes `x` (whole blocks) into a new byte vector.
    pub fn quantize(&self, x: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; x.len() / self.elems * self.bytes];
        for (o, v) in out.chunks_exact_mut(self.bytes).zip(x.chunks_exact(self.elems)) {
            (self.quantize)(v, o);
        }
        out
    }
}

/// Reads a little-endian f16 at `at` as f32 (exactly).
#[inline(always)]
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    crate::kernels::f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

/// Rounds `v` to f16 (to nearest, ties to even) and stores it little-endian at `at`.
#[inline(always)]
pub(crate) fn put_f16(b: &mut [u8], at: usize, v: f32) {
    b[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_bits().to_le_bytes());
}

/// `v` rounded to f16 and back.
#[inline(always)]
pub(crate) fn round_f16(v: f32) -> f32 {
    half::f16::from_f32(v).to_f32()
}

#[cfg(test)]
mod tests;
