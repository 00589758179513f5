//! The WordPiece vocabulary: `vocab.txt` as BERT ships it, one token per line, the line
//! number (from 0) being the token id. The host serves the file as the model's `vocab`
//! asset. The component's `initialize` (run once at deploy, WIT 0.2.2 `init`) parses the
//! default model's into [`preloaded`], which every request of a pre-initialised instance
//! starts with; otherwise (natively, or served with `preinit = false`) it is parsed once
//! per request.

use std::collections::HashMap;
use std::sync::OnceLock;

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

/// A vocabulary parsed by `initialize`, and the model it is the asset of.
#[derive(Debug)]
pub struct Preloaded {
    /// The model's name.
    pub model: String,
    /// The model's sha256 when it was parsed.
    pub sha256: String,
    /// The parsed vocabulary.
    pub vocab: Vocab,
}

impl Preloaded {
    /// The vocabulary, if it is the one of model `name` with file digest `sha256` (after
    /// a model swap it is not trusted: the request parses the asset itself).
    pub fn of(&self, name: &str, sha256: &str) -> Option<&Vocab> {
        (self.model == name && self.sha256 == sha256).then_some(&self.vocab)
    }
}

/// The vocabulary `initialize` parsed, kept in the snapshot the host serves from.
static PRELOADED: OnceLock<Preloaded> = OnceLock::new();

/// Keeps `vocab` as model `model`'s (sha256 `sha256`) vocabulary for every request of
/// this instance and the snapshots taken of it. Only the first call keeps anything.
pub fn preload(model: &str, sha256: &str, vocab: Vocab) {
    let _ = PRELOADED.set(Preloaded {
        model: model.to_owned(),
        sha256: sha256.to_owned(),
        vocab,
    });
}

/// The vocabulary `initialize` parsed, if it did and it is model `name`'s (sha256
/// `sha256`).
pub fn preloaded(name: &str, sha256: &str) -> Option<&'static Vocab> {
    PRELOADED.get()?.of(name, sha256)
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
    fn a_preloaded_vocabulary_serves_only_its_own_model_version() {
        let vocab = Vocab::parse(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n").expect("parses");
        let preloaded = Preloaded {
            model: "minilm".into(),
            sha256: "aa".into(),
            vocab,
        };
        assert_eq!(
            preloaded.of("minilm", "aa").and_then(|v| v.get("hello")),
            Some(4)
        );
        assert!(preloaded.of("minilm", "bb").is_none(), "a swapped model");
        assert!(preloaded.of("other", "aa").is_none());
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
