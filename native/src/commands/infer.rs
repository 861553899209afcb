//! `generate`, `fill-mask`, `text2text`: a trained model (see `storage::model`) given a text.

use hearth_core::Error;
use hearth_core::generate::{Sampling, fill_mask, generate, max_new_tokens, text2text};
use hearth_core::models::LanguageModel;
use hearth_core::objectives::Rng;
use hearth_core::readback::block_on;
use rand::SeedableRng;

use crate::storage::model::{Loaded, ModelArgs, load};

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
    /// Sampling: keep the k most likely tokens; ≥ 0, 0 = all [default: 40].
    #[arg(long, allow_negative_numbers = true)]
    top_k: Option<i64>,
    /// Sampling: keep the most likely tokens up to this total probability; in (0, 1], 1 = all
    /// [default: 0.95].
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f64>,
    /// Sampling: the draws' seed [default: 0].
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run_generate(args: GenerateArgs) -> Result<(), Error> {
    // Settings first: a bad one is refused before the model loads.
    if args.temperature == 0.0 {
        let given =
            [("--top-k", args.top_k.is_some()), ("--top-p", args.top_p.is_some()), ("--seed", args.seed.is_some())];
        if let Some((flag, _)) = given.iter().find(|(_, on)| *on) {
            return Err(Error::Refused(format!(
                "{flag} does not apply: it shapes sampling, and --temperature 0 decodes greedily; drop it or give a temperature above 0"
            )));
        }
    }
    let sampling = Sampling::new(args.temperature, args.top_k.unwrap_or(40), args.top_p.unwrap_or(0.95))?;
    let max_new_tokens = max_new_tokens(args.max_new_tokens)?;
    let m = load(&args.model)?;
    let mut rng = Rng::seed_from_u64(args.seed.unwrap_or(0));
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
