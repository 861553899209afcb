//! A LLaMA-style decoder (`LlamaForCausalLM`): rotary position embeddings, RMSNorm before each
//! block, a SwiGLU feed-forward, grouped-query attention (fewer key/value heads than query heads),
//! no biases unless asked (`attention_bias`, what Qwen2 sets), an untied head unless
//! `tie_word_embeddings`. Llama, Mistral, SmolLM, OLMo and Qwen2 share this shape. Field names
//! mirror the HF module tree, so `model.layers.0.self_attn.q_proj.weight` is both the path of a
//! parameter here and its key in `model.safetensors`.
//! Reference: transformers/models/llama/modeling_llama.py.

use burn::module::Module;
use burn::nn::{Dropout, Embedding};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::family::{
    CausalLm, Family, FamilyConfig, LanguageModel, MemoryDims, ModelInputs, ModelOutput, Objective, SequenceHead, Stack,
};
use crate::error::{Error, Result};
use crate::nn::attention::{AttentionBias, merge_heads, split_heads};
use crate::nn::{Activation, Linear, RmsNorm, dropout, embedding_table, recompute, scaled_dot_product_attention};
use crate::tokenizer::{Tokenizer, TokenizerKind};

/// HF `LlamaConfig`, as `config.json` spells it. Keys Hearth does not use are kept in `extra` and
/// written back unchanged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LlamaConfig {
    #[serde(default = "d::vocab_size")]
    pub vocab_size: usize,
    #[serde(default = "d::hidden_size")]
    pub hidden_size: usize,
    #[serde(default = "d::intermediate_size")]
    pub intermediate_size: usize,
    #[serde(default = "d::layers")]
    pub num_hidden_layers: usize,
    #[serde(default = "d::heads")]
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); `None` means one per query head.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Each head's width; `None` means `hidden_size / num_attention_heads`. It may differ from that.
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "d::act")]
    pub hidden_act: Activation,
    #[serde(default = "d::positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "d::init")]
    pub initializer_range: f64,
    #[serde(default = "d::eps")]
    pub rms_norm_eps: f64,
    /// The rotary base as transformers 5 writes it: `{"rope_theta": …, "rope_type": "default"}`.
    /// transformers 4's top-level `rope_theta` is read into it (see [`LlamaConfig::rope_theta`]).
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub attention_dropout: f64,
    #[serde(default = "d::bos")]
    pub bos_token_id: Option<u32>,
    #[serde(default = "d::eos")]
    pub eos_token_id: Option<u32>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// Rotary embeddings' settings (`rope_parameters`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    pub rope_theta: f64,
    #[serde(default = "d::rope_type")]
    pub rope_type: String,
    /// Any other key (a scaling rule's factor, …): refused unless empty (see `validate`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

mod d {
    use crate::nn::Activation;
    pub fn vocab_size() -> usize {
        32000
    }
    pub fn hidden_size() -> usize {
        4096
    }
    pub fn intermediate_size() -> usize {
        11008
    }
    pub fn layers() -> usize {
        32
    }
    pub fn heads() -> usize {
        32
    }
    pub fn act() -> Activation {
        Activation::Silu
    }
    pub fn positions() -> usize {
        2048
    }
    pub fn init() -> f64 {
        0.02
    }
    pub fn eps() -> f64 {
        1e-6
    }
    pub fn bos() -> Option<u32> {
        Some(1)
    }
    pub fn eos() -> Option<u32> {
        Some(2)
    }
    pub fn rope_type() -> String {
        "default".into()
    }
}

impl LlamaConfig {
    /// The rotary base: `rope_parameters.rope_theta`, else transformers 4's top-level `rope_theta`,
    /// else 10000 (as transformers reads it).
    pub fn rope_theta(&self) -> f64 {
        match (&self.rope_parameters, self.extra.get("rope_theta").and_then(Value::as_f64)) {
            (Some(p), _) => p.rope_theta,
            (None, Some(theta)) => theta,
            (None, None) => 10000.0,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Refuses what Hearth cannot honour rather than approximating it.
    pub fn validate(&self) -> Result<()> {
        let refuse = |what: String| Err(Error::Config(what));
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return refuse(format!(
                "hidden_size ({}) is not divisible by num_attention_heads ({}); pick a head count that divides the width",
                self.hidden_size, self.num_attention_heads
            ));
        }
        let kv = self.kv_heads();
        if kv == 0 || self.num_attention_heads % kv != 0 {
            return refuse(format!(
                "num_key_value_heads ({kv}) must divide num_attention_heads ({}): each key/value head serves a group of query heads",
                self.num_attention_heads
            ));
        }
        if self.head_dim() == 0 || self.head_dim() % 2 != 0 {
            return refuse(format!("head_dim ({}) must be even: rotary embeddings rotate pairs", self.head_dim()));
        }
        if self.vocab_size == 0 || self.num_hidden_layers == 0 || self.max_position_embeddings == 0 {
            return refuse("vocab_size, num_hidden_layers and max_position_embeddings must be positive".into());
        }
        if let Some(scaling) = self.extra.get("rope_scaling").filter(|v| !v.is_null()) {
            return refuse(format!(
                "rope_scaling {scaling} is not supported: Hearth applies plain rotary embeddings; remove it (or train at the original context length)"
            ));
        }
        if let Some(p) = &self.rope_parameters
            && (p.rope_type != "default" || !p.extra.is_empty())
        {
            return refuse(format!(
                "rope_parameters {{rope_type: \"{}\"{}}} is not supported: Hearth applies plain rotary embeddings (rope_type \"default\")",
                p.rope_type,
                p.extra.keys().map(|k| format!(", {k}")).collect::<String>()
            ));
        }
        for key in ["sliding_window", "use_sliding_window"] {
            if self.extra.get(key).is_some_and(|v| !v.is_null() && v != &Value::Bool(false)) {
                return refuse(format!(
                    "{key} is not supported: Hearth's LLaMA attends to the whole causal context; remove it"
                ));
            }
        }
        if self.extra.get("pretraining_tp").and_then(Value::as_u64).is_some_and(|tp| tp != 1) {
            return refuse("pretraining_tp other than 1 is not supported (it splits matmuls for an old checkpoint's bit-exactness)".into());
        }
        Ok(())
    }

    /// A randomly initialised model, as HF's `LlamaPreTrainedModel._init_weights` does it: every
    /// linear and embedding weight `Normal(0, initializer_range)`, biases zero, norms one.
    pub fn init(&self, device: &Device) -> LlamaForCausalLm {
        let (d, std) = (self.hidden_size, self.initializer_range);
        let (heads, kv, dh) = (self.num_attention_heads, self.kv_heads(), self.head_dim());
        let linear = |i: usize, o: usize, bias: bool| Linear::new(i, o, bias, std, device);
        let layers = (0..self.num_hidden_layers)
            .map(|_| LlamaDecoderLayer {
                self_attn: LlamaAttention {
                    q_proj: linear(d, heads * dh, self.attention_bias),
                    k_proj: linear(d, kv * dh, self.attention_bias),
                    v_proj: linear(d, kv * dh, self.attention_bias),
                    o_proj: linear(heads * dh, d, self.attention_bias),
                    attention_dropout: dropout(self.attention_dropout),
                    num_heads: heads,
                    num_key_value_heads: kv,
                },
                mlp: LlamaMlp {
                    gate_proj: linear(d, self.intermediate_size, self.mlp_bias),
                    up_proj: linear(d, self.intermediate_size, self.mlp_bias),
                    down_proj: linear(self.intermediate_size, d, self.mlp_bias),
                    act: self.hidden_act,
                },
                input_layernorm: RmsNorm::new(d, self.rms_norm_eps, device),
                post_attention_layernorm: RmsNorm::new(d, self.rms_norm_eps, device),
            })
            .collect();
        LlamaForCausalLm {
            model: LlamaModel {
                embed_tokens: embedding_table(self.vocab_size, d, std, device),
                layers,
                norm: RmsNorm::new(d, self.rms_norm_eps, device),
                rotary: Rotary { head_dim: dh, theta: self.rope_theta() },
                max_positions: self.max_position_embeddings,
                fused_attention: true,
                gradient_checkpointing: false,
            },
            lm_head: (!self.tie_word_embeddings).then(|| linear(d, self.vocab_size, false)),
        }
    }
}

#[derive(Module, Debug)]
pub struct LlamaForCausalLm {
    pub model: LlamaModel,
    /// Only when `tie_word_embeddings` is false; otherwise the head is `model.embed_tokens`.
    pub lm_head: Option<Linear>,
}

#[derive(Module, Debug)]
pub struct LlamaModel {
    pub embed_tokens: Embedding,
    pub layers: Vec<LlamaDecoderLayer>,
    pub norm: RmsNorm,
    #[module(skip)]
    pub rotary: Rotary,
    /// `max_position_embeddings`: the context it was trained for (rotary embeddings have no table).
    #[module(skip)]
    pub max_positions: usize,
    /// Run attention through the fused kernels where they apply (see `nn::attention`).
    #[module(skip)]
    pub fused_attention: bool,
    /// Recompute each block's activations in backward (see `nn::recompute`); training only.
    #[module(skip)]
    pub gradient_checkpointing: bool,
}

#[derive(Module, Debug)]
pub struct LlamaDecoderLayer {
    pub self_attn: LlamaAttention,
    pub mlp: LlamaMlp,
    pub input_layernorm: RmsNorm,
    pub post_attention_layernorm: RmsNorm,
}

#[derive(Module, Debug)]
pub struct LlamaAttention {
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub attention_dropout: Dropout,
    pub num_heads: usize,
    pub num_key_value_heads: usize,
}

#[derive(Module, Debug)]
pub struct LlamaMlp {
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
    #[module(skip)]
    pub act: Activation,
}

/// Rotary position embeddings (HF's `rotate_half` form): each head's first and second halves are
/// the two coordinates of a pair rotated by `position · θ^(-2i/head_dim)`.
#[derive(Clone, Copy, Debug)]
pub struct Rotary {
    pub head_dim: usize,
    pub theta: f64,
}

impl Rotary {
    /// `cos, sin [t, head_dim]` for positions `0..t`, as HF computes them (frequencies in f32, the
    /// two halves repeated), on `device`.
    pub fn cos_sin(&self, t: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let half = self.head_dim / 2;
        // HF: 1 / base ** (arange(0, dim, 2) / dim), in f32.
        let inv_freq: Vec<f32> =
            (0..half).map(|i| 1.0 / (self.theta as f32).powf((2 * i) as f32 / self.head_dim as f32)).collect();
        let inv_freq = Tensor::<1>::from_data(TensorData::new(inv_freq, [half]), device);
        crate::readback::note_upload(half * 4);
        let positions = Tensor::<1, Int>::arange(0..t as i64, device).float(); // [t]
        let freqs = positions.unsqueeze_dim::<2>(1) * inv_freq.unsqueeze_dim::<2>(0); // [t, half]
        let emb = Tensor::cat(vec![freqs.clone(), freqs], 1); // [t, head_dim]
        (emb.clone().cos(), emb.sin())
    }

    /// `x [b, h, t, head_dim]` rotated: `x·cos + rotate_half(x)·sin`.
    pub fn apply(x: Tensor<4>, cos: &Tensor<2>, sin: &Tensor<2>) -> Tensor<4> {
        let dh = x.dims()[3];
        let (cos, sin) = (cos.clone().unsqueeze::<4>(), sin.clone().unsqueeze::<4>()); // [1, 1, t, dh]
        let (cos, sin) = (cos.cast(x.dtype()), sin.cast(x.dtype()));
        let x1 = x.clone().narrow(3, 0, dh / 2);
        let x2 = x.clone().narrow(3, dh / 2, dh / 2);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos + rotated * sin
    }
}

impl LlamaAttention {
    /// `[b, t, d]` -> `[b, t, d]`
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias, (cos, sin): (&Tensor<2>, &Tensor<2>)) -> Tensor<3> {
        let q = split_heads(self.q_proj.forward(x.clone()), self.num_heads); // [b, h, t, dh]
        let k = split_heads(self.k_proj.forward(x.clone()), self.num_key_value_heads); // [b, kv, t, dh]
        let v = split_heads(self.v_proj.forward(x), self.num_key_value_heads);
        let (q, k) = (Rotary::apply(q, cos, sin), Rotary::apply(k, cos, sin));
        let scale = (q.dims()[3] as f64).powf(-0.5);
        // k and v keep their kv heads: the kernels read each group's shared head, the composition
        // repeats it (HF's repeat_kv).
        let y = scaled_dot_product_attention(q, k, v, bias, Some(scale), &self.attention_dropout);
        self.o_proj.forward(merge_heads(y))
    }
}

impl LlamaMlp {
    /// `[b, t, d]` -> `[b, t, d]`: `down(act(gate(x)) · up(x))` (SwiGLU with silu).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = self.gate_proj.forward(x.clone());
        let up = self.up_proj.forward(x);
        self.down_proj.forward(crate::nn::activation::gated(self.act, gate, up))
    }
}

impl LlamaDecoderLayer {
    /// `[b, t, d]` -> `[b, t, d]`, pre-norm.
    pub fn forward(&self, x: Tensor<3>, bias: &AttentionBias, rope: (&Tensor<2>, &Tensor<2>)) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.input_layernorm.forward(x), bias, rope);
        x.clone() + self.mlp.forward(self.post_attention_layernorm.forward(x))
    }
}

impl LlamaModel {
    /// `input_ids [b, t]`, optional `attention_mask [b, t]` -> the final hidden states `[b, t, d]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        let device = input_ids.device();
        let t = input_ids.dims()[1];
        let (cos, sin) = self.rotary.cos_sin(t, &device);
        let mut x = self.embed_tokens.forward(input_ids);
        let mut bias = AttentionBias::default().with_causal().with_fused(self.fused_attention);
        if let Some(mask) = attention_mask {
            bias = bias.with_key_padding(mask);
        }
        for layer in &self.layers {
            x = recompute(self.gradient_checkpointing, layer, x, |l, x, r| {
                l.forward(x, &r.inside(bias.clone()), (&r.inside(cos.clone()), &r.inside(sin.clone())))
            });
        }
        self.norm.forward(x)
    }
}

impl LlamaForCausalLm {
    /// `input_ids [b, t]`, optional `attention_mask [b, t]` -> logits `[b, t, vocab]`.
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        let h = self.model.forward(input_ids, attention_mask);
        match &self.lm_head {
            Some(head) => head.forward(h),
            None => crate::nn::project(h, self.model.embed_tokens.weight.val().transpose(), None), // tied
        }
    }
}

/// HF's `LlamaForSequenceClassification`: a bias-free linear `score` on the last real token's state.
#[derive(Module, Debug)]
pub struct LlamaForSequenceClassification {
    pub model: LlamaModel,
    pub score: Linear,
}

impl LlamaForSequenceClassification {
    /// A classifier over `num_labels` classes on a pretrained decoder; `score` is new.
    pub fn new(model: LlamaModel, config: &LlamaConfig, num_labels: usize, device: &Device) -> Self {
        Self { model, score: Linear::new(config.hidden_size, num_labels, false, config.initializer_range, device) }
    }

    /// `input_ids, attention_mask [b, t]` (right padding) -> class logits `[b, num_labels]`, read at
    /// each row's last non-padding token.
    pub fn forward(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<2> {
        let [b, t] = input_ids.dims();
        let last = crate::nn::last_token_index(attention_mask.as_ref(), b, t, &input_ids.device());
        let h = self.model.forward(input_ids, attention_mask); // [b, t, d]
        self.score.forward(crate::nn::gather_rows(h, last))
    }
}

// The registry's view of the family (see `models/family.rs`).

impl FamilyConfig for LlamaConfig {
    fn model_type(&self) -> &'static str {
        Self::MODEL_TYPE
    }
    fn architecture(&self) -> &'static str {
        "LlamaForCausalLM"
    }
    fn base_prefix(&self) -> &'static str {
        "model."
    }
    fn tokenizer_kind(&self) -> TokenizerKind {
        TokenizerKind::Bpe
    }
    fn objectives(&self) -> &'static [Objective] {
        &[Objective::Causal]
    }
    fn validate(&self) -> Result<()> {
        LlamaConfig::validate(self)
    }
    /// What transformers 5 writes beyond the fields: `rope_parameters` in its form (transformers
    /// 4's top-level `rope_theta` folded in), `head_dim` and `num_key_value_heads` explicit.
    fn hf_keys(&self) -> (Value, Value) {
        let resolved = json!({
            "head_dim": self.head_dim(),
            "num_key_value_heads": self.kv_heads(),
            "rope_parameters": {"rope_theta": self.rope_theta(), "rope_type": "default"},
        });
        (resolved, json!({ "pretraining_tp": 1, "use_cache": true }))
    }
    fn legacy_keys(&self) -> &'static [&'static str] {
        &["rope_theta"]
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn set_vocab_size(&mut self, n: usize) {
        self.vocab_size = n;
    }
    fn max_positions(&self) -> Option<usize> {
        Some(self.max_position_embeddings)
    }
    fn set_dropout(&mut self, p: f64) {
        self.attention_dropout = p;
    }
    fn set_special_tokens(&mut self, tokenizer: &Tokenizer) {
        (self.bos_token_id, self.eos_token_id) = (tokenizer.eos_id(), tokenizer.eos_id());
        self.pad_token_id = tokenizer.pad_id();
    }
    fn memory_dims(&self) -> MemoryDims {
        MemoryDims {
            layers: self.num_hidden_layers,
            decoder_layers: 0,
            d: self.hidden_size.max(self.num_attention_heads * self.head_dim()),
            // gate and up: two [b, t, ffn] activations live at once.
            ffn: 2 * self.intermediate_size,
            heads: self.num_attention_heads,
            vocab: self.vocab_size,
            fusable: true,
            attn_dropout: self.attention_dropout,
        }
    }
}

impl Family for LlamaConfig {
    type Model = LlamaForCausalLm;
    const MODEL_TYPE: &'static str = "llama";
    const PRESETS: &'static [(&'static str, &'static str)] = &[
        (
            "llama-tiny",
            r#"{"vocab_size": 1024, "hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 4,
                "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128,
                "rms_norm_eps": 1e-5, "tie_word_embeddings": true,
                "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}}"#,
        ),
        // SmolLM2-135M's shape: 30 layers of width 576, 9 query heads over 3 key/value heads.
        (
            "llama-135m",
            r#"{"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 2048,
                "rms_norm_eps": 1e-5, "tie_word_embeddings": true,
                "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}"#,
        ),
    ];
    fn init(&self, device: &Device) -> LlamaForCausalLm {
        LlamaConfig::init(self, device)
    }
}

impl LanguageModel for LlamaForCausalLm {
    fn forward_inputs(&self, inputs: ModelInputs) -> Result<ModelOutput> {
        super::causal_forward(self, inputs)
    }
    fn causal_lm(&self) -> Option<&dyn CausalLm> {
        Some(self)
    }
    fn attention_stacks(&self) -> Vec<(Stack, usize)> {
        (0..self.model.layers.len()).map(|l| (Stack::SelfAttention, l)).collect()
    }
    fn fused_attention(&self) -> bool {
        self.model.fused_attention
    }
    fn set_fused_attention(&mut self, on: bool) {
        self.model.fused_attention = on;
    }
    fn set_gradient_checkpointing(&mut self, on: bool) {
        self.model.gradient_checkpointing = on;
    }
}

impl CausalLm for LlamaForCausalLm {
    fn causal_logits(&self, input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Tensor<3> {
        self.forward(input_ids, attention_mask)
    }
    fn context_length(&self) -> usize {
        self.model.max_positions
    }
}

impl SequenceHead for LlamaForSequenceClassification {
    type Config = LlamaConfig;
    fn from_pretrained(model: LlamaForCausalLm, config: &LlamaConfig, num_labels: usize, device: &Device) -> Self {
        Self::new(model.model, config, num_labels, device)
    }
    fn classify(&self, input_ids: Tensor<2, Int>, attention_mask: Tensor<2, Int>, _: Tensor<2, Int>) -> Tensor<2> {
        self.forward(input_ids, Some(attention_mask))
    }
    fn architecture(&self) -> &'static str {
        "LlamaForSequenceClassification"
    }
}
