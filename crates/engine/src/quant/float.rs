//! Unquantized storage: f32, f16 and bfloat16, one number per "block".

use super::Format;

/// 32-bit floats.
pub struct F32;
/// IEEE half precision.
pub struct F16;
/// bfloat16 (the top half of an f32).
pub struct Bf16;

impl Format for F32 {
    const ID: u32 = 0;
    const ELEMS: usize = 1;
    const BYTES: usize = 4;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        out[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        b.copy_from_slice(&x[0].to_le_bytes());
    }
}

impl Format for F16 {
    const ID: u32 = 1;
    const ELEMS: usize = 1;
    const BYTES: usize = 2;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        out[0] = super::f16_at(b, 0);
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        super::put_f16(b, 0, x[0]);
    }
}

impl Format for Bf16 {
    const ID: u32 = 30;
    const ELEMS: usize = 1;
    const BYTES: usize = 2;
    fn dequantize_block(b: &[u8], out: &mut [f32]) {
        out[0] = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
    }
    fn quantize_block(x: &[f32], b: &mut [u8]) {
        // As ggml: round to nearest, ties to even; a NaN stays a (quiet) NaN.
        let u = x[0].to_bits();
        let h = if u & 0x7fff_ffff > 0x7f80_0000 {
            (u >> 16) | 64
        } else {
            (u + (0x7fff + ((u >> 16) & 1))) >> 16
        };
        b.copy_from_slice(&(h as u16).to_le_bytes());
    }
}
