//! Using a trained model from its checkpoint folder (any HF folder with config.json,
//! model.safetensors and tokenizer.json): `generate`, `fill-mask`, `text2text`.

use std::path::PathBuf;

use burn::tensor::Device;
use hearth_core::fit::fused_attention;
use hearth_core::generate::{Sampling, fill_mask, generate, max_new_tokens, text2text};
use hearth_core::models::{LanguageModel, Model, ModelConfig};
use hearth_core::objectives::Rng;
use hearth_core::readback::block_on;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::{Error, fit};
use rand::SeedableRng;

use crate::checkpoint;

#[derive(clap::Args)]
pub struct ModelArgs {
    /// A checkpoint folder (`runs/default/step-00000600`) or a run folder (its latest checkpoint).
    #[arg(long, short)]
    pub model: PathBuf,
    /// `auto`, `wgpu` or `flex`.
    #[arg(long, default_value = "auto")]
    pub backend: String,
}

pub struct Loaded {
    pub config: ModelConfig,
    pub model: Model,
    pub tokenizer: Tokenizer,
    pub device: Device,
    pub backend: hearth_core::Backend,
    /// What the device can hold (read once; see `hearth_core::fit`).
    pub limits: fit::DeviceLimits,
    pub dir: PathBuf,
}

pub fn load(args: &ModelArgs) -> Result<Loaded, Error> {
    let dir = if args.model.join("config.json").exists() {
        args.model.clone()
    } else {
        if checkpoint::latest(&args.model).is_none() {
            return Err(Error::Config(format!(
                "{} holds no config.json nor checkpoints; give a checkpoint folder",
                args.model.display()
            )));
        }
        checkpoint::latest_intact(&args.model, false)?.1
    };
    let config = ModelConfig::from_json(&checkpoint::read(&dir, "config.json")?)
        .map_err(|e| e.in_file(dir.join("config.json").display()))?;
    let tokenizer = Tokenizer::from_json(&checkpoint::read(&dir, "tokenizer.json")?)
        .map_err(|e| e.in_file(dir.join("tokenizer.json").display()))?;
    tokenizer.check_fits(config.vocab_size())?;
    let (backend, device) = crate::backend::choose(&args.backend)?;
    // Every parameter, and a one-sequence forward, must fit the device before anything is loaded.
    let seq = config.max_positions().unwrap_or(512);
    let limits = crate::backend::limits(backend, &device);
    fit::check_model(&config, (1, seq), fused_attention(&device, true), false, &limits, "loading the model")?;
    let model = Model::from_hf(&config, &checkpoint::read(&dir, "model.safetensors")?, &device)
        .map_err(|e| e.in_file(dir.join("model.safetensors").display()))?;
    Ok(Loaded { config, model, tokenizer, device, backend, limits, dir })
}

impl Loaded {
    /// The activations of `batch` sequences of `seq` tokens must fit one buffer of the device
    /// (`lm_logits`: the language-model head runs, as in evaluation; not in classification).
    pub fn check_batch(&self, batch: usize, seq: usize, lm_logits: bool, work: &str) -> Result<(), Error> {
        let mut tensors = fit::activation_sizes(&self.config, batch, seq, fused_attention(&self.device, true), false);
        tensors.retain(|t| lm_logits || t.name != "logits");
        fit::check_tensors(&tensors, &self.limits, work)
    }

    /// An input of `tokens` must fit the model's position table, and its forward the device: one
    /// buffer per tensor, and all of them together the memory (a T5's relative positions have no
    /// table, so a long input is stopped here, not by the allocator).
    pub fn check_input(&self, tokens: usize, work: &str) -> Result<(), Error> {
        if let Some(max) = self.config.max_positions()
            && tokens > max
        {
            return Err(Error::Refused(format!(
                "{work}: the input is {tokens} tokens, longer than the model's position table ({max}); shorten it"
            )));
        }
        let tensors = fit::activation_sizes(&self.config, 1, tokens, fused_attention(&self.device, true), false);
        fit::check_tensors(&tensors, &self.limits, work)?;
        let total: u64 = tensors.iter().map(|t| t.bytes).sum();
        match self.limits.memory {
            Some(memory) if total > memory / 2 => Err(Error::Refused(format!(
                "{work}: the input is {tokens} tokens, whose forward needs about {} of the {} {} has; shorten it",
                fit::human(total),
                fit::human(memory),
                self.limits.device
            ))),
            _ => Ok(()),
        }
    }
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to continue.
    prompt: String,
    /// At least 1.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    max_new_tokens: i64,
    /// ≥ 0; 0 = greedy.
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    temperature: f64,
    /// Keep the k most likely tokens; ≥ 0, 0 = all.
    #[arg(long, default_value_t = 40, allow_negative_numbers = true)]
    top_k: i64,
    /// Keep the most likely tokens up to this total probability; in (0, 1], 1 = all.
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    top_p: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run_generate(args: GenerateArgs) -> Result<(), Error> {
    // Settings first: a bad one is refused before the model loads.
    let sampling = Sampling::new(args.temperature, args.top_k, args.top_p)?;
    let max_new_tokens = max_new_tokens(args.max_new_tokens)?;
    let m = load(&args.model)?;
    let mut rng = Rng::seed_from_u64(args.seed);
    let ids = m.tokenizer.encode(&args.prompt)?;
    m.check_input(ids.len(), "generate")?;
    if let Some(model) = m.model.causal_lm() {
        let eos = m.tokenizer.eos_id();
        let out = block_on(generate(model, &ids, max_new_tokens, sampling, eos, &mut rng, &m.device))?;
        println!("{}{}", args.prompt, m.tokenizer.decode(&out)?);
        return Ok(());
    }
    if m.model.seq2seq_lm().is_some() {
        println!("{}", seq2seq_answer(&m, &args.prompt, max_new_tokens, sampling, &mut rng)?.0);
        return Ok(());
    }
    Err(Error::Config(format!(
        "generate needs a causal or an encoder-decoder model; {} is a {} (a masked LM): use fill-mask",
        m.dir.display(),
        m.config.model_type()
    )))
}

#[derive(clap::Args)]
pub struct FillMaskArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Text with one or more [MASK] tokens.
    text: String,
    #[arg(long, short, default_value_t = 5)]
    k: usize,
}

pub fn run_fill_mask(args: FillMaskArgs) -> Result<(), Error> {
    let m = load(&args.model)?;
    let Some(model) = m.model.masked_lm() else {
        return Err(Error::Config(format!(
            "fill-mask needs a masked LM; {} is a {}: use generate",
            m.dir.display(),
            m.config.model_type()
        )));
    };
    let mask = m.tokenizer.mask_id().ok_or_else(|| Error::Config("the tokenizer has no [MASK] token".into()))?;
    let mut ids = Vec::new();
    ids.extend(m.tokenizer.cls_id());
    ids.extend(m.tokenizer.encode(&args.text)?);
    ids.extend(m.tokenizer.eos_id());
    m.check_input(ids.len(), "fill-mask")?;
    for (i, top) in block_on(fill_mask(model, &ids, mask, args.k, &m.device))?.into_iter().enumerate() {
        println!("[MASK] #{}:", i + 1);
        for (t, p) in top {
            println!("  {:<16} {p:.4}", m.tokenizer.token(t).unwrap_or_default());
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct Text2TextArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The encoder input, task prefix included ("summarize: …"); <extra_id_N> sentinels mark spans to fill.
    input: String,
    /// At least 1.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
    max_new_tokens: i64,
}

pub fn run_text2text(args: Text2TextArgs) -> Result<(), Error> {
    let max_new_tokens = max_new_tokens(args.max_new_tokens)?;
    let m = load(&args.model)?;
    let (text, out) = seq2seq_answer(&m, &args.input, max_new_tokens, Sampling::GREEDY, &mut Rng::seed_from_u64(0))?;
    let shown: Vec<String> = out.iter().map(|&t| m.tokenizer.token(t).unwrap_or_default()).collect();
    println!("{text}");
    println!("tokens: {}", shown.join(" "));
    Ok(())
}

/// An encoder-decoder's decoded output for `input` (EOS appended), and its token ids.
fn seq2seq_answer(
    m: &Loaded,
    input: &str,
    max_new: usize,
    sampling: Sampling,
    rng: &mut Rng,
) -> Result<(String, Vec<u32>), Error> {
    let Some(model) = m.model.seq2seq_lm() else {
        return Err(Error::Config(format!(
            "text2text needs an encoder-decoder; {} is a {}: use generate or fill-mask",
            m.dir.display(),
            m.config.model_type()
        )));
    };
    let eos = m.tokenizer.eos_id().unwrap_or(1);
    let ids: Vec<u32> = m.tokenizer.encode(input)?.into_iter().chain([eos]).collect();
    m.check_input(ids.len(), "text2text")?;
    let out = block_on(text2text(model, &ids, eos, max_new, sampling, rng, &m.device))?;
    Ok((m.tokenizer.decode(&out)?, out))
}
