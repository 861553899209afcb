//! An encoder-decoder (T5) fine-tuned text-to-text, as Raffel et al. (2020) did for GLUE and
//! SuperGLUE: the task is a
//! prefix of the input (`"sst2 sentence: …"`), the answer is target text (`"positive"`), the loss
//! is the decoder's cross-entropy over the target, and a prediction is the greedy decoding, read
//! back as text.

use burn::tensor::{Device, Int, Tensor};

use crate::error::{Error, Result};
use crate::models::t5::shift_right;
use crate::models::{LanguageModel, Model, ModelConfig, Seq2SeqLm, token_loss};
use crate::nn::loss::IGNORE_INDEX;
use crate::objectives::batch::{int_tensor, pad_rows};
use crate::readback::block_on;
use crate::tokenizer::Tokenizer;

/// An input and its target as token ids, each ending with EOS (as T5's tokenizer adds it).
#[derive(Clone, Debug, PartialEq)]
pub struct Seq2Seq {
    pub input: Vec<u32>,
    pub target: Vec<u32>,
}

/// How text becomes [`Seq2Seq`] pairs, and the decoder's special tokens.
#[derive(Clone, Debug)]
pub struct Text2TextFormat {
    pub max_len: usize,
    pub max_target: usize,
    pub eos: u32,
    pub pad: u32,
    pub decoder_start: u32,
}

impl Text2TextFormat {
    /// The format of an encoder-decoder `config` (an error naming the fix for another family).
    pub fn new(config: &ModelConfig, tokenizer: &Tokenizer, max_len: usize, max_target: usize) -> Result<Self> {
        let Some(decoder_start) = config.family().decoder_start_token() else {
            return Err(Error::Config(format!(
                "text-to-text fine-tunes an encoder-decoder (t5); a {} classifies (no --prefix)",
                config.model_type()
            )));
        };
        let eos =
            tokenizer.eos_id().ok_or_else(|| Error::Config("the tokenizer has no end-of-text token </s>".into()))?;
        let pad = tokenizer.pad_id().unwrap_or(decoder_start);
        Ok(Self { max_len: max_len.max(2), max_target: max_target.max(2), eos, pad, decoder_start })
    }

    /// `input` and `target` as ids, truncated to `max_len` and `max_target` (EOS kept).
    pub fn encode(&self, tokenizer: &Tokenizer, input: &str, target: &str) -> Result<Seq2Seq> {
        let ids = |text: &str, max: usize| -> Result<Vec<u32>> {
            let mut v = tokenizer.encode(text)?;
            v.truncate(max - 1);
            v.push(self.eos);
            Ok(v)
        };
        Ok(Seq2Seq { input: ids(input, self.max_len)?, target: ids(target, self.max_target)? })
    }
}

/// `[b, ts]` padded inputs and their attention mask.
fn inputs(examples: &[&[u32]], pad: u32, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
    let rows: Vec<Vec<i64>> = examples.iter().map(|e| e.iter().map(|&t| t as i64).collect()).collect();
    let (ids, mask) = pad_rows(&rows, pad as i64);
    (int_tensor(&ids, device), int_tensor(&mask, device))
}

/// The mean cross-entropy of the targets given the inputs (teacher forcing). `model` is an
/// encoder-decoder (the format was made from its config).
pub fn seq2seq_loss(model: &Model, examples: &[&Seq2Seq], format: &Text2TextFormat, device: &Device) -> Tensor<1> {
    let sources: Vec<&[u32]> = examples.iter().map(|e| e.input.as_slice()).collect();
    let (input_ids, mask) = inputs(&sources, format.pad, device); // [b, ts]
    let targets: Vec<Vec<i64>> = examples.iter().map(|e| e.target.iter().map(|&t| t as i64).collect()).collect();
    let (labels, _) = pad_rows(&targets, IGNORE_INDEX); // [b, tt], -100 past each target
    let decoder_input = shift_right(&labels, format.decoder_start, format.pad);
    let model = model.seq2seq_lm().expect("a text-to-text format holds an encoder-decoder");
    let encoded = model.encode(input_ids, Some(mask.clone()));
    let logits = model.decode(int_tensor(&decoder_input, device), encoded, Some(mask)); // [b, tt, vocab]
    token_loss(logits, int_tensor(&labels, device))
}

/// Greedy decoding of every input, `batch_size` at a time (the encoder runs once per batch; the
/// decoder reruns over the prefix each step: targets are a few tokens). The tokens before EOS.
pub fn greedy_decode(
    model: &dyn Seq2SeqLm,
    sources: &[&[u32]],
    format: &Text2TextFormat,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::with_capacity(sources.len());
    for chunk in sources.chunks(batch_size.max(1)) {
        let b = chunk.len();
        let (input_ids, mask) = inputs(chunk, format.pad, device);
        let encoded = model.encode(input_ids, Some(mask.clone())); // [b, ts, d]
        let mut decoded: Vec<Vec<u32>> = vec![vec![format.decoder_start]; b];
        let mut done = vec![false; b];
        for _ in 0..format.max_target {
            let t = decoded[0].len();
            let rows: Vec<Vec<i64>> = decoded.iter().map(|r| r.iter().map(|&x| x as i64).collect()).collect();
            let logits = model.decode(int_tensor(&rows, device), encoded.clone(), Some(mask.clone())); // [b, t, v]
            let [_, _, v] = logits.dims();
            let next = logits.slice([0..b, t - 1..t, 0..v]).argmax(2).reshape([b]); // [b]
            let next: Vec<i64> = block_on(next.into_data_async())
                .map_err(|e| Error::Device(format!("reading decoded tokens: {e:?}")))?
                .convert::<i64>()
                .try_to_vec::<i64>()
                .map_err(|e| Error::Device(format!("reading decoded tokens: {e:?}")))?;
            for (i, &token) in next.iter().enumerate() {
                let token = if done[i] { format.pad } else { token as u32 };
                done[i] |= token == format.eos;
                decoded[i].push(token);
            }
            if done.iter().all(|&d| d) {
                break;
            }
        }
        out.extend(decoded.into_iter().map(|row| row[1..].iter().copied().take_while(|&t| t != format.eos).collect()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finetune::{FinetuneConfig, Finetuner};

    #[test]
    fn t5_learns_to_write_the_target_and_greedy_decoding_reads_it() {
        let device = Device::flex();
        let config = crate::models::presets::preset("t5-tiny", &Default::default()).unwrap();
        device.seed(1);
        let model = config.init(&device);
        let format = Text2TextFormat { max_len: 16, max_target: 6, eos: 1, pad: 0, decoder_start: 0 };
        // Two inputs, two different targets of different lengths (EOS = 1 ends each).
        let pairs = vec![
            Seq2Seq { input: vec![5, 6, 7, 1], target: vec![20, 21, 1] },
            Seq2Seq { input: vec![8, 9, 1], target: vec![30, 1] },
        ];
        let tune = FinetuneConfig::linear(3e-3, 0, 60, 0.0, 1.0, 0);
        let mut tuner = Finetuner::new(model, tune, &device);
        let refs: Vec<&Seq2Seq> = pairs.iter().collect();
        let first = tuner.step(|m, d| seq2seq_loss(m, &refs, &format, d)).unwrap();
        let mut last = first;
        for _ in 1..60 {
            last = tuner.step(|m, d| seq2seq_loss(m, &refs, &format, d)).unwrap();
        }
        assert!(last < first / 10.0, "the loss fell from {first} to {last}");
        let (model, device) = tuner.inference();
        let sources: Vec<&[u32]> = pairs.iter().map(|p| p.input.as_slice()).collect();
        // Decoded together and one at a time (padding must not change an answer).
        let model = model.seq2seq_lm().unwrap();
        assert_eq!(greedy_decode(model, &sources, &format, 2, &device).unwrap(), vec![vec![20, 21], vec![30]]);
        assert_eq!(greedy_decode(model, &sources, &format, 1, &device).unwrap(), vec![vec![20, 21], vec![30]]);
    }
}
