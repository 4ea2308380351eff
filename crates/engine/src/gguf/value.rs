//! Metadata values.

use super::{Reader, MAX_STRING};
use crate::error::{Error, Result};

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `u8`
    U8(u8),
    /// `i8`
    I8(i8),
    /// `u16`
    U16(u16),
    /// `i16`
    I16(i16),
    /// `u32`
    U32(u32),
    /// `i32`
    I32(i32),
    /// `f32`
    F32(f32),
    /// `bool` (stored as one byte, 0 or 1)
    Bool(bool),
    /// UTF-8 string
    Str(String),
    /// Array of one element type
    Array(Array),
    /// `u64`
    U64(u64),
    /// `i64`
    I64(i64),
    /// `f64`
    F64(f64),
}

/// A metadata array. Arrays of arrays are valid GGUF but no model uses them; they are refused,
/// which also bounds the parser's recursion.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// `u8` elements
    U8(Vec<u8>),
    /// `i8` elements
    I8(Vec<i8>),
    /// `u16` elements
    U16(Vec<u16>),
    /// `i16` elements
    I16(Vec<i16>),
    /// `u32` elements
    U32(Vec<u32>),
    /// `i32` elements
    I32(Vec<i32>),
    /// `f32` elements
    F32(Vec<f32>),
    /// `bool` elements
    Bool(Vec<bool>),
    /// string elements
    Str(Vec<String>),
    /// `u64` elements
    U64(Vec<u64>),
    /// `i64` elements
    I64(Vec<i64>),
    /// `f64` elements
    F64(Vec<f64>),
}

/// GGUF value type ids.
mod ty {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// Smallest encoded size of one element of a type (a string is at least its length field).
fn min_size(type_id: u32) -> Option<u64> {
    Some(match type_id {
        ty::U8 | ty::I8 | ty::BOOL => 1,
        ty::U16 | ty::I16 => 2,
        ty::U32 | ty::I32 | ty::F32 => 4,
        ty::U64 | ty::I64 | ty::F64 | ty::STRING => 8,
        ty::ARRAY => 12,
        _ => return None,
    })
}

impl Value {
    /// The GGUF type id of this value.
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => ty::U8,
            Value::I8(_) => ty::I8,
            Value::U16(_) => ty::U16,
            Value::I16(_) => ty::I16,
            Value::U32(_) => ty::U32,
            Value::I32(_) => ty::I32,
            Value::F32(_) => ty::F32,
            Value::Bool(_) => ty::BOOL,
            Value::Str(_) => ty::STRING,
            Value::Array(_) => ty::ARRAY,
            Value::U64(_) => ty::U64,
            Value::I64(_) => ty::I64,
            Value::F64(_) => ty::F64,
        }
    }

    /// A short name of the type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
        }
    }

    /// Any non-negative integer, widened.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any number as f32.
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => self.as_u64().map(|v| v as f32),
        }
    }

    /// A short rendering for `omp inspect` (long arrays are summarised).
    pub fn summary(&self) -> String {
        match self {
            Value::Str(s) if s.chars().count() > 80 => {
                let head: String = s.chars().take(77).collect();
                format!("{head:?}…")
            }
            Value::Str(s) => format!("{s:?}"),
            Value::Array(a) => format!("[{}; {}]", a.type_name(), a.len()),
            Value::Bool(b) => b.to_string(),
            Value::F32(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            other => other
                .as_u64()
                .map_or_else(|| format!("{other:?}"), |v| v.to_string()),
        }
    }
}

impl Array {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::Str(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type's name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Array::U8(_) => "u8",
            Array::I8(_) => "i8",
            Array::U16(_) => "u16",
            Array::I16(_) => "i16",
            Array::U32(_) => "u32",
            Array::I32(_) => "i32",
            Array::F32(_) => "f32",
            Array::Bool(_) => "bool",
            Array::Str(_) => "string",
            Array::U64(_) => "u64",
            Array::I64(_) => "i64",
            Array::F64(_) => "f64",
        }
    }

    /// The GGUF type id of the elements.
    pub fn elem_type_id(&self) -> u32 {
        match self {
            Array::U8(_) => ty::U8,
            Array::I8(_) => ty::I8,
            Array::U16(_) => ty::U16,
            Array::I16(_) => ty::I16,
            Array::U32(_) => ty::U32,
            Array::I32(_) => ty::I32,
            Array::F32(_) => ty::F32,
            Array::Bool(_) => ty::BOOL,
            Array::Str(_) => ty::STRING,
            Array::U64(_) => ty::U64,
            Array::I64(_) => ty::I64,
            Array::F64(_) => ty::F64,
        }
    }

    /// Integer elements (any integer type) as i64, or `None` for other element types.
    pub fn to_i64s(&self) -> Option<Vec<i64>> {
        Some(match self {
            Array::U8(v) => v.iter().map(|&x| x.into()).collect(),
            Array::I8(v) => v.iter().map(|&x| x.into()).collect(),
            Array::U16(v) => v.iter().map(|&x| x.into()).collect(),
            Array::I16(v) => v.iter().map(|&x| x.into()).collect(),
            Array::U32(v) => v.iter().map(|&x| x.into()).collect(),
            Array::I32(v) => v.iter().map(|&x| x.into()).collect(),
            Array::U64(v) => v.iter().map(|&x| x as i64).collect(),
            Array::I64(v) => v.clone(),
            _ => return None,
        })
    }
}

/// Reads a value of a type id read from the file.
pub(super) fn read_value(r: &mut Reader<'_>, key: &str) -> Result<Value> {
    let type_id = r.u32("a metadata value type")?;
    read_typed(r, key, type_id)
}

fn bad(key: &str, reason: impl Into<String>) -> Error {
    Error::BadMetadata {
        key: key.into(),
        reason: reason.into(),
    }
}

fn read_typed(r: &mut Reader<'_>, key: &str, type_id: u32) -> Result<Value> {
    Ok(match type_id {
        ty::U8 => Value::U8(r.u8(key)?),
        ty::I8 => Value::I8(r.u8(key)? as i8),
        ty::U16 => Value::U16(r.u16(key)?),
        ty::I16 => Value::I16(r.u16(key)? as i16),
        ty::U32 => Value::U32(r.u32(key)?),
        ty::I32 => Value::I32(r.u32(key)? as i32),
        ty::F32 => Value::F32(f32::from_bits(r.u32(key)?)),
        ty::U64 => Value::U64(r.u64(key)?),
        ty::I64 => Value::I64(r.u64(key)? as i64),
        ty::F64 => Value::F64(f64::from_bits(r.u64(key)?)),
        ty::BOOL => Value::Bool(read_bool(r, key)?),
        ty::STRING => Value::Str(read_string(r, key)?),
        ty::ARRAY => Value::Array(read_array(r, key)?),
        other => return Err(bad(key, format!("unknown value type {other}"))),
    })
}

fn read_bool(r: &mut Reader<'_>, key: &str) -> Result<bool> {
    match r.u8(key)? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(bad(key, format!("bool byte is {b}, not 0 or 1"))),
    }
}

fn read_string(r: &mut Reader<'_>, key: &str) -> Result<String> {
    r.string(MAX_STRING, key)
}

fn read_array(r: &mut Reader<'_>, key: &str) -> Result<Array> {
    let elem = r.u32(key)?;
    let count = r.u64(key)?;
    if elem == ty::ARRAY {
        return Err(bad(key, "arrays of arrays are not supported"));
    }
    let min = min_size(elem).ok_or_else(|| bad(key, format!("unknown array element type {elem}")))?;
    r.check_count(count, min, &format!("elements of {key:?}"))?;
    let n = count as usize;
    macro_rules! prim {
        ($variant:ident, $read:ident, $conv:expr) => {{
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push($conv(r.$read(key)?));
            }
            Array::$variant(v)
        }};
    }
    Ok(match elem {
        ty::U8 => prim!(U8, u8, |x| x),
        ty::I8 => prim!(I8, u8, |x: u8| x as i8),
        ty::U16 => prim!(U16, u16, |x| x),
        ty::I16 => prim!(I16, u16, |x: u16| x as i16),
        ty::U32 => prim!(U32, u32, |x| x),
        ty::I32 => prim!(I32, u32, |x: u32| x as i32),
        ty::F32 => prim!(F32, u32, f32::from_bits),
        ty::U64 => prim!(U64, u64, |x| x),
        ty::I64 => prim!(I64, u64, |x: u64| x as i64),
        ty::F64 => prim!(F64, u64, f64::from_bits),
        ty::BOOL => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_bool(r, key)?);
            }
            Array::Bool(v)
        }
        ty::STRING => {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(read_string(r, key)?);
            }
            Array::Str(v)
        }
        other => return Err(bad(key, format!("unknown array element type {other}"))),
    })
}
