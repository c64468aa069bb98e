//! Routing a frame's rows to the splits carved from it, so each column is read once for all of
//! them: row `i` goes to one part (train, valid, test, ...) or to none (dropped rows).

/// The part of every row of a frame. Part 0 is the one encoders are fitted on.
pub struct Routing {
    part: Vec<u8>,
    sizes: Vec<usize>,
}

const NONE: u8 = u8::MAX;

impl Routing {
    /// Rows of each part (each list ascending, lists disjoint) out of a frame of `rows` rows.
    pub fn new(rows: usize, parts: &[&[u32]]) -> Self {
        assert!(parts.len() < NONE as usize, "at most 254 parts");
        let mut part = vec![NONE; rows];
        for (p, list) in parts.iter().enumerate() {
            for &i in *list {
                part[i as usize] = p as u8;
            }
        }
        Routing {
            part,
            sizes: parts.iter().map(|l| l.len()).collect(),
        }
    }

    /// Every row in one part.
    pub fn all(rows: usize) -> Self {
        Routing {
            part: vec![0; rows],
            sizes: vec![rows],
        }
    }

    pub fn parts(&self) -> usize {
        self.sizes.len()
    }

    /// The part of row `i`, if any.
    #[inline]
    pub fn part(&self, i: usize) -> Option<usize> {
        match self.part[i] {
            NONE => None,
            p => Some(p as usize),
        }
    }

    /// One empty output vector per part, with room for its rows.
    pub fn outputs<T>(&self) -> Vec<Vec<T>> {
        self.sizes.iter().map(|&n| Vec::with_capacity(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_to_their_part_in_order() {
        let r = Routing::new(6, &[&[0, 2, 5], &[3], &[]]);
        let mut out = r.outputs::<usize>();
        for i in 0..6 {
            if let Some(p) = r.part(i) {
                out[p].push(i);
            }
        }
        assert_eq!(out, vec![vec![0, 2, 5], vec![3], vec![]]);
        assert_eq!(r.part(1), None);
        assert_eq!(r.parts(), 3);
        assert_eq!(Routing::all(2).part(1), Some(0));
    }
}
