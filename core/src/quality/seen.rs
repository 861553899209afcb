//! The set of keys a deduplication has seen, in memory bounded whatever the corpus size.
//!
//! [`SeenKeys`] is exact while it fits its budget: a hash set of the 64-bit keys (uniform hashes
//! already, so the table hashes nothing). When the next growth of the table would pass the budget,
//! every key moves into a blocked Bloom filter of the whole budget and the table is dropped; from
//! then on a key never seen may be taken for a seen one (a unique document removed) with the
//! probability [`SeenKeys::false_positive_rate`] says, which the report states. Nothing is ever
//! missed: a key seen is always found.
//!
//! The filter is blocked (Putze, Sanders and Singler, "Cache-, hash- and space-efficient Bloom
//! filters", 2007) and split as Parquet's: each key sets one bit in each of the eight words of one
//! 512-bit block (one cache line), so an insert or a lookup costs one memory access, not eight.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// 64-bit words in a block (512 bits: one cache line).
const BLOCK_WORDS: usize = 8;
/// Bits set per key inside its block: one per word.
pub const BITS_PER_KEY: u32 = BLOCK_WORDS as u32;
/// The bytes of a hash table that holds `capacity` keys: hashbrown keeps 1/8 of its slots free,
/// and each slot is the key and a control byte.
fn table_bytes(capacity: usize) -> usize {
    capacity * 8 / 7 * 9
}

/// Keys seen so far, exact up to a memory budget and a Bloom filter of that budget beyond it.
#[derive(Debug, Clone)]
pub struct SeenKeys {
    budget: usize,
    exact: Option<HashSet<u64, BuildHasherDefault<IdentityHasher>>>,
    bloom: Vec<u64>,
    /// Keys inserted as new (those the filter took for seen are not counted).
    keys: u64,
}

impl SeenKeys {
    /// An empty set that never holds more than `budget_bytes` (at least one 64-byte block).
    pub fn new(budget_bytes: usize) -> Self {
        Self { budget: budget_bytes.max(BLOCK_WORDS * 8), exact: Some(HashSet::default()), bloom: Vec::new(), keys: 0 }
    }

    /// Inserts `key`; `true` when it was seen before (or, once a filter, may have been).
    pub fn insert(&mut self, key: u64) -> bool {
        if let Some(set) = &mut self.exact {
            if set.contains(&key) {
                return true;
            }
            // The table doubles when full, holding the old and the new table at once: switch first
            // when that would pass the budget.
            let full = set.len() == set.capacity();
            if full && table_bytes(set.capacity()) + table_bytes((set.capacity() * 2).max(3)) > self.budget {
                self.to_filter();
            } else {
                set.insert(key);
                self.keys += 1;
                return false;
            }
        }
        let seen = self.filter_insert(key);
        self.keys += !seen as u64;
        seen
    }

    /// Whether `key` was seen (or, once a filter, may have been), without inserting it.
    pub fn contains(&self, key: u64) -> bool {
        match &self.exact {
            Some(set) => set.contains(&key),
            None => {
                let (block, mask) = self.locate(key);
                self.bloom[block..block + BLOCK_WORDS].iter().zip(mask).all(|(w, m)| w & m == m)
            }
        }
    }

    /// Whether the set has become a Bloom filter.
    pub fn is_filter(&self) -> bool {
        self.exact.is_none()
    }

    /// Keys inserted as new.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// The bytes it holds now (the table's slots, or the filter), never above the budget.
    pub fn memory_bytes(&self) -> usize {
        match &self.exact {
            Some(set) => table_bytes(set.capacity()),
            None => self.bloom.len() * 8,
        }
    }

    /// The chance that a key never inserted is now taken for a seen one: 0 while exact; for the
    /// filter, read off its bits (a new key falls in any block alike and needs its bit in each of
    /// the block's words set: the mean over blocks of the product of the words' filled fractions).
    /// One pass over the filter.
    pub fn false_positive_rate(&self) -> f64 {
        if self.exact.is_some() {
            return 0.0;
        }
        let blocks = self.bloom.chunks_exact(BLOCK_WORDS);
        let n = blocks.len() as f64;
        blocks.map(|b| b.iter().map(|w| w.count_ones() as f64 / 64.0).product::<f64>()).sum::<f64>() / n
    }

    /// Moves every key of the table into a filter of the whole budget.
    fn to_filter(&mut self) {
        let set = self.exact.take().expect("a table to move");
        let blocks = self.budget / (BLOCK_WORDS * 8);
        self.bloom = vec![0; blocks * BLOCK_WORDS];
        for key in set {
            self.filter_insert(key);
        }
    }

    /// The key's block (its first word) and the bits it sets there: one bit in each of the
    /// block's eight words (Parquet's split-block filter), so a key always sets eight distinct bits.
    fn locate(&self, key: u64) -> (usize, [u64; BLOCK_WORDS]) {
        let blocks = (self.bloom.len() / BLOCK_WORDS) as u128;
        let block = ((splitmix(key) as u128 * blocks) >> 64) as usize * BLOCK_WORDS;
        let bits = splitmix(key ^ 0x9e37_79b9_7f4a_7c15);
        let mut mask = [0u64; BLOCK_WORDS];
        for (w, m) in mask.iter_mut().enumerate() {
            *m = 1 << ((bits >> (6 * w)) & 63); // 6 bits of the hash: a bit of word w
        }
        (block, mask)
    }

    /// Sets the key's bits; `true` when they were all set already.
    fn filter_insert(&mut self, key: u64) -> bool {
        let (block, mask) = self.locate(key);
        let mut seen = true;
        for (w, m) in self.bloom[block..block + BLOCK_WORDS].iter_mut().zip(mask) {
            seen &= *w & m == m;
            *w |= m;
        }
        seen
    }
}

/// Hasher for keys that already are uniform 64-bit hashes.
#[derive(Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// SplitMix64's finaliser: the key's bits spread over all 64.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys as a hash gives them (uniform): SplitMix64 of a counter and a stream.
    fn keys(stream: u64, n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(move |i| splitmix(i ^ (stream << 40)))
    }

    #[test]
    fn within_the_budget_it_is_an_exact_set() {
        let mut seen = SeenKeys::new(1 << 20);
        for k in keys(1, 10_000) {
            assert!(!seen.insert(k));
        }
        assert!(!seen.is_filter());
        assert!(keys(1, 10_000).all(|k| seen.insert(k) && seen.contains(k)));
        assert!(keys(2, 10_000).all(|k| !seen.contains(k)));
        assert_eq!((seen.keys(), seen.false_positive_rate()), (10_000, 0.0));
    }

    #[test]
    fn memory_stays_within_the_budget_and_the_stated_rate_is_the_measured_one() {
        // 64 KiB for 100k keys: the table (9 bytes a slot, doubling) cannot hold them, the filter
        // must; a hash set would need about 1.8 MB.
        let budget = 64 << 10;
        let mut seen = SeenKeys::new(budget);
        for (i, k) in keys(3, 100_000).enumerate() {
            assert!(!seen.insert(k) || seen.is_filter(), "key {i} taken for seen while exact");
            assert!(seen.memory_bytes() <= budget, "{} bytes after {i} keys", seen.memory_bytes());
        }
        assert!(seen.is_filter());
        // Nothing seen is ever missed.
        assert!(keys(3, 100_000).all(|k| seen.contains(k)));
        // Fresh keys taken for seen: as often as the report says (a 200k-key sample: the count's
        // binomial spread is under 2% at these rates).
        let stated = seen.false_positive_rate();
        let sample = 200_000;
        let measured = keys(4, sample).filter(|&k| seen.contains(k)).count() as f64 / sample as f64;
        assert!(stated > 1e-3 && stated < 0.2, "a budget this tight gives a rate worth measuring: {stated}");
        assert!((measured / stated - 1.0).abs() < 0.05, "measured {measured}, stated {stated}");
    }

    #[test]
    fn a_roomy_filter_states_a_tiny_rate() {
        let mut seen = SeenKeys::new(1 << 20);
        // Forced into a filter early by a budget that the table outgrows at 64k keys.
        for k in keys(5, 200_000) {
            seen.insert(k);
        }
        assert!(seen.is_filter());
        let rate = seen.false_positive_rate();
        assert!(rate < 1e-4, "{rate}");
        assert!(keys(6, 200_000).filter(|&k| seen.contains(k)).count() < 40);
    }
}
