//! Hugging Face tokenizer files load and encode as `tokenizers` (Python) does.

use hearth_core::tokenizer::Tokenizer;
use hearth_tests::fixture;

fn load(name: &str) -> Tokenizer {
    Tokenizer::from_json(&std::fs::read(fixture(&format!("tokenizers/{name}/tokenizer.json"))).unwrap()).unwrap()
}

#[test]
fn gpt2_byte_level_bpe() {
    let tok = load("gpt2");
    assert_eq!(tok.vocab_size(), 50257);
    assert_eq!(tok.encode("Hello world").unwrap(), vec![15496, 995]);
    assert_eq!(tok.eos_id(), Some(50256));
    let ids = tok.encode("It is a truth universally acknowledged — naïve café!").unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), "It is a truth universally acknowledged — naïve café!");
}

#[test]
fn bert_wordpiece_uncased() {
    let tok = load("bert-base-uncased");
    assert_eq!(tok.vocab_size(), 30522);
    assert_eq!(tok.encode("Hello world").unwrap(), vec![7592, 2088]);
    assert_eq!((tok.pad_id(), tok.cls_id(), tok.eos_id(), tok.mask_id()), (Some(0), Some(101), Some(102), Some(103)));
    let (ids, starts) = tok.encode_with_word_starts("unaffable").unwrap();
    assert!(ids.len() > 1, "split into word pieces: {ids:?}");
    assert_eq!(starts[0], true);
    assert!(starts[1..].iter().all(|s| !s), "continuations do not start words");
    assert!(tok.check_fits(1024).unwrap_err().to_string().contains("30522 tokens"));
}
