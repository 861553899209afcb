//! Evaluation against references: the perplexity of HF's oracle models is exp(HF's loss); every
//! family's continuation scores equal its own loss on the same tokens; zero-shot and perplexity
//! numbers of a GPT-2 whose next-token distribution is known (the same at every position) equal the
//! values computed by hand.

use burn::tensor::{Device, TensorData};
use hearth_core::eval::{Nll, Request, Scorer, Task, causal_nll, causal_rows_nll, labelled_nll, pseudo_nll, run_task};
use hearth_core::hf::params::map_params;
use hearth_core::hf::weights::SafetensorsFile;
use hearth_core::models::{LanguageModel, Model, ModelConfig, ModelInputs};
use hearth_core::parity::read_inputs;
use hearth_core::tokenizer::Tokenizer;
use hearth_tests::oracle;

fn flex() -> Device {
    Device::flex()
}

fn load(family: &str) -> (ModelConfig, Model, Vec<u8>) {
    let (config, weights, io) = oracle(family);
    let config = ModelConfig::from_json(&config).unwrap();
    let model = Model::from_hf(&config, &weights, &flex()).unwrap();
    (config, model, io)
}

fn hf_loss(io: &[u8]) -> f64 {
    let file = SafetensorsFile::parse(io).unwrap();
    file.f32("loss").unwrap().try_to_vec::<f32>().unwrap()[0] as f64
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[test]
fn oracle_perplexity_is_exp_of_hf_loss() {
    for family in ["gpt2", "bert", "t5", "llama"] {
        let (config, model, io) = load(family);
        let inputs = read_inputs(&SafetensorsFile::parse(&io).unwrap(), &config, &flex()).unwrap();
        let reference = hf_loss(&io).exp();
        // A causal LM's labels are its inputs, shifted inside the loss.
        let s = labelled_nll(&model, inputs.clone(), model.causal_lm().is_some()).unwrap();
        let ppl = (s.nll / s.targets as f64).exp();
        eprintln!("{family}: perplexity {ppl:.6} vs exp(HF loss) {reference:.6} over {} targets", s.targets);
        assert!(close(ppl, reference, 1e-5), "{family}: {ppl} vs {reference}");
        if let Some(m) = model.causal_lm() {
            // The row scorer (what perplexity and zero-shot use) gives the same number.
            let ids = inputs.input_ids.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
            let t = ids.len() / 2;
            let rows: Vec<Vec<u32>> = ids.chunks(t).map(|r| r.iter().map(|&x| x as u32).collect()).collect();
            let nll = causal_rows_nll(m, &rows, &flex()).unwrap();
            assert!(close(nll.perplexity(), reference, 1e-5), "rows: {} vs {reference}", nll.perplexity());
        }
    }
}

/// Each scorer's log-likelihood of a continuation is minus the family's own summed loss on it.
#[test]
fn continuation_scores_match_each_family_loss() {
    let device = flex();
    let context = vec![5u32, 17, 42, 8];
    let continuation = vec![11u32, 3, 29];
    let req = [Request { context: context.clone(), continuation: continuation.clone() }];
    for family in ["gpt2", "t5", "llama"] {
        let (config, model, _) = load(family);
        let tokenizer = word_tokenizer();
        let start = config.family().decoder_start_token().unwrap_or(0);
        let scorer = match model.seq2seq_lm() {
            Some(m) => Scorer::Seq2Seq { model: m, eos: 1, pad: start },
            None => Scorer::new(&model, &tokenizer).unwrap(),
        };
        let got = scorer.loglikelihoods(&req, 4, &device).unwrap()[0].logprob;
        let ids = |rows: Vec<Vec<u32>>| {
            let rows: Vec<Vec<i64>> = rows.into_iter().map(|r| r.into_iter().map(i64::from).collect()).collect();
            hearth_core::objectives::batch::int_tensor(&rows, &device)
        };
        let expected = if model.seq2seq_lm().is_some() {
            let mut inputs = ModelInputs::new(ids(vec![context.iter().copied().chain([1]).collect()]));
            inputs.decoder_input_ids = Some(ids(vec![vec![start, 11, 3]]));
            inputs.labels = Some(ids(vec![continuation.clone()]));
            -labelled_nll(&model, inputs, false).unwrap().nll
        } else {
            // Labels -100 over the context: only the continuation is scored.
            let all: Vec<u32> = context.iter().chain(&continuation).copied().collect();
            let mut inputs = ModelInputs::new(ids(vec![all.clone()]));
            let labels: Vec<i64> =
                all.iter().enumerate().map(|(i, &t)| if i < context.len() { -100 } else { t as i64 }).collect();
            inputs.labels = Some(hearth_core::objectives::batch::int_tensor(&[labels], &device));
            -labelled_nll(&model, inputs, true).unwrap().nll
        };
        eprintln!("{family}: scorer {got:.6}, loss {expected:.6}");
        assert!(close(got, expected, 1e-5), "{family}: {got} vs {expected}");
    }
}

/// Pseudo-log-likelihood against a direct computation: mask one position, read its log-softmax.
#[test]
fn pseudo_perplexity_masks_each_token_once() {
    let device = flex();
    let (config, model, _) = load("bert");
    let Model::Bert(m) = &model else { unreachable!() };
    let m: &dyn hearth_core::models::MaskedLm = m;
    let v = config.vocab_size() as u32;
    let (cls, sep, mask) = (1, 2, v - 1);
    let tokens: Vec<u32> = vec![7, 19, 23, 4, 55, 31, 12];
    let got = pseudo_nll(m, &tokens, 30, (cls, sep, mask), 6, 3, &device).unwrap(); // chunks of 4 tokens
    let mut expected = 0.0;
    for chunk in tokens.chunks(4) {
        for j in 0..chunk.len() {
            let mut row: Vec<i64> =
                std::iter::once(cls).chain(chunk.iter().copied()).chain([sep]).map(i64::from).collect();
            row[1 + j] = mask as i64;
            let logits = m.masked_logits(hearth_core::objectives::batch::int_tensor(&[row], &device), None);
            let logp = burn::tensor::activation::log_softmax(logits, 2);
            let all = logp.into_data().try_to_vec::<f32>().unwrap();
            expected -= all[(1 + j) * v as usize + chunk[j] as usize] as f64;
        }
    }
    assert_eq!(got.tokens, 7);
    assert!(close(got.nll, expected, 1e-5), "{} vs {expected}", got.nll);
}

/// Tokens a, b, c, d and <|endoftext|>, one per whitespace-separated word.
fn word_tokenizer() -> Tokenizer {
    let json = r#"{"version":"1.0","truncation":null,"padding":null,
      "added_tokens":[{"id":4,"content":"<|endoftext|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
      "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
      "model":{"type":"WordLevel","vocab":{"a":0,"b":1,"c":2,"d":3,"<|endoftext|>":4},"unk_token":"<|endoftext|>"}}"#;
    Tokenizer::from_json(json.as_bytes()).unwrap()
}

/// The next-token distribution, whatever the context.
const P: [f64; 5] = [0.1, 0.2, 0.3, 0.35, 0.05];

/// A GPT-2 whose blocks are zero and whose final layer norm has zero scale, so every position's
/// hidden state is `ln_f.bias = ln P`, and with `wte = I` the logits are `ln P`.
fn known_gpt2() -> (ModelConfig, Model) {
    let config = ModelConfig::from_json(
        br#"{"model_type":"gpt2","vocab_size":5,"n_embd":5,"n_head":1,"n_layer":1,"n_positions":32}"#,
    )
    .unwrap();
    let Model::Gpt2(m) = config.init(&flex()) else { unreachable!() };
    let m = map_params(m, &mut |name, shape| {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = match name {
            "transformer.wte.weight" => (0..25).map(|i| (i % 6 == 0) as u8 as f32).collect(),
            "transformer.ln_f.bias" => P.iter().map(|p| p.ln() as f32).collect(),
            _ => vec![0.0; n],
        };
        Some(TensorData::new(values, shape.to_vec()))
    });
    (config, Model::Gpt2(m))
}

#[test]
fn a_model_with_known_probabilities_scores_as_computed_by_hand() {
    let device = flex();
    let (_, model) = known_gpt2();
    let tokenizer = word_tokenizer();
    let scorer = Scorer::new(&model, &tokenizer).unwrap();
    let ln = |i: usize| P[i].ln();

    // Log-likelihoods: [b d] after [a] = ln .2 + ln .35; greedy only when every token is d (argmax).
    let reqs = [
        Request { context: vec![0], continuation: vec![1, 3] },
        Request { context: vec![0, 2], continuation: vec![3, 3] },
        Request { context: vec![], continuation: vec![2] },
    ];
    let got = scorer.loglikelihoods(&reqs, 2, &device).unwrap();
    assert!((got[0].logprob - (ln(1) + ln(3))).abs() < 1e-5 && !got[0].greedy);
    assert!((got[1].logprob - 2.0 * ln(3)).abs() < 1e-5 && got[1].greedy);
    assert!((got[2].logprob - ln(2)).abs() < 1e-5 && !got[2].greedy);

    // Multiple choice: " b" = ln .2 = -1.609 (2 chars), " d d" = 2 ln .35 = -2.100 (4 chars),
    // " c" = ln .3 = -1.204 (2 chars). acc picks " c"; acc_norm picks " d d" (-0.525 per char).
    let mc =
        |gold: usize| format!("{{\"context\": \"a\", \"choices\": [\" b\", \" d d\", \" c\"], \"gold\": {gold}}}\n");
    let task = Task::from_jsonl("mc", &(mc(2) + &mc(1) + &mc(1) + &mc(0))).unwrap();
    let r = run_task(&scorer, &tokenizer, &task, 0, 8, &device).unwrap();
    assert_eq!((r.metrics["acc"], r.metrics["acc_norm"]), (0.25, 0.5), "{r:?}");
    assert!((r.metrics["chance"] - 1.0 / 3.0).abs() < 1e-12);
    let r = run_task(&scorer, &tokenizer, &task, 1, 8, &device).unwrap();
    assert_eq!((r.n, r.metrics["acc"], r.metrics["acc_norm"]), (1, 1.0, 0.0), "limit 1: {r:?}");

    // Cloze: " d" is the greedy answer, " c" is not; perplexity = exp(-(ln .35 + ln .3) / 2).
    let task = Task::from_jsonl(
        "cloze",
        "{\"context\": \"a b\", \"target\": \" d\"}\n{\"context\": \"a\", \"target\": \" c\"}\n{\"context\": \"b\", \"target\": \" d\"}",
    )
    .unwrap();
    let r = run_task(&scorer, &tokenizer, &task, 0, 8, &device).unwrap();
    assert!((r.metrics["acc"] - 2.0 / 3.0).abs() < 1e-12, "{r:?}");
    let ppl = (-(2.0 * ln(3) + ln(2)) / 3.0).exp();
    assert!((r.metrics["perplexity"] - ppl).abs() < 1e-4 * ppl, "{r:?}");
    assert!((r.metrics["majority_baseline"] - 2.0 / 3.0).abs() < 1e-12);

    // Sliding-window perplexity: every token but the first scored once, whatever the window.
    let m = model.causal_lm().unwrap();
    let tokens: Vec<u32> = (0..40).map(|i| [0, 1, 2, 3, 3, 4, 2][i % 7]).collect();
    let nll_by_hand: f64 = -tokens[1..].iter().map(|&t| ln(t as usize)).sum::<f64>();
    for (max_len, stride) in [(8, 4), (8, 8), (32, 1), (64, 64)] {
        let max_len = max_len.min(32);
        let n = causal_nll(m, &tokens, 100, max_len, stride, 3, &device).unwrap();
        assert_eq!(n.tokens, 39, "window {max_len} stride {stride}");
        assert!((n.nll - nll_by_hand).abs() < 1e-3, "window {max_len} stride {stride}: {} vs {nll_by_hand}", n.nll);
        let by_hand = Nll { nll: nll_by_hand, tokens: 39, bytes: 100 };
        assert!((n.bits_per_byte() - by_hand.bits_per_byte()).abs() < 1e-4);
    }
}
