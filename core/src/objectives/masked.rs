//! Masked LM (BERT): 15% of the candidate tokens become targets; of those, 80% are replaced by
//! `[MASK]`, 10% by a random token, 10% stay. Special tokens are never targets. With whole-word
//! masking, a word's pieces are chosen together.
//!
//! The number of targets per sequence is `round(candidates · rate)` (at least one), as in BERT's
//! `create_pretraining_data.py`, rather than a Bernoulli draw per token: the rate then holds for
//! every sequence, not only on average.

use rand::Rng as _;
use rand::seq::SliceRandom;

use super::Rng;
use crate::nn::loss::IGNORE_INDEX;

#[derive(Clone, Debug, PartialEq)]
pub struct MaskingConfig {
    /// Fraction of candidate tokens that become targets (0.15).
    pub rate: f64,
    /// Of the targets, the fraction replaced by `[MASK]` (0.8)…
    pub mask_fraction: f64,
    /// …and by a random token (0.1); the rest keep their token.
    pub random_fraction: f64,
    pub mask_id: u32,
    pub vocab_size: u32,
    /// Token ids that are never targets nor drawn as random replacements ([CLS], [SEP], [PAD], …).
    pub special_ids: Vec<u32>,
    pub whole_word: bool,
}

impl MaskingConfig {
    /// BERT's 15% / 80-10-10.
    pub fn bert(mask_id: u32, vocab_size: u32, special_ids: Vec<u32>) -> Self {
        Self {
            rate: 0.15,
            mask_fraction: 0.8,
            random_fraction: 0.1,
            mask_id,
            vocab_size,
            special_ids,
            whole_word: false,
        }
    }
}

/// Masks one sequence. `word_starts[i]` says token `i` begins a word (`false` for WordPiece `##`
/// continuations); it is read only with `whole_word`. Returns `(input_ids, labels)`, labels being
/// the original token at targets and `IGNORE_INDEX` elsewhere.
pub fn mask_tokens(
    ids: &[u32],
    word_starts: Option<&[bool]>,
    config: &MaskingConfig,
    rng: &mut Rng,
) -> (Vec<i64>, Vec<i64>) {
    let is_special = |t: u32| config.special_ids.contains(&t);
    // Candidate units: single tokens, or whole words (a start and its continuations).
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (i, &t) in ids.iter().enumerate() {
        if is_special(t) {
            continue;
        }
        let starts_word = !config.whole_word || word_starts.is_none_or(|w| w[i]);
        match units.last_mut() {
            Some(unit) if !starts_word && i > 0 && unit.last() == Some(&(i - 1)) => unit.push(i),
            _ => units.push(vec![i]),
        }
    }
    let candidates: usize = units.iter().map(Vec::len).sum();
    let budget = if candidates == 0 { 0 } else { ((candidates as f64 * config.rate).round() as usize).max(1) };
    units.shuffle(rng);
    let mut targets = Vec::with_capacity(budget);
    for unit in units {
        if targets.len() >= budget {
            break;
        }
        if targets.len() + unit.len() > budget {
            continue; // a word that would overshoot; a shorter one may still fit
        }
        targets.extend(unit);
    }

    let mut input_ids: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    let mut labels = vec![IGNORE_INDEX; ids.len()];
    for i in targets {
        labels[i] = ids[i] as i64;
        let r: f64 = rng.random();
        if r < config.mask_fraction {
            input_ids[i] = config.mask_id as i64;
        } else if r < config.mask_fraction + config.random_fraction {
            input_ids[i] = random_token(config, rng) as i64;
        }
    }
    (input_ids, labels)
}

/// A uniformly drawn non-special token.
fn random_token(config: &MaskingConfig, rng: &mut Rng) -> u32 {
    loop {
        let t = rng.random_range(0..config.vocab_size);
        if !config.special_ids.contains(&t) && t != config.mask_id {
            return t;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    const VOCAB: u32 = 1000;
    const MASK: u32 = 4;
    const SPECIAL: [u32; 4] = [0, 1, 2, 3]; // [PAD] [CLS] [SEP] [UNK]; MASK is 4

    fn sequence(rng: &mut Rng, len: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..len).map(|_| rng.random_range(5..VOCAB)).collect();
        ids[0] = 1;
        ids[len / 2] = 2;
        ids[len - 1] = 2;
        ids
    }

    #[test]
    fn rates_are_15_percent_and_80_10_10_and_specials_are_never_targets() {
        let config = MaskingConfig::bert(MASK, VOCAB, SPECIAL.to_vec());
        let mut rng = Rng::seed_from_u64(7);
        let (mut targets, mut masked, mut random, mut kept) = (0usize, 0usize, 0usize, 0usize);
        for _ in 0..2000 {
            let ids = sequence(&mut rng, 128);
            let (inputs, labels) = mask_tokens(&ids, None, &config, &mut rng);
            let candidates = ids.iter().filter(|t| !SPECIAL.contains(t)).count();
            let n = labels.iter().filter(|&&l| l != IGNORE_INDEX).count();
            assert_eq!(n, (candidates as f64 * 0.15).round() as usize, "15% of the candidates in every sequence");
            for i in 0..ids.len() {
                if SPECIAL.contains(&ids[i]) {
                    assert_eq!(labels[i], IGNORE_INDEX, "special token chosen as a target");
                    assert_eq!(inputs[i], ids[i] as i64, "special token changed");
                    continue;
                }
                if labels[i] == IGNORE_INDEX {
                    assert_eq!(inputs[i], ids[i] as i64, "a non-target changed");
                    continue;
                }
                assert_eq!(labels[i], ids[i] as i64, "label is the original token");
                targets += 1;
                match inputs[i] {
                    x if x == MASK as i64 => masked += 1,
                    x if x == ids[i] as i64 => kept += 1,
                    x => {
                        assert!(!SPECIAL.contains(&(x as u32)) && x != MASK as i64, "random token is special");
                        random += 1
                    }
                }
            }
        }
        let frac = |k: usize| k as f64 / targets as f64;
        // ~37k targets: one standard deviation of each fraction is ≤ 0.002.
        assert!((frac(masked) - 0.8).abs() < 0.01, "mask fraction {}", frac(masked));
        // a random draw can hit the original token (1 in ~995), which counts as kept
        assert!((frac(random) - 0.1).abs() < 0.01, "random fraction {}", frac(random));
        assert!((frac(kept) - 0.1).abs() < 0.01, "kept fraction {}", frac(kept));
    }

    #[test]
    fn whole_word_masking_takes_every_piece_of_a_word() {
        let config = MaskingConfig { whole_word: true, ..MaskingConfig::bert(MASK, VOCAB, SPECIAL.to_vec()) };
        let mut rng = Rng::seed_from_u64(3);
        let mut partial_words = 0;
        let mut targets = 0;
        for _ in 0..500 {
            let ids = sequence(&mut rng, 64);
            // words of 1-3 pieces
            let mut starts = vec![true; ids.len()];
            let mut i = 1;
            while i < ids.len() {
                let len = rng.random_range(1..=3);
                for j in i + 1..(i + len).min(ids.len()) {
                    starts[j] = SPECIAL.contains(&ids[j]) || SPECIAL.contains(&ids[j - 1]);
                }
                i += len;
            }
            let (_, labels) = mask_tokens(&ids, Some(&starts), &config, &mut rng);
            targets += labels.iter().filter(|&&l| l != IGNORE_INDEX).count();
            for j in 1..ids.len() {
                if !starts[j] && (labels[j] == IGNORE_INDEX) != (labels[j - 1] == IGNORE_INDEX) {
                    partial_words += 1;
                }
            }
        }
        assert!(targets > 0);
        assert_eq!(partial_words, 0, "a word was only partly masked");
    }

    #[test]
    fn same_seed_same_masks() {
        let config = MaskingConfig::bert(MASK, VOCAB, SPECIAL.to_vec());
        let ids = sequence(&mut Rng::seed_from_u64(0), 64);
        let a = mask_tokens(&ids, None, &config, &mut Rng::seed_from_u64(42));
        let b = mask_tokens(&ids, None, &config, &mut Rng::seed_from_u64(42));
        let c = mask_tokens(&ids, None, &config, &mut Rng::seed_from_u64(43));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
