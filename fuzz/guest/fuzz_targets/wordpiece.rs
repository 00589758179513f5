//! The embed component's tokenizer (special tokens, BERT normalisation and
//! pre-tokenisation, WordPiece, truncation) on arbitrary text.
//!
//! The vocabulary is a small fixed one (`data/vocab.txt`: specials, punctuation, letters
//! and their `##` continuations, a few words and CJK characters), so the target runs with
//! no model files. Every encoding must be `[CLS]`, at most `MAX_TOKENS - 2` ids that the
//! vocabulary holds, `[SEP]`; pre-tokenised words are non-empty and whitespace-free.

#![no_main]

use std::sync::OnceLock;

use embed::normalize::{normalize, pre_tokenize};
use embed::tokenizer::{MAX_TOKENS, Tokenizer};
use embed::vocab::Vocab;
use libfuzzer_sys::fuzz_target;

const VOCAB: &str = include_str!("../data/vocab.txt");

fn vocab() -> &'static Vocab {
    static VOCAB_PARSED: OnceLock<Vocab> = OnceLock::new();
    VOCAB_PARSED
        .get_or_init(|| Vocab::parse(VOCAB.as_bytes()).expect("the fixed vocabulary parses"))
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let vocab = vocab();
    let ids = Tokenizer::new(vocab).encode(&text);
    assert!((2..=MAX_TOKENS).contains(&ids.len()), "{} ids", ids.len());
    assert_eq!(ids[0], vocab.cls);
    assert_eq!(ids[ids.len() - 1], vocab.sep);
    let lines = VOCAB.lines().count();
    assert!(ids.iter().all(|&id| (id as usize) < lines), "{ids:?}");

    let normalized = normalize(&text);
    for word in pre_tokenize(&normalized) {
        assert!(!word.is_empty());
        assert!(!word.contains(char::is_whitespace), "{word:?}");
    }
});
