//! Turning GGUF tensor bytes into the engine's matrices and vectors, with optional load-time
//! conversion of weight types that have no fast kernel.

use std::ops::Range;

use omp_protocol::ConvertMode;

use crate::bytes::FileBytes;
use crate::error::{Error, Result};
use crate::gguf::{GgmlType, Gguf, TensorInfo};
use crate::kernels::{QMatrix, WeightType};
use crate::quant::Codec;

/// Types with a kernel that is slower than Q8_0's and Q4_0's (the minimum term and the fifth
/// bit cost extra work per block); `ConvertMode` re-quantizes these at load time.
pub(crate) fn is_slow_type(ty: GgmlType) -> bool {
    matches!(ty.name, "Q4_1" | "Q5_0" | "Q5_1")
}

/// The type a weight matrix has once loaded: types without a kernel (F16, the K-quants, ...)
/// become Q8_0 (or the conversion target), slow types become the conversion target when one is
/// set, and the rest stay as stored.
pub(crate) fn converted_type(ty: GgmlType, mode: ConvertMode) -> GgmlType {
    let target = match mode {
        ConvertMode::None | ConvertMode::Q8_0 => "Q8_0",
        ConvertMode::Q4_0 => "Q4_0",
    };
    if WeightType::from_ggml_id(ty.id).is_none() || (mode != ConvertMode::None && is_slow_type(ty)) {
        GgmlType::from_name(target).unwrap_or(ty)
    } else {
        ty
    }
}

/// Reads tensors out of a file held in memory.
pub(crate) struct Loader<'a> {
    gguf: &'a Gguf,
    /// The file; matrices kept in their stored type point into it rather than copy it.
    file: FileBytes,
    convert: ConvertMode,
    /// Tensors read so far, for progress reports.
    pub(crate) done: usize,
    /// Tensors converted.
    pub(crate) converted: usize,
    progress: &'a mut dyn FnMut(usize, usize),
}

impl<'a> Loader<'a> {
    pub(crate) fn new(
        gguf: &'a Gguf,
        file: FileBytes,
        convert: ConvertMode,
        progress: &'a mut dyn FnMut(usize, usize),
    ) -> Self {
        Self {
            gguf,
            file,
            convert,
            done: 0,
            converted: 0,
            progress,
        }
    }

    /// A tensor's description, or an error naming it.
    pub(crate) fn info(&self, name: &str) -> Result<&'a TensorInfo> {
        self.gguf
            .tensor(name)
            .ok_or_else(|| Error::MissingTensor(name.into()))
    }

    /// Whether the file has a tensor.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.gguf.tensor(name).is_some()
    }

    /// Checks a tensor's shape (ggml order: row length first).
    pub(crate) fn expect_dims(&self, name: &str, dims: &[u64]) -> Result<&'a TensorInfo> {
        let info = self.info(name)?;
        if info.dims != dims {
            return Err(Error::BadTensor {
                name: name.into(),
                reason: format!("shape {:?}, expected {:?}", info.dims, dims),
            });
        }
        Ok(info)
    }

    fn tick(&mut self) {
        self.done += 1;
        (self.progress)(self.done, self.gguf.tensors.len());
    }

    /// Checks a matrix without reading it: present, shaped `dims`, and of a type that has a
    /// kernel or can be converted to one.
    pub(crate) fn check_matrix(&self, name: &str, dims: &[u64]) -> Result<()> {
        let info = self.expect_dims(name, dims)?;
        let target = converted_type(info.ty, self.convert);
        if WeightType::from_ggml_id(target.id).is_none()
            || (target != info.ty && Codec::of(info.ty).is_none())
        {
            return Err(Error::UnsupportedTensorType {
                name: name.into(),
                ty: info.ty.name.into(),
            });
        }
        if !(info.dims[0] as usize).is_multiple_of(crate::kernels::BLOCK) {
            return Err(Error::BadTensor {
                name: name.into(),
                reason: format!("rows of {} values are not whole blocks of 32", info.dims[0]),
            });
        }
        Ok(())
    }

    /// Checks a tensor read as f32 values (a vector, or a mixture's router) without reading it.
    pub(crate) fn check_values(&self, name: &str, dims: &[u64]) -> Result<()> {
        let info = self.expect_dims(name, dims)?;
        if Codec::of(info.ty).is_none() {
            return Err(Error::UnsupportedTensorType {
                name: name.into(),
                ty: info.ty.name.into(),
            });
        }
        Ok(())
    }

    /// A weight matrix (`dims` in ggml order: row length first), in a type with a kernel:
    /// as stored when it has one, else converted (see [`converted_type`]).
    pub(crate) fn matrix(&mut self, name: &str, dims: &[u64]) -> Result<QMatrix> {
        let info = self.expect_dims(name, dims)?;
        let range = self.data_range(info)?;
        let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
        let m = self.matrix_from(name, info.ty, rows, cols, range)?;
        self.tick();
        Ok(m)
    }

    /// A stack of expert matrices (`dims`: row length, rows, experts), each its own matrix.
    pub(crate) fn experts(&mut self, name: &str, dims: &[u64]) -> Result<Vec<QMatrix>> {
        let info = self.expect_dims(name, dims)?;
        let range = self.data_range(info)?;
        let (cols, rows, n) = (dims[0] as usize, dims[1] as usize, dims[2] as usize);
        let per = range.len() / n.max(1);
        let mut out = Vec::with_capacity(n);
        for e in 0..n {
            let start = range.start + e * per;
            out.push(self.matrix_from(name, info.ty, rows, cols, start..start + per)?);
        }
        self.tick();
        Ok(out)
    }

    /// A matrix from `data`, a subslice of the file: in place when its type has a kernel,
    /// else converted.
    fn matrix_from(
        &mut self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        range: Range<usize>,
    ) -> Result<QMatrix> {
        let file = self.file.as_slice();
        let data = &file[range.clone()];
        let target = converted_type(ty, self.convert);
        let m = if target == ty {
            let wt = WeightType::from_ggml_id(ty.id).ok_or_else(|| Error::UnsupportedTensorType {
                name: name.into(),
                ty: ty.name.into(),
            })?;
            QMatrix::in_file(wt, rows, cols, &self.file, range)
        } else {
            let q = requantize(name, ty, data, target)?;
            self.converted += 1;
            let wt = WeightType::from_ggml_id(target.id)
                .ok_or_else(|| Error::Compute(format!("no kernel for {target}")))?;
            QMatrix::new(wt, rows, cols, q)
        };
        m.ok_or_else(|| Error::BadTensor {
            name: name.into(),
            reason: format!("{rows} rows of {cols} do not form whole blocks"),
        })
    }

    /// Where a tensor's bytes lie in the file (checked against its length).
    fn data_range(&self, info: &TensorInfo) -> Result<Range<usize>> {
        let file = self.file.as_slice();
        let data = self.gguf.tensor_data(file, info)?;
        // `data` is a subslice of `file`, so the difference of their starts is its offset.
        let start = data.as_ptr() as usize - file.as_ptr() as usize;
        Ok(start..start + data.len())
    }

    /// A small float vector (norm weights, biases) as f32.
    pub(crate) fn vector(&mut self, name: &str, len: u64) -> Result<Vec<f32>> {
        self.values(name, &[len])
    }

    /// Any tensor's values as f32 (vectors, and a mixture's router).
    pub(crate) fn values(&mut self, name: &str, dims: &[u64]) -> Result<Vec<f32>> {
        let info = self.expect_dims(name, dims)?;
        let data = self.gguf.tensor_data(self.file.as_slice(), info)?;
        let v = dequantize(name, info.ty, data, info.elements() as usize)?;
        self.tick();
        Ok(v)
    }
}

/// The `n` values of a tensor's bytes as f32. `name` is used in errors.
pub fn dequantize(name: &str, ty: GgmlType, data: &[u8], n: usize) -> Result<Vec<f32>> {
    let codec = Codec::of(ty).ok_or_else(|| Error::UnsupportedTensorType {
        name: name.into(),
        ty: ty.name.into(),
    })?;
    if !n.is_multiple_of(codec.elems) || data.len() != n / codec.elems * codec.bytes {
        return Err(Error::BadTensor {
            name: name.into(),
            reason: format!("{} bytes do not hold {n} values of {ty}", data.len()),
        });
    }
    let mut out = vec![0f32; n];
    codec.dequantize(data, &mut out);
    Ok(out)
}

/// Converts tensor bytes of type `from` to type `to` through f32 (rows must be whole blocks
/// of `to`; the caller checks). `name` is used in errors.
pub fn requantize(name: &str, from: GgmlType, data: &[u8], to: GgmlType) -> Result<Vec<u8>> {
    let codec = Codec::of(from).ok_or_else(|| Error::UnsupportedTensorType {
        name: name.into(),
        ty: from.name.into(),
    })?;
    let target = Codec::of(to).ok_or_else(|| Error::UnsupportedTensorType {
        name: "(conversion target)".into(),
        ty: to.name.into(),
    })?;
    let n = data.len() / codec.bytes * codec.elems;
    if !n.is_multiple_of(target.elems) {
        return Err(Error::BadTensor {
            name: name.into(),
            reason: format!("{n} values are not whole blocks of {to}"),
        });
    }
    // In pieces of 64Ki values (whole blocks of both types), so a large matrix never exists as
    // f32 at once: wasm memory never shrinks, so a temporary would stay as the tab's peak.
    const PIECE: usize = 1 << 16;
    let mut out = Vec::with_capacity(n / target.elems * target.bytes);
    let mut values = vec![0f32; PIECE.min(n)];
    for piece in data.chunks(PIECE / codec.elems * codec.bytes) {
        let v = &mut values[..piece.len() / codec.bytes * codec.elems];
        codec.dequantize(piece, v);
        out.extend_from_slice(&target.quantize(v));
    }
    Ok(out)
}
