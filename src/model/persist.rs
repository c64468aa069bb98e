//! Saving and loading a model: every embedding table, then every dense parameter in the sorted
//! parameter list, under its checkpoint key.

use std::path::Path;

use candle_core::Tensor;

use super::chain::FunnelModel;
use super::weights_file::{self, Source};
use crate::error::{Error, Result};

impl FunnelModel {
    /// Save every weight as `embeddings.<feature>` (`embeddings.<stage>.<feature>` with one
    /// store per stage) and the dense parameters by key
    /// (`towers.<stage>.<layer>.weight|bias`, ...), one tensor in memory at a time.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut entries: Vec<(String, Source<'_>)> = self
            .tables()
            .into_iter()
            .map(|(key, t)| (key, Source::Table(t)))
            .collect();
        for (name, v) in self.params().iter() {
            let values = v.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            entries.push((name.to_string(), Source::Dense(values, v.dims().to_vec())));
        }
        weights_file::write(path, entries)
    }

    /// Load weights saved by `save`; every tensor must be present with the expected shape.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let mut file = weights_file::Reader::open(path)?;
        let initial_state = self.initial_state;
        for t in self.tables_mut() {
            let w = file.take(&t.key, &[t.table.vocab, t.table.dim])?;
            t.table.set_weights(&w, &t.opt, initial_state);
        }
        self.load_dense(&mut file, path)
    }

    /// Load every dense parameter from `file` (the weights file at `path`), whose tables were
    /// taken already: a tensor left over is one the pipeline does not declare.
    pub(super) fn load_dense(
        &mut self,
        file: &mut weights_file::Reader,
        path: &Path,
    ) -> Result<()> {
        for (name, v) in self.params().iter() {
            let w = file.take(name, v.dims())?;
            v.set(&Tensor::from_vec(w, v.dims(), &self.dev)?)?;
        }
        if let Some(extra) = file.left_over() {
            let dir = path.parent().unwrap_or(Path::new("."));
            return Err(Error::run(
                dir,
                format!("weights hold a tensor `{extra}` the pipeline does not declare"),
            ));
        }
        Ok(())
    }
}
