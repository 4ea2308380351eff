//! Rotary position embeddings, as ggml computes them: both pair layouts, partial rotary
//! dimensions, linear scaling, per-pair frequency factors (Llama 3's `rope_freqs`, Phi-3's long
//! and short factors), an attention factor on cos and sin, and YaRN.
//!
//! The angles are tabulated once per position. As in ggml, the angle of pair `i` at position
//! `p` is `p` times `base^(-2/n_rot)` multiplied in `i` times (a running f32 product), divided
//! by the pair's factor, times the frequency scale. Sine and cosine are taken in f64 and
//! rounded, so the tables are the same whichever libm the platform has.

/// Which elements of a head rotate together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeMode {
    /// Adjacent pairs `(2i, 2i + 1)` (ggml's normal mode; Llama's converted weights).
    Adjacent,
    /// Halves: `(i, i + n_rot / 2)` (NEOX mode: Qwen, Gemma, Phi-3, OLMo 2, Falcon).
    Neox,
}

/// YaRN's context extension (`rope.scaling.type = yarn`).
#[derive(Debug, Clone, PartialEq)]
pub struct Yarn {
    /// The context the model was trained at before the extension.
    pub original_context: usize,
    /// How much of the extrapolated angle is mixed in (1 for YaRN).
    pub ext_factor: f32,
    /// Where the ramp between interpolation and extrapolation starts and ends (32 and 1).
    pub beta_fast: f32,
    /// See `beta_fast`.
    pub beta_slow: f32,
}

/// Everything that defines one table of angles.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeParams {
    /// Pair layout.
    pub mode: RopeMode,
    /// Rotated dimensions of a head (`rope.dimension_count`; the rest pass through).
    pub dims: usize,
    /// `rope.freq_base`.
    pub base: f32,
    /// `1 / rope.scaling.factor` for linear scaling and YaRN, else 1.
    pub freq_scale: f32,
    /// Multiplies cos and sin (`rope.scaling.attn_factor`, Phi-3's long-rope factor).
    pub attn_factor: f32,
    /// Per-pair divisors of the angle, `dims / 2` of them.
    pub factors: Option<Vec<f32>>,
    /// YaRN, when the file asks for it.
    pub yarn: Option<Yarn>,
}

/// A table of angles for every position of the context.
#[derive(Debug, Clone)]
pub struct Rope {
    mode: RopeMode,
    dims: usize,
    /// `cos[p * dims / 2 + i]`: the cosine of pair `i` at position `p` (times the factor).
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    /// The table for positions `0..context`.
    pub fn new(p: &RopeParams, context: usize) -> Self {
        let half = p.dims / 2;
        // ggml: `powf(freq_base, -2.0f / n_dims)`, the exponent rounded to f32 first.
        let exponent = -2.0f32 / p.dims as f32;
        let theta_scale = f64::from(p.base).powf(f64::from(exponent)) as f32;
        let mut mscale = p.attn_factor;
        let mut corr = [0f32; 2];
        if let Some(y) = &p.yarn {
            corr = corr_dims(p.dims, y, p.base);
            if y.ext_factor != 0.0 {
                mscale *= 1.0 + 0.1 * (f64::from(1.0 / p.freq_scale).ln() as f32);
            }
        }
        let mut cos = Vec::with_capacity(context * half);
        let mut sin = Vec::with_capacity(context * half);
        for pos in 0..context {
            let mut theta = pos as f32;
            for i in 0..half {
                let ff = p.factors.as_ref().and_then(|f| f.get(i)).copied().unwrap_or(1.0);
                let extrap = theta / ff;
                let interp = p.freq_scale * extrap;
                let angle = match &p.yarn {
                    Some(y) if y.ext_factor != 0.0 => {
                        let ramp = ramp(corr[0], corr[1], 2 * i) * y.ext_factor;
                        interp * (1.0 - ramp) + extrap * ramp
                    }
                    _ => interp,
                };
                let (s, c) = f64::from(angle).sin_cos();
                cos.push(c as f32 * mscale);
                sin.push(s as f32 * mscale);
                theta *= theta_scale;
            }
        }
        Self {
            mode: p.mode,
            dims: p.dims,
            cos,
            sin,
        }
    }

    /// Rotates every head of `x` (rows of `heads * head_dim`, positions `pos..`).
    pub fn apply(&self, x: &mut [f32], heads: usize, head_dim: usize, pos: usize) {
        let half = self.dims / 2;
        for (i, row) in x.chunks_exact_mut(heads * head_dim).enumerate() {
            let at = (pos + i) * half;
            let (c, s) = (&self.cos[at..at + half], &self.sin[at..at + half]);
            for head in row.chunks_exact_mut(head_dim) {
                for j in 0..half {
                    let (a, b) = match self.mode {
                        RopeMode::Adjacent => (2 * j, 2 * j + 1),
                        RopeMode::Neox => (j, j + half),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * c[j] - x1 * s[j];
                    head[b] = x0 * s[j] + x1 * c[j];
                }
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        4 * (self.cos.len() + self.sin.len())
    }

    /// Positions tabulated.
    pub fn positions(&self) -> usize {
        self.cos.len() / (self.dims / 2).max(1)
    }
}

/// ggml's `rope_yarn_ramp`: 1 below `low`, 0 above `high`, linear between (`i0 / 2` is the
/// pair index).
fn ramp(low: f32, high: f32, i0: usize) -> f32 {
    let y = ((i0 / 2) as f32 - low) / (high - low).max(0.001);
    1.0 - y.clamp(0.0, 1.0)
}

/// ggml's `ggml_rope_yarn_corr_dims`: the pair range over which YaRN ramps.
fn corr_dims(dims: usize, y: &Yarn, base: f32) -> [f32; 2] {
    let dim = |rot: f32| -> f64 {
        let n = dims as f64;
        n * (y.original_context as f64 / (f64::from(rot) * 2.0 * std::f64::consts::PI)).ln()
            / (2.0 * f64::from(base).ln())
    };
    let start = dim(y.beta_fast).floor() as f32;
    let end = dim(y.beta_slow).ceil() as f32;
    [start.max(0.0), end.min(dims as f32 - 1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: RopeMode, dims: usize) -> RopeParams {
        RopeParams {
            mode,
            dims,
            base: 10_000.0,
            freq_scale: 1.0,
            attn_factor: 1.0,
            factors: None,
            yarn: None,
        }
    }

    #[test]
    fn pair_layouts_rotate_the_right_elements() {
        // Position 1, one pair of a 2-wide rotation: angle 1 radian.
        let (c, s) = (1f64.cos() as f32, 1f64.sin() as f32);
        let r = Rope::new(&params(RopeMode::Adjacent, 2), 2);
        let mut x = [1.0, 0.0, 7.0, 9.0];
        r.apply(&mut x, 1, 4, 1);
        assert_eq!(x, [c, s, 7.0, 9.0], "partial rotation leaves the tail");
        let r = Rope::new(&params(RopeMode::Neox, 4), 2);
        let mut x = [1.0, 5.0, 0.0, 6.0];
        r.apply(&mut x, 1, 4, 1);
        // Pair 0 is (x[0], x[2]) at angle 1; pair 1 is (x[1], x[3]) at angle 1/100.
        assert_eq!(x[0], c);
        assert_eq!(x[2], s);
        let (c1, s1) = ((0.01f64).cos() as f32, (0.01f64).sin() as f32);
        assert!((x[1] - (5.0 * c1 - 6.0 * s1)).abs() < 1e-6);
    }

    #[test]
    fn factors_divide_and_the_attention_factor_scales() {
        let mut p = params(RopeMode::Neox, 4);
        p.factors = Some(vec![2.0, 1.0]);
        p.attn_factor = 1.5;
        let r = Rope::new(&p, 3);
        let mut x = [1.0, 0.0, 0.0, 0.0];
        r.apply(&mut x, 1, 4, 2);
        assert_eq!(x[0], (1f64.cos() as f32) * 1.5);
        assert_eq!(x[2], (1f64.sin() as f32) * 1.5);
        // Linear scaling halves the angle.
        let mut p = params(RopeMode::Adjacent, 2);
        p.freq_scale = 0.5;
        let r = Rope::new(&p, 3);
        let mut x = [1.0, 0.0];
        r.apply(&mut x, 1, 2, 2);
        assert_eq!(x[0], 1f64.cos() as f32);
    }

    #[test]
    fn yarn_mixes_interpolation_and_extrapolation() {
        let mut p = params(RopeMode::Neox, 64);
        p.freq_scale = 0.25;
        p.yarn = Some(Yarn {
            original_context: 4096,
            ext_factor: 1.0,
            beta_fast: 32.0,
            beta_slow: 1.0,
        });
        let r = Rope::new(&p, 5000);
        // The fastest pairs extrapolate (the plain angle); the slowest interpolate.
        let plain = Rope::new(&params(RopeMode::Neox, 64), 5000);
        let at = 4000 * 32;
        let mscale = 1.0 + 0.1 * 4f32.ln();
        assert!((r.cos[at] - plain.cos[at] * mscale).abs() < 1e-5);
        assert!((r.cos[at + 31] - plain.cos[at + 31] * mscale).abs() > 1e-4);
    }
}
