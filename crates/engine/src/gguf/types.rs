//! The ggml tensor storage types a GGUF file can name.

/// A ggml tensor type: how many elements one block holds and how many bytes it takes.
///
/// Every type a current GGUF file can carry is listed so that a file is validated (row sizes,
/// tensor sizes, offsets) even when the engine cannot compute with its type;
/// [`crate::quant::Codec::of`] tells which ones it can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgmlType {
    /// The id stored in the file.
    pub id: u32,
    /// Name as llama.cpp prints it.
    pub name: &'static str,
    /// Elements per block.
    pub block_size: u32,
    /// Bytes per block.
    pub type_size: u32,
}

/// `(id, name, elements per block, bytes per block)` for every type of ggml's `ggml_type` enum
/// (ids 4, 5 and 31-33, 36-38 were removed from the format).
const TYPES: &[(u32, &str, u32, u32)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

impl GgmlType {
    /// The type with this id, if ggml defines one.
    pub fn from_id(id: u32) -> Option<Self> {
        TYPES
            .iter()
            .find(|t| t.0 == id)
            .map(|&(id, name, block_size, type_size)| Self {
                id,
                name,
                block_size,
                type_size,
            })
    }

    /// The type with this name (case-insensitive), e.g. `q8_0`.
    pub fn from_name(name: &str) -> Option<Self> {
        TYPES
            .iter()
            .find(|t| t.1.eq_ignore_ascii_case(name))
            .and_then(|t| Self::from_id(t.0))
    }

    /// Whether this is a block-quantized type (as opposed to plain floats or integers).
    pub fn is_quantized(self) -> bool {
        self.block_size > 1
    }

    /// Bytes of `elements` elements, or `None` when `elements` is not a whole number of blocks
    /// or the size overflows.
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        if !elements.is_multiple_of(u64::from(self.block_size)) {
            return None;
        }
        (elements / u64::from(self.block_size)).checked_mul(u64::from(self.type_size))
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_agree_on_sizes() {
        for &(id, ..) in TYPES {
            let t = GgmlType::from_id(id).unwrap();
            if let Some(c) = crate::quant::Codec::of(t) {
                assert_eq!(c.elems, t.block_size as usize, "{t}");
                assert_eq!(c.bytes, t.type_size as usize, "{t}");
            }
        }
    }

    #[test]
    fn sizes() {
        let q41 = GgmlType::from_name("q4_1").unwrap();
        assert_eq!(q41.bytes_for(64), Some(40));
        assert_eq!(q41.bytes_for(33), None);
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(u32::MAX), None);
    }
}
