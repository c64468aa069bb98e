//! The input a batch gives the chain: per store, the input rows (its embeddings gathered for the
//! batch's ids, then the numeric features) and each behaviour history's token rows, packed;
//! and each history token's batch row.

use candle_core::{Tensor, Var};
use rayon::prelude::*;

use super::chain::FunnelModel;
use super::chain_input::ChainInput;
use super::row_store::RowSource;
use crate::data::Batch;
use crate::error::Result;

impl FunnelModel {
    /// Tensors per store in `ChainInput::xs`: the input rows, then one per sequence.
    pub fn inputs_per_store(&self) -> usize {
        1 + self.stores[0].layout().sequences().len()
    }

    /// Elements of each tensor of `ChainInput::xs` for a batch of `rows` rows whose bag
    /// columns hold `tokens[m]` tokens each.
    pub fn input_sizes(&self, rows: usize, tokens: &[usize]) -> Vec<usize> {
        let layout = self.stores[0].layout();
        let per_store = std::iter::once(rows * self.input_width()).chain(
            layout
                .sequences()
                .iter()
                .map(|s| tokens[s.bag] * layout.slot_of(s.field).width),
        );
        per_store.collect::<Vec<_>>().repeat(self.stores.len())
    }

    /// The batch's input, trainable (gradients flow back to it, then to the embedding rows).
    pub fn input_vars(&self, b: &Batch) -> Result<ChainInput<Var>> {
        self.chain_input(&self.sources(), b, Var::from_vec)
    }

    /// The batch's input for inference.
    pub fn input_tensors(&self, b: &Batch) -> Result<ChainInput<Tensor>> {
        self.chain_input(&self.sources(), b, Tensor::from_vec)
    }

    /// The batch's input for inference, its rows read from `sources` (one per store of the
    /// model, each with the model's field layout) instead of the model's own stores.
    pub fn input_tensors_from(
        &self,
        sources: &[&dyn RowSource],
        b: &Batch,
    ) -> Result<ChainInput<Tensor>> {
        self.check_layouts(sources.iter().map(|s| s.layout()), "row sources")?;
        self.chain_input(sources, b, Tensor::from_vec)
    }

    fn sources(&self) -> Vec<&dyn RowSource> {
        self.stores
            .iter()
            .map(|s| s.as_ref() as &dyn RowSource)
            .collect()
    }

    fn chain_input<T>(
        &self,
        sources: &[&dyn RowSource],
        b: &Batch,
        make: impl Fn(Vec<f32>, (usize, usize), &candle_core::Device) -> candle_core::Result<T>,
    ) -> Result<ChainInput<T>> {
        let mut xs = Vec::with_capacity(sources.len() * self.inputs_per_store());
        for &store in sources {
            xs.push(make(
                self.input_from(store, b),
                (b.rows, self.input_width()),
                &self.dev,
            )?);
            let layout = store.layout();
            for (s, seq) in layout.sequences().iter().enumerate() {
                let d = layout.slot_of(seq.field).width;
                let tokens = store.gather_tokens(b, s);
                xs.push(make(tokens, (b.bags[seq.bag].ids.len(), d), &self.dev)?);
            }
        }
        let token_rows = self.stores[0]
            .layout()
            .sequences()
            .iter()
            .map(|seq| {
                let bags = &b.bags[seq.bag];
                let mut rows = Vec::with_capacity(bags.ids.len());
                for r in 0..b.rows {
                    rows.extend(std::iter::repeat_n(r as u32, bags.span(r).len()));
                }
                let n = rows.len();
                Tensor::from_vec(rows, n, &self.dev)
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(ChainInput { xs, token_rows })
    }

    pub fn input_width(&self) -> usize {
        self.stores[0].layout().width() + self.numerics
    }

    /// The input rows of a batch as one store sees them: its embeddings, then the numeric
    /// features (rows x `input_width`).
    pub fn input(&self, store: usize, b: &Batch) -> Vec<f32> {
        self.input_from(self.stores[store].as_ref(), b)
    }

    /// `input`, the embeddings read from `s`.
    fn input_from(&self, s: &dyn RowSource, b: &Batch) -> Vec<f32> {
        let (w, e, n) = (self.input_width(), s.layout().width(), self.numerics);
        let mut x = vec![0f32; b.rows * w];
        // The gather is memory-latency bound (random rows of large tables): split it over the
        // pool's threads in blocks of rows.
        const BLOCK: usize = 256;
        x.par_chunks_mut(BLOCK * w)
            .enumerate()
            .for_each(|(blk, block)| {
                let first = blk * BLOCK;
                let rows = first..first + block.len() / w;
                s.gather(b, rows.clone(), block, w);
                for (row, r) in block.chunks_exact_mut(w).zip(rows) {
                    row[e..].copy_from_slice(&b.num[r * n..(r + 1) * n]);
                }
            });
        x
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Pipeline;
    use crate::data::Batch;
    use crate::features::Encoders;
    use crate::model::FunnelModel;

    /// An input row is each categorical feature's embedding row, then each bucketed numeric
    /// feature's bucket row, then the values that are fed (the bucketed feature's own value when
    /// `also_raw`, and the plain numeric's): laid out by hand from the model's tables.
    #[test]
    fn bucketed_numerics_are_embedded_rows_then_values() {
        let yaml = "name: t\ndata:\n  train: { path: none.csv }\nfeatures:\n  embedding_dim: 2\n  categorical: [{ name: a }]\n  numeric:\n    - { name: b, transform: quantile_buckets, buckets: 4, dim: 3, also_raw: true }\n    - { name: m }\n    - { name: c, transform: quantile_buckets }\nstages:\n  - { name: s0, label: { column: y0 } }\n";
        let p = Pipeline::from_text(Path::new("t.yaml"), yaml).unwrap();
        assert_eq!(p.embedded_fields(), vec![("a", 2), ("b", 3), ("c", 2)]);
        assert_eq!(p.dense_values(), 2);
        let num = |name: &str, boundaries: &str| {
            format!(
                r#"{{"name":"{name}","column":"{name}","transform":"none","missing":"mean","shift":0.0,"scale":1.0,"fill":0.0{boundaries}}}"#
            )
        };
        let enc = Encoders::from_json(&format!(
            r#"{{"categorical":[{{"name":"a","column":"a","hash_buckets":5}}],"numeric":[{},{},{}]}}"#,
            num("b", r#","boundaries":[0.0,1.0,2.0]"#),
            num("m", ""),
            num("c", r#","boundaries":[5.0]"#)
        ))
        .unwrap();
        let model = FunnelModel::new(&p, &enc).unwrap();
        let tables = model.tables();
        let rows: Vec<usize> = tables.iter().map(|(_, t)| t.vocab).collect();
        // 3 reserved rows, then 5 hash buckets; 3 boundaries make 4 buckets; 1 makes 2.
        assert_eq!(rows, vec![8, 7, 5]);
        assert_eq!(model.input_width(), 2 + 3 + 2 + 2);
        // Two rows: ids (a, b's bucket, c's bucket), values (b raw, m).
        let b = Batch {
            rows: 2,
            ids: vec![vec![4, 7], vec![6, 3], vec![2, 4]],
            bags: Vec::new(),
            num: vec![0.5, -1.5, 2.0, 3.0],
            labels: vec![1.0, 0.0],
            own: Vec::new(),
        };
        let x = model.input(0, &b);
        for r in 0..2 {
            let mut want: Vec<f32> = Vec::new();
            for (f, (_, t)) in tables.iter().enumerate() {
                want.extend_from_slice(t.row(b.ids[f][r]));
            }
            want.extend_from_slice(&b.num[r * 2..r * 2 + 2]);
            assert_eq!(&x[r * 9..(r + 1) * 9], want.as_slice(), "row {r}");
        }
        // The bucket rows are the initialised rows of b's own table, not zeros.
        assert!(x[2..5].iter().any(|&v| v != 0.0));
    }
}
