//! A trained model opened from its folder (any HF folder with config.json, model.safetensors and
//! tokenizer.json, or a run folder's latest intact checkpoint) on the chosen device, after checking
//! that it fits; and the checks an input must pass before its forward.

use std::path::PathBuf;

use burn::tensor::Device;
use hearth_core::footprint::fused_attention;
use hearth_core::models::{Model, ModelConfig};
use hearth_core::tokenizer::Tokenizer;
use hearth_core::{Error, footprint};

use crate::storage::checkpoint;

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
    /// What the device can hold (read once; see `hearth_core::footprint`).
    pub limits: footprint::DeviceLimits,
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
    footprint::check_model(&config, (1, seq), fused_attention(&device, true), false, &limits, "loading the model")?;
    let model = Model::from_hf(&config, &checkpoint::read(&dir, "model.safetensors")?, &device)
        .map_err(|e| e.in_file(dir.join("model.safetensors").display()))?;
    Ok(Loaded { config, model, tokenizer, device, backend, limits, dir })
}

impl Loaded {
    /// The activations of `batch` sequences of `seq` tokens must fit one buffer of the device
    /// (`lm_logits`: the language-model head runs, as in evaluation; not in classification).
    pub fn check_batch(&self, batch: usize, seq: usize, lm_logits: bool, work: &str) -> Result<(), Error> {
        let mut tensors =
            footprint::activation_sizes(&self.config, batch, seq, fused_attention(&self.device, true), false);
        tensors.retain(|t| lm_logits || t.name != "logits");
        footprint::check_tensors(&tensors, &self.limits, work)
    }

    /// An input of `tokens` must fit the model's position table and the device (core's
    /// [`footprint::check_input`], as the page checks it).
    pub fn check_input(&self, tokens: usize, work: &str) -> Result<(), Error> {
        footprint::check_input(&self.config, tokens, fused_attention(&self.device, true), &self.limits, work)
    }
}
