//! numpy's legacy `RandomState(seed)` (MT19937) and its `randint(low, high, dtype=uint64)`
//! (masked rejection sampling), reproduced bit for bit.

pub(crate) struct RandomState {
    mt: [u32; 624],
    idx: usize,
}

impl RandomState {
    /// `np.random.RandomState(seed)` for an integer seed in `0..2^32` (`init_genrand`).
    pub(crate) fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1812433253u32.wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_add(i as u32);
        }
        RandomState { mt, idx: 624 }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..624 {
            let y = (self.mt[i] & UPPER) | (self.mt[(i + 1) % 624] & LOWER);
            let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                v ^= MATRIX_A;
            }
            self.mt[i] = v;
        }
        self.idx = 0;
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.idx >= 624 {
            self.generate();
        }
        let mut y = self.mt[self.idx];
        self.idx += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32() as u64;
        let lo = self.next_u32() as u64;
        (hi << 32) | lo
    }

    /// `randint(low, high, dtype=np.uint64)` (high exclusive), for ranges wider than 32 bits.
    pub(crate) fn randint_u64(&mut self, low: u64, high: u64, n: usize) -> Vec<u64> {
        let rng = high - 1 - low;
        assert!(rng > 0xFFFF_FFFF && rng != u64::MAX, "only the 64-bit masked path is implemented");
        let mut mask = rng;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        mask |= mask >> 32;
        (0..n)
            .map(|_| {
                loop {
                    let v = self.next_u64() & mask;
                    if v <= rng {
                        break low + v;
                    }
                }
            })
            .collect()
    }
}
