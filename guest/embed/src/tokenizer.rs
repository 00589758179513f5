//! Text to model input: the whole BERT tokenisation of one input, as Hugging Face
//! `tokenizers` does it with all-MiniLM-L6-v2's `tokenizer.json`.
//!
//! Steps: split out the special tokens written literally in the text (`[CLS]`, `[SEP]`,
//! `[PAD]`, `[UNK]`, `[MASK]`, case-sensitive, leftmost first: `tokenizers` matches them
//! before normalising); normalise and pre-tokenise each stretch between them
//! ([`crate::normalize`]); WordPiece each word ([`crate::wordpiece`]); keep at most
//! [`MAX_TOKENS`] - 2 ids, and wrap them in `[CLS]` ... `[SEP]`.

use crate::normalize::{normalize, pre_tokenize};
use crate::vocab::{self, Vocab};
use crate::wordpiece::tokenize_word;

/// The longest sequence the model takes, `[CLS]` and `[SEP]` included
/// (sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2). Longer inputs are
/// truncated, never rejected.
pub const MAX_TOKENS: usize = 256;

/// Special tokens `tokenizers` recognises in the raw text.
const SPECIAL: [&str; 5] = [vocab::PAD, vocab::UNK, vocab::CLS, vocab::SEP, vocab::MASK];

/// A tokeniser over one vocabulary.
#[derive(Debug)]
pub struct Tokenizer<'v> {
    vocab: &'v Vocab,
}

impl<'v> Tokenizer<'v> {
    /// A tokeniser using `vocab`.
    pub fn new(vocab: &'v Vocab) -> Self {
        Self { vocab }
    }

    /// The token ids of `text`: `[CLS]`, at most [`MAX_TOKENS`] - 2 ids, `[SEP]`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.vocab.cls];
        let mut scratch = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (plain, special) = split_special(rest);
            for word in pre_tokenize(&normalize(plain)) {
                if ids.len() > MAX_TOKENS {
                    break;
                }
                tokenize_word(self.vocab, word, &mut scratch, &mut ids);
            }
            let Some((token, after)) = special else { break };
            ids.extend(self.vocab.get(token));
            rest = after;
            // Stopping once the budget is spent only saves work (a word's pieces are all
            // pushed at once); the truncation below is what defines the result.
            if ids.len() > MAX_TOKENS {
                break;
            }
        }
        ids.truncate(MAX_TOKENS - 1);
        ids.push(self.vocab.sep);
        ids
    }
}

/// The text before the first special token, and that token with the text after it.
fn split_special(text: &str) -> (&str, Option<(&'static str, &str)>) {
    let mut search = 0;
    while let Some(offset) = text[search..].find('[') {
        let at = search + offset;
        if let Some(token) = SPECIAL.iter().find(|t| text[at..].starts_with(**t)) {
            return (&text[..at], Some((token, &text[at + token.len()..])));
        }
        search = at + 1;
    }
    (text, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        Vocab::parse(
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n,\nworld\n!\ncafe\n[\n]\ncl\n##s\n"
                .as_bytes(),
        )
        .expect("vocab")
    }

    #[test]
    fn wraps_in_cls_and_sep() {
        let v = vocab();
        let t = Tokenizer::new(&v);
        assert_eq!(t.encode("Hello, world!"), [2, 5, 6, 7, 8, 3]);
        assert_eq!(t.encode(""), [2, 3]);
        assert_eq!(t.encode("Café zzz"), [2, 9, 1, 3]);
    }

    #[test]
    fn special_tokens_in_text_are_kept_whole_and_case_sensitive() {
        let v = vocab();
        let t = Tokenizer::new(&v);
        assert_eq!(t.encode("hello[MASK]world"), [2, 5, 4, 7, 3]);
        assert_eq!(t.encode("[SEP][cls]"), [2, 3, 10, 12, 13, 11, 3]);
        assert_eq!(t.encode("[[PAD]"), [2, 10, 0, 3]);
    }

    #[test]
    fn truncates_to_max_tokens() {
        let v = vocab();
        let t = Tokenizer::new(&v);
        let ids = t.encode(&"hello ".repeat(1000));
        assert_eq!(ids.len(), MAX_TOKENS);
        assert_eq!((ids[0], ids[254], ids[255]), (2, 5, 3));
        let ids = t.encode(&"[MASK]".repeat(1000));
        assert_eq!(ids.len(), MAX_TOKENS);
    }
}

/// The tokenizer against Hugging Face `tokenizers` on the committed test strings
/// (`tests/data/embeddings/tokens.json`, made by `models/build-minilm`) with the real
/// vocabulary (`models/minilm-vocab.txt`).
#[cfg(test)]
mod reference {
    use super::*;
    use std::path::PathBuf;

    fn repo_file(path: &str) -> Vec<u8> {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path);
        std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (run models/build-minilm)", file.display()))
    }

    #[test]
    fn token_ids_equal_hugging_face_tokenizers() {
        let vocab = Vocab::parse(&repo_file("models/minilm-vocab.txt")).expect("vocab");
        assert_eq!(vocab.len(), 30522);
        let data: serde_json::Value =
            serde_json::from_slice(&repo_file("tests/data/embeddings/tokens.json"))
                .expect("tokens.json");
        assert_eq!(data["max_tokens"], MAX_TOKENS);
        let cases = data["cases"].as_array().expect("cases");
        assert!(cases.len() >= 40, "{} cases", cases.len());
        let tokenizer = Tokenizer::new(&vocab);
        let mut failures = Vec::new();
        for case in cases {
            let text = case["text"].as_str().expect("text");
            let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).expect("ids");
            let got = tokenizer.encode(text);
            if got != expected {
                failures.push(format!(
                    "{text:?}:\n  got      {got:?}\n  expected {expected:?}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
