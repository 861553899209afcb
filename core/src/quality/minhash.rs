//! MinHash near-duplicate detection, bit-identical to datatrove's `MinhashDedupSignature`.
//!
//! Signature of a document (datatrove `get_shingles` + `get_signature`):
//! 1. `words = word_tokenize(simplify_text(text))` (spaCy English tokenizer on the simplified text);
//! 2. shingles = `hash(" ".join(words[i..i+n_grams]))` for every window (xxhash64, seed 0, of
//!    the UTF-8 bytes; or the first 8 bytes of SHA-1, little endian);
//! 3. `a`, `b` = `np.random.RandomState(seed).randint(1, P)` / `randint(0, P)` with
//!    `P = 2^61 - 1`, `num_buckets * hashes_per_bucket` values each (uint64);
//! 4. `sig[j] = min over shingles of ((s * a[j] + b[j]) mod 2^64) mod P` — numpy's uint64
//!    arithmetic wraps, and so does ours.
//!
//! datatrove's stage 2 reports two documents as duplicates when, in any bucket, their
//! `hashes_per_bucket` values are all equal. [`Minhasher::band_keys`] reduces each bucket to
//! one 64-bit key (XXH3 of the bucket's values, seeded with the bucket index), so "some band key
//! equal" is the same test up to a 2^-64 collision chance.

use crate::quality::mt19937::RandomState;
use crate::quality::seen::SeenKeys;
use crate::quality::text;

/// 2^61 - 1, the Mersenne prime datatrove reduces permuted hashes by.
pub const MERSENNE_PRIME: u64 = (1 << 61) - 1;

/// Shingle hash function (datatrove `HashConfig.hash_fc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFn {
    /// `xxhash.xxh64_intdigest` / `xxh32_intdigest` (datatrove's default).
    Xxhash,
    /// First 8 (or 4) bytes of SHA-1, little endian.
    Sha1,
}

/// MinHash configuration; `Default` is FineWeb's: 5-grams, 14 buckets × 8 hashes, seed 1,
/// xxhash, 64-bit precision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinhashConfig {
    pub n_grams: usize,
    pub num_buckets: usize,
    pub hashes_per_bucket: usize,
    /// Seed of numpy's `RandomState` that draws the permutation parameters.
    pub seed: u32,
    pub hash_fn: HashFn,
    /// 64 (default) or 32 (`HashConfig(precision=32)`: 32-bit shingle hashes, values masked to u32).
    pub precision: u32,
}

impl Default for MinhashConfig {
    fn default() -> Self {
        MinhashConfig {
            n_grams: 5,
            num_buckets: 14,
            hashes_per_bucket: 8,
            seed: 1,
            hash_fn: HashFn::Xxhash,
            precision: 64,
        }
    }
}

impl MinhashConfig {
    /// Total number of hash functions (`num_buckets * hashes_per_bucket`).
    pub fn num_hashes(&self) -> usize {
        self.num_buckets * self.hashes_per_bucket
    }
}

/// Computes signatures and band keys for one [`MinhashConfig`]. Cheap to share across threads.
#[derive(Debug, Clone)]
pub struct Minhasher {
    cfg: MinhashConfig,
    a: Vec<u64>,
    b: Vec<u64>,
}

#[inline]
fn mod_mersenne(x: u64) -> u64 {
    // x mod (2^61 - 1) for any u64 x
    let r = (x & MERSENNE_PRIME) + (x >> 61);
    if r >= MERSENNE_PRIME { r - MERSENNE_PRIME } else { r }
}

impl Minhasher {
    /// Draw the permutation parameters exactly as datatrove does for `cfg.seed`.
    pub fn new(cfg: &MinhashConfig) -> Self {
        assert!(cfg.n_grams >= 1 && cfg.num_buckets >= 1 && cfg.hashes_per_bucket >= 1);
        assert!(cfg.precision == 64 || cfg.precision == 32, "precision must be 32 or 64");
        let mut rs = RandomState::new(cfg.seed);
        let n = cfg.num_hashes();
        let a = rs.randint_u64(1, MERSENNE_PRIME, n);
        let b = rs.randint_u64(0, MERSENNE_PRIME, n);
        Minhasher { cfg: cfg.clone(), a, b }
    }

    pub fn config(&self) -> &MinhashConfig {
        &self.cfg
    }

    /// The `(a, b)` permutation parameters (numpy draws), for inspection.
    pub fn parameters(&self) -> (&[u64], &[u64]) {
        (&self.a, &self.b)
    }

    fn hash_shingle(&self, s: &str) -> u64 {
        match (self.cfg.hash_fn, self.cfg.precision) {
            (HashFn::Xxhash, 64) => xxhash_rust::xxh64::xxh64(s.as_bytes(), 0),
            (HashFn::Xxhash, _) => xxhash_rust::xxh32::xxh32(s.as_bytes(), 0) as u64,
            (HashFn::Sha1, p) => {
                let d = sha1_smol::Sha1::from(s.as_bytes()).digest().bytes();
                if p == 64 {
                    u64::from_le_bytes(d[..8].try_into().unwrap())
                } else {
                    u32::from_le_bytes(d[..4].try_into().unwrap()) as u64
                }
            }
        }
    }

    /// Shingle hashes of `text` (one per word n-gram of the simplified text, in order,
    /// duplicates kept), as datatrove's `get_shingles`.
    pub fn shingles(&self, text: &str) -> Vec<u64> {
        let simple = text::simplify_text(text);
        let words = text::word_tokenize(&simple);
        let n = self.cfg.n_grams;
        if words.len() < n {
            return Vec::new();
        }
        let mut buf = String::new();
        (0..=words.len() - n)
            .map(|i| {
                buf.clear();
                for (k, w) in words[i..i + n].iter().enumerate() {
                    if k > 0 {
                        buf.push(' ');
                    }
                    buf.push_str(w);
                }
                self.hash_shingle(&buf)
            })
            .collect()
    }

    /// MinHash signature (`num_buckets * hashes_per_bucket` values, bucket-major), identical to
    /// the values datatrove writes to its `.minhash.sig` files. Empty when the simplified text has
    /// fewer than `n_grams` words — datatrove writes no signature for such documents, so they are
    /// never near-duplicates.
    pub fn signature(&self, text: &str) -> Vec<u64> {
        self.signature_from_shingles(&self.shingles(text))
    }

    /// Signature from precomputed shingles (see [`Minhasher::shingles`]).
    pub fn signature_from_shingles(&self, shingles: &[u64]) -> Vec<u64> {
        if shingles.is_empty() {
            return Vec::new();
        }
        let mut sig = vec![u64::MAX; self.a.len()];
        for &s in shingles {
            for ((m, &a), &b) in sig.iter_mut().zip(&self.a).zip(&self.b) {
                let v = mod_mersenne(s.wrapping_mul(a).wrapping_add(b));
                if v < *m {
                    *m = v;
                }
            }
        }
        if self.cfg.precision == 32 {
            for v in &mut sig {
                *v &= 0xFFFF_FFFF;
            }
        }
        sig
    }

    /// One 64-bit key per bucket (band): XXH3-64 of the bucket's `hashes_per_bucket` values
    /// (little-endian bytes), seeded with the bucket index so equal values in different buckets
    /// never collide. Empty for an empty signature.
    pub fn band_keys(&self, sig: &[u64]) -> Vec<u64> {
        if sig.is_empty() {
            return Vec::new();
        }
        assert_eq!(sig.len(), self.cfg.num_hashes(), "signature length does not match config");
        let r = self.cfg.hashes_per_bucket;
        let mut bytes = Vec::with_capacity(r * 8);
        sig.chunks(r)
            .enumerate()
            .map(|(band, vals)| {
                bytes.clear();
                for v in vals {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, band as u64)
            })
            .collect()
    }
}

/// Fraction of equal positions in two signatures (MinHash estimate of shingle-set Jaccard).
pub fn estimated_jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// Streaming keep-first near-duplicate filter over band keys.
///
/// For every document, in stream order: it is a **duplicate** when any of its band keys was seen
/// before; then *all* its band keys are inserted, whether it was kept or not, so chains A~B~C
/// are caught transitively (C is dropped through B even if C and A share no band).
///
/// Difference from datatrove's stages 2–4 (all pairs → union-find → keep one per cluster): a
/// document whose only matches come *later* in the stream is kept here; if a later document
/// then bridges two such kept documents, datatrove would drop one of them and this filter keeps
/// both. Documents with an empty signature are always kept and insert nothing.
///
/// Memory: the band keys in a [`SeenKeys`] of a given budget — exact (about 10 bytes a key,
/// `num_buckets` keys a document) until the budget is reached, then a Bloom filter of the budget
/// whose false-positive rate [`NearDedup::false_positive_rate`] states.
#[derive(Debug, Clone)]
pub struct NearDedup {
    seen: SeenKeys,
    docs: u64,
    dups: u64,
}

impl NearDedup {
    /// A filter holding at most `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Self {
        Self { seen: SeenKeys::new(budget_bytes), docs: 0, dups: 0 }
    }

    /// Returns `true` when the document is a near-duplicate of an earlier one (drop it),
    /// `false` to keep it. Inserts its keys either way.
    pub fn check_and_insert(&mut self, band_keys: &[u64]) -> bool {
        self.docs += 1;
        let mut dup = false;
        for &k in band_keys {
            dup |= self.seen.insert(k);
        }
        self.dups += dup as u64;
        dup
    }

    /// Documents checked so far.
    pub fn docs_seen(&self) -> u64 {
        self.docs
    }

    /// Documents reported as duplicates so far.
    pub fn duplicates(&self) -> u64 {
        self.dups
    }

    /// The keys seen, with their memory and false-positive rate.
    pub fn keys(&self) -> &SeenKeys {
        &self.seen
    }

    /// The chance that a new document with `bands` band keys is taken for a near-duplicate
    /// (any of its keys a false positive): 0 while the keys are held exactly.
    pub fn false_positive_rate(&self, bands: usize) -> f64 {
        1.0 - (1.0 - self.seen.false_positive_rate()).powi(bands as i32)
    }
}

/// Batch near-dedup that reproduces datatrove's stages 2–4 exactly, given all signatures
/// (`sigs[i]` = [`Minhasher::signature`] of document `i` in stream order; empty = no signature).
///
/// Stage 2: per bucket, records `(bucket values, doc index)` are sorted and every record equal
/// (in its bucket values) to the one before it yields a pair. Stage 3: the pairs, bucket by
/// bucket, go through datatrove's union-find (path compression; union by size; on equal sizes
/// the first document of the pair stays root). Stage 4: every document that is in a cluster
/// but not its root is removed. Returns `remove[i]`.
///
/// Unlike [`NearDedup`] this needs every signature in memory (`num_hashes × 8` bytes per
/// document) and the kept document of a cluster is datatrove's root, not always the first.
pub fn datatrove_removals(sigs: &[Vec<u64>], num_buckets: usize, hashes_per_bucket: usize) -> Vec<bool> {
    let n = sigs.len();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut size: Vec<usize> = vec![1; n];
    let mut touched = vec![false; n];
    fn find(parent: &mut [usize], x: usize) -> usize {
        let mut r = x;
        while parent[r] != r {
            r = parent[r];
        }
        let mut y = x;
        while parent[y] != r {
            let next = parent[y];
            parent[y] = r;
            y = next;
        }
        r
    }
    let with_sig: Vec<usize> = (0..n).filter(|&i| !sigs[i].is_empty()).collect();
    let mut order = with_sig.clone();
    for b in 0..num_buckets {
        let band = |i: usize| &sigs[i][b * hashes_per_bucket..(b + 1) * hashes_per_bucket];
        order.sort_unstable_by(|&x, &y| band(x).cmp(band(y)).then(x.cmp(&y)));
        for w in order.windows(2) {
            let (a, v) = (w[0], w[1]);
            if band(a) == band(v) {
                touched[a] = true;
                touched[v] = true;
                let (mut ra, mut rb) = (find(&mut parent, a), find(&mut parent, v));
                if ra != rb {
                    if size[ra] < size[rb] {
                        std::mem::swap(&mut ra, &mut rb);
                    }
                    parent[rb] = ra;
                    size[ra] += size[rb];
                }
            }
        }
    }
    (0..n).map(|i| touched[i] && find(&mut parent, i) != i).collect()
}

/// Streaming exact-duplicate filter over [`text::exact_key`] (its low 64 bits: two different
/// documents share them with probability 2^-64), in a [`SeenKeys`] of a given budget.
#[derive(Debug, Clone)]
pub struct ExactDedup {
    seen: SeenKeys,
}

impl ExactDedup {
    /// A filter holding at most `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Self {
        Self { seen: SeenKeys::new(budget_bytes) }
    }

    /// `true` when a document with this [`text::exact_key`] was seen before.
    pub fn check_and_insert(&mut self, key: u128) -> bool {
        self.seen.insert(key as u64)
    }

    /// The keys seen, with their memory and false-positive rate.
    pub fn keys(&self) -> &SeenKeys {
        &self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_randomstate_parameters() {
        // np.random.RandomState(1).randint(1, 2**61-1, dtype=np.uint64, size=(1, 112)) etc.
        let m = Minhasher::new(&MinhashConfig::default());
        let (a, b) = m.parameters();
        assert_eq!(&a[..3], &[775169054918279404, 1758426461858698313, 2109959069025162]);
        assert_eq!(&b[..3], &[1062448801025099917, 1324811268927594100, 1217488311597731462]);
        assert_eq!(a[111], 223865076026037746);
        assert_eq!(b[111], 1097409548522419201);
        let m = Minhasher::new(&MinhashConfig { seed: 42, ..Default::default() });
        assert_eq!(&m.parameters().0[..3], &[2297359619001564596, 1396682528897996047, 1973689801170867272]);
    }

    #[test]
    fn mersenne_reduction() {
        for x in
            [0u64, 1, MERSENNE_PRIME - 1, MERSENNE_PRIME, MERSENNE_PRIME + 1, u64::MAX, 1 << 63, 12345678901234567890]
        {
            assert_eq!(mod_mersenne(x), x % MERSENNE_PRIME);
        }
    }

    fn words(n: usize, seed: u64) -> Vec<String> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // letters only: simplify_text maps digits to 0
                let mut v = (x >> 33) % 50_000;
                let mut w = String::from("w");
                while v > 0 {
                    w.push((b'a' + (v % 26) as u8) as char);
                    v /= 26;
                }
                w
            })
            .collect()
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let text = "The quick brown fox jumps over the lazy dog, again and again, until the dog wakes up.";
        let m = Minhasher::new(&MinhashConfig::default());
        let s1 = m.signature(text);
        assert_eq!(s1.len(), 112);
        assert_eq!(s1, Minhasher::new(&MinhashConfig::default()).signature(text));
        let other = Minhasher::new(&MinhashConfig { seed: 2, ..Default::default() }).signature(text);
        assert_ne!(s1, other);
        assert!(m.signature("too short text").is_empty());
        assert_eq!(m.band_keys(&s1).len(), 14);
        // formatting-only differences vanish under simplify_text
        assert_eq!(
            s1,
            m.signature("the QUICK brown fox jumps over the lazy dog again and again until the dog wakes up")
        );
    }

    /// Plant near-duplicates at known shingle Jaccard and check LSH detection.
    #[test]
    fn planted_near_duplicates() {
        let m = Minhasher::new(&MinhashConfig::default());
        let base = words(600, 7);
        // exact jaccard of 5-gram shingle sets
        let jac = |x: &[String], y: &[String]| {
            let sx: std::collections::HashSet<_> = x.windows(5).collect();
            let sy: std::collections::HashSet<_> = y.windows(5).collect();
            sx.intersection(&sy).count() as f64 / sx.union(&sy).count() as f64
        };
        let mut high_detected = 0;
        let mut low_detected = 0;
        let trials = 20;
        for t in 0..trials {
            let fresh = words(600, 1000 + t);
            // replace every k-th word: high similarity (~0.9) and low (~0.3)
            let variant = |every: usize| -> Vec<String> {
                base.iter()
                    .enumerate()
                    .map(|(i, w)| if (i + t as usize).is_multiple_of(every) { fresh[i].clone() } else { w.clone() })
                    .collect()
            };
            let hi = variant(50);
            let lo = variant(5);
            let (jh, jl) = (jac(&base, &hi), jac(&base, &lo));
            assert!(jh > 0.8 && jh < 0.95, "{jh}");
            assert!(jl < 0.4, "{jl}");
            let mut d = NearDedup::new(1 << 20);
            let kb = m.band_keys(&m.signature(&base.join(" ")));
            assert!(!d.check_and_insert(&kb));
            let mut d2 = d.clone();
            if d.check_and_insert(&m.band_keys(&m.signature(&hi.join(" ")))) {
                high_detected += 1;
            }
            if d2.check_and_insert(&m.band_keys(&m.signature(&lo.join(" ")))) {
                low_detected += 1;
            }
            // MinHash estimate tracks the true Jaccard
            let est = estimated_jaccard(&m.signature(&base.join(" ")), &m.signature(&hi.join(" ")));
            assert!((est - jh).abs() < 0.15, "est {est} vs {jh}");
        }
        // P(detect | J=0.85..0.9) = 1-(1-J^8)^14 >= 0.97 ; P(detect | J<0.4) < 1e-2
        assert!(high_detected >= trials - 2, "high {high_detected}/{trials}");
        assert_eq!(low_detected, 0);
        // exact copies are always duplicates, unrelated text never
        let mut d = NearDedup::new(1 << 20);
        let k = m.band_keys(&m.signature(&base.join(" ")));
        assert!(!d.check_and_insert(&k));
        assert!(d.check_and_insert(&k));
        assert!(!d.check_and_insert(&m.band_keys(&m.signature(&words(600, 99).join(" ")))));
    }

    #[test]
    fn transitive_chain() {
        let m = Minhasher::new(&MinhashConfig::default());
        let a = words(400, 1);
        // a ~ b ~ c, each step replacing 20 of 400 words (J ~ 0.9)
        let mut b = a.clone();
        b.truncate(380);
        b.extend(words(20, 2));
        let mut c = b.clone();
        c.drain(..20);
        c.extend(words(20, 3));
        let mut d = NearDedup::new(1 << 20);
        for (doc, want) in [(&a, false), (&b, true), (&c, true)] {
            assert_eq!(d.check_and_insert(&m.band_keys(&m.signature(&doc.join(" ")))), want);
        }
        assert_eq!(d.duplicates(), 2);
    }

    #[test]
    fn batch_matches_streaming_on_simple_clusters() {
        let m = Minhasher::new(&MinhashConfig::default());
        let a = words(300, 11);
        let b = words(300, 12);
        let docs = [a.join(" "), b.join(" "), a.join(" "), "short".to_string(), b.join(" "), a.join(" ")];
        let sigs: Vec<Vec<u64>> = docs.iter().map(|d| m.signature(d)).collect();
        let rm = datatrove_removals(&sigs, 14, 8);
        assert_eq!(rm, vec![false, false, true, false, true, true]);
        let mut nd = NearDedup::new(1 << 20);
        let st: Vec<bool> = sigs.iter().map(|s| nd.check_and_insert(&m.band_keys(s))).collect();
        assert_eq!(st, rm);
    }

    #[test]
    fn exact_dedup() {
        let mut e = ExactDedup::new(1 << 20);
        assert!(!e.check_and_insert(text::exact_key("Hello  world\n")));
        assert!(e.check_and_insert(text::exact_key("Hello world")));
        assert!(!e.check_and_insert(text::exact_key("hello world")));
    }
}
