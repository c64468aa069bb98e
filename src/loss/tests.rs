//! The loss against independent references: values by hand, f64 formulas and their finite
//! differences, for every preset as the config expands it.
//! Long because: these tests are the loss's specification, one independent reference per
//! family member (entire space, IPS, doubly robust, ESM²'s mixture, own labels, uncertainty).

use super::*;
use crate::funnel::{HeadKind, Output, Prediction, Propensity, Rows, Supervision, Term, Weighting};
use crate::numerics::{MAX_LOG_PROB, log_sigmoid as ls, log1mexp};
use candle_core::Var;

const IPS: Propensity = Propensity {
    floor: 0.05,
    max_weight: 8.0,
    self_normalised: false,
};

/// The plain sum of the stages' losses of `logits`, with `imputed[s]` as stage s's imputation
/// head output where given.
fn total(f: &Funnel, logits: &Tensor, imputed: &[Option<Tensor>], t: &Targets) -> Tensor {
    let mut out = ChainOutput::from_logits(logits.clone());
    for (s, e) in imputed.iter().enumerate() {
        if let Some(e) = e {
            out.heads.insert(s, HeadKind::Imputation, e.clone());
        }
    }
    funnel_loss(f, &out, t).unwrap().total()
}

fn chain(terms: impl Fn(usize) -> Vec<Term>, k: usize) -> Funnel {
    Funnel::chain(k, |s| Supervision {
        terms: terms(s),
        stage_weight: 1.0,
    })
    .unwrap()
}

/// The funnels of every preset as the config expands them (`Pipeline::from_text`), on three
/// stages with unequal loss weights so that a misplaced weight shows. The f64 reference below
/// is written from the formulas, so a preset that expanded into the wrong terms fails it.
fn presets() -> Vec<(&'static str, Funnel)> {
    let escm2 = |normalised: bool| {
        format!(
            "{{ preset: escm2_ips, escm2: {{ counterfactual_weight: 0.5, global_weight: 0.4, propensity_floor: 0.05, max_weight: 8, self_normalised: {normalised} }} }}"
        )
    };
    [
        ("esmm", "{ preset: esmm }".to_string()),
        ("naive", "{ preset: naive }".to_string()),
        ("division", "{ preset: division }".to_string()),
        ("aitm", "{ preset: aitm, aitm: { calibrator: 0.6 } }".to_string()),
        ("escm2_ips", escm2(false)),
        ("escm2_ips self-normalised", escm2(true)),
    ]
    .into_iter()
    .map(|(name, model)| {
        let yaml = format!(
            "name: t\ndata:\n  train: {{ path: none.csv }}\nfeatures:\n  categorical: [{{ name: a }}]\nstages:\n  - {{ name: s0, label: {{ column: y0 }}, loss_weight: 1.0 }}\n  - {{ name: s1, label: {{ column: y1 }}, loss_weight: 0.7 }}\n  - {{ name: s2, label: {{ column: y2 }}, loss_weight: 1.3 }}\nmodel: {model}\n"
        );
        let p = crate::config::Pipeline::from_text(std::path::Path::new("t.yaml"), &yaml)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        (name, p.funnel)
    })
    .collect()
}

/// The presets expand into the terms the hand-built funnels below restate: weights times the
/// stage's loss weight, IPS settings as written.
#[test]
fn presets_expand_as_the_formulas_say() {
    use Prediction::{Conditional, Cumulative};
    let funnels = presets();
    let get = |name: &str| &funnels.iter().find(|(n, _)| *n == name).unwrap().1;
    let w = [1.0, 0.7, 1.3];
    for (s, &w) in w.iter().enumerate() {
        assert_eq!(
            get("esmm").supervision(s).terms,
            vec![Term::unit(Cumulative, Rows::All, w)]
        );
    }
    assert_eq!(
        get("naive").supervision(2).terms,
        vec![Term::unit(Conditional, Rows::ReachedParent, 1.3)]
    );
    let ips = &get("escm2_ips").supervision(1).terms;
    assert_eq!(ips[0].weighting, Weighting::InversePropensity(IPS));
    assert!((ips[0].weight - 0.35).abs() < 1e-12 && (ips[1].weight - 0.28).abs() < 1e-12);
    assert_eq!(get("aitm").calibrator(), Some(0.6));
    assert_eq!(get("division").output(), Output::Cumulative);
}

fn loss_and_grad(f: &Funnel, z: &[f32], y: &[f32], rows: usize) -> (f64, Vec<f64>) {
    let dev = Device::Cpu;
    let zv = Var::from_slice(z, (rows, f.len()), &dev).unwrap();
    let t = Targets::new(f, y, &[], rows, &dev).unwrap();
    let l = total(f, zv.as_tensor(), &[], &t);
    let g = l.backward().unwrap();
    let g = g.get(zv.as_tensor()).unwrap().flatten_all().unwrap();
    (
        l.to_scalar::<f32>().unwrap() as f64,
        g.to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect(),
    )
}

/// (ln q, ln p) of one row in f64, from the formulas.
fn row_probs(f: &Funnel, z: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut lq, mut lp) = (Vec::new(), Vec::new());
    for s in f.order() {
        let parent = f.parent(s).map_or(0.0, |p| lp[p]);
        let (q, p) = match f.output() {
            Output::Conditional => (ls(z[s]), parent + ls(z[s])),
            Output::Cumulative => ((ls(z[s]) - parent).min(0.0), ls(z[s])),
        };
        lq.push(q);
        lp.push(p);
    }
    (lq, lp)
}

/// An independent f64 reference of the loss, written from the formulas in
/// FAMILY-NOTES.md. The propensities come from `zw`, held fixed (they are detached in the
/// model), so finite differences of this function are the model's gradient.
fn reference(f: &Funnel, z: &[f64], zw: &[f64], y: &[f32], rows: usize) -> f64 {
    let k = f.len();
    let bce = |s: f64, y: f64| {
        let s = s.min(MAX_LOG_PROB);
        -(y * s + (1.0 - y) * log1mexp(s))
    };
    let mut total = 0.0;
    for s in 0..k {
        for term in &f.supervision(s).terms {
            let (mut num, mut wsum, mut n) = (0.0f64, 0.0f64, 0.0f64);
            for r in 0..rows {
                let yr = &y[r * k..(r + 1) * k];
                let parent = f.parent(s);
                if term.rows == Rows::ReachedParent && parent.is_some_and(|p| yr[p] == 0.0) {
                    continue;
                }
                let (lq, lp) = row_probs(f, &z[r * k..(r + 1) * k]);
                let w = match (term.weighting, parent) {
                    (Weighting::InversePropensity(ps), Some(p)) => {
                        let (_, lpw) = row_probs(f, &zw[r * k..(r + 1) * k]);
                        (1.0 / lpw[p].exp().max(ps.floor)).min(ps.max_weight)
                    }
                    _ => 1.0,
                };
                let target = match term.target {
                    Prediction::Cumulative => lp[s],
                    Prediction::Conditional => lq[s],
                };
                num += w * bce(target, yr[s] as f64);
                wsum += w;
                n += 1.0;
            }
            let den = match (term.weighting, term.rows, f.parent(s)) {
                (Weighting::InversePropensity(ps), _, Some(_)) => {
                    if ps.self_normalised {
                        wsum.max(1e-12)
                    } else {
                        rows as f64
                    }
                }
                (_, Rows::ReachedParent, Some(_)) => n.max(1.0),
                _ => rows as f64,
            };
            total += term.weight * num / den;
        }
        if let (Some(lambda), Some(p)) = (f.calibrator(), f.parent(s)) {
            let mut excess = 0.0;
            for r in 0..rows {
                let (_, lp) = row_probs(f, &z[r * k..(r + 1) * k]);
                excess += (lp[s].exp() - lp[p].exp()).max(0.0);
            }
            total += lambda * f.supervision(s).stage_weight * excess / rows as f64;
        }
    }
    total
}

fn batch() -> (Vec<f32>, Vec<f32>, usize) {
    // Three stages, five rows; labels are cumulative. Some rows have z_k > z_parent, so
    // cumulative heads violate the order there and the calibrator is active.
    let z = vec![
        0.3, -1.2, 2.5, //
        -0.7, 0.4, -2.0, //
        1.5, 1.1, 0.2, //
        -2.2, -0.3, 0.9, //
        -3.5, -0.1, -0.4,
    ];
    let y = vec![
        1.0, 1.0, 0.0, //
        1.0, 0.0, 0.0, //
        1.0, 1.0, 1.0, //
        0.0, 0.0, 0.0, //
        1.0, 1.0, 0.0,
    ];
    (z, y, 5)
}

#[test]
fn esmm_two_stage_value_by_hand() {
    // python3: import math; s=lambda z: 1/(1+math.exp(-z)); p1=s(0.5); p2=p1*s(-1.0)
    // -(math.log(p1)) - math.log(1-p2)  # labels: stage 1 = 1, stage 2 = 0
    // = 0.47407698418010663 + 0.18320806636160125 = 0.6572850505417078
    let f = chain(
        |_| vec![Term::unit(Prediction::Cumulative, Rows::All, 1.0)],
        2,
    );
    let (l, _) = loss_and_grad(&f, &[0.5, -1.0], &[1.0, 0.0], 1);
    assert!((l - 0.657_285_05).abs() < 1e-6, "{l}");
}

#[test]
fn ips_and_calibrator_values_by_hand() {
    // Two stages, two rows, cumulative logits (AITM) z = [[1, 2], [0, -1]], labels
    // [[1, 1], [0, 0]]. python3:
    //   s=lambda z: 1/(1+math.exp(-z)); p=[[s(1),s(2)],[s(0),s(-1)]]
    //   bce=lambda p,y: -(y*math.log(p)+(1-y)*math.log(1-p))
    //   sum(bce(p[r][k],[[1,1],[0,0]][r][k]) for r in (0,1) for k in (0,1))/2
    //     + 0.6*(max(p[0][1]-p[0][0],0)+max(p[1][1]-p[1][0],0))/2
    //   = 0.7232992833196817 + 0.6 * 0.07486924967393871 = 0.768220833124045
    let f = chain(
        |_| vec![Term::unit(Prediction::Cumulative, Rows::All, 1.0)],
        2,
    )
    .with_output(Output::Cumulative)
    .with_calibrator(Some(0.6));
    let (l, _) = loss_and_grad(&f, &[1.0, 2.0, 0.0, -1.0], &[1.0, 1.0, 0.0, 0.0], 2);
    assert!((l - 0.768_220_83).abs() < 1e-5, "{l}");
    // ESCM² IPS on stage 2 only, conditional logits z = [[0, 1], [-1, 0]], labels
    // [[1, 1], [1, 0]], floor 0.05, cap 8: w_r = 1 / σ(z_r1), term = Σ_r w_r bce(σ(z_r2)) / 2.
    //   (1/s(0)*bce(s(1),1) + 1/s(-1)*bce(s(0),0))/2
    //   = (2*0.3132616875182228 + 3.7182818284590455*0.6931471805599453)/2
    //   = 1.6019199704800555
    let f = chain(
        |s| {
            if s == 0 {
                vec![]
            } else {
                vec![Term {
                    target: Prediction::Conditional,
                    rows: Rows::ReachedParent,
                    label: Label::Reached,
                    weighting: Weighting::InversePropensity(IPS),
                    weight: 1.0,
                }]
            }
        },
        2,
    );
    let (l, _) = loss_and_grad(&f, &[0.0, 1.0, -1.0, 0.0], &[1.0, 1.0, 1.0, 0.0], 2);
    assert!((l - 1.601_919_97).abs() < 1e-5, "{l}");
}

/// Every preset: value equal to the f64 reference, gradient equal to its finite
/// differences (propensities held fixed, as the model detaches them).
#[test]
fn every_preset_matches_reference_and_finite_differences() {
    let (z, y, rows) = batch();
    let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
    for (name, f) in presets() {
        let (l, g) = loss_and_grad(&f, &z, &y, rows);
        let want = reference(&f, &z64, &z64, &y, rows);
        assert!(
            (l - want).abs() < 1e-5 * (1.0 + want),
            "{name}: {l} vs {want}"
        );
        for j in 0..z.len() {
            let h = 1e-5;
            let (mut up, mut down) = (z64.clone(), z64.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (reference(&f, &up, &z64, &y, rows) - reference(&f, &down, &z64, &y, rows))
                / (2.0 * h);
            assert!(
                (fd - g[j]).abs() < 1e-4,
                "{name} dz{j}: fd {fd} vs {}",
                g[j]
            );
        }
    }
}

/// A conditional term on the rows that reached the parent reads only those rows.
#[test]
fn naive_conditional_term_ignores_unreached_rows() {
    let (z, y, rows) = batch();
    let f = chain(
        |s| {
            let w = if s == 1 { 1.0 } else { 0.0 };
            vec![Term::unit(Prediction::Conditional, Rows::ReachedParent, w)]
        },
        3,
    );
    let (_, g) = loss_and_grad(&f, &z, &y, rows);
    // Stage 1's term: rows 0, 1, 2 and 4 reached stage 0; row 3 did not.
    assert_eq!(g[3 * 3 + 1], 0.0);
    assert!([0, 1, 2, 4].iter().all(|&r| g[r * 3 + 1] != 0.0));
    for r in 0..rows {
        assert_eq!(g[r * 3], 0.0);
        assert_eq!(g[r * 3 + 2], 0.0);
    }
}

/// No dead term: doubling any one term's weight (or the calibrator's λ) changes the
/// gradient. (A published ESCM² multiplies its counterfactual loss by zero.)
#[test]
fn every_term_reaches_the_gradient() {
    let (z, y, rows) = batch();
    for (name, f) in presets() {
        let (_, base) = loss_and_grad(&f, &z, &y, rows);
        let mut variants: Vec<(String, Funnel)> = Vec::new();
        for s in f.order() {
            for t in 0..f.supervision(s).terms.len() {
                let nodes: Vec<_> = f.nodes().to_vec();
                let mut nodes = nodes;
                nodes[s].supervision.terms[t].weight *= 2.0;
                let g = Funnel::new(nodes)
                    .unwrap()
                    .with_output(f.output())
                    .with_calibrator(f.calibrator());
                variants.push((format!("stage {s} term {t}"), g));
            }
        }
        if let Some(l) = f.calibrator() {
            variants.push((
                "calibrator".into(),
                f.clone().with_calibrator(Some(2.0 * l)),
            ));
            let mut nodes = f.nodes().to_vec();
            nodes[2].supervision.stage_weight = 0.5;
            let g = Funnel::new(nodes)
                .unwrap()
                .with_output(f.output())
                .with_calibrator(f.calibrator());
            variants.push(("the calibrator's stage weight".into(), g));
        }
        for (what, v) in variants {
            let (_, g) = loss_and_grad(&v, &z, &y, rows);
            let moved = g.iter().zip(&base).any(|(a, b)| (a - b).abs() > 1e-6);
            assert!(moved, "{name}: {what} does not reach the gradient");
        }
    }
}

/// Every term is a mean, not a sum: the same batch twice over gives the same loss (a
/// calibrator summed over rows would double).
#[test]
fn loss_does_not_grow_with_the_batch() {
    let (z, y, rows) = batch();
    let (z2, y2) = (
        [z.clone(), z.clone()].concat(),
        [y.clone(), y.clone()].concat(),
    );
    for (name, f) in presets() {
        let (once, _) = loss_and_grad(&f, &z, &y, rows);
        let (twice, _) = loss_and_grad(&f, &z2, &y2, 2 * rows);
        assert!(
            (once - twice).abs() < 1e-5 * once,
            "{name}: {once} vs {twice}"
        );
    }
}

/// ESCM²-DR: value and gradients (logits and imputation outputs) against an f64 reference
/// that holds fixed what the model detaches; every weight reaches the gradient; a mean, not
/// a sum.
#[test]
fn doubly_robust_matches_reference_and_finite_differences() {
    use Prediction::{Conditional, Cumulative};
    let dr = |tw: f64, iw: f64, gw: f64| {
        chain(
            move |s| {
                if s == 0 {
                    vec![Term::unit(Cumulative, Rows::All, 1.0)]
                } else {
                    vec![
                        Term {
                            target: Conditional,
                            label: Label::Reached,
                            rows: Rows::ReachedParent,
                            weighting: Weighting::DoublyRobust {
                                propensity: IPS,
                                imputation_weight: iw,
                            },
                            weight: tw,
                        },
                        Term::unit(Cumulative, Rows::All, gw),
                    ]
                }
            },
            3,
        )
    };
    let (z, y, rows) = batch();
    let mut r = crate::rng::Rng::stream(6, "imputed");
    let e_hat: Vec<f32> = (0..rows * 3).map(|_| r.uniform() as f32).collect();
    let run = |f: &Funnel, z: &[f32], e_hat: &[f32], y: &[f32], rows: usize| {
        let dev = Device::Cpu;
        let zv = Var::from_slice(z, (rows, 3), &dev).unwrap();
        let ev: Vec<Var> = (0..3)
            .map(|s| {
                let col: Vec<f32> = (0..rows).map(|i| e_hat[i * 3 + s]).collect();
                Var::from_vec(col, (rows, 1), &dev).unwrap()
            })
            .collect();
        let imp: Vec<Option<Tensor>> = ev.iter().map(|v| Some(v.as_tensor().clone())).collect();
        let t = Targets::new(f, y, &[], rows, &dev).unwrap();
        let l = total(f, zv.as_tensor(), &imp, &t);
        let g = l.backward().unwrap();
        let flat = crate::testing::to_f64;
        let gz = flat(g.get(zv.as_tensor()).unwrap());
        let mut ge = vec![0.0; rows * 3];
        for (s, v) in ev.iter().enumerate() {
            if let Some(gs) = g.get(v.as_tensor()) {
                for (i, x) in flat(gs).into_iter().enumerate() {
                    ge[i * 3 + s] = x;
                }
            }
        }
        (l.to_scalar::<f32>().unwrap() as f64, gz, ge)
    };
    // The f64 reference: the entire-space terms as before, the DR term from its formula.
    // What the model detaches is read from fixed inputs: `fixed` gives the propensities and
    // the loss e inside the imputation term; `e_dr` is ê inside the DR term, `e_imp` inside
    // the imputation term. Finite differences of it are then the model's gradient.
    struct Inputs<'a> {
        z: &'a [f64],
        fixed: &'a [f64],
        e_dr: &'a [f64],
        e_imp: &'a [f64],
    }
    let reference = |f: &Funnel, x: &Inputs<'_>, y: &[f32], rows: usize| {
        let mut total = 0.0;
        let bce = |s: f64, y: f64| {
            let s = s.min(MAX_LOG_PROB);
            -(y * s + (1.0 - y) * log1mexp(s))
        };
        for s in 0..3 {
            for term in &f.supervision(s).terms {
                let mut sum = 0.0;
                for i in 0..rows {
                    let yr = &y[i * 3..(i + 1) * 3];
                    let (lq, lp) = row_probs(f, &x.z[i * 3..(i + 1) * 3]);
                    sum += match term.weighting {
                        Weighting::DoublyRobust {
                            propensity,
                            imputation_weight,
                        } => {
                            let p = f.parent(s).unwrap();
                            let (lqf, lpf) = row_probs(f, &x.fixed[i * 3..(i + 1) * 3]);
                            let w = (1.0 / lpf[p].exp().max(propensity.floor))
                                .min(propensity.max_weight);
                            let o = yr[p] as f64;
                            let err = bce(lq[s], yr[s] as f64);
                            let err_fixed = bce(lqf[s], yr[s] as f64);
                            let (ed, ei) = (x.e_dr[i * 3 + s], x.e_imp[i * 3 + s]);
                            ed + o * (err - ed) * w
                                + imputation_weight * o * (err_fixed - ei).powi(2) * w
                        }
                        _ => bce(lp[s], yr[s] as f64),
                    };
                }
                total += term.weight * sum / rows as f64;
            }
        }
        total
    };
    let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
    let e64: Vec<f64> = e_hat.iter().map(|&v| v as f64).collect();
    let f = dr(0.5, 0.8, 0.4);
    let (l, gz, ge) = run(&f, &z, &e_hat, &y, rows);
    let base = Inputs {
        z: &z64,
        fixed: &z64,
        e_dr: &e64,
        e_imp: &e64,
    };
    let want = reference(&f, &base, &y, rows);
    assert!((l - want).abs() < 1e-5 * (1.0 + want), "{l} vs {want}");
    let h = 1e-5;
    for j in 0..z.len() {
        let (mut up, mut down) = (z64.clone(), z64.clone());
        up[j] += h;
        down[j] -= h;
        let fd = (reference(&f, &Inputs { z: &up, ..base }, &y, rows)
            - reference(&f, &Inputs { z: &down, ..base }, &y, rows))
            / (2.0 * h);
        assert!((fd - gz[j]).abs() < 1e-4, "dz{j}: fd {fd} vs {}", gz[j]);
    }
    for j in 0..e_hat.len() {
        let (mut up, mut down) = (e64.clone(), e64.clone());
        up[j] += h;
        down[j] -= h;
        let fd = (reference(&f, &Inputs { e_imp: &up, ..base }, &y, rows)
            - reference(
                &f,
                &Inputs {
                    e_imp: &down,
                    ..base
                },
                &y,
                rows,
            ))
            / (2.0 * h);
        assert!((fd - ge[j]).abs() < 1e-4, "de{j}: fd {fd} vs {}", ge[j]);
    }
    // ê gets its gradient from the imputation loss only, and only on rows that reached the
    // parent (o = 1): row 3 did not reach stage 0, so its stage-1 ê has none.
    assert_eq!(ge[3 * 3 + 1], 0.0);
    assert!(ge[1] != 0.0);
    // No dead weight: the DR term's weight, the imputation weight and the global weight
    // each move the gradient.
    for (what, g) in [
        ("dr weight", dr(1.0, 0.8, 0.4)),
        ("imputation weight", dr(0.5, 1.6, 0.4)),
        ("global weight", dr(0.5, 0.8, 0.8)),
    ] {
        let (_, gz2, ge2) = run(&g, &z, &e_hat, &y, rows);
        let moved = gz2
            .iter()
            .chain(&ge2)
            .zip(gz.iter().chain(&ge))
            .any(|(a, b)| (a - b).abs() > 1e-6);
        assert!(moved, "{what} does not reach the gradient");
    }
    // A mean, not a sum.
    let (z2, y2, e2) = (
        [z.clone(), z.clone()].concat(),
        [y.clone(), y.clone()].concat(),
        [e_hat.clone(), e_hat.clone()].concat(),
    );
    let (twice, _, _) = run(&f, &z2, &e2, &y2, 2 * rows);
    assert!((twice - l).abs() < 1e-5 * l, "{l} vs {twice}");
}

/// `independent`: each stage's conditional on its own column over all rows; a row that did
/// not reach the parent still counts with its own label. By hand: two stages, one row,
/// z = (0, 1), reached (0, 0), own (0, 1):
///   python3: s=lambda z: 1/(1+math.exp(-z)); -math.log(1-s(0)) - math.log(s(1))
///   = 0.6931471805599453 + 0.31326168751822286 = 1.0064088680781682
#[test]
fn independent_reads_own_labels_on_all_rows() {
    let f = chain(|_| vec![Term::own(Prediction::Conditional, 1.0)], 2);
    let dev = Device::Cpu;
    let zv = Var::from_slice(&[0.0f32, 1.0], (1, 2), &dev).unwrap();
    let t = Targets::new(&f, &[0.0, 0.0], &[0.0, 1.0], 1, &dev).unwrap();
    let l = total(&f, zv.as_tensor(), &[], &t);
    let l = l.to_scalar::<f32>().unwrap() as f64;
    assert!((l - 1.006_408_87).abs() < 1e-6, "{l}");
    // Without own labels (every column `reached`), the reached labels serve.
    let t = Targets::new(&f, &[0.0, 0.0], &[], 1, &dev).unwrap();
    let l0 = total(&f, zv.as_tensor(), &[], &t);
    let want = std::f64::consts::LN_2 + 1.313_261_687_518_222_9;
    assert!((l0.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-6);
}

/// ESM²: click -> cart (optional) -> buy, ESMM's terms on p_click, p_click∧cart and
/// p_click∧buy = σ(z_click) [σ(z_cart) σ(z_buy) + (1 − σ(z_cart)) σ(z_skip)], all rows.
/// Value equal to the formula in plain probabilities; gradient equal to its finite
/// differences; and the skip logit reaches the gradient.
#[test]
fn esm2_mixture_matches_reference_and_finite_differences() {
    let f = chain(
        |_| vec![Term::unit(Prediction::Cumulative, Rows::All, 1.0)],
        3,
    )
    .with_optional(1)
    .unwrap();
    // Columns: click, cart, buy (given cart), buy given no cart. Labels: reached click,
    // click and cart, click and buy (buy without cart is consistent).
    let z = [
        0.4f32, -0.3, 1.2, -1.5, -0.8, 0.9, -0.2, 0.6, 1.1, -2.0, 0.3, 0.0,
    ];
    let y = [1.0f32, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let rows = 3;
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let reference = |z: &[f64]| -> f64 {
        let bce = |p: f64, y: f32| -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln());
        (0..rows)
            .map(|r| {
                let (zr, yr) = (&z[r * 4..r * 4 + 4], &y[r * 3..r * 3 + 3]);
                let click = sig(zr[0]);
                let cart = sig(zr[1]);
                let buy = click * (cart * sig(zr[2]) + (1.0 - cart) * sig(zr[3]));
                bce(click, yr[0]) + bce(click * cart, yr[1]) + bce(buy, yr[2])
            })
            .sum::<f64>()
            / rows as f64
    };
    let dev = Device::Cpu;
    let zv = Var::from_slice(&z, (rows, 4), &dev).unwrap();
    let t = Targets::new(&f, &y, &[], rows, &dev).unwrap();
    let l = total(&f, zv.as_tensor(), &[], &t);
    let g: Vec<f64> = l
        .backward()
        .unwrap()
        .get(zv.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let z64: Vec<f64> = z.iter().map(|&v| v as f64).collect();
    let want = reference(&z64);
    let got = l.to_scalar::<f32>().unwrap() as f64;
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    for j in 0..z.len() {
        let h = 1e-5;
        let (mut up, mut down) = (z64.clone(), z64.clone());
        up[j] += h;
        down[j] -= h;
        let fd = (reference(&up) - reference(&down)) / (2.0 * h);
        assert!((fd - g[j]).abs() < 1e-4, "dz{j}: fd {fd} vs {}", g[j]);
    }
    assert!(
        (0..rows).all(|r| g[r * 4 + 3] != 0.0),
        "the skip logit is trained"
    );
}

/// One forward pass of `naive`, `division` and ESCM²-DR, by hand (python3, with
/// s = lambda z: 1/(1+math.exp(-z)) and bce = lambda p, y: -(y*math.log(p)+(1-y)*math.log(1-p))).
#[test]
fn naive_division_and_dr_values_by_hand() {
    let dev = Device::Cpu;
    let value = |f: &Funnel, z: &[f32], y: &[f32], imp: &[Option<Tensor>]| {
        let zt = Tensor::from_slice(z, (2, 2), &dev).unwrap();
        let t = Targets::new(f, y, &[], 2, &dev).unwrap();
        let l = total(f, &zt, imp, &t);
        l.to_scalar::<f32>().unwrap() as f64
    };
    let (z, y) = ([0.5f32, -1.0, 1.0, 2.0], [1.0f32, 0.0, 0.0, 0.0]);
    // naive: (bce(s(.5),1)+bce(s(1),0))/2 + bce(s(-1),0) (row 2 did not click)
    //   = 0.8936693358491647 + 0.3132616875182228 = 1.2069310233673876
    let naive = chain(
        |k| match k {
            0 => vec![Term::unit(Prediction::Cumulative, Rows::All, 1.0)],
            _ => vec![Term::unit(
                Prediction::Conditional,
                Rows::ReachedParent,
                1.0,
            )],
        },
        2,
    );
    assert!((value(&naive, &z, &y, &[]) - 1.206_931_02).abs() < 1e-5);
    // division: cumulative logits, (bce(s(.5),1)+bce(s(1),0))/2 + (bce(s(-1),0)+bce(s(2),0))/2
    //   = 2.113764185129762
    let division = chain(
        |_| vec![Term::unit(Prediction::Cumulative, Rows::All, 1.0)],
        2,
    )
    .with_output(Output::Cumulative);
    assert!((value(&division, &z, &y, &[]) - 2.113_764_19).abs() < 1e-5);
    // DR on stage 2 (weight 1, imputation weight 0.8), z = [[0, 1], [-1, 0]], labels
    // [[1, 1], [0, 0]], ê = [0.2, 0.7]: w = 1/s(z1) = [2, e + 1], o = [1, 0], e0 = bce(s(1), 1):
    //   ((0.2 + (e0-0.2)*2) + 0.7)/2 + 0.8 * ((e0-0.2)**2 * 2)/2
    //   = 0.5632616875182228 + 0.8 * 0.012828209859475546 = 0.5735242554058032
    let dr = chain(
        |k| match k {
            0 => vec![],
            _ => vec![Term {
                target: Prediction::Conditional,
                rows: Rows::ReachedParent,
                label: Label::Reached,
                weighting: Weighting::DoublyRobust {
                    propensity: IPS,
                    imputation_weight: 0.8,
                },
                weight: 1.0,
            }],
        },
        2,
    );
    let e_hat = Tensor::from_slice(&[0.2f32, 0.7], (2, 1), &dev).unwrap();
    let got = value(
        &dr,
        &[0.0, 1.0, -1.0, 0.0],
        &[1.0, 1.0, 0.0, 0.0],
        &[None, Some(e_hat)],
    );
    assert!((got - 0.573_524_26).abs() < 1e-5, "{got}");
}

/// Uncertainty weighting by hand: L = (0.5, 2), s = (0, ln 2): exp(0)·0.5 + 0 + exp(−ln 2)·2
/// + ln 2 = 1.5 + ln 2; d/ds_k = 1 − exp(−s_k) L_k = (0.5, 0); d/dL_k = exp(−s_k) = (1, 0.5).
#[test]
fn uncertainty_weighting_by_hand() {
    let dev = Device::Cpu;
    let l = Var::from_slice(&[0.5f32, 2.0], 2, &dev).unwrap();
    let s = Var::from_slice(&[0.0f32, std::f32::consts::LN_2], 2, &dev).unwrap();
    let total = objective(l.as_tensor(), Some(s.as_tensor())).unwrap();
    let v = total.to_scalar::<f32>().unwrap() as f64;
    assert!((v - (1.5 + std::f64::consts::LN_2)).abs() < 1e-6, "{v}");
    let g = total.backward().unwrap();
    let gs = crate::testing::to_f64(g.get(s.as_tensor()).unwrap());
    let gl = crate::testing::to_f64(g.get(l.as_tensor()).unwrap());
    assert!((gs[0] - 0.5).abs() < 1e-6 && gs[1].abs() < 1e-6, "{gs:?}");
    assert!(
        (gl[0] - 1.0).abs() < 1e-6 && (gl[1] - 0.5).abs() < 1e-6,
        "{gl:?}"
    );
    // Without learned weights the objective is the plain sum.
    let plain = objective(l.as_tensor(), None)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(plain, 2.5);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Logits (rows x 3) anywhere in ±range and cumulative labels (monotone rows).
    fn batch(range: f32) -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
        (1usize..12).prop_flat_map(move |rows| {
            (
                proptest::collection::vec(-range..range, rows * 3),
                proptest::collection::vec(0usize..4, rows).prop_map(|depth| {
                    depth
                        .iter()
                        .flat_map(|&d| (0..3).map(move |k| (k < d) as u8 as f32))
                        .collect::<Vec<f32>>()
                }),
                Just(rows),
            )
        })
    }

    proptest! {
        /// Every preset's loss and gradient are finite for any finite logits, even ±1e4
        /// (where the product of probabilities underflows f32 to 0).
        #[test]
        fn finite_for_every_finite_logit((z, y, rows) in batch(1e4)) {
            for (name, f) in presets() {
                let (l, g) = loss_and_grad(&f, &z, &y, rows);
                prop_assert!(l.is_finite() && l >= 0.0, "{}: {}", name, l);
                prop_assert!(g.iter().all(|v| v.is_finite()), "{}", name);
            }
        }

        /// Where the naive formula is stable (|z| ≤ 8), ESMM's loss equals it in f64:
        /// mean over rows of −Σ_k [y_k ln p_k + (1 − y_k) ln(1 − p_k)], p_k = Π σ(z_j).
        #[test]
        fn esmm_equals_the_naive_formula((z, y, rows) in batch(8.0)) {
            let f = Funnel::esmm(3);
            let (l, _) = loss_and_grad(&f, &z, &y, rows);
            let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
            let mut naive = 0.0;
            for r in 0..rows {
                let mut p = 1.0;
                for k in 0..3 {
                    p *= sig(z[r * 3 + k] as f64);
                    let yk = y[r * 3 + k] as f64;
                    naive -= yk * p.ln() + (1.0 - yk) * (1.0 - p).ln();
                }
            }
            naive /= rows as f64;
            prop_assert!((l - naive).abs() <= 1e-4 * (1.0 + naive), "{} vs {}", l, naive);
        }
    }
}
