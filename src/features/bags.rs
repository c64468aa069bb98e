//! Multi-valued features encoded: every row's token ids stored as one flat id array plus
//! offsets (no padding), with their weights; reading and encoding them is `bag_rows.rs`.

/// A multi-valued feature's encoded rows: row r's ids are `ids[offsets[r]..offsets[r + 1]]`
/// and their weights the same range of `weights` (empty when the feature has none: every
/// weight 1). An empty row is the empty list, which the feature's table gives a row of its own
/// (its last).
#[derive(Debug, Clone, PartialEq)]
pub struct Bags {
    pub offsets: Vec<u64>,
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

impl Default for Bags {
    fn default() -> Self {
        Bags {
            offsets: vec![0],
            ids: Vec::new(),
            weights: Vec::new(),
        }
    }
}

impl Bags {
    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    /// The range of row `r`'s tokens in `ids` (and `weights`).
    #[inline]
    pub fn span(&self, r: usize) -> std::ops::Range<usize> {
        self.offsets[r] as usize..self.offsets[r + 1] as usize
    }

    /// Row `r`'s ids.
    #[inline]
    pub fn ids_of(&self, r: usize) -> &[u32] {
        &self.ids[self.span(r)]
    }

    /// The weight of token `t` (an index into `ids`).
    #[inline]
    pub fn weight(&self, t: usize) -> f32 {
        self.weights.get(t).copied().unwrap_or(1.0)
    }

    /// The rows `rows`, in that order.
    pub fn take(&self, rows: &[u32]) -> Bags {
        let mut out = Bags::default();
        out.offsets.reserve(rows.len());
        for &r in rows {
            let span = self.span(r as usize);
            out.ids.extend_from_slice(&self.ids[span.clone()]);
            if !self.weights.is_empty() {
                out.weights.extend_from_slice(&self.weights[span]);
            }
            out.offsets.push(out.ids.len() as u64);
        }
        out
    }

    /// Add `other`'s rows after this one's.
    pub fn append(&mut self, other: &Bags) {
        let base = self.ids.len() as u64;
        self.offsets
            .extend(other.offsets[1..].iter().map(|&o| base + o));
        self.ids.extend_from_slice(&other.ids);
        self.weights.extend_from_slice(&other.weights);
    }

    /// Bytes held (offsets, ids and weights).
    pub fn bytes(&self) -> u64 {
        8 * self.offsets.len() as u64 + 4 * (self.ids.len() + self.weights.len()) as u64
    }
}

/// A multi-valued column encoded for every part of a routing: each part's bags and how many of
/// its rows were longer than `max_len`.
#[derive(Debug)]
pub struct BagParts {
    pub bags: Vec<Bags>,
    pub truncated: Vec<usize>,
}
