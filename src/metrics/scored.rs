//! One scored row as evaluation sorts it (in memory or spilled: `crate::spill`), and the two
//! orders it is read back in.

use std::cmp::Ordering;

use crate::spill::Record;

/// A scored row: its score, its 0/1 label and its group (0 without groups). 16 bytes in
/// memory, 13 on disk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub label: u8,
    pub group: u32,
}

impl Record for Scored {
    const BYTES: usize = 13;
    fn put(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.score.to_le_bytes());
        out[8] = self.label;
        out[9..].copy_from_slice(&self.group.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        Scored {
            score: f64::get(&b[..8]),
            label: b[8],
            group: u32::from_le_bytes([b[9], b[10], b[11], b[12]]),
        }
    }
}

/// Ascending score (`f64::total_cmp`).
pub fn by_score(a: &Scored, b: &Scored) -> Ordering {
    a.score.total_cmp(&b.score)
}

/// Ascending group, then ascending score within a group.
pub fn by_group_then_score(a: &Scored, b: &Scored) -> Ordering {
    a.group.cmp(&b.group).then(a.score.total_cmp(&b.score))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row written and read back is the row, negative zero and the largest group included.
    #[test]
    fn rows_round_trip_through_their_bytes() {
        for r in [
            Scored {
                score: -0.0,
                label: 1,
                group: u32::MAX,
            },
            Scored {
                score: f64::MIN_POSITIVE,
                label: 0,
                group: 7,
            },
        ] {
            let mut b = [0u8; Scored::BYTES];
            r.put(&mut b);
            let back = Scored::get(&b);
            assert_eq!(
                (back.score.to_bits(), back.label, back.group),
                (r.score.to_bits(), r.label, r.group)
            );
        }
    }
}
