//! A quantized matrix with an optional bias: `y = W x + b`.

use crate::kernels::{QActivations, QMatrix};

/// A linear layer.
#[derive(Debug, Clone)]
pub struct Linear {
    /// The weights, one row per output.
    pub w: QMatrix,
    /// Added to every output row, when the file has one (Qwen2's Q/K/V).
    pub b: Option<Vec<f32>>,
}

impl Linear {
    /// A layer without a bias.
    pub fn new(w: QMatrix) -> Self {
        Self { w, b: None }
    }

    /// Outputs per input row.
    pub fn rows(&self) -> usize {
        self.w.rows()
    }

    /// `out` (`x.rows()` rows of [`Self::rows`]) = `W x + b`.
    pub fn forward(&self, x: &QActivations, out: &mut [f32]) {
        self.w.matmul(x, out);
        self.add_bias(out);
    }

    /// Adds the bias to each row of `out`.
    pub fn add_bias(&self, out: &mut [f32]) {
        if let Some(b) = &self.b {
            for row in out.chunks_exact_mut(b.len()) {
                for (o, &v) in row.iter_mut().zip(b) {
                    *o += v;
                }
            }
        }
    }

    /// Bytes held (weights as stored, and the bias).
    pub fn bytes(&self) -> usize {
        self.w.bytes() + self.b.as_ref().map_or(0, |b| 4 * b.len())
    }
}
