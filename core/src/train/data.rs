//! Where training reads tokens: any `TokenSource` (a memory-mapped shard natively, a `Vec` in the
//! browser), cut into fixed windows and visited in a shuffled order per epoch. The position in that
//! order (`Cursor`) is all the state there is: the order itself is recomputed from the seed, so a
//! checkpoint stores two integers and resumes exactly, whatever the shard size.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::objectives::Rng;

/// A read-only stream of token ids.
pub trait TokenSource: Send + Sync {
    fn len(&self) -> usize;
    /// Tokens `start .. start + out.len()`.
    fn read(&self, start: usize, out: &mut [u32]);
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TokenSource for Vec<u32> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn read(&self, start: usize, out: &mut [u32]) {
        out.copy_from_slice(&self[start..start + out.len()]);
    }
}

/// The position of a run in its data: which epoch, and how many windows of it were consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub epoch: u64,
    pub index: u64,
}

/// Windows of `window` tokens over a source, in an order shuffled anew each epoch.
pub struct Windows {
    window: usize,
    seed: u64,
    order: Vec<u32>,
    order_epoch: Option<u64>,
}

impl Windows {
    pub fn new(window: usize, seed: u64) -> Self {
        Self { window, seed, order: Vec::new(), order_epoch: None }
    }

    pub fn count(&self, source: &dyn TokenSource) -> usize {
        source.len() / self.window
    }

    /// The next window at `cursor`, advancing it (and rolling into a new epoch at the end).
    pub fn next(&mut self, source: &dyn TokenSource, cursor: &mut Cursor) -> Vec<u32> {
        let n = self.count(source);
        assert!(n > 0, "source shorter than one window");
        if cursor.index as usize >= n {
            cursor.epoch += 1;
            cursor.index = 0;
        }
        if self.order_epoch != Some(cursor.epoch) {
            self.order = (0..n as u32).collect();
            let mut rng = Rng::seed_from_u64(self.seed ^ cursor.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            self.order.shuffle(&mut rng);
            self.order_epoch = Some(cursor.epoch);
        }
        let w = self.order[cursor.index as usize] as usize;
        cursor.index += 1;
        let mut out = vec![0; self.window];
        source.read(w * self.window, &mut out);
        out
    }

    /// Window `i` in file order (for evaluation).
    pub fn sequential(&self, source: &dyn TokenSource, i: usize) -> Vec<u32> {
        let mut out = vec![0; self.window];
        source.read(i * self.window, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_once_per_epoch_and_resumable() {
        let source: Vec<u32> = (0..100).collect();
        let mut w = Windows::new(10, 7);
        let mut cursor = Cursor::default();
        let epoch0: Vec<u32> = (0..10).map(|_| w.next(&source, &mut cursor)[0]).collect();
        let mut sorted = epoch0.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).map(|i| i * 10).collect::<Vec<_>>());
        let epoch1: Vec<u32> = (0..10).map(|_| w.next(&source, &mut cursor)[0]).collect();
        assert_ne!(epoch0, epoch1, "reshuffled per epoch");
        // A fresh reader at a saved cursor continues identically.
        let mut cursor = Cursor { epoch: 1, index: 4 };
        let mut fresh = Windows::new(10, 7);
        let rest: Vec<u32> = (0..6).map(|_| fresh.next(&source, &mut cursor)[0]).collect();
        assert_eq!(rest, epoch1[4..]);
    }
}
