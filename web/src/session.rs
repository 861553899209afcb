//! One training session in the page: a corpus, its tokenizer, a model and its `Trainer` — the same
//! components `hearth train` runs, with every device read awaited.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use hearth_core::attention_maps::{prompt_ids, text_attention};
use hearth_core::footprint::{DeviceLimits, check_input, fused_attention};
use hearth_core::generate::{
    Sampling, fill_mask, generate, max_new_tokens as max_new_tokens_checked, next_token_logits, text2text, top_k,
};
use hearth_core::models::LanguageModel;
use hearth_core::models::presets::preset;
use hearth_core::objectives::Rng;
use hearth_core::tokenizer::Tokenizer;
use hearth_core::train::corpus::{paragraphs, split_validation, tokenize_documents, tokenizer_kind};
use hearth_core::train::engine::Cadence;
use hearth_core::train::pretraining::{Pretraining, Validation};
use hearth_core::train::run::{Resume, RunPlan, Start, document_separator};
use hearth_core::train::{Engine, Sink, Steps, TrainConfig, Trainer};
use hearth_core::{Model, ModelConfig};
use js_sys::{Object, Promise, Reflect, Uint8Array};
use rand::SeedableRng;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend::{BackendInfo, choose};

struct Inner {
    trainer: Trainer,
    model_config: ModelConfig,
    tokenizer: Tokenizer,
    train: Vec<u32>,
    val: Vec<u32>,
    /// The plain device (training runs on its autodiff decorator inside the trainer).
    device: Device,
    backend: BackendInfo,
    /// What the device holds: one binding per tensor (the browser states no memory size).
    limits: DeviceLimits,
    /// Sampling's random source.
    rng: Rng,
    /// Wall time spent in `train`, ms.
    train_ms: f64,
}

/// A session the page holds. Every method returns a `Promise`; calls must not overlap (the page
/// awaits each one), and one that does is refused with an error rather than queued.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<RefCell<Inner>>,
}

#[derive(Serialize)]
struct TrainReport {
    step: u64,
    loss: f64,
    lr: f64,
    grad_norm: f64,
    /// Model positions consumed since the start.
    tokens: u64,
    /// This call's steps: tokens per second of wall time, and milliseconds per step.
    tokens_per_s: f64,
    ms_per_step: f64,
    /// The validation loss and its step, when it was due in this call's steps (the run's
    /// `eval_every`, and its last step): core's engine evaluates as it does for `hearth train`.
    val_step: Option<u64>,
    val_loss: Option<f64>,
}

/// The page's sink: the browser's clock. What the validation job finds comes back in the report
/// (`val_step`, `val_loss`), which the page shows; its line for a terminal is not needed, and the
/// page keeps no checkpoints of its own accord (`save` stores one when asked).
struct Messages {
    start_ms: f64,
}

impl Sink for Messages {
    fn seconds(&self) -> f64 {
        (now_ms() - self.start_ms) / 1000.0
    }

    fn say(&mut self, _line: String) {}

    fn keep(&mut self, _record: &serde_json::Value) -> hearth_core::Result<()> {
        Ok(()) // the report carries the newest record; the page draws its own chart
    }
}

#[derive(Serialize)]
struct Info<'a> {
    model_type: &'static str,
    objective: &'static str,
    params: usize,
    vocab_size: usize,
    block_size: usize,
    batch_size: usize,
    train_tokens: usize,
    val_tokens: usize,
    step: u64,
    tokens: u64,
    train_seconds: f64,
    backend: &'a BackendInfo,
    /// The compute dtype steps run in (`precision` in the settings; f32 where the adapter lacks it).
    precision: &'static str,
    /// What the trainer changed from the settings, and why.
    notices: Vec<String>,
}

#[derive(Serialize)]
struct Ranked {
    id: u32,
    token: String,
    prob: f64,
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// A JavaScript number that must be a whole number (a count), as an `i64` for range checks.
fn whole(x: f64, name: &str) -> Result<i64, JsValue> {
    if x.fract() != 0.0 || !x.is_finite() {
        return Err(js_err(format!("{name} {x} is not a whole number")));
    }
    Ok(x as i64)
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(&serde_json::to_string(value).map_err(js_err)?)
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

impl Inner {
    /// A session training `plan`'s model on the training documents (the validation ones held out),
    /// checked the way `hearth train` checks a run (see `RunPlan`); `weights_file` names the saved
    /// weights in an error.
    async fn build(
        plan: RunPlan<'_>,
        tokenizer: Tokenizer,
        (train_docs, val_docs): (Vec<String>, Vec<String>),
        backend: &str,
        weights_file: Option<&str>,
        resume: Option<Resume<'_>>,
    ) -> Result<Self, JsValue> {
        let eos = document_separator(&tokenizer).map_err(js_err)?;
        let train = tokenize_documents(&tokenizer, &train_docs, eos).map_err(js_err)?;
        let val = tokenize_documents(&tokenizer, &val_docs, eos).map_err(js_err)?;
        let (device, backend) = choose(backend).await.map_err(js_err)?;
        // Every tensor must fit one WebGPU binding (the adapter's own limit, not WebGPU's 128 MiB
        // default), checked before the model is built.
        let limits = DeviceLimits::of(&device, format!("{} ({})", backend.kind, backend.name), None);
        plan.check_fits(&device, 1, &limits).map_err(js_err)?;
        let rng = Rng::seed_from_u64(plan.config.seed);
        let model_config = plan.model_config.clone();
        let trainer = plan.trainer(&device, resume).map_err(|e| match weights_file {
            Some(file) => js_err(e.in_file(file)),
            None => js_err(e),
        })?;
        Ok(Self { trainer, model_config, tokenizer, train, val, device, backend, limits, rng, train_ms: 0.0 })
    }

    fn config(&self) -> &TrainConfig {
        self.trainer.config()
    }

    /// An input of `tokens` must fit the model's position table and the device, as `hearth
    /// generate` and the others check it (core's `footprint::check_input`).
    fn check_input(&self, tokens: usize, work: &str) -> Result<(), JsValue> {
        let fused = fused_attention(&self.device, true);
        check_input(&self.model_config, tokens, fused, &self.limits, work).map_err(js_err)
    }

    /// The model as it stands, for inference (no autodiff, dropout off).
    fn model(&self) -> Model {
        self.trainer.inference_model()
    }

    fn info(&self) -> Info<'_> {
        let (step, tokens) = (self.trainer.state().step, self.trainer.state().tokens);
        let config = self.config();
        Info {
            model_type: self.model_config.model_type(),
            objective: config.objective.unwrap_or(self.model_config.family().objectives()[0]).name(),
            params: self.trainer.num_params(),
            vocab_size: self.model_config.vocab_size(),
            block_size: config.block_size,
            batch_size: config.batch_size,
            train_tokens: self.train.len(),
            val_tokens: self.val.len(),
            step,
            tokens,
            train_seconds: self.train_ms / 1000.0,
            backend: &self.backend,
            precision: self.trainer.precision().name(),
            notices: self.trainer.notices().to_vec(),
        }
    }

    /// `steps` steps of core's engine, with validation as the run's `eval_every` says; one read
    /// of the numbers (the newest step's) unless an evaluation read them.
    async fn train(&mut self, steps: u32) -> Result<TrainReport, JsValue> {
        let mut sink = Messages { start_ms: now_ms() };
        let until = self.trainer.state().step + steps.max(1) as u64;
        let mut validation = Validation::new(&self.trainer, &self.val);
        let mut pretraining = Pretraining::new(&mut self.trainer, &self.train);
        // The page's cadence: no records between evaluations (the report reads the newest step).
        let cadence = Cadence { log_every: None, checkpoint_every: 0, ..pretraining.cadence() };
        let outcome = Engine::new(cadence, None)
            .run(&mut pretraining, until, &mut [&mut validation], &mut sink)
            .await
            .map_err(js_err)?;
        let evaluated = outcome.last_record.filter(|r| r.get("val_loss").is_some());
        let record = match evaluated.clone().filter(|r| r["step"].as_u64() == Some(until)) {
            Some(record) => record,
            None => pretraining.record(sink.seconds()).await.map_err(js_err)?,
        };
        let seconds = sink.seconds().max(1e-6);
        self.train_ms += seconds * 1000.0;
        let number = |key: &str| record[key].as_f64().unwrap_or(f64::NAN);
        Ok(TrainReport {
            step: until,
            loss: number("loss"),
            lr: number("lr"),
            grad_norm: number("grad_norm"),
            tokens: self.trainer.state().tokens,
            tokens_per_s: number("tokens_per_s"),
            ms_per_step: seconds * 1000.0 / steps.max(1) as f64,
            val_step: evaluated.as_ref().and_then(|r| r["step"].as_u64()),
            val_loss: evaluated.as_ref().and_then(|r| r["val_loss"].as_f64()),
        })
    }

    fn ranked(&self, probs: Vec<(u32, f64)>) -> Vec<Ranked> {
        probs
            .into_iter()
            .map(|(id, prob)| Ranked { id, token: self.tokenizer.decode(&[id]).unwrap_or_default(), prob })
            .collect()
    }

    async fn next_tokens(&self, prompt: &str, k: usize) -> Result<Vec<Ranked>, JsValue> {
        let model = self.model();
        let Some(model) = model.causal_lm() else {
            return Err(js_err(
                "next-token prediction needs a causal model (GPT, LLaMA); this session holds a different one",
            ));
        };
        let ids = self.tokenizer.encode(prompt).map_err(js_err)?;
        self.check_input(ids.len(), "next token")?;
        let logits = next_token_logits(model, &ids, &self.device).await.map_err(js_err)?;
        Ok(self.ranked(top_k(&logits, k)))
    }

    async fn fill_mask(&self, text: &str, k: usize) -> Result<Vec<Vec<Ranked>>, JsValue> {
        let model = self.model();
        let Some(model) = model.masked_lm() else {
            return Err(js_err("fill-mask needs a masked model (BERT); this session holds a different one"));
        };
        let mask = self.tokenizer.mask_id().ok_or_else(|| js_err("the tokenizer has no [MASK] token"))?;
        let mut ids = Vec::new();
        ids.extend(self.tokenizer.cls_id());
        ids.extend(self.tokenizer.encode(text).map_err(js_err)?);
        ids.extend(self.tokenizer.eos_id());
        self.check_input(ids.len(), "fill-mask")?;
        let filled = fill_mask(model, &ids, mask, k, &self.device).await.map_err(js_err)?;
        Ok(filled.into_iter().map(|top| self.ranked(top)).collect())
    }

    /// A continuation of `prompt` (a causal LM), or an encoder-decoder's output for it as input.
    async fn generate(&mut self, prompt: &str, max_new: usize, sampling: Sampling) -> Result<String, JsValue> {
        let ids = self.tokenizer.encode(prompt).map_err(js_err)?;
        let model = self.model();
        let out = if let Some(m) = model.causal_lm() {
            self.check_input(ids.len(), "generate")?;
            let eos = self.tokenizer.eos_id();
            generate(m, &ids, max_new, sampling, eos, &mut self.rng, &self.device).await
        } else if let Some(m) = model.seq2seq_lm() {
            let eos = self.tokenizer.eos_id().unwrap_or(1);
            let input: Vec<u32> = ids.into_iter().chain([eos]).collect();
            self.check_input(input.len(), "generate")?;
            text2text(m, &input, eos, max_new, sampling, &mut self.rng, &self.device).await
        } else {
            return Err(js_err("generation needs a causal or an encoder-decoder model; use fill-mask for BERT"));
        }
        .map_err(js_err)?;
        self.tokenizer.decode(&out).map_err(js_err)
    }

    async fn evaluate(&mut self) -> Result<f64, JsValue> {
        self.trainer.evaluate_async(&self.val).await.map_err(js_err)
    }

    /// The HF model folder's three files, as `hearth train` writes them.
    async fn export(&self) -> Result<JsValue, JsValue> {
        let weights = self.model().to_safetensors_async().await.map_err(js_err)?;
        self.files(&weights)
    }

    /// `{config_json, tokenizer_json, model_safetensors}` with these weights.
    fn files(&self, weights: &[u8]) -> Result<JsValue, JsValue> {
        let out = Object::new();
        Reflect::set(&out, &"config_json".into(), &self.model_config.to_json().into())?;
        Reflect::set(&out, &"tokenizer_json".into(), &self.tokenizer.to_json().map_err(js_err)?.into())?;
        Reflect::set(&out, &"model_safetensors".into(), &Uint8Array::from(weights).into())?;
        Ok(out.into())
    }
}

/// The text's documents, split into training and validation ones.
fn documents(text: &str, config: &TrainConfig) -> Result<(Vec<String>, Vec<String>), JsValue> {
    let docs = paragraphs(text);
    if docs.is_empty() {
        return Err(js_err("the corpus is empty; choose a bundled text or paste some"));
    }
    split_validation(docs, config.val_fraction, "the corpus").map_err(js_err)
}

fn parse_config(config_json: &str) -> Result<TrainConfig, JsValue> {
    let config: TrainConfig = serde_json::from_str(if config_json.trim().is_empty() { "{}" } else { config_json })
        .map_err(|e| js_err(format!("training settings: {e}")))?;
    config.validate().map_err(js_err)?;
    Ok(config)
}

#[wasm_bindgen]
impl Session {
    /// A new model from `config_json` (a `TrainConfig` as JSON: `preset`, `model` overrides,
    /// `batch_size`, `block_size`, `lr`, … — the keys of a `hearth train` run file), with a
    /// tokenizer trained on `text`. `backend`: "auto", "webgpu" or "cpu".
    pub async fn create(config_json: String, text: String, backend: String) -> Result<Session, JsValue> {
        let config = parse_config(&config_json)?;
        let model_config = preset(&config.preset, &config.model).map_err(js_err)?;
        let docs = documents(&text, &config)?;
        let kind = tokenizer_kind(&model_config);
        let tokenizer =
            Tokenizer::train(kind, config.tokenizer_vocab_size, &kind.default_special_tokens(), docs.0.iter())
                .map_err(js_err)?;
        let plan = RunPlan::new(config, model_config, &tokenizer, Start::New { vocab_from_tokenizer: true })
            .map_err(js_err)?;
        let inner = Inner::build(plan, tokenizer, docs, &backend, None, None).await?;
        Ok(Session { inner: Rc::new(RefCell::new(inner)) })
    }

    /// A model saved by `hearth train` (or `export`, or any HF GPT-2/BERT/T5 folder): its
    /// `config.json`, `model.safetensors` and `tokenizer.json`. Training continues on `text`: from
    /// step 0 with a new optimizer, or, given the `trainer_state_json` and `optimizer` that `save`
    /// returned, exactly where that session stopped (step, AdamW's moments, data position).
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        config_json: String,
        model_safetensors: Vec<u8>,
        tokenizer_json: String,
        settings_json: String,
        text: String,
        backend: String,
        trainer_state_json: Option<String>,
        optimizer: Option<Vec<u8>>,
    ) -> Result<Session, JsValue> {
        let config = parse_config(&settings_json)?;
        let model_config =
            ModelConfig::from_json(config_json.as_bytes()).map_err(|e| js_err(e.in_file("config.json")))?;
        let tokenizer =
            Tokenizer::from_json(tokenizer_json.as_bytes()).map_err(|e| js_err(e.in_file("tokenizer.json")))?;
        let plan = RunPlan::new(config, model_config, &tokenizer, Start::Saved(&model_safetensors)).map_err(js_err)?;
        let docs = documents(&text, &plan.config)?;
        let resume = match (&trainer_state_json, optimizer) {
            (Some(state_json), Some(optimizer)) => Some(Resume { state_json, optimizer }),
            (None, None) => None,
            _ => {
                return Err(js_err(
                    "resuming needs both the trainer state and the optimizer state that save() returned",
                ));
            }
        };
        let inner = Inner::build(plan, tokenizer, docs, &backend, Some("model.safetensors"), resume).await?;
        Ok(Session { inner: Rc::new(RefCell::new(inner)) })
    }

    /// What the session holds: model type, parameters, backend, step, tokens, … (an object).
    pub fn info(&self) -> Result<JsValue, JsValue> {
        let inner = self.inner.try_borrow().map_err(|_| js_err("the session is busy; await the call in flight"))?;
        to_js(&inner.info())
    }

    /// `steps` optimizer steps of core's engine, validating when the run's `eval_every` says;
    /// resolves to `{step, loss, lr, grad_norm, tokens, tokens_per_s, ms_per_step, val_step,
    /// val_loss}` (`val_*` null when no validation was due).
    pub fn train(&self, steps: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut s = inner.try_borrow_mut().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            to_js(&s.train(steps).await?)
        })
    }

    /// Validation loss and perplexity: `{loss, perplexity}`.
    pub fn evaluate(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut s = inner.try_borrow_mut().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            let loss = s.evaluate().await?;
            to_js(&serde_json::json!({"loss": loss, "perplexity": loss.exp()}))
        })
    }

    /// The `k` most likely next tokens after `prompt` (causal models): `[{id, token, prob}]`.
    pub fn next_tokens(&self, prompt: String, k: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            to_js(&s.next_tokens(&prompt, k as usize).await?)
        })
    }

    /// For each [MASK] in `text` (masked models), the `k` most likely tokens: `[[{id, token, prob}]]`.
    pub fn fill_mask(&self, text: String, k: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            to_js(&s.fill_mask(&text, k as usize).await?)
        })
    }

    /// A sampled continuation of `prompt` (GPT) or T5's output for it: `max_new_tokens ≥ 1`,
    /// `temperature ≥ 0` (0 = greedy), `top_k ≥ 0` (0 = all), `0 < top_p ≤ 1` (absent: 1). Settings
    /// out of range reject the promise with the valid range, as the CLI refuses them.
    pub fn generate(
        &self,
        prompt: String,
        max_new_tokens: f64,
        temperature: f64,
        top_k: f64,
        top_p: Option<f64>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let sampling = Sampling::new(temperature, whole(top_k, "top_k")?, top_p.unwrap_or(1.0)).map_err(js_err)?;
            let max_new = max_new_tokens_checked(whole(max_new_tokens, "max_new_tokens")?).map_err(js_err)?;
            let mut s = inner.try_borrow_mut().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            Ok(s.generate(&prompt, max_new, sampling).await?.into())
        })
    }

    /// What the model attends to for `text`: `{ids, tokens, decoder_ids, decoder_tokens, maps}`,
    /// each map `{stack, layer, heads, queries, keys, weights}` with `weights` `[heads, queries,
    /// keys]` row-major (`hearth_core::attention_maps::text_attention`, as `hearth attention`).
    pub fn attention(&self, text: String) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            let model = s.model(); // built once: the check and the maps read the same model
            s.check_input(prompt_ids(&model, &s.tokenizer, &text).map_err(js_err)?.len(), "attention")?;
            let maps = text_attention(&model, &s.model_config, &s.tokenizer, &text, &s.device).await.map_err(js_err)?;
            to_js(&maps)
        })
    }

    /// The learning rate at `points` evenly spaced steps from 0 to `max_steps`: `[[step, lr]]`
    /// (the run's warmup and decay, as the trainer applies them).
    pub fn schedule(&self, points: u32) -> Result<JsValue, JsValue> {
        let inner = self.inner.try_borrow().map_err(|_| js_err("the session is busy; await the call in flight"))?;
        let config = inner.config();
        let schedule = config.schedule();
        let n = points.max(2) as u64;
        let curve: Vec<(u64, f64)> =
            (0..n).map(|i| i * config.max_steps / (n - 1)).map(|step| (step, schedule.lr(step))).collect();
        to_js(&curve)
    }

    /// What `open` needs to continue exactly here: `export`'s three files, and on the CPU backend
    /// `trainer_state_json` and `optimizer` (AdamW's state, burnpack bytes) too. On WebGPU these
    /// two are `null`: burn reads an optimizer's state back only synchronously, which a browser's
    /// GPU cannot do, so a reload there continues with the weights and a new optimizer.
    pub fn save(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut s = inner.try_borrow_mut().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            // On the CPU the checkpoint holds the weights too: they are serialised once.
            let (out, state, optimizer) = match s.backend.kind {
                "cpu" => {
                    let c =
                        s.trainer.checkpoint().map_err(js_err)?.ok_or_else(|| js_err("no checkpoint on this rank"))?;
                    let optimizer = c.optimizer_shards.into_iter().next().unwrap_or_default();
                    let out = s.files(&c.model_safetensors)?;
                    (out, JsValue::from(c.state_json), Uint8Array::from(optimizer.as_slice()).into())
                }
                _ => (s.export().await?, JsValue::NULL, JsValue::NULL),
            };
            Reflect::set(&out, &"trainer_state_json".into(), &state)?;
            Reflect::set(&out, &"optimizer".into(), &optimizer)?;
            Ok(out)
        })
    }

    /// `{config_json, tokenizer_json, model_safetensors}`: an HF model folder (as `hearth train` writes).
    pub fn export(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let s = inner.try_borrow().map_err(|_| js_err("the session is busy; await the call in flight"))?;
            s.export().await
        })
    }
}
