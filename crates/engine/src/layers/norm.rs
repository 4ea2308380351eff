//! Normalisation: RMS norm (most architectures) and LayerNorm with a bias (Falcon), over whole
//! rows or over each head of a row (per-head query/key norms).

use crate::kernels::ops::{layer_norm, rms_norm};

/// Which normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `x / sqrt(mean(x²) + eps) * w`.
    Rms,
    /// `(x - mean) / sqrt(var + eps) * w + b`.
    Layer,
}

/// A norm with its weights (and LayerNorm's bias), over rows of `weight.len()` values.
#[derive(Debug, Clone)]
pub struct Norm {
    /// RMS or LayerNorm.
    pub kind: NormKind,
    /// Per-element weights.
    pub weight: Vec<f32>,
    /// LayerNorm's bias, if the file has one.
    pub bias: Option<Vec<f32>>,
    /// Added to the variance (or mean square) before the square root.
    pub eps: f32,
}

impl Norm {
    /// Normalises each row of `x` (rows of the weight's width) into `out`.
    pub fn apply(&self, x: &[f32], out: &mut [f32]) {
        match self.kind {
            NormKind::Rms => rms_norm(x, &self.weight, self.eps, out),
            NormKind::Layer => layer_norm(x, &self.weight, self.bias.as_deref(), self.eps, out),
        }
    }

    /// Normalises `x` in place, row by row; with a head-wide weight this is a per-head norm
    /// (Qwen3's and Gemma 3's query and key norms).
    pub fn apply_in_place(&self, x: &mut [f32], tmp: &mut Vec<f32>) {
        tmp.clear();
        tmp.extend_from_slice(x);
        self.apply(tmp, x);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        4 * (self.weight.len() + self.bias.as_ref().map_or(0, Vec::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_head_norms_normalise_each_head_alone() {
        let n = Norm {
            kind: NormKind::Rms,
            weight: vec![1.0, 1.0],
            bias: None,
            eps: 0.0,
        };
        let mut x = vec![3.0, 4.0, 0.5, 0.5];
        n.apply_in_place(&mut x, &mut Vec::new());
        let r = (12.5f32).sqrt();
        assert_eq!(x, vec![3.0 / r, 4.0 / r, 1.0, 1.0]);
        let ln = Norm {
            kind: NormKind::Layer,
            weight: vec![2.0, 2.0],
            bias: Some(vec![1.0, 1.0]),
            eps: 0.0,
        };
        let mut y = vec![0f32; 2];
        ln.apply(&[1.0, 3.0], &mut y);
        assert_eq!(y, vec![-1.0, 3.0]);
    }
}
