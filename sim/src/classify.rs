//! A strong-model stand-in for classification: given a labelled workload, the chat route
//! answers a prompt carrying one example's numbers with that example's label, right at a
//! configured accuracy, so a routing policy's cost and accuracy can be measured offline.
//!
//! Loading reads a JSONL workload (one `{"body": ..., "label": ...}` object a line, blank
//! lines skipped) and keys each example by the numbers in its `body`, depth-first in document
//! order, each rounded to an integer. Answering extracts the integers of the prompt text,
//! looks that sequence up and, for a known example, hashes (seed, key) into a uniform draw
//! `u` in [0, 1): the true label when `u < accuracy`, otherwise one of the other labels the
//! workload uses, also chosen by the hash. The same seed and prompt therefore always get the
//! same answer, and a wrong answer is always a plausible class.

mod key;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use key::Numbers;
pub use key::{body_key, prompt_key};

/// Accuracy of the stand-in when none is configured.
pub const DEFAULT_ACCURACY: f64 = 0.98;

/// The labelled workload and how often the stand-in answers it correctly.
#[derive(Clone)]
pub struct Classifier {
    /// Index into `labels` of each example's true label, by key.
    examples: HashMap<Vec<i64>, usize>,
    /// Every distinct label in the workload, sorted.
    labels: Vec<String>,
    accuracy: f64,
}

/// One answer to a known example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// The label answered.
    pub label: &'a str,
    /// Whether it is the example's true label.
    pub correct: bool,
}

/// Why a workload or an accuracy was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The workload file could not be read.
    #[error("reading workload {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// One line of the workload is not a usable example.
    #[error("workload {path} line {line}: {problem}")]
    Line {
        /// The file.
        path: String,
        /// The line, counting from 1 (blank lines included).
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The workload holds no examples.
    #[error("workload {path} has no examples")]
    Empty {
        /// The file.
        path: String,
    },
    /// The accuracy is not a fraction.
    #[error("classify accuracy must be between 0 and 1, got {0}")]
    Accuracy(f64),
}

impl Classifier {
    /// Loads a JSONL workload file, answering correctly with probability `accuracy`.
    pub fn load(path: &Path, accuracy: f64) -> Result<Self, ClassifyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ClassifyError::Read {
            path: name.clone(),
            source,
        })?;
        Self::from_jsonl(&name, &text, accuracy)
    }

    /// Parses a JSONL workload; `name` stands for the file in errors. Of examples with the
    /// same key the first is kept.
    pub fn from_jsonl(name: &str, text: &str, accuracy: f64) -> Result<Self, ClassifyError> {
        if !(0.0..=1.0).contains(&accuracy) {
            return Err(ClassifyError::Accuracy(accuracy));
        }
        let mut lines = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let example = parse_line(line).map_err(|problem| ClassifyError::Line {
                path: name.to_owned(),
                line: index + 1,
                problem,
            })?;
            lines.push(example);
        }
        if lines.is_empty() {
            return Err(ClassifyError::Empty {
                path: name.to_owned(),
            });
        }
        let labels: Vec<String> = lines
            .iter()
            .map(|(_, label)| label.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut examples = HashMap::with_capacity(lines.len());
        for (key, label) in lines {
            let (Ok(index) | Err(index)) = labels.binary_search(&label);
            examples.entry(key).or_insert(index);
        }
        Ok(Self {
            examples,
            labels,
            accuracy,
        })
    }

    /// The probability of answering a known example with its true label.
    pub fn accuracy(&self) -> f64 {
        self.accuracy
    }

    /// The distinct labels of the workload, sorted.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Number of distinct example keys.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no examples (never true of a loaded workload).
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// The true label of the example with this key.
    pub fn label_of(&self, key: &[i64]) -> Option<&str> {
        self.examples.get(key).map(|&i| self.labels[i].as_str())
    }

    /// The answer for the example with this key under `seed`; `None` for an unknown key.
    /// With a single label in the workload there is no wrong class, so it is always right.
    pub fn answer(&self, seed: u64, key: &[i64]) -> Option<Verdict<'_>> {
        let &truth = self.examples.get(key)?;
        let hash = key
            .iter()
            .fold(splitmix64(seed), |h, &n| splitmix64(h ^ n as u64));
        // The top 53 bits make a uniform f64 in [0, 1).
        let draw = (hash >> 11) as f64 / (1u64 << 53) as f64;
        let others = self.labels.len() - 1;
        if draw < self.accuracy || others == 0 {
            return Some(Verdict {
                label: &self.labels[truth],
                correct: true,
            });
        }
        // A second hash picks among the other labels, skipping the true one.
        let pick = (splitmix64(hash) % others as u64) as usize;
        let wrong = if pick >= truth { pick + 1 } else { pick };
        Some(Verdict {
            label: &self.labels[wrong],
            correct: false,
        })
    }

    /// The answer for a prompt whose integers ([`prompt_key`]) are a known example's key.
    pub fn answer_prompt(&self, seed: u64, prompt: &str) -> Option<Verdict<'_>> {
        self.answer(seed, &prompt_key(prompt))
    }
}

impl fmt::Debug for Classifier {
    /// Sizes only: a workload can hold thousands of examples.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("examples", &self.examples.len())
            .field("labels", &self.labels.len())
            .field("accuracy", &self.accuracy)
            .finish()
    }
}

/// One workload line's fields; others (`id`, `content_type`, `metadata`) are ignored.
#[derive(Deserialize)]
struct Line {
    body: Option<Numbers>,
    label: Option<Value>,
}

fn parse_line(line: &str) -> Result<(Vec<i64>, String), String> {
    let line: Line = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
    let label = match line.label {
        None | Some(Value::Null) => return Err("missing label".to_owned()),
        Some(Value::String(label)) => label,
        Some(Value::Number(label)) => label.to_string(),
        Some(_) => return Err("label must be a string or a number".to_owned()),
    };
    if label.trim().is_empty() {
        return Err("label is empty".to_owned());
    }
    let key = line.body.ok_or("missing body")?.0;
    if key.is_empty() {
        return Err("body has no numbers".to_owned());
    }
    Ok((key, label))
}

/// One step of splitmix64: a fixed, platform-independent 64-bit mix.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `count` distinct one-number examples labelled round-robin with `0`..`9`.
    fn workload(count: i64, accuracy: f64) -> Classifier {
        let text: String = (0..count)
            .map(|i| format!("{}\n", json!({"body": {"x": [i, 1000]}, "label": i % 10})))
            .collect();
        Classifier::from_jsonl("w.jsonl", &text, accuracy).expect("a valid workload")
    }

    fn correct_share(classifier: &Classifier, seed: u64, count: i64) -> f64 {
        let correct = (0..count)
            .filter(|&i| {
                classifier
                    .answer(seed, &[i, 1000])
                    .expect("a known key")
                    .correct
            })
            .count();
        correct as f64 / count as f64
    }

    #[test]
    fn body_numbers_are_keyed_in_document_order_and_rounded() {
        let line = r#"{"id":"d-1","body":{"z":[1,-2.6],"a":{"n":3.5,"s":"7","t":true},"m":null},"label":"x"}"#;
        let (key, label) = parse_line(line).expect("a valid line");
        assert_eq!(key, [1, -3, 4]);
        assert_eq!(label, "x");
    }

    #[test]
    fn numeric_labels_become_their_decimal_text() {
        let classifier = Classifier::from_jsonl(
            "w",
            "{\"body\":[1,2],\"label\":7}\n\n{\"body\":[3],\"label\":\"cat\"}\n",
            1.0,
        )
        .expect("a valid workload");
        assert_eq!(classifier.labels(), ["7", "cat"]);
        assert_eq!(classifier.label_of(&[1, 2]), Some("7"));
        assert_eq!(classifier.len(), 2);
    }

    #[test]
    fn first_label_wins_for_duplicate_keys() {
        let text = "{\"body\":[1],\"label\":\"a\"}\n{\"body\":[1.2],\"label\":\"b\"}\n";
        let classifier = Classifier::from_jsonl("w", text, 1.0).expect("a valid workload");
        assert_eq!(classifier.label_of(&[1]), Some("a"));
        assert_eq!(classifier.labels(), ["a", "b"]);
    }

    #[test]
    fn accuracy_one_is_always_right() {
        assert_eq!(correct_share(&workload(300, 1.0), 5, 300), 1.0);
    }

    #[test]
    fn accuracy_zero_is_never_right_and_still_a_known_label() {
        let classifier = workload(300, 0.0);
        for i in 0..300 {
            let verdict = classifier.answer(5, &[i, 1000]).expect("a known key");
            assert!(!verdict.correct);
            assert_ne!(Some(verdict.label), classifier.label_of(&[i, 1000]));
            assert!(classifier.labels().iter().any(|l| l == verdict.label));
        }
    }

    #[test]
    fn accuracy_is_the_share_of_right_answers() {
        let share = correct_share(&workload(1000, 0.8), 42, 1000);
        assert!((share - 0.8).abs() < 0.05, "correct share {share}");
    }

    #[test]
    fn answers_depend_only_on_seed_and_key() {
        let classifier = workload(200, 0.5);
        let answers = |seed| -> Vec<String> {
            (0..200)
                .map(|i| {
                    let verdict = classifier.answer(seed, &[i, 1000]).expect("a known key");
                    verdict.label.to_owned()
                })
                .collect()
        };
        assert_eq!(answers(1), answers(1));
        assert_ne!(answers(1), answers(2));
        assert_eq!(
            classifier.answer_prompt(1, "pixels: 17, 1000"),
            classifier.answer(1, &[17, 1000])
        );
        assert_eq!(classifier.answer_prompt(1, "pixels: 17"), None);
    }

    #[test]
    fn a_single_label_is_always_answered() {
        let classifier =
            Classifier::from_jsonl("w", r#"{"body":[1],"label":"only"}"#, 0.0).expect("valid");
        let verdict = classifier.answer(3, &[1]).expect("a known key");
        assert_eq!((verdict.label, verdict.correct), ("only", true));
    }

    #[test]
    fn loading_errors_name_the_file_and_line() {
        let error = |text: &str| {
            Classifier::from_jsonl("digits.jsonl", text, 0.9)
                .expect_err("refused")
                .to_string()
        };
        let good = r#"{"body":[1],"label":"a"}"#;
        assert_eq!(
            error(&format!("{good}\n\n{{\"body\":[2]}}\n")),
            "workload digits.jsonl line 3: missing label"
        );
        assert!(
            error(&format!("{good}\nnot json"))
                .starts_with("workload digits.jsonl line 2: bad JSON")
        );
        assert_eq!(
            error(r#"{"body":{"s":"x"},"label":"a"}"#),
            "workload digits.jsonl line 1: body has no numbers"
        );
        assert_eq!(
            error(r#"{"label":"a"}"#),
            "workload digits.jsonl line 1: missing body"
        );
        assert_eq!(
            error(r#"{"body":[1],"label":[1]}"#),
            "workload digits.jsonl line 1: label must be a string or a number"
        );
        assert_eq!(error("\n\n"), "workload digits.jsonl has no examples");
        assert!(matches!(
            Classifier::from_jsonl("w", good, 1.5),
            Err(ClassifyError::Accuracy(_))
        ));
        assert!(Classifier::from_jsonl("w", good, f64::NAN).is_err());
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = Classifier::load(Path::new("/nonexistent/w.jsonl"), 0.9).expect_err("refused");
        assert!(error.to_string().contains("/nonexistent/w.jsonl"));
    }
}
