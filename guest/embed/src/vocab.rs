//! The WordPiece vocabulary: `vocab.txt` as BERT ships it, one token per line, the line
//! number (from 0) being the token id. The host serves the file as the model's `vocab`
//! asset; it is parsed once per request.

use std::collections::HashMap;

/// Token id of `[PAD]`, used for padding (its attention mask is 0).
pub const PAD: &str = "[PAD]";
/// The token every unknown word becomes.
pub const UNK: &str = "[UNK]";
/// The token that starts every sequence.
pub const CLS: &str = "[CLS]";
/// The token that ends every sequence.
pub const SEP: &str = "[SEP]";
/// The masking token (written in text, it is kept as one token).
pub const MASK: &str = "[MASK]";

/// Token to id, plus the ids of the special tokens.
#[derive(Debug, Clone)]
pub struct Vocab {
    ids: HashMap<String, u32>,
    /// Id of `[PAD]`.
    pub pad: u32,
    /// Id of `[UNK]`.
    pub unk: u32,
    /// Id of `[CLS]`.
    pub cls: u32,
    /// Id of `[SEP]`.
    pub sep: u32,
}

impl Vocab {
    /// Parses `vocab.txt` bytes (UTF-8; `\n` or `\r\n` line ends; a final newline is
    /// optional). Fails on invalid UTF-8 or when a special token is missing.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|e| format!("the vocabulary is not UTF-8: {e}"))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let mut ids = HashMap::with_capacity(text.len() / 7);
        for (id, line) in text.split('\n').enumerate() {
            let token = line.strip_suffix('\r').unwrap_or(line);
            let id = u32::try_from(id).map_err(|_| "the vocabulary is too large".to_owned())?;
            // The first occurrence wins. The model's file has no duplicates
            // (models/build-minilm checks it against tokenizer.json).
            ids.entry(token.to_owned()).or_insert(id);
        }
        let special = |token: &str| {
            ids.get(token)
                .copied()
                .ok_or_else(|| format!("the vocabulary has no {token} token"))
        };
        Ok(Self {
            pad: special(PAD)?,
            unk: special(UNK)?,
            cls: special(CLS)?,
            sep: special(SEP)?,
            ids,
        })
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn get(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// How many tokens the vocabulary holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the vocabulary is empty (never, once parsed: the special tokens exist).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_ids() {
        let v = Vocab::parse(b"[PAD]\r\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo\n").expect("parses");
        assert_eq!((v.pad, v.unk, v.cls, v.sep), (0, 1, 2, 3));
        assert_eq!(v.get("hello"), Some(4));
        assert_eq!(v.get("##lo"), Some(5));
        assert_eq!(v.get("nope"), None);
        assert_eq!(v.len(), 6);
    }

    #[test]
    fn missing_special_tokens_and_bad_utf8_are_named() {
        assert!(
            Vocab::parse(b"[PAD]\n[UNK]\n[CLS]\n")
                .expect_err("no sep")
                .contains("[SEP]")
        );
        assert!(Vocab::parse(b"\xff").expect_err("utf8").contains("UTF-8"));
    }
}
