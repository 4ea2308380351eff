//! Turning GGUF tensor bytes into candle tensors, with optional load-time conversion of weight
//! types that have no fast kernel.

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::Device;
use omp_protocol::ConvertMode;

use crate::bytes::FileBytes;
use crate::error::{Error, Result};
use crate::gguf::{GgmlType, Gguf, TensorInfo};
use crate::kernels::{QMatrix, WeightType};

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
        ConvertMode::None | ConvertMode::Q8_0 => GgmlDType::Q8_0,
        ConvertMode::Q4_0 => GgmlDType::Q4_0,
    };
    if WeightType::from_ggml_id(ty.id).is_none() || (mode != ConvertMode::None && is_slow_type(ty)) {
        GgmlType::from_candle(target)
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
        if WeightType::from_ggml_id(target.id).is_none() || (target != info.ty && info.ty.candle().is_none())
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

    /// Checks a vector without reading it.
    pub(crate) fn check_vector(&self, name: &str, len: u64) -> Result<()> {
        let info = self.expect_dims(name, &[len])?;
        if info.ty.candle().is_none() {
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
        let file = self.file.as_slice();
        let data = self.gguf.tensor_data(file, info)?;
        let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
        let target = converted_type(info.ty, self.convert);
        let m = if target == info.ty {
            let wt = WeightType::from_ggml_id(info.ty.id).ok_or_else(|| Error::UnsupportedTensorType {
                name: name.into(),
                ty: info.ty.name.into(),
            })?;
            // `data` is a subslice of `file`, so the difference of their starts is its offset.
            let start = data.as_ptr() as usize - file.as_ptr() as usize;
            QMatrix::in_file(wt, rows, cols, &self.file, start..start + data.len())
        } else {
            let t = qtensor_from_bytes(name, info.ty, &info.dims, data)?;
            let q = requantize(&t, target)?;
            self.converted += 1;
            let wt = WeightType::from_ggml_id(target.id)
                .ok_or_else(|| Error::Compute(format!("no kernel for {target}")))?;
            QMatrix::new(wt, rows, cols, q.data()?.into_owned())
        };
        self.tick();
        m.ok_or_else(|| Error::BadTensor {
            name: name.into(),
            reason: format!("{rows} rows of {cols} do not form whole blocks"),
        })
    }

    /// A small float vector (norm weights) as f32.
    pub(crate) fn vector(&mut self, name: &str, len: u64) -> Result<Vec<f32>> {
        let info = self.expect_dims(name, &[len])?;
        let data = self.gguf.tensor_data(self.file.as_slice(), info)?;
        let v = qtensor_from_bytes(name, info.ty, &info.dims, data)?
            .dequantize(&Device::Cpu)?
            .to_vec1::<f32>()?;
        self.tick();
        Ok(v)
    }
}

/// A candle tensor from GGUF tensor bytes (`dims` in ggml order). `name` is used in errors.
pub fn qtensor_from_bytes(name: &str, ty: GgmlType, dims: &[u64], data: &[u8]) -> Result<QTensor> {
    let dtype = ty.candle().ok_or_else(|| Error::UnsupportedTensorType {
        name: name.into(),
        ty: ty.name.into(),
    })?;
    let storage = storage_from_bytes(dtype, data)?;
    let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
    Ok(QTensor::new(storage, shape)?)
}

/// Converts a tensor to another type through f32 (rows must be whole blocks of the target).
pub fn requantize(t: &QTensor, to: GgmlType) -> Result<QTensor> {
    let dtype = to.candle().ok_or_else(|| Error::UnsupportedTensorType {
        name: "(conversion target)".into(),
        ty: to.name.into(),
    })?;
    let f = t.dequantize(&Device::Cpu)?;
    Ok(QTensor::quantize(&f, dtype)?)
}

/// Copies tensor bytes into a typed block vector. candle's own `QStorage::from_data` casts the
/// byte slice in place, which panics when the buffer holding the file is not aligned for the
/// block type; copying into a `Vec<Block>` is the same single copy without that requirement.
fn storage_from_bytes(dtype: GgmlDType, data: &[u8]) -> Result<QStorage> {
    use candle_core::quantized::k_quants::*;
    use candle_core::quantized::QuantizedType;
    use half::{bf16, f16};

    fn typed<T: GgmlType + Send + Sync + 'static>(data: &[u8]) -> Result<Box<dyn QuantizedType>> {
        let size = std::mem::size_of::<T>();
        if !data.len().is_multiple_of(size) {
            return Err(Error::Compute(format!(
                "{} bytes are not a whole number of {size}-byte blocks",
                data.len()
            )));
        }
        let n = data.len() / size;
        let mut v: Vec<T> = vec![T::zeros(); n];
        // SAFETY: every block type is a `#[repr(C)]` struct of plain numbers (or a float), so
        // any byte pattern is a valid value; `v` holds exactly `data.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), v.as_mut_ptr().cast::<u8>(), data.len()) };
        Ok(Box::new(v))
    }

    let b = match dtype {
        GgmlDType::F32 => typed::<f32>(data)?,
        GgmlDType::F16 => typed::<f16>(data)?,
        GgmlDType::BF16 => typed::<bf16>(data)?,
        GgmlDType::Q4_0 => typed::<BlockQ4_0>(data)?,
        GgmlDType::Q4_1 => typed::<BlockQ4_1>(data)?,
        GgmlDType::Q5_0 => typed::<BlockQ5_0>(data)?,
        GgmlDType::Q5_1 => typed::<BlockQ5_1>(data)?,
        GgmlDType::Q8_0 => typed::<BlockQ8_0>(data)?,
        GgmlDType::Q8_1 => typed::<BlockQ8_1>(data)?,
        GgmlDType::Q2K => typed::<BlockQ2K>(data)?,
        GgmlDType::Q3K => typed::<BlockQ3K>(data)?,
        GgmlDType::Q4K => typed::<BlockQ4K>(data)?,
        GgmlDType::Q5K => typed::<BlockQ5K>(data)?,
        GgmlDType::Q6K => typed::<BlockQ6K>(data)?,
        GgmlDType::Q8K => typed::<BlockQ8K>(data)?,
    };
    Ok(QStorage::Cpu(b))
}
