//! A step's gradients reduced over the ranks of a data-parallel run. Rank r holds n_r of the
//! global batch's N rows and its loss is the mean over them, so the global loss is
//! Σ_r (n_r / N) L_r: each rank scales its gradients by n_r / N and the dense ones are summed
//! (all-reduce, in parameter-key order). Tables are replicated: every rank gathers every rank's
//! ids and input gradients and applies the whole batch's sparse step, so the replicas stay equal.
//! Sharded tables (rows routed to their owners) change only the store behind `RowStore`.

use candle_core::Tensor;

use super::gradients::Gradients;
use crate::collective::Collective;
use crate::data::Batch;
use crate::error::{Error, Result};
use crate::model::FunnelModel;

/// The global batch's gradients, loss and stage losses from this rank's, and the global batch's
/// id columns (for the sparse step); `input` then holds the whole batch's input gradients, ranks
/// in order.
pub(super) fn reduce(
    c: &dyn Collective,
    model: &FunnelModel,
    b: &Batch,
    mut g: Gradients,
) -> Result<(Gradients, Batch)> {
    let mut rows = [b.rows as f64];
    c.all_reduce_sum(&mut rows);
    let share = b.rows as f64 / rows[0].max(1.0);
    // Loss, stage losses and (GradNorm's) squared input-gradient norms in one reduction.
    let k = g.stage_losses.len();
    let mut scalars = vec![share * g.loss];
    scalars.extend(g.stage_losses.iter().map(|l| share * l));
    if let Some(n) = &g.input_norms {
        scalars.extend(n.iter().map(|n| (share * n).powi(2)));
    }
    c.all_reduce_sum(&mut scalars);
    g.loss = scalars[0];
    g.stage_losses = scalars[1..=k].to_vec();
    if let Some(n) = &mut g.input_norms {
        *n = scalars[k + 1..].iter().map(|s| s.sqrt()).collect();
    }
    for (name, var) in model.params().iter() {
        let t = var.as_tensor();
        let mut v: Vec<f64> = match g.dense.remove(t) {
            Some(grad) => grad.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0; t.elem_count()],
        }
        .into_iter()
        .map(|x| share * f64::from(x))
        .collect();
        c.all_reduce_sum(&mut v);
        let summed: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        let grad = Tensor::from_vec(summed, t.dims(), t.device())?;
        if g.dense.insert(t, grad).is_some() {
            return Err(Error::Internal(format!("`{name}` reduced twice")));
        }
    }
    // Every rank's ids, bags and scaled input gradients, by rank: its row count first, since
    // bags make the length of a message vary.
    let word = |message: &mut Vec<u8>, w: [u8; 4]| message.extend_from_slice(&w);
    let mut message = Vec::new();
    word(&mut message, (b.rows as u32).to_le_bytes());
    for col in &b.ids {
        message.extend(col.iter().flat_map(|id| id.to_le_bytes()));
    }
    for bag in &b.bags {
        word(&mut message, (bag.ids.len() as u32).to_le_bytes());
        word(&mut message, (!bag.weights.is_empty() as u32).to_le_bytes());
        message.extend(
            bag.offsets[1..]
                .iter()
                .flat_map(|&o| (o as u32).to_le_bytes()),
        );
        message.extend(bag.ids.iter().flat_map(|id| id.to_le_bytes()));
        message.extend(bag.weights.iter().flat_map(|w| w.to_le_bytes()));
    }
    for input in &g.input {
        message.extend(
            input
                .iter()
                .flat_map(|v| ((share * f64::from(*v)) as f32).to_le_bytes()),
        );
    }
    let parts = c.all_gather(&message);
    let (fields, inputs) = (b.ids.len(), g.input.len());
    let mut all = Batch {
        rows: 0,
        ids: vec![Vec::new(); fields],
        bags: vec![Default::default(); b.bags.len()],
        num: Vec::new(),
        labels: Vec::new(),
        own: Vec::new(),
    };
    let mut input = vec![Vec::new(); inputs];
    for part in parts {
        let mut words = part
            .chunks_exact(4)
            .map(|c| <[u8; 4]>::try_from(c).map_err(|_| Error::Internal("a torn word".into())));
        let mut u32s = |k: usize| -> Result<Vec<u32>> {
            (0..k)
                .map(|_| Ok(u32::from_le_bytes(next(&mut words)?)))
                .collect()
        };
        let n = u32s(1)?[0] as usize;
        for col in &mut all.ids {
            col.extend(u32s(n)?);
        }
        let mut part_tokens = Vec::with_capacity(all.bags.len());
        for bag in &mut all.bags {
            let head = u32s(2)?;
            let (tokens, weighted) = (head[0] as usize, head[1] == 1);
            part_tokens.push(tokens);
            let base = bag.ids.len() as u64;
            bag.offsets
                .extend(u32s(n)?.into_iter().map(|o| base + u64::from(o)));
            bag.ids.extend(u32s(tokens)?);
            if weighted {
                bag.weights
                    .extend(u32s(tokens)?.into_iter().map(f32::from_bits));
            }
        }
        // Each input's share: the part's input rows, or its sequences' token rows.
        for (grad, size) in input.iter_mut().zip(model.input_sizes(n, &part_tokens)) {
            grad.extend(u32s(size)?.into_iter().map(f32::from_bits));
        }
        all.rows += n;
    }
    g.input = input;
    Ok((g, all))
}

fn next(words: &mut impl Iterator<Item = Result<[u8; 4]>>) -> Result<[u8; 4]> {
    words
        .next()
        .unwrap_or_else(|| Err(Error::Internal("a short message from a rank".into())))
}
