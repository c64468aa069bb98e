//! The field layout: which slot of a model's input row each embedded field feeds. A slot is one
//! field's embedding (`Single`) or the sum of a field group's embeddings (`Group`); slots sit
//! side by side, in order of their first field, before the numeric values. The batch's id
//! columns, the row store's gather and scatter, and the blocks that read slices of the input
//! (DeepFM's interaction) all read this one layout.
//!
//! A field with several ids per row (a multi-valued feature's token bag) carries its pooling
//! here: the store pools its rows into the field's slot, and the batch carries its offsets.
//! A behaviour history (a sequence) has no slot: its tokens are rows of its target field's
//! table, which the store gathers token by token for the model's attention to pool; its bag
//! columns follow the bag fields'.

/// How a multi-valued field's rows become one vector: `sum` Σ wᵢ eᵢ, `mean` Σ wᵢ eᵢ / Σ wᵢ
/// (weights 1 when the feature has none), `max` the largest value of each column over the
/// tokens (unweighted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    Sum,
    #[default]
    Mean,
    Max,
}

/// How a slot's value is made from its fields' embedding rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// One field: its row, copied.
    Single,
    /// A field group (all of one width): the members' rows, summed.
    Group,
}

/// One slot of the input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The field's name, or the group's.
    pub name: String,
    pub kind: SlotKind,
    /// The embedded fields (indices of the batch's id columns, and of the store's tables) that
    /// feed the slot, in field order.
    pub fields: Vec<usize>,
    /// First column of the slot in an input row.
    pub offset: usize,
    /// Columns of the slot: the width of its fields' embeddings.
    pub width: usize,
}

/// A behaviour history: a bag column whose tokens are rows of its target field's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub name: String,
    /// The target field: whose table the tokens index, and whose slot holds the target's row.
    pub field: usize,
    /// The batch's bag column holding the tokens.
    pub bag: usize,
}

/// The slots of an input row, and each field's slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    slots: Vec<Slot>,
    sequences: Vec<Sequence>,
    /// pooling[f]: how field f's token bag is pooled; `None` for a field with one id per row.
    pooling: Vec<Option<Pooling>>,
    /// slot_of[f]: the slot field f feeds.
    slot_of: Vec<usize>,
    width: usize,
}

/// A reason the fields and groups do not make a layout (validation refuses these first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl FieldLayout {
    /// The layout of embedded `fields` ((name, width), in id-column order) where each of
    /// `groups` ((name, member fields)) shares one slot. A field in no group has its own slot.
    pub fn new(fields: &[(&str, usize)], groups: &[(&str, &[usize])]) -> Result<Self, LayoutError> {
        let mut slots: Vec<Slot> = Vec::new();
        let mut slot_of = Vec::with_capacity(fields.len());
        let mut group_slot: Vec<Option<usize>> = vec![None; groups.len()];
        let mut width = 0;
        for (f, &(name, dim)) in fields.iter().enumerate() {
            let group = groups.iter().position(|(_, members)| members.contains(&f));
            let existing = group.and_then(|g| group_slot[g]);
            match existing {
                Some(s) => {
                    if slots[s].width != dim {
                        return Err(LayoutError(format!(
                            "field `{name}` ({dim} wide) is in group `{}` of width {}",
                            slots[s].name, slots[s].width
                        )));
                    }
                    slots[s].fields.push(f);
                    slot_of.push(s);
                }
                None => {
                    let (slot_name, kind) = match group {
                        Some(g) => (groups[g].0, SlotKind::Group),
                        None => (name, SlotKind::Single),
                    };
                    if let Some(g) = group {
                        group_slot[g] = Some(slots.len());
                    }
                    slot_of.push(slots.len());
                    slots.push(Slot {
                        name: slot_name.to_string(),
                        kind,
                        fields: vec![f],
                        offset: width,
                        width: dim,
                    });
                    width += dim;
                }
            }
        }
        Ok(FieldLayout {
            slots,
            sequences: Vec::new(),
            pooling: vec![None; slot_of.len()],
            slot_of,
            width,
        })
    }

    /// The same layout with the last `bags.len()` fields read as token bags, pooled as given
    /// (the batch's bag columns, in order, after its id columns).
    pub fn with_bags(mut self, bags: &[Pooling]) -> Result<Self, LayoutError> {
        let n = self.pooling.len();
        let Some(first) = n.checked_sub(bags.len()) else {
            return Err(LayoutError(format!(
                "{} bag fields in a layout of {n} fields",
                bags.len()
            )));
        };
        for (slot, &pooling) in self.pooling[first..].iter_mut().zip(bags) {
            *slot = Some(pooling);
        }
        Ok(self)
    }

    /// The same layout with behaviour histories ((name, target field)), read from the bag
    /// columns after the bag fields', in order. A target must be a single field with its own
    /// slot.
    pub fn with_sequences(mut self, sequences: &[(&str, usize)]) -> Result<Self, LayoutError> {
        let bags = self.pooling.iter().filter(|p| p.is_some()).count();
        for (s, &(name, field)) in sequences.iter().enumerate() {
            if field >= self.single_fields() || self.slot_of(field).kind != SlotKind::Single {
                return Err(LayoutError(format!(
                    "sequence `{name}`'s target (field {field}) is not a single field with its own slot"
                )));
            }
            self.sequences.push(Sequence {
                name: name.to_string(),
                field,
                bag: bags + s,
            });
        }
        Ok(self)
    }

    /// The behaviour histories, in the order of the batch's bag columns.
    pub fn sequences(&self) -> &[Sequence] {
        &self.sequences
    }

    /// How field `f`'s token bag is pooled, when it is a bag field.
    pub fn pooling(&self, f: usize) -> Option<Pooling> {
        self.pooling[f]
    }

    /// Fields with one id per row: the batch's id columns, `0..single_fields()`; bag fields
    /// follow.
    pub fn single_fields(&self) -> usize {
        self.pooling.iter().filter(|p| p.is_none()).count()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Embedded fields (id columns) the layout reads.
    pub fn fields(&self) -> usize {
        self.slot_of.len()
    }

    /// The slot field `f` feeds.
    pub fn slot_of(&self, f: usize) -> &Slot {
        &self.slots[self.slot_of[f]]
    }

    /// Whether field `f` is the first of its slot (its row is copied; later fields' rows are
    /// added to it).
    pub fn opens_slot(&self, f: usize) -> bool {
        self.slot_of(f).fields.first() == Some(&f)
    }

    /// Columns of the embedded part of an input row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The width shared by every slot (DeepFM's interaction needs one), if they share one.
    pub fn common_width(&self) -> Option<usize> {
        let w = self.slots.first()?.width;
        self.slots.iter().all(|s| s.width == w).then_some(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields a(2) b(3) c(2) d(2) with {a, d} grouped: slots a+d at 0, b at 2, c at 5; width 7.
    #[test]
    fn groups_share_the_slot_of_their_first_member() {
        let l = FieldLayout::new(
            &[("a", 2), ("b", 3), ("c", 2), ("d", 2)],
            &[("ad", &[0, 3])],
        )
        .unwrap();
        let got: Vec<(&str, SlotKind, Vec<usize>, usize, usize)> = l
            .slots()
            .iter()
            .map(|s| (s.name.as_str(), s.kind, s.fields.clone(), s.offset, s.width))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ad", SlotKind::Group, vec![0, 3], 0, 2),
                ("b", SlotKind::Single, vec![1], 2, 3),
                ("c", SlotKind::Single, vec![2], 5, 2),
            ]
        );
        assert_eq!(l.width(), 7);
        assert_eq!(l.slot_of(3).offset, 0);
        assert!(l.opens_slot(0) && !l.opens_slot(3) && l.opens_slot(1));
        assert_eq!(l.common_width(), None);
    }

    /// Fields a(2) b(3), one bag field c(2); a history over b reads the bag column after c's.
    #[test]
    fn sequences_read_their_targets_table_from_the_bag_columns_after_the_bags() {
        let l = FieldLayout::new(&[("a", 2), ("b", 3), ("c", 2)], &[])
            .and_then(|l| l.with_bags(&[Pooling::Sum]))
            .and_then(|l| l.with_sequences(&[("hist", 1)]))
            .unwrap();
        assert_eq!(
            l.sequences(),
            &[Sequence {
                name: "hist".into(),
                field: 1,
                bag: 1
            }]
        );
        assert_eq!(l.width(), 7, "a history has no slot");
        // A bag field, or a grouped field, cannot be a target.
        let e = FieldLayout::new(&[("a", 2), ("b", 3), ("c", 2)], &[])
            .and_then(|l| l.with_bags(&[Pooling::Sum]))
            .and_then(|l| l.with_sequences(&[("hist", 2)]))
            .unwrap_err();
        assert!(e.0.contains("hist"), "{e:?}");
        let e = FieldLayout::new(&[("a", 2), ("b", 2)], &[("ab", &[0, 1])])
            .and_then(|l| l.with_sequences(&[("hist", 0)]))
            .unwrap_err();
        assert!(e.0.contains("not a single field"), "{e:?}");
    }

    #[test]
    fn a_group_of_unequal_widths_is_refused() {
        let e = FieldLayout::new(&[("a", 2), ("b", 3)], &[("g", &[0, 1])]).unwrap_err();
        assert!(e.0.contains("`b`"), "{e:?}");
    }
}
