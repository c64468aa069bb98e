//! Seeded, version-stable random streams: one seed, named sub-streams for init, splits, shuffling and dropout.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// A deterministic generator. Each named stream is independent of every other, so adding a
/// new consumer never shifts the numbers an existing one sees.
pub struct Rng {
    inner: ChaCha8Rng,
    spare_normal: Option<f64>,
}

impl Rng {
    /// The stream `name` of run seed `seed`.
    pub fn stream(seed: u64, name: &str) -> Self {
        let mut h = Sha256::new();
        h.update(seed.to_le_bytes());
        h.update(name.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        Rng {
            inner: ChaCha8Rng::from_seed(key),
            spare_normal: None,
        }
    }

    /// An independent generator seeded from this one's next 256 bits (for work that runs in
    /// parallel but must stay reproducible).
    /// 32 bytes of this stream, to key named streams (`Rng::named`).
    pub fn key(&mut self) -> [u8; 32] {
        let mut key = [0u8; 32];
        self.inner.fill_bytes(&mut key);
        key
    }

    /// The stream called `name` under `key`: SHA-256 of the two, so that streams of different
    /// names never share draws, whatever order they are made in.
    pub fn named(key: &[u8; 32], name: &str) -> Self {
        let mut h = Sha256::new();
        h.update(key);
        h.update(name.as_bytes());
        Rng {
            inner: ChaCha8Rng::from_seed(h.finalize().into()),
            spare_normal: None,
        }
    }

    pub fn split(&mut self) -> Rng {
        let mut key = [0u8; 32];
        self.inner.fill_bytes(&mut key);
        Rng {
            inner: ChaCha8Rng::from_seed(key),
            spare_normal: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) without modulo bias (Lemire's method). `n` must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        let mut m = (self.next_u64() as u128) * (n as u128);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = (self.next_u64() as u128) * (n as u128);
            }
        }
        (m >> 64) as u64
    }

    /// Standard normal draw (Box-Muller; the second value of each pair is kept for the next call).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// A uniformly random permutation of 0..n (Fisher-Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<u32> {
        let mut p: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            let j = self.below(i as u64 + 1) as usize;
            p.swap(i, j);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, "a").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::stream(7, "a").next_u64(),
            Rng::stream(7, "b").next_u64()
        );
        assert_ne!(
            Rng::stream(7, "a").next_u64(),
            Rng::stream(8, "a").next_u64()
        );
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = Rng::stream(1, "p").permutation(1000);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn normal_moments() {
        let mut r = Rng::stream(3, "n");
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn below_is_in_range_and_covers() {
        let mut r = Rng::stream(5, "b");
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.below(7) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
