//! The generator spec: strict YAML describing a synthetic funnel with known ground truth, and its
//! validation (rates, vocabularies, Zipf exponents, effects), with located errors like pipelines.
//! Long because: the spec's structs and their one validation pass, each rule beside the located
//! error that names it (a history's own rules are in history.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use super::history::{GenHistory, RawGenHistory};
use crate::config::{Locator, parse_yaml};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    /// Correlation in [0, 1) between a field's effect on the first stage and its effect on each
    /// later stage. 0: the later stages' propensities share nothing with the first stage's.
    #[serde(default)]
    pub selection_bias: f64,
    /// Standard deviation of unobserved per-row noise added to every stage's logit.
    #[serde(default)]
    pub noise: f64,
    pub stages: Vec<RawGenStage>,
    #[serde(default)]
    pub categorical: Vec<RawGenCategorical>,
    #[serde(default)]
    pub numeric: Vec<RawGenNumeric>,
    /// Behaviour histories of categorical fields, matched against the row's value (history.rs).
    #[serde(default)]
    pub histories: Vec<RawGenHistory>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenStage {
    pub name: String,
    /// Target share of the rows that reached the previous stage (of all rows for the first).
    pub rate: f64,
    /// The next stage does not require this one (ESM²'s cart between click and buy).
    #[serde(default)]
    pub optional: bool,
    /// For the stage after an optional one: target share of the rows that reached the optional
    /// stage's parent but not the optional stage (`rate` is then the share of those that
    /// reached the optional stage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_without: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenCategorical {
    pub name: String,
    pub vocab: u64,
    /// P(rank r) ∝ r^-zipf; 0 is uniform.
    #[serde(default = "default_zipf")]
    pub zipf: f64,
    /// Stage name -> standard deviation of this field's contribution to that stage's logit.
    #[serde(default)]
    pub effects: BTreeMap<String, f64>,
}

fn default_zipf() -> f64 {
    1.0
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGenNumeric {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<NormalParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<UniformParams>,
    #[serde(default)]
    pub effects: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NormalParams {
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UniformParams {
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, Copy)]
pub enum Distribution {
    Normal { mean: f64, std: f64 },
    Uniform { low: f64, high: f64 },
}

/// A checked categorical field. `effects[k]` is the effect scale on stage k (0 = none).
#[derive(Debug, Clone)]
pub struct GenCategorical {
    pub name: String,
    pub vocab: u32,
    pub zipf: f64,
    pub effects: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct GenNumeric {
    pub name: String,
    pub distribution: Distribution,
    pub effects: Vec<f64>,
}

/// The generated files' first column: each row's index in the file, from 0.
pub const ROW_ID: &str = "row_id";

/// A checked spec: stages are ids (positions); names stay only for column names.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub file: PathBuf,
    /// Draws the hidden world: effect tables and the stages' intercepts.
    pub seed: u64,
    /// Draws the rows from the world (`seed` when not set apart: `generate --seed`).
    pub sample_seed: Option<u64>,
    pub selection_bias: f64,
    pub noise: f64,
    pub stage_names: Vec<String>,
    pub rates: Vec<f64>,
    /// Whether each stage may be skipped on the way to the next.
    pub optional: Vec<bool>,
    /// For a stage after an optional one: its rate among the rows that skipped it.
    pub rates_without: Vec<Option<f64>>,
    pub categorical: Vec<GenCategorical>,
    pub numeric: Vec<GenNumeric>,
    pub histories: Vec<GenHistory>,
}

impl Spec {
    pub fn load(file: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        Self::from_text(file, &text)
    }

    pub fn from_text(file: &Path, text: &str) -> Result<Spec> {
        let raw: RawSpec = parse_yaml(file, text)?;
        let loc = Locator::new(file, text);
        let err = |path: &str, msg: String, hint: &str| Error::Config {
            spot: loc.spot(path),
            message: msg,
            hint: Some(hint.to_string()),
        };
        let RawSpec {
            name,
            seed,
            selection_bias,
            noise,
            stages,
            categorical,
            numeric,
            histories,
        } = raw;
        if stages.is_empty() {
            return Err(err(
                "stages",
                "a funnel needs at least one stage".into(),
                "list the stages in causal order, each with a `rate`",
            ));
        }
        let mut stage_names: Vec<String> = Vec::new();
        let mut rates = Vec::new();
        let mut optional = Vec::new();
        let mut rates_without = Vec::new();
        // `row_id` is the generator's own first column.
        let mut columns: Vec<String> = vec![ROW_ID.to_string()];
        for (k, s) in stages.iter().enumerate() {
            if !valid_name(&s.name) || stage_names.contains(&s.name) {
                return Err(err(
                    &format!("stages[{k}].name"),
                    format!("stage name {:?} is empty, reused or not usable", s.name),
                    "use distinct names of letters, digits, `_` and `-`",
                ));
            }
            if !(s.rate > 0.0 && s.rate < 1.0) {
                return Err(err(
                    &format!("stages[{k}].rate"),
                    format!("rate must be in (0, 1), got {}", s.rate),
                    "e.g. `rate: 0.04` for 4% of the rows that reached the previous stage",
                ));
            }
            let after_optional = k > 0 && stages[k - 1].optional;
            if s.optional && (k == 0 || k + 1 == stages.len() || after_optional) {
                return Err(err(
                    &format!("stages[{k}].optional"),
                    "an optional stage needs a stage before it and one after it, and cannot follow another optional stage".into(),
                    "mark the middle stage of three (cart between click and buy)",
                ));
            }
            match (after_optional, s.rate_without) {
                (true, None) => {
                    return Err(err(
                        &format!("stages[{k}]"),
                        format!(
                            "stage `{}` follows an optional stage but has no `rate_without`",
                            s.name
                        ),
                        "add `rate_without`: its rate among the rows that skipped the optional stage",
                    ));
                }
                (false, Some(_)) => {
                    return Err(err(
                        &format!("stages[{k}].rate_without"),
                        "`rate_without` applies only to the stage after an optional one".into(),
                        "remove it, or mark the stage before as `optional: true`",
                    ));
                }
                (_, Some(r)) if !(r > 0.0 && r < 1.0) => {
                    return Err(err(
                        &format!("stages[{k}].rate_without"),
                        format!("rate_without must be in (0, 1), got {r}"),
                        "e.g. `rate_without: 0.02`",
                    ));
                }
                _ => {}
            }
            stage_names.push(s.name.clone());
            columns.push(s.name.clone());
            columns.push(format!("true_{}", s.name));
            rates.push(s.rate);
            optional.push(s.optional);
            rates_without.push(s.rate_without);
        }
        if !(0.0..1.0).contains(&selection_bias) {
            return Err(err(
                "selection_bias",
                format!("selection_bias must be in [0, 1), got {selection_bias}"),
                "0 means no bias; 0.8 makes later stages share most of the first stage's latent factors",
            ));
        }
        if !(noise >= 0.0 && noise.is_finite()) {
            return Err(err(
                "noise",
                format!("noise must be a finite number >= 0, got {noise}"),
                "0.5 adds unobserved logit noise with standard deviation 0.5",
            ));
        }
        let effects_of = |at: &str, map: &BTreeMap<String, f64>| -> Result<Vec<f64>> {
            let mut e = vec![0.0; stage_names.len()];
            for (stage, &v) in map {
                let Some(k) = stage_names.iter().position(|s| s == stage) else {
                    return Err(err(
                        &format!("{at}.effects.{stage}"),
                        format!("no stage is named `{stage}`"),
                        &format!(
                            "effects are keyed by stage name: {}",
                            stage_names.join(", ")
                        ),
                    ));
                };
                if !(v >= 0.0 && v.is_finite()) {
                    return Err(err(
                        &format!("{at}.effects.{stage}"),
                        format!("an effect must be a finite number >= 0, got {v}"),
                        "it is the standard deviation of the field's contribution to the stage's logit",
                    ));
                }
                e[k] = v;
            }
            Ok(e)
        };
        // Every output column name must be usable and distinct.
        let mut new_column = |at: &str, name: &str| -> Result<()> {
            if !valid_name(name) || columns.iter().any(|c| c == name) {
                return Err(err(
                    &format!("{at}.name"),
                    format!("column name {name:?} is empty, reused or not usable"),
                    "use distinct names of letters, digits, `_` and `-`",
                ));
            }
            columns.push(name.to_string());
            Ok(())
        };
        let mut cats = Vec::new();
        for (i, c) in categorical.iter().enumerate() {
            let at = format!("categorical[{i}]");
            new_column(&at, &c.name)?;
            if c.vocab == 0 || c.vocab > MAX_VOCAB {
                return Err(err(
                    &format!("{at}.vocab"),
                    format!("vocab must be between 1 and {MAX_VOCAB}, got {}", c.vocab),
                    "the number of distinct ids of the field",
                ));
            }
            if !(c.zipf >= 0.0 && c.zipf.is_finite()) {
                return Err(err(
                    &format!("{at}.zipf"),
                    format!("zipf must be a finite number >= 0, got {}", c.zipf),
                    "0 draws ids uniformly; 1.0 to 1.2 is typical of user and item ids",
                ));
            }
            cats.push(GenCategorical {
                name: c.name.clone(),
                vocab: c.vocab as u32,
                zipf: c.zipf,
                effects: effects_of(&at, &c.effects)?,
            });
        }
        let mut nums = Vec::new();
        for (i, n) in numeric.iter().enumerate() {
            let at = format!("numeric[{i}]");
            new_column(&at, &n.name)?;
            let distribution = match (n.normal, n.uniform) {
                (Some(p), None) if p.std > 0.0 && p.std.is_finite() && p.mean.is_finite() => {
                    Distribution::Normal {
                        mean: p.mean,
                        std: p.std,
                    }
                }
                (None, Some(p)) if p.low.is_finite() && p.high.is_finite() && p.low < p.high => {
                    Distribution::Uniform {
                        low: p.low,
                        high: p.high,
                    }
                }
                (Some(_), None) => {
                    return Err(err(
                        &format!("{at}.normal"),
                        "a normal distribution needs a finite mean and std > 0".into(),
                        "e.g. `normal: { mean: 0, std: 1 }`",
                    ));
                }
                (None, Some(_)) => {
                    return Err(err(
                        &format!("{at}.uniform"),
                        "a uniform distribution needs finite low < high".into(),
                        "e.g. `uniform: { low: 0, high: 1 }`",
                    ));
                }
                _ => {
                    return Err(err(
                        &at,
                        "give exactly one of `normal` and `uniform`".into(),
                        "e.g. `normal: { mean: 0, std: 1 }`",
                    ));
                }
            };
            nums.push(GenNumeric {
                name: n.name.clone(),
                distribution,
                effects: effects_of(&at, &n.effects)?,
            });
        }
        let fields: Vec<(&str, u32)> = cats.iter().map(|c| (c.name.as_str(), c.vocab)).collect();
        let checked = (histories.iter().enumerate())
            .map(|(i, h)| {
                new_column(&format!("histories[{i}]"), &h.name)?;
                GenHistory::check(i, h, &fields, &stage_names, &err)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Spec {
            name,
            file: file.to_path_buf(),
            seed,
            sample_seed: None,
            selection_bias,
            noise,
            stage_names,
            rates,
            optional,
            rates_without,
            categorical: cats,
            numeric: nums,
            histories: checked,
        })
    }

    pub fn stages(&self) -> usize {
        self.rates.len()
    }

    /// The stage a row must reach before stage k: the previous one, or the one before an
    /// optional previous stage.
    pub fn parent(&self, k: usize) -> Option<usize> {
        let prev = k.checked_sub(1)?;
        if self.optional[prev] {
            prev.checked_sub(1)
        } else {
            Some(prev)
        }
    }
}

/// Largest vocabulary of a generated field (its tables take about 30 bytes per id and stage).
pub const MAX_VOCAB: u64 = 1 << 28;

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
