//! BERT's text normalisation and pre-tokenisation, as Hugging Face `tokenizers`
//! implements them (BertNormalizer with clean_text, handle_chinese_chars, lowercase and
//! accent stripping; then BertPreTokenizer).
//!
//! Normalisation, character by character: drop NUL, U+FFFD and "other" characters (Cc,
//! Cf, Co; tab, newline and carriage return count as whitespace instead), turn every
//! whitespace character into a space, put spaces around CJK ideographs, decompose (NFD)
//! and drop non-spacing marks (Mn), and lower-case each character on its own (so a
//! final capital sigma becomes `σ`, not `ς`, as in `tokenizers`). Pre-tokenisation then
//! splits on whitespace and isolates every punctuation character (ASCII punctuation and
//! Unicode P*). The category tables come from the `unicode_categories` crate, the one
//! `tokenizers` uses, so characters the Unicode versions disagree on split the same way.

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// BERT's whitespace: tab, newline, carriage return, and Unicode White_Space.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Characters the cleaning step drops: Cc, Cf and Co, except tab, newline and CR.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// The CJK ideograph blocks BERT isolates as single-character words (not kana or
/// Hangul, which are written with spaces).
fn is_chinese_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// BERT's punctuation: ASCII punctuation (which includes `$`, `+`, `^`, ... that Unicode
/// files under symbols) and Unicode P*.
pub fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The normalised text: cleaned, CJK spaced, accents stripped, lower-cased.
pub fn normalize(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\0' || c == '\u{FFFD}' || is_control(c) {
            continue;
        }
        if is_whitespace(c) {
            cleaned.push(' ');
        } else if is_chinese_char(c) {
            cleaned.push(' ');
            cleaned.push(c);
            cleaned.push(' ');
        } else {
            cleaned.push(c);
        }
    }
    let mut out = String::with_capacity(cleaned.len());
    for c in cleaned.nfd().filter(|c| !c.is_mark_nonspacing()) {
        out.extend(c.to_lowercase());
    }
    out
}

/// Splits normalised text into words: whitespace separates and disappears, each
/// punctuation character becomes a word of its own.
pub fn pre_tokenize(normalized: &str) -> Vec<&str> {
    let mut words = Vec::new();
    for chunk in normalized.split(char::is_whitespace) {
        let mut start = 0;
        for (i, c) in chunk.char_indices() {
            if is_punctuation(c) {
                if start < i {
                    words.push(&chunk[start..i]);
                }
                let end = i + c.len_utf8();
                words.push(&chunk[i..end]);
                start = end;
            }
        }
        if start < chunk.len() {
            words.push(&chunk[start..]);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        pre_tokenize(&normalize(text))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn lower_cases_and_strips_accents() {
        assert_eq!(normalize("Crème Brûlée"), "creme brulee");
        assert_eq!(normalize("İstanbul"), "istanbul");
        // Per character, as tokenizers does: no final-sigma rule.
        assert_eq!(normalize("ΟΔΟΣ"), "οδοσ");
    }

    #[test]
    fn drops_controls_and_folds_whitespace() {
        assert_eq!(normalize("a\u{0}b\u{7}c\u{FFFD}d"), "abcd");
        assert_eq!(normalize("a\tb\nc\r\nd\u{A0}e\u{3000}f"), "a b c  d e f");
        assert_eq!(
            normalize("zero\u{200B}width soft\u{AD}hyphen"),
            "zerowidth softhyphen"
        );
    }

    #[test]
    fn spaces_cjk_ideographs_but_not_kana() {
        assert_eq!(words("東京はいい"), ["東", "京", "はいい"]);
    }

    #[test]
    fn isolates_ascii_and_unicode_punctuation() {
        assert_eq!(words("Hello, world!"), ["hello", ",", "world", "!"]);
        assert_eq!(
            words("$3.50 «quote»"),
            ["$", "3", ".", "50", "«", "quote", "»"]
        );
        assert_eq!(words("  a  b  "), ["a", "b"]);
        assert_eq!(words(""), Vec::<String>::new());
    }
}
