//! `hearth attention`: what a model attends to for a text — one layer's and head's weights as a
//! heat map over the tokens (a text picture on stdout, an SVG with `--svg`), and every map as JSON
//! with `--json`. The weights come from `hearth_core::attention_maps`, as the page's do.

use std::path::PathBuf;

use hearth_core::Error;
use hearth_core::attention_maps::{AttentionMap, Stack, prompt_ids, text_attention};
use hearth_core::models::LanguageModel;
use hearth_core::readback::block_on;

use crate::storage::checkpoint::write_atomic;
use crate::storage::model::{ModelArgs, load};

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Which {
    Encoder,
    Decoder,
    Cross,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The text (BERT reads it between [CLS] and [SEP]; T5's decoder reads the model's own answer).
    text: String,
    #[arg(long, default_value_t = 0)]
    layer: usize,
    #[arg(long, default_value_t = 0)]
    head: usize,
    /// T5: the encoder's self-attention, the decoder's, or the decoder's over the encoder (cross).
    #[arg(long, value_enum, default_value = "encoder")]
    attention: Which,
    /// Draw the heat map as SVG here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Write every layer's and head's weights as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<(), Error> {
    let m = load(&args.model)?;
    m.check_input(prompt_ids(&m.model, &m.tokenizer, &args.text)?.len(), "attention")?;
    let text = block_on(text_attention(&m.model, &m.config, &m.tokenizer, &args.text, &m.device))?;
    let encoder_decoder = m.model.seq2seq_lm().is_some();
    let stack = match (encoder_decoder, args.attention) {
        (true, Which::Encoder) => Stack::Encoder,
        (true, Which::Decoder) => Stack::Decoder,
        (true, Which::Cross) => Stack::Cross,
        (false, Which::Encoder) => Stack::SelfAttention,
        (false, w) => {
            return Err(Error::Config(format!(
                "--attention {}: only an encoder-decoder (t5) has a decoder and cross attention; a {} has one self-attention",
                if w == Which::Decoder { "decoder" } else { "cross" },
                m.config.model_type()
            )));
        }
    };
    let layers: Vec<&AttentionMap> = text.maps.iter().filter(|a| a.stack == stack).collect();
    let map = layers.get(args.layer).copied().ok_or_else(|| {
        Error::Config(format!("--layer {}: the model has layers 0 to {}", args.layer, layers.len() - 1))
    })?;
    if args.head >= map.heads {
        return Err(Error::Config(format!("--head {}: the layer has heads 0 to {}", args.head, map.heads - 1)));
    }
    let decoder = text.decoder_tokens.clone().unwrap_or_default();
    let keys = if stack == Stack::Decoder { &decoder } else { &text.tokens };
    let queries = if matches!(stack, Stack::Decoder | Stack::Cross) { &decoder } else { &text.tokens };
    let weights = map.head(args.head);
    println!(
        "{} {} attention, layer {} head {} ({} × {} tokens; rows: queries, columns: keys)",
        m.config.model_type(),
        match stack {
            Stack::SelfAttention => "self",
            Stack::Encoder => "encoder",
            Stack::Decoder => "decoder",
            Stack::Cross => "cross",
        },
        args.layer,
        args.head,
        queries.len(),
        keys.len()
    );
    println!("{}", text_heat_map(queries, keys, weights));
    if let Some(path) = &args.svg {
        let title = format!("layer {} head {}", args.layer, args.head);
        write_atomic(path, svg_heat_map(queries, keys, weights, &title).as_bytes())?;
        println!("svg {}", path.display());
    }
    if let Some(path) = &args.json {
        write_atomic(path, serde_json::to_string(&text).expect("JSON serialises").as_bytes())?;
        println!("json {}", path.display());
    }
    Ok(())
}

/// Each query's row of weights in shades, and its most attended key.
fn text_heat_map(queries: &[String], keys: &[String], weights: &[f32]) -> String {
    const SHADES: [char; 5] = [' ', '░', '▒', '▓', '█'];
    let width = queries.iter().map(|q| q.chars().count()).max().unwrap_or(0).min(16);
    let mut out = String::new();
    for (q, row) in queries.iter().zip(weights.chunks(keys.len())) {
        let cells: String = row.iter().map(|&w| SHADES[((w * 4.0).round() as usize).min(4)]).collect();
        let (top, w) = row.iter().enumerate().fold((0, 0.0f32), |b, (i, &w)| if w > b.1 { (i, w) } else { b });
        out.push_str(&format!("{q:>width$} |{cells}| → {} {w:.2}\n", keys[top]));
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The `[queries, keys]` weights as a grid of cells (white 0 → dark blue 1), tokens on the axes.
fn svg_heat_map(queries: &[String], keys: &[String], weights: &[f32], title: &str) -> String {
    let cell = 22;
    let margin = 12 + 7 * queries.iter().chain(keys).map(|t| t.chars().count()).max().unwrap_or(1).min(20);
    let (w, h) = (margin + cell * keys.len() + 20, margin + cell * queries.len() + 40);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{}" y="16" font-size="14" text-anchor="middle">{}</text>"#,
        w / 2,
        escape(title)
    );
    for (i, q) in queries.iter().enumerate() {
        let y = margin + 20 + i * cell;
        s.push_str(&format!(r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#, margin - 4, y + 15, escape(q)));
        for (j, &v) in weights[i * keys.len()..(i + 1) * keys.len()].iter().enumerate() {
            let shade = (255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8;
            s.push_str(&format!(
                r#"<rect x="{}" y="{y}" width="{cell}" height="{cell}" fill="rgb({shade},{shade},255)"><title>{} → {}: {v:.3}</title></rect>"#,
                margin + j * cell,
                escape(q),
                escape(&keys[j])
            ));
        }
    }
    for (j, k) in keys.iter().enumerate() {
        let x = margin + j * cell + 15;
        s.push_str(&format!(
            r#"<text x="{x}" y="{}" transform="rotate(-60 {x} {})">{}</text>"#,
            margin + 14,
            margin + 14,
            escape(k)
        ));
    }
    s.push_str("</svg>");
    s
}
