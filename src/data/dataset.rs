//! Encoded splits in compact columnar form (u32 ids, f32 numerics, u8 labels) and batch assembly.

use std::path::PathBuf;

use crate::features::Bags;

/// Which rows a dataset holds: a split of the pipeline, or a file given to `eval` or `predict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Valid,
    Test,
    Eval,
    Predict,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
            Split::Eval => "eval",
            Split::Predict => "predict",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One encoded split. Columns are stored per feature; batches are assembled row-major.
pub struct Dataset {
    pub split: Split,
    pub file: PathBuf,
    pub rows: usize,
    /// cat[f][i]: id of categorical feature f in row i.
    pub cat: Vec<Vec<u32>>,
    /// num[j][i]: encoded numeric feature j in row i.
    pub num: Vec<Vec<f32>>,
    /// bags[m]: token list m's tokens of every row: the multi-valued features', then the
    /// sequences' (`Pipeline::token_lists`).
    pub bags: Vec<Bags>,
    /// truncated[m]: rows whose tokens of token list m were cut to its `max_len`.
    pub truncated: Vec<usize>,
    /// reached[k][i]: row i reached stage k. Empty for unlabelled data.
    pub reached: Vec<Vec<u8>>,
    /// own[k][i]: stage k's own column as written, when the model reads it (see `StageLabels`).
    pub own: Vec<Vec<u8>>,
    /// truth[k][i]: true conditional probability of stage k for row i (synthetic data only).
    pub truth: Vec<Vec<f64>>,
    /// groups[i]: row i's group (an index into this split's distinct values of the group
    /// column), for group AUC; empty without a group column.
    pub groups: Vec<u32>,
    /// Rows dropped as inconsistent, per stage.
    pub dropped: Vec<usize>,
}

/// Each of `part`'s columns appended to the same column of `all` (which takes `part`'s column
/// count): a split gathered chunk by chunk.
pub fn append_columns<T: Clone>(all: &mut Vec<Vec<T>>, part: &[Vec<T>]) {
    all.resize_with(part.len(), Vec::new);
    for (a, b) in all.iter_mut().zip(part) {
        a.extend_from_slice(b);
    }
}

/// A batch: one id column per embedded field with one id per row (`ids[f][r]`, the order of
/// `layout::FieldLayout`'s fields), then one bag column per multi-valued field (`bags[m]`, field
/// `ids.len() + m`) and one per sequence after them (`layout::Sequence::bag`), and row-major `num` (rows x numerics), `labels` (and `own`, when the
/// dataset keeps own labels; otherwise empty) rows x stages.
pub struct Batch {
    pub rows: usize,
    pub ids: Vec<Vec<u32>>,
    pub bags: Vec<Bags>,
    pub num: Vec<f32>,
    pub labels: Vec<f32>,
    pub own: Vec<f32>,
}

impl Batch {
    /// Add `b`'s rows after this batch's.
    pub fn append(&mut self, b: Batch) {
        self.rows += b.rows;
        for (a, ids) in self.ids.iter_mut().zip(b.ids) {
            a.extend(ids);
        }
        for (a, bag) in self.bags.iter_mut().zip(&b.bags) {
            a.append(bag);
        }
        self.num.extend(b.num);
        self.labels.extend(b.labels);
        self.own.extend(b.own);
    }
}

impl Dataset {
    pub fn numerics(&self) -> usize {
        self.num.len()
    }

    pub fn stages(&self) -> usize {
        self.reached.len()
    }

    /// The rows `idx` (in that order).
    pub fn batch(&self, idx: &[u32]) -> Batch {
        let (n, k) = (self.numerics(), self.stages());
        let ids = self
            .cat
            .iter()
            .map(|c| idx.iter().map(|&i| c[i as usize]).collect())
            .collect();
        let mut num = Vec::with_capacity(idx.len() * n);
        let mut labels = Vec::with_capacity(idx.len() * k);
        let mut own = Vec::with_capacity(idx.len() * self.own.len());
        for &i in idx {
            let i = i as usize;
            num.extend(self.num.iter().map(|c| c[i]));
            labels.extend(self.reached.iter().map(|c| c[i] as f32));
            own.extend(self.own.iter().map(|c| c[i] as f32));
        }
        Batch {
            rows: idx.len(),
            ids,
            bags: self.bags.iter().map(|b| b.take(idx)).collect(),
            num,
            labels,
            own,
        }
    }

    /// Rows `start..end` in order.
    pub fn batch_range(&self, start: usize, end: usize) -> Batch {
        let idx: Vec<u32> = (start as u32..end as u32).collect();
        self.batch(&idx)
    }

    /// Bytes of the encoded columns.
    pub fn bytes(&self) -> u64 {
        let n = self.rows as u64;
        n * (4 * (self.cat.len() + self.num.len()) as u64
            + (self.reached.len() + self.own.len()) as u64
            + 8 * self.truth.len() as u64)
            + self.bags.iter().map(Bags::bytes).sum::<u64>()
    }

    pub fn positives(&self, stage: usize) -> usize {
        self.reached[stage].iter().map(|&v| v as usize).sum()
    }
}
