//! GGUF reading with validation before allocation, and writing (for fixtures and `omp quantize`).
//!
//! Every count, length, shape and offset read from the file is checked against the bytes that
//! remain before anything is allocated for it, so a hostile file can neither make the parser
//! allocate more than a small multiple of its own size nor index outside it. All arithmetic on
//! file-controlled numbers is checked, also for a 32-bit `usize` (wasm32).

mod types;
mod value;
mod write;

use std::collections::HashMap;

pub use types::GgmlType;
pub use value::{Array, Value};
pub use write::GgufWriter;

use crate::error::{Error, Result};

/// `GGUF` read as a little-endian u32.
const MAGIC: [u8; 4] = *b"GGUF";
/// Used when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest alignment accepted; real files use 32.
const MAX_ALIGNMENT: u64 = 1 << 20;
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// ggml's `GGML_MAX_NAME`: tensor names are shorter than this.
const MAX_TENSOR_NAME: u64 = 64;
/// No single metadata string (a chat template is the longest real one) may exceed this.
const MAX_STRING: u64 = 64 << 20;
/// Smallest possible encoding of one metadata entry: key length, one key byte, type, one byte.
const MIN_KV_BYTES: u64 = 8 + 1 + 4 + 1;
/// Smallest possible encoding of one tensor description: name length, one name byte, n_dims,
/// one dim, type and offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 1 + 4 + 8 + 4 + 8;

/// One tensor's description from the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Sizes in ggml order: `dims[0]` is the row length (the fastest-varying dimension).
    pub dims: Vec<u64>,
    /// Storage type.
    pub ty: GgmlType,
    /// Offset of the data from the start of the tensor-data section.
    pub offset: u64,
    /// Bytes of data.
    pub n_bytes: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        // Checked at parse time not to overflow.
        self.dims.iter().product()
    }

    /// Sizes outermost first (the reverse of ggml's order), e.g. `[rows, row_length]`.
    pub fn shape(&self) -> Vec<usize> {
        // Each dim was checked to fit `usize` at parse time.
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed and validated GGUF header.
#[derive(Debug, Clone)]
pub struct Gguf {
    /// Format version (2 or 3).
    pub version: u32,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    /// Tensor descriptions in file order.
    pub tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    /// Alignment of tensor data.
    pub alignment: u64,
    /// Absolute offset of the tensor-data section.
    pub data_offset: u64,
    /// Size of the whole file.
    pub file_len: u64,
}

impl Gguf {
    /// Parses and validates a whole file held in memory.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        Self::parse_prefix(bytes, bytes.len() as u64)
    }

    /// Parses the header from the first bytes of a file of `file_len` bytes (for example the
    /// answer to an HTTP Range request). Tensor offsets are checked against `file_len`.
    ///
    /// When `prefix` ends inside the header, the error is [`Error::NeedMoreBytes`] if the file
    /// is longer than the prefix (read more and try again), or [`Error::Truncated`] if the
    /// prefix is the whole file.
    pub fn parse_prefix(prefix: &[u8], file_len: u64) -> Result<Self> {
        if file_len < 4 {
            return Err(Error::Malformed(format!(
                "the file has only {file_len} bytes; a GGUF model file starts with \"GGUF\""
            )));
        }
        let mut r = Reader {
            buf: prefix,
            pos: 0,
            file_len,
        };
        let magic = r.bytes(4, "the magic number")?;
        if magic != MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(magic);
            return Err(Error::BadMagic { found });
        }
        let version = r.u32("the version")?;
        if version != 2 && version != 3 {
            return Err(Error::UnsupportedVersion(version));
        }
        let tensor_count = r.u64("the tensor count")?;
        let kv_count = r.u64("the metadata count")?;
        r.check_count(kv_count, MIN_KV_BYTES, "metadata entries")?;
        // The tensor infos follow the metadata, so this bound is loose but already refuses
        // counts that cannot fit in the file.
        r.check_count(tensor_count, MIN_TENSOR_INFO_BYTES, "tensor descriptions")?;

        let mut metadata = Vec::with_capacity(kv_count as usize);
        let mut key_index = HashMap::with_capacity(kv_count as usize);
        for _ in 0..kv_count {
            let key = r.string(MAX_STRING, "a metadata key")?;
            if key.is_empty() {
                return Err(Error::BadMetadata {
                    key,
                    reason: "empty key".into(),
                });
            }
            let value = value::read_value(&mut r, &key)?;
            if key_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(Error::BadMetadata {
                    key,
                    reason: "the key appears twice".into(),
                });
            }
            metadata.push((key, value));
        }

        let alignment = match key_index.get("general.alignment").map(|&i| &metadata[i].1) {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) => {
                let a = u64::from(*a);
                if a == 0 || !a.is_power_of_two() || a > MAX_ALIGNMENT {
                    return Err(Error::BadMetadata {
                        key: "general.alignment".into(),
                        reason: format!("{a} is not a power of two between 1 and {MAX_ALIGNMENT}"),
                    });
                }
                a
            }
            Some(other) => {
                return Err(Error::BadMetadata {
                    key: "general.alignment".into(),
                    reason: format!("must be a u32, found {}", other.type_name()),
                })
            }
        };

        r.check_count(tensor_count, MIN_TENSOR_INFO_BYTES, "tensor descriptions")?;
        let mut tensors = Vec::with_capacity(tensor_count as usize);
        let mut tensor_index = HashMap::with_capacity(tensor_count as usize);
        for _ in 0..tensor_count {
            let info = read_tensor_info(&mut r)?;
            if tensor_index.insert(info.name.clone(), tensors.len()).is_some() {
                return Err(Error::BadTensor {
                    name: info.name,
                    reason: "the name appears twice".into(),
                });
            }
            tensors.push(info);
        }

        let header_end = r.pos as u64;
        let data_offset = header_end
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| Error::malformed("the data offset overflows"))?;
        let data_len = file_len.saturating_sub(data_offset);
        check_tensor_layout(&tensors, alignment, data_len, file_len, data_offset)?;

        Ok(Self {
            version,
            metadata,
            key_index,
            tensors,
            tensor_index,
            alignment,
            data_offset,
            file_len,
        })
    }

    /// All metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A tensor's description.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor inside `file` (the whole file, or at least up to the tensor's end).
    pub fn tensor_data<'a>(&self, file: &'a [u8], info: &TensorInfo) -> Result<&'a [u8]> {
        let start = self.data_offset + info.offset;
        let end = start + info.n_bytes;
        let (start, end) = (to_usize(start, &info.name)?, to_usize(end, &info.name)?);
        file.get(start..end).ok_or_else(|| Error::Truncated {
            what: format!("the data of tensor {:?}", info.name),
            offset: start as u64,
            needed: info.n_bytes,
            available: (file.len() as u64).saturating_sub(start as u64),
        })
    }

    /// A required string value.
    pub fn str(&self, key: &str) -> Result<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Ok(s),
            Some(v) => Err(Error::wrong_type(key, "a string", v)),
            None => Err(Error::MissingKey(key.into())),
        }
    }

    /// An optional string value (an error if present with another type).
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.str(key).map(Some),
        }
    }

    /// A required non-negative integer value of any integer type, as u64.
    pub fn uint(&self, key: &str) -> Result<u64> {
        match self.get(key) {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| Error::wrong_type(key, "a non-negative integer", v)),
            None => Err(Error::MissingKey(key.into())),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_uint(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.uint(key).map(Some),
        }
    }

    /// An optional float (integers are accepted too).
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f32()
                .map(Some)
                .ok_or_else(|| Error::wrong_type(key, "a number", v)),
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(Error::wrong_type(key, "a bool", v)),
        }
    }

    /// An array value.
    pub fn array(&self, key: &str) -> Result<&Array> {
        match self.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(Error::wrong_type(key, "an array", v)),
            None => Err(Error::MissingKey(key.into())),
        }
    }
}

fn to_usize(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::BadTensor {
        name: what.into(),
        reason: format!("offset {v} does not fit this platform's address space"),
    })
}

fn read_tensor_info(r: &mut Reader<'_>) -> Result<TensorInfo> {
    let name = r.string(MAX_TENSOR_NAME - 1, "a tensor name")?;
    let bad = |reason: String| Error::BadTensor {
        name: name.clone(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty tensor name".into()));
    }
    let n_dims = r.u32("a tensor's dimension count")?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(bad(format!("{n_dims} dimensions (1 to {MAX_DIMS} are allowed)")));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    let mut elements: u64 = 1;
    for _ in 0..n_dims {
        let d = r.u64("a tensor dimension")?;
        // ggml stores dims as int64_t; anything above i64::MAX is a negative size.
        if d > i64::MAX as u64 {
            return Err(bad(format!("dimension {} is negative", d as i64)));
        }
        elements = elements
            .checked_mul(d)
            .ok_or_else(|| bad("the element count overflows 64 bits".into()))?;
        dims.push(d);
    }
    if usize::try_from(elements).is_err() || usize::try_from(dims[0]).is_err() {
        return Err(bad(format!(
            "{elements} elements do not fit this platform's {}-bit address space",
            usize::BITS
        )));
    }
    let type_id = r.u32("a tensor type")?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| Error::UnknownTensorType {
        name: name.clone(),
        type_id,
    })?;
    if dims[0] % u64::from(ty.block_size) != 0 {
        return Err(bad(format!(
            "row length {} is not a multiple of {}'s block size {}",
            dims[0], ty.name, ty.block_size
        )));
    }
    let n_bytes = ty
        .bytes_for(elements)
        .ok_or_else(|| bad("the byte size overflows 64 bits".into()))?;
    let offset = r.u64("a tensor offset")?;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        n_bytes,
    })
}

fn check_tensor_layout(
    tensors: &[TensorInfo],
    alignment: u64,
    data_len: u64,
    file_len: u64,
    data_offset: u64,
) -> Result<()> {
    let mut prev_end = 0u64;
    let mut prev_name: Option<&str> = None;
    for t in tensors {
        let bad = |reason: String| Error::BadTensor {
            name: t.name.clone(),
            reason,
        };
        if t.offset % alignment != 0 {
            return Err(bad(format!(
                "data offset {} is not a multiple of the alignment {alignment}",
                t.offset
            )));
        }
        if t.offset < prev_end {
            return Err(bad(match prev_name {
                Some(p) => format!(
                    "data at offset {} overlaps or precedes tensor {p:?}, which ends at {prev_end}",
                    t.offset
                ),
                None => format!("data offset {} is out of order", t.offset),
            }));
        }
        let end = t
            .offset
            .checked_add(t.n_bytes)
            .ok_or_else(|| bad("data end overflows 64 bits".into()))?;
        if end > data_len {
            return Err(Error::Truncated {
                what: format!("the data of tensor {:?}", t.name),
                offset: data_offset.saturating_add(t.offset),
                needed: t.n_bytes,
                available: file_len.saturating_sub(data_offset.saturating_add(t.offset)),
            });
        }
        prev_end = end;
        prev_name = Some(&t.name);
    }
    Ok(())
}

/// A bounds-checked little-endian reader over the header bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Length of the whole file, which may be longer than `buf` (a header prefix).
    file_len: u64,
}

impl<'a> Reader<'a> {
    /// Bytes left in the file after the current position.
    pub(crate) fn remaining_in_file(&self) -> u64 {
        self.file_len.saturating_sub(self.pos as u64)
    }

    /// Refuses `count` items of at least `min_bytes` each when they cannot fit in the file.
    pub(crate) fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<()> {
        let left = self.remaining_in_file();
        if count.saturating_mul(min_bytes) > left {
            return Err(Error::malformed(format!(
                "{count} {what} cannot fit in the {left} bytes left at offset {}",
                self.pos
            )));
        }
        Ok(())
    }

    pub(crate) fn bytes(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        let available = (self.buf.len() - self.pos) as u64;
        if n > available {
            let in_file = self.remaining_in_file();
            if n <= in_file && (self.buf.len() as u64) < self.file_len {
                return Err(Error::NeedMoreBytes {
                    at_least: (self.pos as u64).saturating_add(n),
                });
            }
            return Err(Error::Truncated {
                what: what.into(),
                offset: self.pos as u64,
                needed: n,
                available: in_file.min(available),
            });
        }
        let n = n as usize;
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.bytes(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    pub(crate) fn string(&mut self, max: u64, what: &str) -> Result<String> {
        let at = self.pos;
        let len = self.u64(what)?;
        if len > max || len > self.remaining_in_file() {
            return Err(Error::malformed(format!(
                "{what} at offset {at} claims {len} bytes (at most {} possible)",
                max.min(self.remaining_in_file())
            )));
        }
        let b = self.bytes(len, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| Error::malformed(format!("{what} at offset {at} is not valid UTF-8")))
    }
}

#[cfg(test)]
mod tests;
