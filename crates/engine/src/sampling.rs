//! Choosing the next token from logits: repeat penalty, then top-k, top-p and min-p filters,
//! then temperature, as llama.cpp's default sampler chain orders them.

use omp_protocol::SamplingParams;

/// A small, fast, seedable generator (xoshiro256**), identical on every platform so that a
/// seed reproduces the same text natively and in the browser.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Seeds the state with SplitMix64, as the xoshiro authors recommend.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Picks tokens according to [`SamplingParams`].
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    /// Reused between calls so the per-token path does not allocate.
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler seeded from `params.seed`.
    pub fn new(params: &SamplingParams) -> Self {
        Self {
            params: params.clone(),
            rng: Rng::new(params.seed),
            candidates: Vec::new(),
        }
    }

    /// Applies the repeat penalty to `logits` in place for the tokens in `recent` (the caller
    /// passes the last `repeat_last_n` tokens).
    pub fn penalize(&self, logits: &mut [f32], recent: &[u32]) {
        let p = self.params.repeat_penalty;
        if p == 1.0 || recent.is_empty() {
            return;
        }
        let mut seen: Vec<u32> = recent.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for id in seen {
            if let Some(l) = logits.get_mut(id as usize) {
                *l = if *l <= 0.0 { *l * p } else { *l / p };
            }
        }
    }

    /// How many recent tokens the repeat penalty considers.
    pub fn penalty_window(&self) -> usize {
        self.params.repeat_last_n as usize
    }

    /// Chooses the next token. `logits` must already carry the repeat penalty.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.params.temperature <= 0.0 {
            return argmax(logits);
        }
        let c = &mut self.candidates;
        c.clear();
        c.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        let desc = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));

        let k = self.params.top_k as usize;
        if k > 0 && k < c.len() {
            c.select_nth_unstable_by(k - 1, desc);
            c.truncate(k);
        }
        c.sort_unstable_by(desc);

        if self.params.top_p < 1.0 {
            let probs = softmax_of(c.iter().map(|x| x.1));
            let mut cum = 0.0f32;
            let mut keep = c.len();
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= self.params.top_p {
                    keep = i + 1;
                    break;
                }
            }
            c.truncate(keep.max(1));
        }

        if self.params.min_p > 0.0 {
            let max = c[0].1;
            let threshold = max + self.params.min_p.ln();
            let keep = c.iter().take_while(|x| x.1 >= threshold).count();
            c.truncate(keep.max(1));
        }

        let t = self.params.temperature;
        let probs = softmax_of(c.iter().map(|x| x.1 / t));
        let u = self.rng.next_f32();
        let mut cum = 0.0f32;
        for (i, p) in probs.iter().enumerate() {
            cum += p;
            if u < cum {
                return c[i].0;
            }
        }
        c[c.len() - 1].0
    }
}

/// Index of the largest value (the first one on ties), as llama.cpp's greedy sampler.
pub fn argmax(logits: &[f32]) -> u32 {
    let Some(&first) = logits.first() else {
        return 0;
    };
    // The best value is kept, not re-read through its index (a load and a bounds check per
    // logit). It is always `logits[best]`, so the first maximum still wins and a NaN never does.
    let (mut best, mut value) = (0usize, first);
    for (i, &l) in logits.iter().enumerate().skip(1) {
        if l > value {
            best = i;
            value = l;
        }
    }
    best as u32
}

fn softmax_of(xs: impl Iterator<Item = f32> + Clone) -> Vec<f32> {
    let max = xs.clone().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = xs.map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Log-softmax of `logits` (natural log), computed in f64 for a stable normaliser.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_z = max as f64 + sum.ln();
    logits.iter().map(|&l| (f64::from(l) - log_z) as f32).collect()
}

/// The `n` most likely tokens with their probabilities (temperature 1).
pub fn top_alternatives(logits: &[f32], n: usize) -> Vec<(u32, f32)> {
    if n == 0 || logits.is_empty() {
        return Vec::new();
    }
    let mut idx: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    let n = n.min(idx.len());
    let desc = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    idx.select_nth_unstable_by(n - 1, desc);
    idx.truncate(n);
    idx.sort_unstable_by(desc);
    let max = idx[0].1;
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    idx.into_iter()
        .map(|(i, l)| (i, (f64::from(l - max).exp() / sum) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32) -> SamplingParams {
        SamplingParams {
            temperature: t,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut s = Sampler::new(&params(0.0));
        assert_eq!(s.sample(&[0.1, 3.0, 3.0, -1.0]), 1);
    }

    /// `argmax` keeps the best value rather than re-reading it: the same answers as comparing
    /// with `logits[best]`, NaNs (never greater) and negative infinities included.
    #[test]
    fn argmax_keeps_the_first_maximum_and_never_picks_nan() {
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
        assert_eq!(argmax(&[1.0, f32::NAN, 2.0, 2.0, f32::NAN]), 2);
        // A NaN first is never beaten, as before.
        assert_eq!(argmax(&[f32::NAN, 1.0, 5.0]), 0);
        assert_eq!(argmax(&[-3.0, f32::NEG_INFINITY, -2.5, 7.0, 7.0]), 3);
    }

    #[test]
    fn same_seed_same_choices_other_seed_other_choices() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut p = params(1.0);
            p.seed = seed;
            p.top_k = 0;
            p.top_p = 1.0;
            p.min_p = 0.0;
            let mut s = Sampler::new(&p);
            (0..64).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn filters_restrict_the_choice() {
        let logits = [5.0, 4.9, 0.0, -3.0, -9.0];
        let mut p = params(5.0);
        p.top_k = 2;
        p.min_p = 0.0;
        p.top_p = 1.0;
        let mut s = Sampler::new(&p);
        for _ in 0..200 {
            assert!(s.sample(&logits) < 2);
        }
        let mut p = params(5.0);
        p.top_k = 0;
        p.top_p = 1.0;
        p.min_p = 0.5;
        let mut s = Sampler::new(&p);
        for _ in 0..200 {
            assert!(
                s.sample(&logits) < 2,
                "min_p keeps tokens within ln(0.5) of the best"
            );
        }
        let mut p = params(1.0);
        p.top_k = 0;
        p.min_p = 0.0;
        p.top_p = 0.01;
        let mut s = Sampler::new(&p);
        for _ in 0..50 {
            assert_eq!(s.sample(&logits), 0);
        }
    }

    #[test]
    fn repeat_penalty_lowers_seen_tokens() {
        let p = SamplingParams {
            repeat_penalty: 2.0,
            ..SamplingParams::default()
        };
        let s = Sampler::new(&p);
        let mut l = [2.0, -2.0, 1.0];
        s.penalize(&mut l, &[0, 1, 1]);
        assert_eq!(l, [1.0, -4.0, 1.0]);
    }

    #[test]
    fn softmax_helpers() {
        let ls = log_softmax(&[0.0, 0.0]);
        assert!((ls[0] - (0.5f32).ln()).abs() < 1e-6);
        let top = top_alternatives(&[1.0, 3.0, 2.0], 2);
        assert_eq!(top.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!(top[0].1 > top[1].1 && top[0].1 < 1.0);
    }
}
