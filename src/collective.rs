//! Collectives: what the ranks of a data-parallel run say to each other. Every decision the
//! trainer takes from values a collective would reduce (the batch loss, a stop, the validation
//! score), and only the rank `root()` answers for may write the run directory: the token it
//! returns is what `RunWriter` asks for. One process is `Single`; ranks over MPI implement the
//! same trait behind a cargo feature.

/// The right to write the run directory, held by one rank only.
#[derive(Debug)]
pub struct Root(());

impl dyn Collective + '_ {
    /// The writer's token, on rank 0 only. An inherent method of the trait object, not a trait
    /// method, so no implementation can hand it to another rank (`Root` has no other maker).
    pub fn root(&self) -> Option<Root> {
        (self.rank() == 0).then_some(Root(()))
    }
}

pub trait Collective: Send + Sync {
    /// This rank, from 0.
    fn rank(&self) -> usize;

    /// Ranks in the run.
    fn size(&self) -> usize;

    /// Sum `buf` element-wise over the ranks; every rank gets the sum.
    fn all_reduce_sum(&self, buf: &mut [f64]);

    /// Exchange byte messages: `send[r]` goes to rank r; returns what each rank sent this one,
    /// by rank (all-to-all with counts).
    fn all_to_all(&self, send: Vec<Vec<u8>>) -> Vec<Vec<u8>>;

    /// Rank `root`'s `bytes` on every rank.
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize);

    /// Whether any rank says yes (a stop asked on one rank stops them all).
    fn any(&self, yes: bool) -> bool {
        let mut v = [f64::from(u8::from(yes))];
        self.all_reduce_sum(&mut v);
        v[0] > 0.0
    }

    /// Every rank's message, by rank (an all-to-all sending the same bytes to each).
    fn all_gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.all_to_all(vec![bytes.to_vec(); self.size()])
    }
}

/// One process: every collective is the identity.
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _: &mut [f64]) {}

    fn all_to_all(&self, send: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        send
    }

    fn broadcast(&self, _: &mut Vec<u8>, _: usize) {}
}

/// Ranks as threads of one process (tests only): each collective is a rendezvous of every rank
/// at a barrier, through shared slots.
#[cfg(test)]
pub mod threads {
    use std::sync::{Arc, Barrier, Mutex};

    use super::Collective;

    struct Shared {
        barrier: Barrier,
        /// slots[from][to]: the message in flight.
        slots: Mutex<Vec<Vec<Vec<u8>>>>,
    }

    pub struct Threads {
        rank: usize,
        size: usize,
        shared: Arc<Shared>,
    }

    /// `size` ranks, one per thread to be started.
    pub fn ranks(size: usize) -> Vec<Threads> {
        let shared = Arc::new(Shared {
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![vec![Vec::new(); size]; size]),
        });
        (0..size)
            .map(|rank| Threads {
                rank,
                size,
                shared: shared.clone(),
            })
            .collect()
    }

    fn encode(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn decode(b: &[u8]) -> Vec<f64> {
        b.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    }

    impl Collective for Threads {
        fn rank(&self) -> usize {
            self.rank
        }

        fn size(&self) -> usize {
            self.size
        }

        fn all_reduce_sum(&self, buf: &mut [f64]) {
            // Summed in rank order on every rank, so every rank gets the same bits.
            let all = self.all_gather(&encode(buf));
            buf.fill(0.0);
            for part in all {
                for (a, v) in buf.iter_mut().zip(decode(&part)) {
                    *a += v;
                }
            }
        }

        fn all_to_all(&self, send: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
            self.shared.slots.lock().expect("slots")[self.rank] = send;
            self.shared.barrier.wait();
            let got = self
                .shared
                .slots
                .lock()
                .expect("slots")
                .iter()
                .map(|from| from[self.rank].clone())
                .collect();
            // Nobody writes the next round's messages before everyone has read this one's.
            self.shared.barrier.wait();
            got
        }

        fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) {
            let all = self.all_gather(bytes);
            *bytes = all[root].clone();
        }
    }

    #[test]
    fn three_threads_reduce_gather_and_broadcast() {
        let handles: Vec<_> = ranks(3)
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || {
                    let mut v = vec![c.rank() as f64, 1.0];
                    c.all_reduce_sum(&mut v);
                    let sent: Vec<Vec<u8>> =
                        (0..3).map(|to| vec![(10 * c.rank() + to) as u8]).collect();
                    let got = c.all_to_all(sent);
                    let mut b = vec![c.rank() as u8; c.rank() + 1];
                    c.broadcast(&mut b, 2);
                    (
                        c.rank(),
                        v,
                        got,
                        b,
                        c.any(c.rank() == 1),
                        (&c as &dyn Collective).root().is_some(),
                    )
                })
            })
            .collect();
        for h in handles {
            let (rank, v, got, b, any, root) = h.join().unwrap();
            assert_eq!(v, vec![3.0, 3.0]);
            let want: Vec<Vec<u8>> = (0..3).map(|from| vec![(10 * from + rank) as u8]).collect();
            assert_eq!(got, want);
            assert_eq!(b, vec![2, 2, 2]);
            assert!(any);
            assert_eq!(root, rank == 0);
        }
    }
}
