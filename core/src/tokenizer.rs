//! Tokenizers: any HF `tokenizer.json`, or one trained here (byte-level BPE as GPT-2, WordPiece as
//! BERT, Unigram as T5), all through the Hugging Face `tokenizers` crate.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainerBuilder};
use tokenizers::normalizers::{BertNormalizer, NFKC};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

use crate::error::{Error, Result};

/// The three tokenizer models the pretraining objectives use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// Byte-level BPE (GPT-2): every byte sequence encodes, no unknown token.
    Bpe,
    /// WordPiece (BERT): lowercased, `##` continuations, `[CLS] … [SEP]` around each sequence.
    WordPiece,
    /// Unigram (T5, SentencePiece-style): `▁` marks word starts, `<extra_id_N>` sentinels.
    Unigram,
}

impl std::str::FromStr for TokenizerKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "bpe" => Ok(Self::Bpe),
            "wordpiece" => Ok(Self::WordPiece),
            "unigram" => Ok(Self::Unigram),
            _ => Err(Error::Config(format!("unknown tokenizer kind \"{s}\"; choose bpe, wordpiece or unigram"))),
        }
    }
}

impl TokenizerKind {
    /// The special tokens each kind is trained with, in id order.
    pub fn default_special_tokens(self) -> Vec<String> {
        match self {
            Self::Bpe => vec!["<|endoftext|>".into()],
            Self::WordPiece => ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map(String::from).to_vec(),
            Self::Unigram => {
                let mut s: Vec<String> = ["<pad>", "</s>", "<unk>"].map(String::from).to_vec();
                s.extend((0..100).map(|i| format!("<extra_id_{i}>")));
                s
            }
        }
    }
}

/// A tokenizer and the roles of its special tokens.
#[derive(Clone)]
pub struct Tokenizer {
    inner: HfTokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({} tokens)", self.vocab_size())
    }
}

impl Tokenizer {
    /// Any HF `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        HfTokenizer::from_bytes(bytes)
            .map(|inner| Self { inner })
            .map_err(|e| Error::Config(format!("not a valid tokenizer.json ({e})")))
    }

    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(true).map_err(|e| Error::Config(format!("cannot serialise the tokenizer: {e}")))
    }

    /// Trains a tokenizer of `kind` with `vocab_size` entries (special tokens included) on `texts`.
    pub fn train<I, S>(kind: TokenizerKind, vocab_size: usize, special_tokens: &[String], texts: I) -> Result<Self>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        // A sentinel takes the space before it (`lstrip`), so "was <extra_id_0> happy" reads
        // `▁was <extra_id_0> ▁happy` as span corruption writes it, without a stray `▁` token.
        let specials: Vec<AddedToken> = special_tokens
            .iter()
            .map(|t| AddedToken::from(t.clone(), true).lstrip(t.starts_with("<extra_id_")))
            .collect();
        if vocab_size <= specials.len() {
            return Err(Error::Config(format!(
                "vocab_size {vocab_size} leaves no room beside {} special tokens",
                specials.len()
            )));
        }
        let err = |e: tokenizers::Error| Error::Config(format!("tokenizer training failed: {e}"));
        let (mut inner, mut trainer) = match kind {
            TokenizerKind::Bpe => {
                let mut t = HfTokenizer::new(BPE::default());
                t.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
                    .with_decoder(Some(ByteLevelDecoder::default()))
                    .with_post_processor(Some(ByteLevel::new(false, true, true)));
                let trainer = BpeTrainerBuilder::new()
                    .vocab_size(vocab_size)
                    .min_frequency(2)
                    .special_tokens(specials)
                    .initial_alphabet(ByteLevel::alphabet().into_iter().collect::<HashSet<_>>())
                    .show_progress(false)
                    .build();
                (t, TrainerWrapper::BpeTrainer(trainer))
            }
            TokenizerKind::WordPiece => {
                let mut t = HfTokenizer::new(WordPiece::default());
                t.with_normalizer(Some(BertNormalizer::default())).map_err(err)?;
                t.with_pre_tokenizer(Some(BertPreTokenizer)).with_decoder(Some(WordPieceDecoder::default()));
                let trainer = WordPieceTrainerBuilder::new()
                    .vocab_size(vocab_size)
                    .min_frequency(2)
                    .special_tokens(specials)
                    .show_progress(false)
                    .build();
                (t, TrainerWrapper::WordPieceTrainer(trainer))
            }
            TokenizerKind::Unigram => {
                let mut t = HfTokenizer::new(Unigram::default());
                t.with_normalizer(Some(NFKC)).map_err(err)?;
                t.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)))
                    .with_decoder(Some(MetaspaceDecoder::new('▁', PrependScheme::Always, true)));
                let unk = special_tokens.iter().find(|t| t.contains("unk")).cloned();
                let trainer = UnigramTrainer::builder()
                    .vocab_size(vocab_size as u32)
                    .special_tokens(specials)
                    .unk_token(unk)
                    .show_progress(false)
                    .build()
                    .map_err(|e| Error::Config(format!("unigram trainer: {e}")))?;
                (t, TrainerWrapper::UnigramTrainer(trainer))
            }
        };
        inner.train(&mut trainer, texts).map_err(err)?;
        let mut tokenizer = Self { inner };
        if kind == TokenizerKind::WordPiece {
            let (cls, sep) = (tokenizer.id("[CLS]"), tokenizer.id("[SEP]"));
            if let (Some(cls), Some(sep)) = (cls, sep) {
                let post = TemplateProcessing::builder()
                    .try_single("[CLS] $A [SEP]")
                    .and_then(|b| b.try_pair("[CLS] $A [SEP] $B:1 [SEP]:1"))
                    .map_err(|e| Error::Config(format!("template: {e}")))?
                    .special_tokens(vec![("[CLS]", cls), ("[SEP]", sep)])
                    .build()
                    .map_err(|e| Error::Config(format!("template: {e}")))?;
                tokenizer.inner.with_post_processor(Some(post));
            }
        }
        Ok(tokenizer)
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Token ids of `text`, without the special tokens a post-processor would add.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Input(format!("cannot tokenize: {e}")))
    }

    /// Token ids and, per token, whether it starts a word (for whole-word masking).
    pub fn encode_with_word_starts(&self, text: &str) -> Result<(Vec<u32>, Vec<bool>)> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::Input(format!("cannot tokenize: {e}")))?;
        let words = enc.get_word_ids();
        let starts = (0..words.len()).map(|i| i == 0 || words[i].is_none() || words[i] != words[i - 1]).collect();
        Ok((enc.get_ids().to_vec(), starts))
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| Error::Input(format!("cannot decode: {e}")))
    }

    /// Ids of all special (added, special) tokens.
    pub fn special_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> =
            self.inner.get_added_tokens_decoder().iter().filter(|(_, t)| t.special).map(|(&id, _)| id).collect();
        ids.sort_unstable();
        ids
    }

    fn first_of(&self, names: &[&str]) -> Option<u32> {
        names.iter().find_map(|n| self.id(n))
    }

    /// The token that ends a document: `<|endoftext|>`, `</s>` or `[SEP]`.
    pub fn eos_id(&self) -> Option<u32> {
        self.first_of(&["<|endoftext|>", "</s>", "[SEP]", "<eos>"])
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.first_of(&["[PAD]", "<pad>", "<|pad|>"])
    }

    pub fn mask_id(&self) -> Option<u32> {
        self.first_of(&["[MASK]", "<mask>"])
    }

    pub fn cls_id(&self) -> Option<u32> {
        self.first_of(&["[CLS]", "<s>"])
    }

    /// `<extra_id_0>`, `<extra_id_1>`, … as far as they go.
    pub fn sentinel_ids(&self) -> Vec<u32> {
        (0..).map_while(|i| self.id(&format!("<extra_id_{i}>"))).collect()
    }

    /// Checks the tokenizer fits a model with `model_vocab` embeddings.
    pub fn check_fits(&self, model_vocab: usize) -> Result<()> {
        if self.vocab_size() > model_vocab {
            return Err(Error::Config(format!(
                "the tokenizer has {} tokens but the model's vocab_size is {model_vocab}; use the model's own tokenizer or set vocab_size ≥ {}",
                self.vocab_size(),
                self.vocab_size()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "It is a truth universally acknowledged, that a single man in possession of a good fortune, \
        must be in want of a wife. However little known the feelings or views of such a man may be on his \
        first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families.";

    fn corpus() -> Vec<String> {
        (0..50).map(|i| format!("{TEXT} {i}")).collect()
    }

    #[test]
    fn trained_tokenizers_round_trip_and_keep_their_specials() {
        for kind in [TokenizerKind::Bpe, TokenizerKind::WordPiece, TokenizerKind::Unigram] {
            let specials = kind.default_special_tokens();
            let tok = Tokenizer::train(kind, 300, &specials, corpus().into_iter()).unwrap();
            assert!(tok.vocab_size() <= 300, "{kind:?}: {}", tok.vocab_size());
            for (i, s) in specials.iter().enumerate() {
                assert_eq!(tok.id(s), Some(i as u32), "{kind:?}: special {s} has id {i}");
            }
            let ids = tok.encode("a single man in possession of a good fortune").unwrap();
            assert!(!ids.is_empty());
            let text = tok.decode(&ids).unwrap();
            assert_eq!(text.trim(), "a single man in possession of a good fortune", "{kind:?}");
            // and through JSON
            let again = Tokenizer::from_json(tok.to_json().unwrap().as_bytes()).unwrap();
            assert_eq!(again.encode("a good fortune").unwrap(), tok.encode("a good fortune").unwrap());
        }
    }

    #[test]
    fn roles_of_special_tokens() {
        let wp = Tokenizer::train(
            TokenizerKind::WordPiece,
            300,
            &TokenizerKind::WordPiece.default_special_tokens(),
            corpus().into_iter(),
        )
        .unwrap();
        assert_eq!((wp.pad_id(), wp.mask_id(), wp.cls_id(), wp.eos_id()), (Some(0), Some(4), Some(2), Some(3)));
        let (ids, starts) = wp.encode_with_word_starts("possession neighbourhood").unwrap();
        assert_eq!(ids.len(), starts.len());
        assert!(starts[0]);
        let uni = Tokenizer::train(
            TokenizerKind::Unigram,
            400,
            &TokenizerKind::Unigram.default_special_tokens(),
            corpus().into_iter(),
        )
        .unwrap();
        assert_eq!(uni.sentinel_ids().len(), 100);
        let (with_span, plain) = (uni.encode("a good <extra_id_0> fortune").unwrap(), uni.encode("a good").unwrap());
        assert_eq!(with_span[..plain.len()], plain[..], "no stray ▁ before a sentinel");
        assert_eq!(with_span[plain.len()], uni.sentinel_ids()[0]);
        assert_eq!(uni.sentinel_ids()[0], 3);
        assert_eq!(uni.eos_id(), Some(1));
        let err = uni.check_fits(128).unwrap_err().to_string();
        assert!(err.contains("vocab_size is 128"), "{err}");
    }
}
