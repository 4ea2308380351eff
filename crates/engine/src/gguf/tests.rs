//! GGUF reader tests: round trips through the writer, and malformed files built byte by byte.
//! They run natively and as 32-bit wasm in headless Chromium, where `usize` is 32 bits and
//! truncating size arithmetic would show.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Builds GGUF bytes field by field, so that any field can be made wrong.
#[derive(Clone)]
struct Raw {
    magic: [u8; 4],
    version: u32,
    /// Overrides the tensor count written (else the number of tensors).
    tensor_count: Option<u64>,
    /// Overrides the metadata count written.
    kv_count: Option<u64>,
    kvs: Vec<(Vec<u8>, u32, Vec<u8>)>,
    tensors: Vec<RawTensor>,
    alignment: u64,
    data: Vec<u8>,
}

#[derive(Clone)]
struct RawTensor {
    name: Vec<u8>,
    n_dims: u32,
    dims: Vec<u64>,
    ty: u32,
    offset: u64,
}

fn s(v: &str) -> Vec<u8> {
    let mut out = (v.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(v.as_bytes());
    out
}

impl Raw {
    /// A valid file with two metadata entries and two F32 tensors.
    fn valid() -> Self {
        let mut data = vec![0u8; 64];
        for (i, b) in data.iter_mut().enumerate() {
            *b = i as u8;
        }
        Raw {
            magic: *b"GGUF",
            version: 3,
            tensor_count: None,
            kv_count: None,
            kvs: vec![
                (b"general.architecture".to_vec(), 8, s("llama")),
                (b"some.count".to_vec(), 4, 7u32.to_le_bytes().to_vec()),
            ],
            tensors: vec![
                RawTensor {
                    name: b"a".to_vec(),
                    n_dims: 1,
                    dims: vec![8],
                    ty: 0,
                    offset: 0,
                },
                RawTensor {
                    name: b"b".to_vec(),
                    n_dims: 2,
                    dims: vec![4, 2],
                    ty: 0,
                    offset: 32,
                },
            ],
            alignment: 32,
            data,
        }
    }

    fn kv(mut self, key: &str, ty: u32, value: Vec<u8>) -> Self {
        self.kvs.push((key.as_bytes().to_vec(), ty, value));
        self
    }

    /// Bytes up to the end of the tensor descriptions, and the full file.
    fn bytes(&self) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(
            &self
                .tensor_count
                .unwrap_or(self.tensors.len() as u64)
                .to_le_bytes(),
        );
        out.extend_from_slice(&self.kv_count.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for (k, ty, v) in &self.kvs {
            out.extend_from_slice(&(k.len() as u64).to_le_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(&ty.to_le_bytes());
            out.extend_from_slice(v);
        }
        for t in &self.tensors {
            out.extend_from_slice(&(t.name.len() as u64).to_le_bytes());
            out.extend_from_slice(&t.name);
            out.extend_from_slice(&t.n_dims.to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.to_le_bytes());
            out.extend_from_slice(&t.offset.to_le_bytes());
        }
        let pad = (out.len() as u64).next_multiple_of(self.alignment) as usize;
        out.resize(pad, 0);
        out.extend_from_slice(&self.data);
        out
    }

    /// Offsets where each header field starts (for truncation tests).
    fn boundaries(&self) -> Vec<usize> {
        let mut b = vec![0, 4, 8, 16, 24];
        let mut pos = 24;
        for (k, _, v) in &self.kvs {
            pos += 8;
            b.push(pos);
            pos += k.len();
            b.push(pos);
            pos += 4;
            b.push(pos);
            pos += v.len();
            b.push(pos);
        }
        for t in &self.tensors {
            pos += 8 + t.name.len();
            b.push(pos);
            pos += 4;
            b.push(pos);
            for _ in &t.dims {
                pos += 8;
                b.push(pos);
            }
            pos += 4;
            b.push(pos);
            pos += 8;
            b.push(pos);
        }
        b
    }
}

fn parse(raw: &Raw) -> Result<Gguf> {
    Gguf::parse(&raw.bytes())
}

fn err(raw: &Raw) -> String {
    match parse(raw) {
        Ok(_) => panic!("the malformed file was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn valid_file_parses() {
    let raw = Raw::valid();
    let bytes = raw.bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.str("general.architecture").unwrap(), "llama");
    assert_eq!(g.uint("some.count").unwrap(), 7);
    let b = g.tensor("b").unwrap();
    assert_eq!(b.shape(), vec![2, 4]);
    assert_eq!(b.n_bytes, 32);
    assert_eq!(g.tensor_data(&bytes, b).unwrap(), &raw.data[32..64]);
}

#[test]
fn writer_round_trips() {
    let mut w = GgufWriter::new();
    w.str("general.architecture", "llama")
        .u32("general.alignment", 64)
        .kv("arr", Value::Array(Array::I32(vec![-1, 2, 3])))
        .kv("strs", Value::Array(Array::Str(vec!["a".into(), "안녕".into()])))
        .f32_tensor("t", &[3], &[1.0, 2.0, 3.0])
        .f32_tensor("u", &[2, 2], &[4.0, 5.0, 6.0, 7.0]);
    let bytes = w.to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment, 64);
    assert_eq!(g.array("arr").unwrap(), &Array::I32(vec![-1, 2, 3]));
    assert_eq!(
        g.array("strs").unwrap(),
        &Array::Str(vec!["a".into(), "안녕".into()])
    );
    let u = g.tensor("u").unwrap();
    assert_eq!(u.offset % 64, 0);
    let data = g.tensor_data(&bytes, u).unwrap();
    assert_eq!(f32::from_le_bytes(data[12..16].try_into().unwrap()), 7.0);
}

#[test]
fn bad_magic_and_version() {
    let mut raw = Raw::valid();
    raw.magic = *b"GGML";
    assert!(err(&raw).contains("not a GGUF model file"));
    let mut raw = Raw::valid();
    raw.version = 1;
    assert!(err(&raw).contains("version 1"));
    let mut raw = Raw::valid();
    raw.version = 3u32.swap_bytes(); // a big-endian file
    assert!(err(&raw).contains("unsupported GGUF version"));
    assert!(Gguf::parse(b"").is_err());
    assert!(Gguf::parse(b"<html>").unwrap_err().to_string().contains("GGUF"));
}

#[test]
fn absurd_counts_are_refused_before_allocation() {
    for count in [u64::MAX, 1 << 63, 1 << 40, 1000] {
        let mut raw = Raw::valid();
        raw.kv_count = Some(count);
        assert!(err(&raw).contains("cannot fit"), "kv count {count}");
        let mut raw = Raw::valid();
        raw.tensor_count = Some(count);
        assert!(!err(&raw).is_empty(), "tensor count {count}");
    }
}

#[test]
fn string_lengths_are_checked() {
    // Metadata string of length 2^64 - 1.
    let mut v = u64::MAX.to_le_bytes().to_vec();
    v.extend_from_slice(b"xx");
    let raw = Raw::valid().kv("k", 8, v);
    assert!(err(&raw).contains("claims"));
    // A key whose length runs past the end.
    let mut raw = Raw::valid();
    raw.kvs.push((vec![b'k'; 3], 4, vec![]));
    let mut bytes = raw.bytes();
    bytes.truncate(40);
    assert!(Gguf::parse(&bytes).is_err());
    // Invalid UTF-8.
    let raw = Raw::valid().kv("k", 8, {
        let mut v = 2u64.to_le_bytes().to_vec();
        v.extend_from_slice(&[0xff, 0xfe]);
        v
    });
    assert!(err(&raw).contains("UTF-8"));
}

#[test]
fn arrays_are_checked() {
    let arr = |elem: u32, count: u64, body: &[u8]| {
        let mut v = elem.to_le_bytes().to_vec();
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(body);
        v
    };
    // Count of 2^63 u8 elements.
    assert!(err(&Raw::valid().kv("a", 9, arr(0, 1 << 63, &[1, 2]))).contains("cannot fit"));
    // 2^63 strings.
    assert!(err(&Raw::valid().kv("a", 9, arr(8, 1 << 63, &[]))).contains("cannot fit"));
    // Unknown element type.
    assert!(err(&Raw::valid().kv("a", 9, arr(99, 1, &[0]))).contains("unknown array element type"));
    // Arrays nested 300 deep.
    let mut nested = Vec::new();
    for _ in 0..300 {
        nested.extend_from_slice(&9u32.to_le_bytes());
        nested.extend_from_slice(&1u64.to_le_bytes());
    }
    nested.extend_from_slice(&0u32.to_le_bytes());
    nested.extend_from_slice(&0u64.to_le_bytes());
    assert!(err(&Raw::valid().kv("a", 9, nested)).contains("arrays of arrays"));
    // A bool that is neither 0 nor 1, alone and in an array.
    assert!(err(&Raw::valid().kv("b", 7, vec![2])).contains("bool"));
    assert!(err(&Raw::valid().kv("b", 9, arr(7, 2, &[1, 7]))).contains("bool"));
    // Unknown value type.
    assert!(err(&Raw::valid().kv("c", 13, vec![0; 8])).contains("unknown value type"));
}

#[test]
fn duplicate_keys_and_tensor_names() {
    let raw = Raw::valid().kv("some.count", 4, 1u32.to_le_bytes().to_vec());
    assert!(err(&raw).contains("twice"));
    let mut raw = Raw::valid();
    raw.tensors[1].name = b"a".to_vec();
    assert!(err(&raw).contains("twice"));
}

#[test]
fn alignment_is_checked() {
    for (ty, val) in [(4u32, 0u32), (4, 13), (4, 1 << 31)] {
        let raw = Raw::valid().kv("general.alignment", ty, val.to_le_bytes().to_vec());
        assert!(err(&raw).contains("general.alignment"), "{val}");
    }
    // Stored as i32 instead of u32.
    let raw = Raw::valid().kv("general.alignment", 5, 32i32.to_le_bytes().to_vec());
    assert!(err(&raw).contains("must be a u32"));
}

#[test]
fn tensor_descriptions_are_checked() {
    let check = |f: &dyn Fn(&mut RawTensor), needle: &str| {
        let mut raw = Raw::valid();
        f(&mut raw.tensors[1]);
        let e = err(&raw);
        assert!(e.contains(needle), "{e:?} lacks {needle:?}");
    };
    check(&|t| t.n_dims = 0, "dimensions");
    check(&|t| t.n_dims = 5, "dimensions");
    check(&|t| t.n_dims = u32::MAX, "dimensions");
    check(&|t| t.dims = vec![(1 << 42) + 1, 2], "");
    check(&|t| t.dims[0] = u64::MAX, "negative");
    check(
        &|t| {
            t.n_dims = 3;
            t.dims = vec![4, (1 << 30) - 1, (1 << 30) + 1];
        },
        "",
    );
    check(
        &|t| {
            t.n_dims = 4;
            t.dims = vec![1 << 20, 1 << 20, 1 << 20, 1 << 20];
        },
        "overflow",
    );
    check(&|t| t.ty = 4, "unknown type id 4");
    check(&|t| t.ty = 1000, "unknown type id");
    check(&|t| t.ty = 2, "block size"); // Q4_0 rows of 4 elements
    check(&|t| t.offset = 33, "alignment");
    check(&|t| t.offset = u64::MAX, "alignment");
    check(&|t| t.offset = u64::MAX - 31, "overflows");
    check(&|t| t.offset = 0, "overlaps");
    check(&|t| t.offset = 64, "truncated");
    check(&|t| t.name = Vec::new(), "empty");
    check(&|t| t.name = vec![b'x'; 64], "claims");
}

#[test]
fn cve_shaped_tensors_are_refused() {
    // Two I8 tensors whose sizes wrap around when added (CVE-2024-21836 shape).
    let mut raw = Raw::valid();
    raw.tensors[0].ty = 24;
    raw.tensors[0].dims = vec![0x7FFF_FFFF_FFFF_FFC0];
    raw.tensors[1].ty = 24;
    raw.tensors[1].n_dims = 1;
    raw.tensors[1].dims = vec![0x7FFF_FFFF_FFFF_FFC0];
    assert!(parse(&raw).is_err());
    // A tensor offset of -1.
    let mut raw = Raw::valid();
    raw.tensors[0].offset = -1i64 as u64;
    assert!(parse(&raw).is_err());
}

#[test]
fn truncation_anywhere_is_an_error_not_a_panic() {
    let raw = Raw::valid();
    let bytes = raw.bytes();
    for len in 0..bytes.len() {
        assert!(
            Gguf::parse(&bytes[..len]).is_err(),
            "accepted {len} of {} bytes",
            bytes.len()
        );
    }
    for b in raw.boundaries() {
        assert!(Gguf::parse(&bytes[..b.min(bytes.len())]).is_err());
    }
}

#[test]
fn header_prefix_asks_for_more_bytes() {
    let raw = Raw::valid();
    let bytes = raw.bytes();
    let len = bytes.len() as u64;
    match Gguf::parse_prefix(&bytes[..30], len) {
        Err(Error::NeedMoreBytes { at_least }) => assert!(at_least > 30 && at_least <= len),
        other => panic!("expected NeedMoreBytes, got {other:?}"),
    }
    let header_end = raw.boundaries().last().copied().unwrap();
    let g = Gguf::parse_prefix(&bytes[..header_end], len).unwrap();
    assert_eq!(g.tensors.len(), 2);
    // Offsets are still checked against the real file length.
    assert!(Gguf::parse_prefix(&bytes[..header_end], len - 1).is_err());
}

#[test]
fn byte_flips_never_panic() {
    let bytes = crate::fixtures::tiny_llama(&crate::fixtures::TinyConfig {
        layers: 1,
        ..Default::default()
    })
    .to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let header_end = g.data_offset as usize;
    let mut rng = crate::sampling::Rng::new(3);
    for _ in 0..3000 {
        let mut b = bytes[..header_end].to_vec();
        for _ in 0..1 + rng.next_u64() % 4 {
            let i = (rng.next_u64() as usize) % b.len();
            b[i] = rng.next_u64() as u8;
        }
        let _ = Gguf::parse_prefix(&b, bytes.len() as u64);
    }
}

#[test]
fn header_only_files_describe_models_larger_than_memory() {
    use crate::fixtures::{virtual_llama, TinyConfig};
    // Small enough to materialise: the zeros are written where the header says.
    let small = virtual_llama(&TinyConfig::default()).unwrap();
    let bytes = small.to_bytes();
    assert_eq!(bytes.len() as u64, small.header().1);
    assert_eq!(Gguf::parse(&bytes).unwrap().tensors.len(), 2 + 2 * 9);
    // Llama-2-7B widths, 12 blocks: 2.4 GiB described by a header of a few kilobytes.
    let big = virtual_llama(&TinyConfig {
        embedding: 4096,
        heads: 32,
        kv_heads: 32,
        feed_forward: 11008,
        layers: 12,
        ..Default::default()
    })
    .unwrap();
    let (header, len) = big.header();
    assert!(
        len > 2 << 30 && header.len() < 64 << 10,
        "{len} / {}",
        header.len()
    );
    let g = Gguf::parse_prefix(&header, len).unwrap();
    assert_eq!(g.tensors.len(), 2 + 12 * 9);
}
