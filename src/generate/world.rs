//! The hidden world behind a synthetic funnel: Zipf id samplers, per-id and per-bin effect tables
//! for every stage, and intercepts calibrated so that each stage hits its target rate.
//!
//! Row i draws its randomness from a fixed window of one ChaCha stream (word position
//! i x words-per-row), so the output depends only on the seed, never on chunking or threads.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::draws::{normal, normal_cdf, unit};
use super::spec::{Distribution, GenHistory, Spec};
use crate::numerics::sigmoid;
use crate::rng::Rng;

/// Equal-probability bins through which a numeric field acts on a stage (a step function).
pub const NUMERIC_BINS: usize = 16;
/// Rows drawn to calibrate the intercepts.
const CALIBRATION_ROWS: u64 = 500_000;

/// Vose's alias table: O(1) draws from a discrete distribution.
struct Alias {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl Alias {
    fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut prob = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            prob[s as usize] = scaled[s as usize];
            alias[s as usize] = l;
            scaled[l as usize] -= 1.0 - scaled[s as usize];
            if scaled[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        Alias { prob, alias }
    }

    fn draw(&self, bits: u64) -> u32 {
        let n = self.prob.len();
        let u = unit(bits) * n as f64;
        let j = (u as usize).min(n - 1);
        if u - (j as f64) < self.prob[j] {
            j as u32
        } else {
            self.alias[j]
        }
    }
}

/// Standardise `g` to weighted mean 0 and variance 1 under weights `p` (summing to 1).
fn standardise(g: &mut [f64], p: &[f64]) {
    let mean: f64 = g.iter().zip(p).map(|(g, p)| g * p).sum();
    let var: f64 = g.iter().zip(p).map(|(g, p)| (g - mean).powi(2) * p).sum();
    let sd = var.sqrt().max(1e-12);
    for v in g.iter_mut() {
        *v = (*v - mean) / sd;
    }
}

/// Effect tables of one field: `tables[k]` scales the field's value's effect on stage k.
/// The first stage's table is standardised under the value distribution; a later stage's is
/// `ρ·first + sqrt(1-ρ²)·own`, with `own` made exactly uncorrelated with `first`, so the field's
/// contributions to the two logits have correlation ρ (the selection bias).
fn effect_tables(effects: &[f64], p: &[f64], rho: f64, rng: &mut Rng) -> Vec<Option<Vec<f32>>> {
    let draw = |rng: &mut Rng| -> Vec<f64> {
        let mut g: Vec<f64> = p.iter().map(|_| rng.normal()).collect();
        standardise(&mut g, p);
        g
    };
    let first = (effects[0] > 0.0).then(|| draw(rng));
    effects
        .iter()
        .enumerate()
        .map(|(k, &scale)| {
            if scale == 0.0 {
                return None;
            }
            let table: Vec<f64> = match (&first, k) {
                (Some(f), 0) => f.clone(),
                (Some(f), _) => {
                    let mut own = draw(rng);
                    let c: f64 = own.iter().zip(f).zip(p).map(|((o, f), p)| o * f * p).sum();
                    for (o, f) in own.iter_mut().zip(f) {
                        *o -= c * f;
                    }
                    standardise(&mut own, p);
                    let keep = (1.0 - rho * rho).sqrt();
                    f.iter()
                        .zip(&own)
                        .map(|(f, o)| rho * f + keep * o)
                        .collect()
                }
                (None, _) => draw(rng),
            };
            Some(table.into_iter().map(|v| (v * scale) as f32).collect())
        })
        .collect()
}

struct CatField {
    sampler: Alias,
    effects: Vec<Option<Vec<f32>>>,
}

struct NumField {
    distribution: Distribution,
    effects: Vec<Option<Vec<f32>>>,
}

/// One generated row: observed features, stage uniforms, and logits without intercepts.
pub struct Row {
    pub ids: Vec<u32>,
    pub values: Vec<f64>,
    /// Each history's tokens.
    pub histories: Vec<Vec<u32>>,
    pub signal: Vec<f64>,
    pub uniforms: Vec<f64>,
}

pub struct World {
    cats: Vec<CatField>,
    nums: Vec<NumField>,
    histories: Vec<GenHistory>,
    /// Each categorical field's vocabulary.
    vocabs: Vec<u32>,
    noise: f64,
    pub intercepts: Vec<f64>,
    /// For a stage after an optional stage: the intercept of its conditional given the
    /// optional stage was skipped (`intercepts` holds the one given it was reached).
    pub skip_intercepts: Vec<Option<f64>>,
    stages: usize,
    row_key: [u8; 32],
}

fn key(seed: u64, name: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(name.as_bytes());
    h.finalize().into()
}

/// The weights stage k's main intercept is calibrated on: the rows that reached its parent, or,
/// after an optional stage, the rows that reached the optional stage.
fn parent_or_via(parent: &[f64], k: usize, spec: &Spec, reach: &[Vec<f64>]) -> Vec<f64> {
    match spec.rates_without[k] {
        Some(_) => reach[k - 1].clone(),
        None => parent.to_vec(),
    }
}

/// The intercept b at which the `weights`-weighted mean of σ(b + signal) is `rate`: safeguarded
/// Newton on the (increasing) weighted mean, bisection whenever a Newton step would leave the
/// bracket.
fn solve(weights: &[f64], signal: &[f64], rate: f64) -> f64 {
    let total: f64 = weights.iter().sum();
    let (mut lo, mut hi) = (-60.0f64, 60.0f64);
    let mut b = (rate / (1.0 - rate)).ln().clamp(lo, hi);
    for _ in 0..100 {
        let (mut mean, mut slope) = (0.0, 0.0);
        for (w, s) in weights.iter().zip(signal) {
            let q = sigmoid(b + s);
            mean += w * q;
            slope += w * q * (1.0 - q);
        }
        let (gap, slope) = (mean / total - rate, slope / total);
        if gap.abs() < 1e-12 * rate {
            break;
        }
        if gap < 0.0 {
            lo = b;
        } else {
            hi = b;
        }
        let next = b - gap / slope.max(1e-300);
        b = if next > lo && next < hi {
            next
        } else {
            0.5 * (lo + hi)
        };
        if hi - lo < 1e-12 {
            break;
        }
    }
    b
}

impl World {
    pub fn build(spec: &Spec) -> World {
        let seed = spec.seed;
        let rho = spec.selection_bias;
        let cats = spec
            .categorical
            .iter()
            .enumerate()
            .map(|(f, c)| {
                let w: Vec<f64> = (1..=c.vocab as u64)
                    .map(|r| (r as f64).powf(-c.zipf))
                    .collect();
                let total: f64 = w.iter().sum();
                let p: Vec<f64> = w.iter().map(|v| v / total).collect();
                let mut rng = Rng::stream(seed, &format!("world/categorical/{f}"));
                CatField {
                    sampler: Alias::new(&w),
                    effects: effect_tables(&c.effects, &p, rho, &mut rng),
                }
            })
            .collect();
        let nums = spec
            .numeric
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let p = vec![1.0 / NUMERIC_BINS as f64; NUMERIC_BINS];
                let mut rng = Rng::stream(seed, &format!("world/numeric/{j}"));
                NumField {
                    distribution: n.distribution,
                    effects: effect_tables(&n.effects, &p, rho, &mut rng),
                }
            })
            .collect();
        let mut world = World {
            cats,
            nums,
            histories: spec.histories.clone(),
            vocabs: spec.categorical.iter().map(|c| c.vocab).collect(),
            noise: spec.noise,
            intercepts: vec![0.0; spec.stages()],
            skip_intercepts: vec![None; spec.stages()],
            stages: spec.stages(),
            row_key: key(spec.sample_seed.unwrap_or(seed), "rows"),
        };
        world.calibrate(spec, key(seed, "calibrate"));
        world
    }

    /// 64-bit draws each row consumes: one per field, two per numeric, three per stage, and
    /// each history's (`GenHistory::draws`).
    fn draws_per_row(&self) -> u64 {
        (self.cats.len() + 2 * self.nums.len() + 3 * self.stages) as u64
            + self.histories.iter().map(GenHistory::draws).sum::<u64>()
    }

    /// A generator positioned at row `row` of the stream keyed by `key`.
    fn rows_from(&self, key: [u8; 32], row: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_word_pos(row as u128 * self.draws_per_row() as u128 * 2);
        rng
    }

    fn draw(&self, rng: &mut ChaCha8Rng, row: &mut Row) {
        row.signal.iter_mut().for_each(|s| *s = 0.0);
        for (f, c) in self.cats.iter().enumerate() {
            let id = c.sampler.draw(rng.next_u64());
            row.ids[f] = id;
            for (s, t) in row.signal.iter_mut().zip(&c.effects) {
                if let Some(t) = t {
                    *s += t[id as usize] as f64;
                }
            }
        }
        for (j, n) in self.nums.iter().enumerate() {
            let (a, b) = (rng.next_u64(), rng.next_u64());
            let (x, bin) = match n.distribution {
                Distribution::Normal { mean, std } => {
                    let z = normal(a, b);
                    (mean + std * z, normal_cdf(z) * NUMERIC_BINS as f64)
                }
                Distribution::Uniform { low, high } => {
                    let u = unit(a);
                    (low + (high - low) * u, u * NUMERIC_BINS as f64)
                }
            };
            row.values[j] = x;
            let bin = (bin as usize).min(NUMERIC_BINS - 1);
            for (s, t) in row.signal.iter_mut().zip(&n.effects) {
                if let Some(t) = t {
                    *s += t[bin] as f64;
                }
            }
        }
        for (h, tokens) in self.histories.iter().zip(&mut row.histories) {
            let sampler = &self.cats[h.of].sampler;
            let matches = h.draw(
                row.ids[h.of],
                self.vocabs[h.of],
                tokens,
                || rng.next_u64(),
                |bits| sampler.draw(bits),
            );
            for (s, &e) in row.signal.iter_mut().zip(&h.per_match) {
                *s += e * matches as f64;
            }
        }
        for k in 0..self.stages {
            let (a, b, c) = (rng.next_u64(), rng.next_u64(), rng.next_u64());
            row.signal[k] += self.noise * normal(a, b);
            row.uniforms[k] = unit(c);
        }
    }

    pub fn new_row(&self) -> Row {
        Row {
            ids: vec![0; self.cats.len()],
            values: vec![0.0; self.nums.len()],
            histories: vec![Vec::new(); self.histories.len()],
            signal: vec![0.0; self.stages],
            uniforms: vec![0.0; self.stages],
        }
    }

    /// Draw row `index` of the output stream into `row`.
    pub fn row(&self, rng: &mut ChaCha8Rng, row: &mut Row) {
        self.draw(rng, row);
    }

    pub fn rows_at(&self, index: u64) -> ChaCha8Rng {
        self.rows_from(self.row_key, index)
    }

    /// Choose each stage's intercept so that the mean true conditional probability, over rows
    /// weighted by their probability of reaching the stage's parent, equals the target rate. A
    /// stage after an optional stage gets two intercepts, calibrated on the rows weighted by
    /// their probability of reaching and of skipping the optional stage.
    fn calibrate(&mut self, spec: &Spec, key: [u8; 32]) {
        let n = CALIBRATION_ROWS as usize;
        // Drawn in parallel windows of the calibration stream: the same rows for any thread count.
        let window = 1usize << 15;
        let parts: Vec<Vec<f64>> = (0..n)
            .step_by(window)
            .collect::<Vec<_>>()
            .par_iter()
            .map(|&start| {
                let mut rng = self.rows_from(key, start as u64);
                let mut row = self.new_row();
                let len = window.min(n - start);
                let mut out = Vec::with_capacity(len * self.stages);
                for _ in 0..len {
                    self.draw(&mut rng, &mut row);
                    out.extend_from_slice(&row.signal);
                }
                out
            })
            .collect();
        let signal: Vec<f64> = parts.concat();
        let ks = self.stages;
        let column = |k: usize| -> Vec<f64> { (0..n).map(|i| signal[i * ks + k]).collect() };
        // reach[k][i]: probability that calibration row i reached stage k.
        let mut reach: Vec<Vec<f64>> = Vec::with_capacity(ks);
        for k in 0..ks {
            let s = column(k);
            let parent = spec
                .parent(k)
                .map(|p| reach[p].clone())
                .unwrap_or_else(|| vec![1.0; n]);
            let b = solve(&parent_or_via(&parent, k, spec, &reach), &s, spec.rates[k]);
            self.intercepts[k] = b;
            let reached = match spec.rates_without[k] {
                None => parent
                    .iter()
                    .zip(&s)
                    .map(|(w, x)| w * sigmoid(b + x))
                    .collect(),
                Some(rate) => {
                    let via = &reach[k - 1];
                    let skipped: Vec<f64> = parent.iter().zip(via).map(|(p, v)| p - v).collect();
                    let b_skip = solve(&skipped, &s, rate);
                    self.skip_intercepts[k] = Some(b_skip);
                    (0..n)
                        .map(|i| via[i] * sigmoid(b + s[i]) + skipped[i] * sigmoid(b_skip + s[i]))
                        .collect()
                }
            };
            reach.push(reached);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_matches_weights() {
        let w = [5.0, 1.0, 3.0, 1.0];
        let a = Alias::new(&w);
        let mut r = Rng::stream(1, "alias");
        let mut counts = [0usize; 4];
        let n = 200_000;
        for _ in 0..n {
            counts[a.draw(r.next_u64()) as usize] += 1;
        }
        for (c, w) in counts.iter().zip(w) {
            let want = w / 10.0;
            assert!((*c as f64 / n as f64 - want).abs() < 0.005, "{counts:?}");
        }
    }

    #[test]
    fn effect_tables_have_the_requested_correlation() {
        let p: Vec<f64> = (1..=500).map(|r| (r as f64).powf(-1.1)).collect();
        let total: f64 = p.iter().sum();
        let p: Vec<f64> = p.iter().map(|v| v / total).collect();
        for rho in [0.0, 0.6] {
            let t = effect_tables(&[1.0, 2.0], &p, rho, &mut Rng::stream(3, "t"));
            let (a, b) = (t[0].as_ref().unwrap(), t[1].as_ref().unwrap());
            let cov: f64 = a
                .iter()
                .zip(b)
                .zip(&p)
                .map(|((a, b), p)| *a as f64 * *b as f64 * p)
                .sum();
            let var_b: f64 = b.iter().zip(&p).map(|(b, p)| (*b as f64).powi(2) * p).sum();
            // Stage 2 has scale 2, so cov = 2ρ and var = 4.
            assert!((cov - 2.0 * rho).abs() < 1e-5, "rho {rho}: cov {cov}");
            assert!((var_b - 4.0).abs() < 1e-4);
        }
    }
}
