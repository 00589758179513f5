//! The key of a classification example: the sequence of integers that identifies it, read
//! from a workload line's JSON `body` ([`body_key`], numbers rounded, document order) and
//! from a chat prompt's text ([`prompt_key`], digit runs), so that a prompt written from an
//! example's numbers finds that example.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The integers of a prompt, in order: each maximal run of ASCII digits is one number,
/// negative when a `-` immediately precedes it. Digits inside words count (`row1:` is 1),
/// a decimal point separates two numbers (`3.5` is 3, 5), and a run too long for `i64`
/// saturates.
pub fn prompt_key(text: &str) -> Vec<i64> {
    let bytes = text.as_bytes();
    let mut key = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let negative = start > 0 && bytes[start - 1] == b'-';
        // ASCII digits only, so the slice is on char boundaries.
        let digits = &text[start..i];
        let number = match digits.parse::<i64>() {
            Ok(n) if negative => -n,
            Ok(n) => n,
            Err(_) if negative => i64::MIN,
            Err(_) => i64::MAX,
        };
        key.push(number);
    }
    key
}

/// The numbers of a JSON value, depth-first, each rounded to the nearest integer.
/// Object entries are taken in the order `value` holds them, which for a
/// `serde_json::Value` is sorted by key; workload lines are keyed in document order.
pub fn body_key(value: &Value) -> Vec<i64> {
    Numbers::deserialize(value).map(|n| n.0).unwrap_or_default()
}

/// The numbers of any JSON value, collected while parsing so that object entries keep the
/// document's order (a `serde_json::Value` would sort them by key).
pub(crate) struct Numbers(pub(crate) Vec<i64>);

impl<'de> Deserialize<'de> for Numbers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut key = Vec::new();
        deserializer.deserialize_any(NumbersVisitor(&mut key))?;
        Ok(Numbers(key))
    }
}

/// Appends every number of one value to the key being built.
struct NumbersVisitor<'k>(&'k mut Vec<i64>);

impl<'de> de::DeserializeSeed<'de> for NumbersVisitor<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NumbersVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.0.push(n);
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.0.push(i64::try_from(n).unwrap_or(i64::MAX));
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        // `as` saturates, which is the rounding rule for out-of-range values.
        self.0.push(n.round() as i64);
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(NumbersVisitor(&mut *self.0))?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(NumbersVisitor(&mut *self.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_integers_include_signs_and_digits_in_words() {
        assert_eq!(
            prompt_key("row1: 0, 5 -3 x-7 3.7 007\nend"),
            [1, 0, 5, -3, -7, 3, 7, 7]
        );
        assert_eq!(prompt_key("no numbers - here"), Vec::<i64>::new());
        assert_eq!(prompt_key("99999999999999999999"), [i64::MAX]);
    }

    #[test]
    fn body_key_of_a_value_rounds_every_number() {
        assert_eq!(body_key(&json!([0.4, [2.5, "9"], {"k": -1}])), [0, 3, -1]);
    }

    #[test]
    fn parsed_bodies_keep_document_order() {
        let numbers: Numbers =
            serde_json::from_str(r#"{"z": [1, 2.5], "a": {"n": -0.6, "s": "7"}, "m": null}"#)
                .expect("JSON");
        assert_eq!(numbers.0, [1, 3, -1]);
    }
}
