//! WordPiece: one pre-tokenised word to vocabulary ids, greedy longest-match-first.
//!
//! From the start of the word, take the longest prefix in the vocabulary, then the
//! longest `##`-prefixed continuation from where it ended, and so on. A word that cannot
//! be covered this way, or that is longer than 100 characters, becomes a single `[UNK]`
//! (`tokenizers`' WordPiece with `max_input_chars_per_word = 100`).

use crate::vocab::Vocab;

/// Words longer than this many characters are `[UNK]` without trying.
pub const MAX_CHARS_PER_WORD: usize = 100;
/// Marks a piece that continues a word.
pub const CONTINUATION: &str = "##";

/// Appends the ids of `word`'s pieces to `out`. `scratch` is a reusable buffer.
pub fn tokenize_word(vocab: &Vocab, word: &str, scratch: &mut String, out: &mut Vec<u32>) {
    if word.chars().count() > MAX_CHARS_PER_WORD {
        out.push(vocab.unk);
        return;
    }
    let first = out.len();
    let mut start = 0;
    while start < word.len() {
        let mut end = word.len();
        let found = loop {
            if end <= start {
                break None;
            }
            scratch.clear();
            if start > 0 {
                scratch.push_str(CONTINUATION);
            }
            scratch.push_str(&word[start..end]);
            if let Some(id) = vocab.get(scratch) {
                break Some(id);
            }
            end -= word[..end].chars().next_back().map_or(1, char::len_utf8);
        };
        match found {
            Some(id) => {
                out.push(id);
                start = end;
            }
            None => {
                out.truncate(first);
                out.push(vocab.unk);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        Vocab::parse(
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\n##aff\n##able\nuna\n##ff\na\n##a\n##é\n".as_bytes(),
        )
        .expect("vocab")
    }

    fn ids(word: &str) -> Vec<u32> {
        let mut out = Vec::new();
        tokenize_word(&vocab(), word, &mut String::new(), &mut out);
        out
    }

    #[test]
    fn longest_match_first_with_continuations() {
        // "una" is longer than "un", so "unaffable" is una ##ff ##able... but ##able
        // must follow "##ff": una + ##ff + ##able.
        assert_eq!(ids("unaffable"), [7, 8, 6]);
        assert_eq!(ids("aé"), [9, 11]);
    }

    #[test]
    fn uncoverable_and_overlong_words_are_one_unk() {
        assert_eq!(ids("unx"), [1]);
        assert_eq!(ids(&"a".repeat(100)).len(), 100);
        assert_eq!(ids(&"a".repeat(101)), [1]);
    }
}
