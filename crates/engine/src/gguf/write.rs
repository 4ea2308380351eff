//! Writing GGUF files: tiny test models built in code, and `omp quantize`.

use super::{Array, GgmlType, Value, DEFAULT_ALIGNMENT};

/// Builds a GGUF v3 file in memory.
#[derive(Debug, Default, Clone)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Data)>,
}

/// A tensor's contents: real bytes, or a length of zeros that is never materialised (for
/// header-only files that describe models far larger than memory).
#[derive(Debug, Clone)]
enum Data {
    Bytes(Vec<u8>),
    Zeros(u64),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Zeros(n) => *n,
        }
    }
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a metadata entry.
    pub fn kv(&mut self, key: impl Into<String>, value: Value) -> &mut Self {
        let key = key.into();
        if let Some(slot) = self.metadata.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.metadata.push((key, value));
        }
        self
    }

    /// Removes a metadata entry.
    pub fn remove_kv(&mut self, key: &str) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self
    }

    /// Adds a string entry.
    pub fn str(&mut self, key: impl Into<String>, v: impl Into<String>) -> &mut Self {
        self.kv(key, Value::Str(v.into()))
    }

    /// Adds a u32 entry.
    pub fn u32(&mut self, key: impl Into<String>, v: u32) -> &mut Self {
        self.kv(key, Value::U32(v))
    }

    /// Adds an f32 entry.
    pub fn f32(&mut self, key: impl Into<String>, v: f32) -> &mut Self {
        self.kv(key, Value::F32(v))
    }

    /// Adds a bool entry.
    pub fn bool(&mut self, key: impl Into<String>, v: bool) -> &mut Self {
        self.kv(key, Value::Bool(v))
    }

    /// Adds a tensor. `dims` are in ggml order (row length first); `data` must be its encoding.
    pub fn tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors
            .push((name.into(), dims.to_vec(), ty, Data::Bytes(data)));
        self
    }

    /// Adds an all-zero tensor whose bytes exist only in [`GgufWriter::header`]'s arithmetic:
    /// lets tests describe a multi-gigabyte model without allocating it. `None` when the shape
    /// is not whole blocks of `ty` or its size overflows.
    pub fn zero_tensor(&mut self, name: impl Into<String>, dims: &[u64], ty: GgmlType) -> Option<&mut Self> {
        let elements = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d))?;
        let n = ty.bytes_for(elements)?;
        self.tensors
            .push((name.into(), dims.to_vec(), ty, Data::Zeros(n)));
        Some(self)
    }

    /// Adds an f32 tensor from values.
    pub fn f32_tensor(&mut self, name: impl Into<String>, dims: &[u64], values: &[f32]) -> &mut Self {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let ty = GgmlType::from_id(0).expect("F32 is type 0");
        self.tensor(name, dims, ty, data)
    }

    /// Removes a tensor.
    pub fn remove_tensor(&mut self, name: &str) -> &mut Self {
        self.tensors.retain(|t| t.0 != name);
        self
    }

    /// The metadata entries added so far.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The header (metadata, tensor table and padding up to the data) and the whole file's
    /// length; the bytes after the header are the tensors' data, in order, each padded to the
    /// alignment.
    pub fn header(&self) -> (Vec<u8>, u64) {
        let alignment = self.alignment();
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            write_str(&mut out, k);
            out.extend_from_slice(&v.type_id().to_le_bytes());
            write_value(&mut out, v);
        }
        let mut offset = 0u64;
        for (name, dims, ty, data) in &self.tensors {
            write_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + data.len()).next_multiple_of(alignment);
        }
        pad(&mut out, alignment);
        let total = out.len() as u64 + offset;
        (out, total)
    }

    /// Serialises the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let alignment = self.alignment();
        let (mut out, _) = self.header();
        for (_, _, _, data) in &self.tensors {
            match data {
                Data::Bytes(b) => out.extend_from_slice(b),
                Data::Zeros(n) => out.resize(out.len() + *n as usize, 0),
            }
            pad(&mut out, alignment);
        }
        out
    }

    fn alignment(&self) -> u64 {
        match self.metadata.iter().find(|(k, _)| k == "general.alignment") {
            Some((_, Value::U32(a))) if a.is_power_of_two() => u64::from(*a),
            _ => DEFAULT_ALIGNMENT,
        }
    }
}

fn pad(out: &mut Vec<u8>, alignment: u64) {
    let len = (out.len() as u64).next_multiple_of(alignment) as usize;
    out.resize(len, 0);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.push(*x as u8),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::Str(s) => write_str(out, s),
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Array(a) => {
            out.extend_from_slice(&a.elem_type_id().to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            match a {
                Array::U8(v) => out.extend_from_slice(v),
                Array::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
                Array::U16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::I16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::U32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::Bool(v) => out.extend(v.iter().map(|&x| u8::from(x))),
                Array::Str(v) => v.iter().for_each(|s| write_str(out, s)),
                Array::U64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
                Array::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            }
        }
    }
}
