//! The validated pipeline: the only configuration the rest of the crate sees.
//!
//! `Pipeline::load` parses strictly, then checks meaning (names, ranges, leakage, split layout) and
//! reports each problem at its file:line:column with the YAML path and a hint.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::locate::Locator;
use super::raw::*;
use crate::error::{Error, Result};

/// Most rows an embedding table may have (vocabulary or hash buckets).
pub const MAX_ROWS: u32 = 1 << 30;

/// Where one split's rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitSource {
    File(FileSource),
    /// A share of the training file's rows, drawn with the run seed.
    Carved {
        fraction: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSource {
    pub path: PathBuf,
    pub format: FileFormat,
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    pub separator: u8,
    pub header: bool,
    pub null_values: Vec<String>,
    pub trim_whitespace: bool,
}

#[derive(Debug, Clone)]
pub struct CategoricalSpec {
    pub name: String,
    pub column: String,
    pub dim: usize,
    pub min_count: u64,
    pub hash_buckets: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct NumericSpec {
    pub name: String,
    pub column: String,
    pub transform: NumericTransform,
    pub missing: MissingPolicy,
}

#[derive(Debug, Clone)]
pub struct LabelSpec {
    pub column: String,
    pub positive: Option<Vec<String>>,
    pub negative: Option<Vec<String>>,
    pub meaning: LabelMeaning,
}

#[derive(Debug, Clone)]
pub struct TowerSpec {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f64,
}

/// One funnel stage. Its position in `Pipeline::stages` is its id.
#[derive(Debug, Clone)]
pub struct StageSpec {
    pub name: String,
    pub label: LabelSpec,
    pub tower: TowerSpec,
    pub loss_weight: f64,
    /// Column of the true conditional probability, when the data is synthetic.
    pub truth: Option<String>,
}

/// Which prediction of a stage a metric is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// p_k on all rows, against the cumulative label.
    Cumulative,
    /// q_k on the rows that reached stage k-1, against the stage's label.
    Conditional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Auc,
    Logloss,
}

#[derive(Debug, Clone)]
pub struct EarlyStopping {
    pub stage: usize,
    pub prediction: Prediction,
    pub measure: Measure,
    pub patience: usize,
    pub monitor: String,
}

#[derive(Debug, Clone)]
pub struct TrainSpec {
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub seed: u64,
    pub threads: usize,
    pub optimizer: RawOptimizer,
    pub embedding_optimizer: RawEmbeddingOptimizer,
    pub early_stopping: Option<EarlyStopping>,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    pub train_source: FileSource,
    pub valid: Option<SplitSource>,
    pub test: Option<SplitSource>,
    pub id_column: Option<String>,
    pub embedding_init_std: f64,
    pub categorical: Vec<CategoricalSpec>,
    pub numeric: Vec<NumericSpec>,
    pub stages: Vec<StageSpec>,
    pub head: HeadKind,
    pub representation: RepresentationKind,
    pub train: TrainSpec,
    pub inconsistent_rows: InconsistentRows,
    /// The pipeline with defaults filled in and paths made absolute: what a run directory stores.
    pub resolved: RawPipeline,
}

impl Pipeline {
    /// Read, parse and validate a pipeline file. Data files are not opened.
    pub fn load(file: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        Self::from_text(file, &text)
    }

    pub fn from_text(file: &Path, text: &str) -> Result<Pipeline> {
        let raw: RawPipeline = super::parse_yaml(file, text)?;
        let loc = Locator::new(file, text);
        let base = file.parent().unwrap_or(Path::new("."));
        Checker { loc: &loc, base }.pipeline(raw, file)
    }

    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// Every data column the model reads, with the role it plays (for header checks).
    pub fn feature_columns(&self) -> impl Iterator<Item = &str> {
        self.categorical
            .iter()
            .map(|c| c.column.as_str())
            .chain(self.numeric.iter().map(|n| n.column.as_str()))
    }
}

struct Checker<'a> {
    loc: &'a Locator,
    base: &'a Path,
}

impl Checker<'_> {
    fn err(&self, path: &str, message: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Config {
            spot: self.loc.spot(path),
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    fn pipeline(&self, mut raw: RawPipeline, file: &Path) -> Result<Pipeline> {
        let RawPipeline {
            name,
            data,
            features,
            stages,
            model,
            train,
            inconsistent_rows,
        } = raw.clone();
        check_name(self, "name", &name)?;
        let RawData {
            train: train_src,
            valid,
            test,
            id_column,
        } = data;
        let train_source = match self.source("data.train", &train_src)? {
            SplitSource::File(f) => f,
            SplitSource::Carved { .. } => {
                return Err(self.err(
                    "data.train.split_from",
                    "the training split cannot be carved from another split",
                    "give `data.train.path`",
                ));
            }
        };
        let valid = valid
            .as_ref()
            .map(|v| self.source("data.valid", v))
            .transpose()?;
        let test = test
            .as_ref()
            .map(|t| self.source("data.test", t))
            .transpose()?;
        self.check_splits(&train_source, &valid, &test)?;
        let (categorical, numeric) = self.features(&features)?;
        let stages = self.stages(&stages)?;
        self.check_leakage(&categorical, &numeric, &stages, &id_column)?;
        let train = self.train(train, &stages)?;
        if train.early_stopping.is_some() && valid.is_none() {
            return Err(self.err(
                "train.early_stopping",
                "early stopping needs a validation split",
                "add `data.valid` (e.g. `split_from: train` with `fraction: 0.1`) or remove `early_stopping`",
            ));
        }
        let RawModel {
            head,
            representation,
        } = model;
        // Make every path absolute so the stored pipeline means the same thing from any directory.
        for (src, parsed) in [
            (
                Some(&mut raw.data.train),
                Some(SplitSource::File(train_source.clone())),
            ),
            (raw.data.valid.as_mut(), valid.clone()),
            (raw.data.test.as_mut(), test.clone()),
        ] {
            if let (Some(src), Some(SplitSource::File(f))) = (src, parsed) {
                src.path = Some(f.path.display().to_string());
                src.format = Some(f.format);
            }
        }
        Ok(Pipeline {
            name,
            file: file.to_path_buf(),
            train_source,
            valid,
            test,
            id_column,
            embedding_init_std: features.embedding_init_std,
            categorical,
            numeric,
            stages,
            head,
            representation,
            train,
            inconsistent_rows,
            resolved: raw,
        })
    }

    fn source(&self, at: &str, s: &RawSource) -> Result<SplitSource> {
        match (&s.path, s.split_from, s.fraction) {
            (Some(path), None, None) => {
                let resolved = self.base.join(path);
                let format = match s.format {
                    Some(f) => f,
                    None => format_from_extension(&resolved).ok_or_else(|| {
                        self.err(
                            &format!("{at}.path"),
                            format!("cannot tell the format of `{path}` from its extension"),
                            "add `format: csv` or `format: parquet`",
                        )
                    })?,
                };
                let raw_csv = s.csv.clone().unwrap_or_default();
                if format == FileFormat::Parquet && s.csv.is_some() {
                    return Err(self.err(
                        &format!("{at}.csv"),
                        "`csv` options given for a Parquet source",
                        "remove the `csv` block or set `format: csv`",
                    ));
                }
                let sep = raw_csv.separator.as_bytes();
                if sep.len() != 1 {
                    return Err(self.err(
                        &format!("{at}.csv.separator"),
                        format!(
                            "separator must be a single ASCII character, got {:?}",
                            raw_csv.separator
                        ),
                        "for `a, b` files use `separator: \",\"` with `trim_whitespace: true`",
                    ));
                }
                let canonical = std::fs::canonicalize(&resolved).unwrap_or(resolved);
                Ok(SplitSource::File(FileSource {
                    path: canonical,
                    format,
                    csv: CsvOptions {
                        separator: sep[0],
                        header: raw_csv.header,
                        null_values: raw_csv.null_values,
                        trim_whitespace: raw_csv.trim_whitespace,
                    },
                }))
            }
            (None, Some(SplitName::Train), Some(fraction)) => {
                if s.format.is_some() || s.csv.is_some() {
                    return Err(self.err(
                        at,
                        "a carved split reads no file, so `format`/`csv` do not apply",
                        "remove `format` and `csv`, or replace `split_from` by `path`",
                    ));
                }
                if !(fraction > 0.0 && fraction < 1.0) {
                    return Err(self.err(
                        &format!("{at}.fraction"),
                        format!("fraction must be in (0, 1), got {fraction}"),
                        "e.g. `fraction: 0.1` carves 10% of the training rows",
                    ));
                }
                Ok(SplitSource::Carved { fraction })
            }
            (None, Some(SplitName::Train), None) => Err(self.err(
                at,
                "`split_from` without `fraction`",
                "add e.g. `fraction: 0.1`",
            )),
            (None, Some(other), _) => Err(self.err(
                &format!("{at}.split_from"),
                format!("splits can only be carved from `train`, not `{}`", other.as_str()),
                "use `split_from: train`",
            )),
            (None, None, Some(_)) => Err(self.err(
                at,
                "`fraction` without `split_from`",
                "add `split_from: train`",
            )),
            (Some(_), _, _) => Err(self.err(
                at,
                "a split has either `path` or `split_from` + `fraction`, not both",
                "keep one of them",
            )),
            (None, None, None) => Err(self.err(
                at,
                "a split needs `path` (a CSV or Parquet file) or `split_from: train` with `fraction`",
                "e.g. `path: data/train.csv`",
            )),
        }
    }

    fn check_splits(
        &self,
        train: &FileSource,
        valid: &Option<SplitSource>,
        test: &Option<SplitSource>,
    ) -> Result<()> {
        let mut carved = 0.0;
        for (at, s) in [("data.valid", valid), ("data.test", test)] {
            match s {
                Some(SplitSource::File(f)) if f.path == train.path => {
                    return Err(self.err(
                        &format!("{at}.path"),
                        format!("{at} reads the training file"),
                        "evaluate on rows the model never trained on: use another file or `split_from: train`",
                    ));
                }
                Some(SplitSource::Carved { fraction }) => carved += fraction,
                _ => {}
            }
        }
        if carved >= 1.0 {
            return Err(self.err(
                "data",
                "the carved splits take all of the training rows",
                "make the fractions sum to less than 1",
            ));
        }
        // Carved splits are disjoint by construction; two files are the same rows when they
        // are the same path, whatever their CSV options.
        if let (Some(SplitSource::File(v)), Some(SplitSource::File(t))) = (valid, test)
            && v.path == t.path
        {
            return Err(self.err(
                "data.test",
                "the validation split equals the test split",
                "early stopping on the test rows makes the test metrics optimistic: give `valid` its own rows (e.g. `split_from: train`)",
            ));
        }
        Ok(())
    }

    fn features(&self, f: &RawFeatures) -> Result<(Vec<CategoricalSpec>, Vec<NumericSpec>)> {
        if f.embedding_dim == 0 {
            return Err(self.err(
                "features.embedding_dim",
                "embedding_dim must be at least 1",
                "8 or 16 are common",
            ));
        }
        if !(f.embedding_init_std > 0.0 && f.embedding_init_std < 1e30) {
            return Err(self.err(
                "features.embedding_init_std",
                "embedding_init_std must be positive",
                "0.01 is a safe default",
            ));
        }
        if f.categorical.is_empty() && f.numeric.is_empty() {
            return Err(self.err(
                "features",
                "no features declared",
                "list columns under `features.categorical` or `features.numeric`",
            ));
        }
        let mut names = HashSet::new();
        let mut cats = Vec::new();
        for (i, c) in f.categorical.iter().enumerate() {
            let at = format!("features.categorical[{i}]");
            self.new_feature(&mut names, &at, &c.name)?;
            let dim = c.dim.unwrap_or(f.embedding_dim);
            if dim == 0 {
                return Err(self.err(
                    &format!("{at}.dim"),
                    "dim must be at least 1",
                    "remove `dim` to use `features.embedding_dim`",
                ));
            }
            if c.hash_buckets.is_some_and(|b| b == 0 || b > MAX_ROWS) {
                return Err(self.err(
                    &format!("{at}.hash_buckets"),
                    format!("hash_buckets must be between 1 and {MAX_ROWS}"),
                    "remove `hash_buckets` to fit a vocabulary instead",
                ));
            }
            cats.push(CategoricalSpec {
                name: c.name.clone(),
                column: c.column.clone().unwrap_or_else(|| c.name.clone()),
                dim,
                min_count: c.min_count.max(1),
                hash_buckets: c.hash_buckets,
            });
        }
        let mut nums = Vec::new();
        for (i, n) in f.numeric.iter().enumerate() {
            let at = format!("features.numeric[{i}]");
            self.new_feature(&mut names, &at, &n.name)?;
            nums.push(NumericSpec {
                name: n.name.clone(),
                column: n.column.clone().unwrap_or_else(|| n.name.clone()),
                transform: n.transform,
                missing: n.missing,
            });
        }
        Ok((cats, nums))
    }

    /// Check a feature's name and that no earlier feature took it.
    fn new_feature(&self, names: &mut HashSet<String>, at: &str, name: &str) -> Result<()> {
        check_name(self, &format!("{at}.name"), name)?;
        if names.insert(name.to_string()) {
            return Ok(());
        }
        Err(self.err(
            &format!("{at}.name"),
            format!("feature `{name}` is declared twice"),
            "give each feature a distinct name (use `column` to read one column twice)",
        ))
    }

    fn stages(&self, stages: &[RawStage]) -> Result<Vec<StageSpec>> {
        if stages.is_empty() {
            return Err(self.err(
                "stages",
                "a funnel needs at least one stage",
                "list the stages in causal order, e.g. click then conversion",
            ));
        }
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (k, s) in stages.iter().enumerate() {
            let at = format!("stages[{k}]");
            check_name(self, &format!("{at}.name"), &s.name)?;
            if !names.insert(s.name.clone()) {
                return Err(self.err(
                    &format!("{at}.name"),
                    format!("stage `{}` is declared twice", s.name),
                    "stage names must be distinct",
                ));
            }
            let l = &s.label;
            if k == 0 && l.meaning == LabelMeaning::GivenPrevious {
                return Err(self.err(
                    &format!("{at}.label.meaning"),
                    "the first stage has no previous stage",
                    "use `meaning: reached` (the default) for the first stage",
                ));
            }
            if l.positive.as_ref().is_some_and(|p| p.is_empty()) {
                return Err(self.err(
                    &format!("{at}.label.positive"),
                    "`positive` lists no values",
                    "list the values that count as positive, or remove `positive` for a 0/1 column",
                ));
            }
            if l.negative.is_some() && l.positive.is_none() {
                return Err(self.err(
                    &format!("{at}.label.negative"),
                    "`negative` without `positive`",
                    "declare `positive` too, or remove `negative` for a 0/1 column",
                ));
            }
            if let (Some(p), Some(n)) = (&l.positive, &l.negative)
                && let Some(both) = p.iter().find(|v| n.contains(v))
            {
                return Err(self.err(
                    &format!("{at}.label.negative"),
                    format!("value {both:?} is both positive and negative"),
                    "remove it from one list",
                ));
            }
            let t = &s.tower;
            if t.hidden.contains(&0) {
                return Err(self.err(
                    &format!("{at}.tower.hidden"),
                    "hidden layer sizes must be at least 1",
                    "e.g. `hidden: [64, 32]`, or `[]` for a linear tower",
                ));
            }
            if !(0.0..1.0).contains(&t.dropout) {
                return Err(self.err(
                    &format!("{at}.tower.dropout"),
                    format!("dropout must be in [0, 1), got {}", t.dropout),
                    "0.1 drops one activation in ten while training",
                ));
            }
            if !(s.loss_weight >= 0.0 && s.loss_weight < 1e30) {
                return Err(self.err(
                    &format!("{at}.loss_weight"),
                    format!(
                        "loss_weight must be a finite number >= 0, got {}",
                        s.loss_weight
                    ),
                    "1.0 weighs every stage equally",
                ));
            }
            out.push(StageSpec {
                name: s.name.clone(),
                label: LabelSpec {
                    column: l.column.clone(),
                    positive: l.positive.clone(),
                    negative: l.negative.clone(),
                    meaning: l.meaning,
                },
                tower: TowerSpec {
                    hidden: t.hidden.clone(),
                    activation: t.activation,
                    dropout: t.dropout,
                },
                loss_weight: s.loss_weight,
                truth: s.truth.clone(),
            });
        }
        if out.iter().any(|s| s.truth.is_some())
            && let Some(k) = out.iter().position(|s| s.truth.is_none())
        {
            return Err(self.err(
                &format!("stages[{k}]"),
                format!(
                    "stage `{}` has no `truth` column while other stages have one",
                    out[k].name
                ),
                "give every stage its truth column (e.g. `truth: true_<stage>`), or none",
            ));
        }
        if out.iter().all(|s| s.loss_weight == 0.0) {
            return Err(self.err(
                "stages",
                "every stage has loss_weight 0, so nothing would be trained",
                "give at least one stage a positive loss_weight",
            ));
        }
        Ok(out)
    }

    fn check_leakage(
        &self,
        cats: &[CategoricalSpec],
        nums: &[NumericSpec],
        stages: &[StageSpec],
        id_column: &Option<String>,
    ) -> Result<()> {
        let feature_at = cats
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("features.categorical[{i}]"), &c.column))
            .chain(
                nums.iter()
                    .enumerate()
                    .map(|(i, n)| (format!("features.numeric[{i}]"), &n.column)),
            );
        for (at, column) in feature_at {
            if let Some(s) = stages.iter().find(|s| s.truth.as_ref() == Some(column)) {
                return Err(self.err(
                    &at,
                    format!(
                        "column `{column}` holds the true probability of stage `{}` and is also a feature",
                        s.name
                    ),
                    "remove the feature: truth columns are for evaluation only",
                ));
            }
            if let Some(s) = stages.iter().find(|s| &s.label.column == column) {
                return Err(self.err(
                    &at,
                    format!(
                        "column `{column}` is the label of stage `{}` and also a feature: the model would read the answer",
                        s.name
                    ),
                    "remove the feature",
                ));
            }
        }
        for (k, s) in stages.iter().enumerate() {
            let Some(truth) = &s.truth else { continue };
            let clash = stages
                .iter()
                .find(|o| &o.label.column == truth)
                .map(|o| format!("the label of stage `{}`", o.name))
                .or_else(|| (id_column.as_ref() == Some(truth)).then(|| "the id column".into()));
            if let Some(what) = clash {
                return Err(self.err(
                    &format!("stages[{k}].truth"),
                    format!("truth column `{truth}` is also {what}"),
                    "name the column that holds the true conditional probability",
                ));
            }
        }
        if let Some(id) = id_column
            && let Some(s) = stages.iter().find(|s| {
                id == &format!("{}_conditional", s.name) || id == &format!("{}_cumulative", s.name)
            })
        {
            return Err(self.err(
                "data.id_column",
                format!("id column `{id}` has the name of a prediction column of stage `{}`", s.name),
                "predictions are written as `<stage>_conditional` and `<stage>_cumulative`: rename the id column",
            ));
        }
        if let Some(id) = id_column
            && let Some(s) = stages.iter().find(|s| &s.label.column == id)
        {
            return Err(self.err(
                "data.id_column",
                format!("id column `{id}` is the label of stage `{}`", s.name),
                "name a column that identifies rows",
            ));
        }
        Ok(())
    }

    fn train(&self, t: RawTrain, stages: &[StageSpec]) -> Result<TrainSpec> {
        let RawTrain {
            epochs,
            batch_size,
            eval_batch_size,
            seed,
            threads,
            optimizer,
            embedding_optimizer,
            early_stopping,
        } = t;
        if epochs == 0 {
            return Err(self.err(
                "train.epochs",
                "epochs must be at least 1",
                "e.g. `epochs: 10`",
            ));
        }
        if batch_size == 0 {
            return Err(self.err(
                "train.batch_size",
                "batch_size must be at least 1",
                "e.g. `batch_size: 512`",
            ));
        }
        if eval_batch_size == 0 {
            return Err(self.err(
                "train.eval_batch_size",
                "eval_batch_size must be at least 1",
                "e.g. `eval_batch_size: 8192`",
            ));
        }
        // Optimizers run in f32: keep every value representable and eps well above f32's floor.
        let positive = |v: f64| v > 0.0 && v < 1e30;
        let unit = |v: f64| (0.0..1.0).contains(&v);
        let o = &optimizer;
        for (key, ok, what) in [
            ("lr", positive(o.lr), "a positive number"),
            (
                "weight_decay",
                o.weight_decay >= 0.0 && o.weight_decay < 1e30,
                "a number >= 0",
            ),
            ("beta1", unit(o.beta1), "in [0, 1)"),
            ("beta2", unit(o.beta2), "in [0, 1)"),
            ("eps", o.eps >= 1e-30 && o.eps < 1.0, "in [1e-30, 1)"),
        ] {
            if !ok {
                return Err(self.err(
                    &format!("train.optimizer.{key}"),
                    format!("`{key}` must be {what}"),
                    "the defaults are lr 0.001, betas 0.9/0.999, eps 1e-8",
                ));
            }
        }
        let e = &embedding_optimizer;
        for (key, ok, what) in [
            ("lr", positive(e.lr), "a positive number"),
            ("beta1", unit(e.beta1), "in [0, 1)"),
            ("beta2", unit(e.beta2), "in [0, 1)"),
            ("eps", e.eps >= 1e-30 && e.eps < 1.0, "in [1e-30, 1)"),
            (
                "initial_accumulator",
                e.initial_accumulator >= 0.0 && e.initial_accumulator < 1e30,
                "a number >= 0",
            ),
        ] {
            if !ok {
                return Err(self.err(
                    &format!("train.embedding_optimizer.{key}"),
                    format!("`{key}` must be {what}"),
                    "row-wise Adagrad works well with lr 0.05",
                ));
            }
        }
        let early_stopping = early_stopping
            .map(|es| self.early_stopping(&es, stages))
            .transpose()?;
        Ok(TrainSpec {
            epochs,
            batch_size,
            eval_batch_size,
            seed,
            threads,
            optimizer,
            embedding_optimizer,
            early_stopping,
        })
    }

    fn early_stopping(&self, es: &RawEarlyStopping, stages: &[StageSpec]) -> Result<EarlyStopping> {
        let at = "train.early_stopping.monitor";
        let hint = || {
            format!(
                "write `<stage>.<cumulative|conditional>.<auc|logloss>`, e.g. `{}.cumulative.auc`",
                stages
                    .last()
                    .map(|s| s.name.as_str())
                    .unwrap_or("conversion")
            )
        };
        let parts: Vec<&str> = es.monitor.split('.').collect();
        let [stage, prediction, measure] = parts[..] else {
            return Err(self.err(at, format!("cannot read monitor `{}`", es.monitor), hint()));
        };
        let Some(stage) = stages.iter().position(|s| s.name == stage) else {
            return Err(self.err(at, format!("no stage is named `{stage}`"), hint()));
        };
        let prediction = match prediction {
            "cumulative" => Prediction::Cumulative,
            "conditional" => Prediction::Conditional,
            other => return Err(self.err(at, format!("unknown prediction `{other}`"), hint())),
        };
        let measure = match measure {
            "auc" => Measure::Auc,
            "logloss" => Measure::Logloss,
            other => return Err(self.err(at, format!("unknown measure `{other}`"), hint())),
        };
        if es.patience == 0 {
            return Err(self.err(
                "train.early_stopping.patience",
                "patience must be at least 1",
                "e.g. `patience: 2` stops after two epochs without improvement",
            ));
        }
        Ok(EarlyStopping {
            stage,
            prediction,
            measure,
            patience: es.patience,
            monitor: es.monitor.clone(),
        })
    }
}

fn check_name(c: &Checker<'_>, at: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    if ok {
        Ok(())
    } else {
        Err(c.err(
            at,
            format!("name {name:?} is not usable"),
            "names may hold letters, digits, `_` and `-` (they become metric names and checkpoint keys); read another column with `column:`",
        ))
    }
}

pub fn format_from_extension(path: &Path) -> Option<FileFormat> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".parquet") || name.ends_with(".pq") {
        Some(FileFormat::Parquet)
    } else if name.ends_with(".csv") || name.ends_with(".txt") {
        Some(FileFormat::Csv)
    } else {
        None
    }
}
