//! The read side of a row store: a table's weights as the forward pass reads them (rows of
//! `dim` values, `stride` apart), and the gather of a batch's input rows and history tokens
//! from them. The training store (rows beside their optimizer state) and the serving store
//! (rows memory-mapped from a run's weights) both gather through this one path.

use super::pooling;
use crate::data::Batch;
use crate::layout::{FieldLayout, Pooling};

/// A table's weights, read-only: row `r` is `data[r * stride .. r * stride + dim]`.
#[derive(Clone, Copy)]
pub struct TableRows<'a> {
    data: &'a [f32],
    vocab: usize,
    dim: usize,
    stride: usize,
}

impl<'a> TableRows<'a> {
    /// `vocab` rows of `dim` weights, `stride` values apart in `data`.
    pub fn new(data: &'a [f32], vocab: usize, dim: usize, stride: usize) -> Self {
        debug_assert!(stride >= dim && (vocab == 0 || data.len() >= (vocab - 1) * stride + dim));
        TableRows {
            data,
            vocab,
            dim,
            stride,
        }
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Weights of row `id`.
    #[inline]
    pub fn row(&self, id: u32) -> &'a [f32] {
        let s = id as usize * self.stride;
        &self.data[s..s + self.dim]
    }

    /// Start loading the row of `id` (a gather is about to read it).
    #[inline(always)]
    pub fn prefetch_row(&self, id: u32) {
        prefetch(
            self.data.as_ptr().wrapping_add(id as usize * self.stride),
            self.dim,
        );
    }
}

/// Ask the CPU to start loading the cache lines of `len` elements at `p`: random table rows are
/// memory-latency bound, and asking a few rows ahead overlaps their misses.
#[inline(always)]
pub(super) fn prefetch<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = p as *const i8;
        let end = p.wrapping_add(len.saturating_sub(1)) as *const i8;
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is only a hint: it never
        // faults and never makes memory visible to the program, whatever the address.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(start);
            _mm_prefetch::<_MM_HINT_T0>(end);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// How many rows ahead the gather asks for the next row's table rows.
const GATHER_AHEAD: usize = 4;

/// Where each field's rows go in an input row, read from the layout once for the hot loops.
pub(super) struct Gather {
    layout: FieldLayout,
    /// Each field's slot offset, and whether its row opens the slot (copied) or joins a field
    /// group's sum (added).
    pub(super) offsets: Vec<usize>,
    opens: Vec<bool>,
    /// Fields `singles..` are bag fields, pooled as `pooling[f - singles]`.
    pub(super) singles: usize,
    pub(super) pooling: Vec<Pooling>,
}

impl Gather {
    pub(super) fn new(layout: FieldLayout) -> Self {
        let fields = 0..layout.fields();
        Gather {
            offsets: fields.clone().map(|f| layout.slot_of(f).offset).collect(),
            opens: fields.clone().map(|f| layout.opens_slot(f)).collect(),
            singles: layout.single_fields(),
            pooling: fields.filter_map(|f| layout.pooling(f)).collect(),
            layout,
        }
    }

    pub(super) fn layout(&self) -> &FieldLayout {
        &self.layout
    }

    /// Write the embedded part of batch rows `rows` into `x` (those rows, `w` columns each,
    /// row-major) from `tables` (one per field, in field order): each field's row, each bag
    /// field's rows pooled, a field group's rows summed into its slot.
    pub(super) fn rows(
        &self,
        tables: &[TableRows<'_>],
        b: &Batch,
        rows: std::ops::Range<usize>,
        x: &mut [f32],
        w: usize,
    ) {
        let ids = &b.ids;
        for (j, r) in rows.clone().enumerate() {
            for (t, col) in tables.iter().zip(ids) {
                if let Some(&id) = col.get(r + GATHER_AHEAD) {
                    t.prefetch_row(id);
                }
            }
            let out = &mut x[j * w..(j + 1) * w];
            for (((t, col), &off), &opens) in
                tables.iter().zip(ids).zip(&self.offsets).zip(&self.opens)
            {
                let slice = &mut out[off..off + t.dim];
                if opens {
                    slice.copy_from_slice(t.row(col[r]));
                } else {
                    for (o, v) in slice.iter_mut().zip(t.row(col[r])) {
                        *o += v;
                    }
                }
            }
            // Bag fields come after every single field, so a group's sum is complete. The
            // sequences' bag columns (after these) are the model's to pool.
            for (m, bags) in b.bags.iter().take(self.pooling.len()).enumerate() {
                let f = self.singles + m;
                let (t, off) = (&tables[f], self.offsets[f]);
                let out = &mut x[j * w + off..j * w + off + t.dim];
                pooling::pool(t, bags, r, self.pooling[m], out, self.opens[f]);
            }
        }
    }

    /// The rows of every token of sequence `s` (`layout().sequences()[s]`), in the order of its
    /// bag column: tokens x the target's width, row-major.
    pub(super) fn tokens(&self, tables: &[TableRows<'_>], b: &Batch, s: usize) -> Vec<f32> {
        let seq = &self.layout.sequences()[s];
        let (t, ids) = (&tables[seq.field], &b.bags[seq.bag].ids);
        let mut out = Vec::with_capacity(ids.len() * t.dim);
        for (k, &id) in ids.iter().enumerate() {
            if let Some(&ahead) = ids.get(k + GATHER_AHEAD) {
                t.prefetch_row(ahead);
            }
            out.extend_from_slice(t.row(id));
        }
        out
    }
}
