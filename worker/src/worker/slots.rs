//! Slots: how many tasks run at once, and reserved slots per priority band (proletariat's
//! guaranteed slots).
//!
//! Band 0 holds the general slots, usable by any task. Each `reserve(min_priority, n)` adds
//! a band of `n` slots that only tasks with `priority >= min_priority` may use. Every band
//! has its own claim loop, which claims with the band's `min_priority`, so the cluster
//! never hands a low-priority task to a reserved slot and a busy general band never blocks
//! a high-priority task.
//!
//! A claim loop takes all free slots of its band *before* it sends the claim and gives back
//! those the claim did not fill: a long-poll in flight can not be withdrawn safely (the
//! cluster may lease tasks to an answer nobody reads), so the slots it may fill must be
//! held while it waits.

use tokio::sync::watch;

use super::limits::CLAIM_MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Band {
    /// `None`: the general band.
    pub min_priority: Option<i32>,
    pub capacity: usize,
    /// Running tasks, plus slots held by a claim in flight.
    pub used: usize,
}

#[derive(Debug)]
pub(crate) struct Slots {
    bands: watch::Sender<Vec<Band>>,
}

impl Slots {
    /// `general` slots for anyone, then `(min_priority, n)` reserved bands (merged by
    /// priority, ascending).
    pub fn new(general: usize, reserved: &[(i32, usize)]) -> Slots {
        let mut bands = vec![Band {
            min_priority: None,
            capacity: general,
            used: 0,
        }];
        let mut reserved = reserved.to_vec();
        reserved.sort_unstable();
        for (min, n) in reserved {
            match bands.last_mut() {
                Some(last) if last.min_priority == Some(min) => last.capacity += n,
                _ => bands.push(Band {
                    min_priority: Some(min),
                    capacity: n,
                    used: 0,
                }),
            }
        }
        Slots {
            bands: watch::Sender::new(bands),
        }
    }

    /// The bands with at least one slot; their index is what the other methods take.
    pub fn bands(&self) -> Vec<Band> {
        self.bands.borrow().clone()
    }

    /// Waits until `band` has a free slot, then holds every free slot of it (at most one
    /// claim's worth) and returns how many.
    pub async fn acquire_free(&self, band: usize) -> usize {
        let mut rx = self.bands.subscribe();
        loop {
            let _ = rx.wait_for(|b| b[band].used < b[band].capacity).await;
            let mut got = 0;
            self.bands.send_modify(|b| {
                let b = &mut b[band];
                got = (b.capacity - b.used.min(b.capacity)).min(CLAIM_MAX);
                b.used += got;
            });
            if got > 0 {
                return got;
            }
        }
    }

    /// Gives `n` slots of `band` back (a task ended, or a claim filled fewer).
    pub fn give_back(&self, band: usize, n: usize) {
        if n == 0 {
            return;
        }
        self.bands.send_modify(|b| {
            let b = &mut b[band];
            assert!(b.used >= n, "slots given back were held");
            b.used -= n;
        });
    }

    /// Waits until no slot is in use.
    pub async fn wait_idle(&self) {
        let mut rx = self.bands.subscribe();
        let _ = rx.wait_for(|b| b.iter().all(|b| b.used == 0)).await;
    }
}
