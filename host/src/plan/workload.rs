//! A labelled workload: the JSONL file `hybrid plan` replays (format in
//! `workloads/README.md`). Every line is checked when the file is read, so a typo fails
//! before the first request rather than halfway through a long run.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::PlanError;

/// One request of the workload and its right answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The request's name, reported with failures.
    pub id: String,
    /// Sent as the request's content type.
    pub content_type: String,
    /// The request body.
    pub body: Vec<u8>,
    /// The right answer.
    pub label: String,
    /// Extra request parameters.
    pub metadata: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Option<String>,
    content_type: Option<String>,
    body: Value,
    label: Value,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

/// Reads a workload file; an error names the file and the line.
pub fn load(path: &Path) -> Result<Vec<Item>, PlanError> {
    let text = std::fs::read_to_string(path).map_err(|e| PlanError::Read {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let bad = |line: usize, message: String| PlanError::Workload {
        path: path.to_owned(),
        line,
        message,
    };
    let mut items = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let number = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| bad(number, e.to_string()))?;
        let label = match line.label {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            other => return Err(bad(number, format!("label must be a string, got {other}"))),
        };
        let body = match line.body {
            Value::String(s) => s.into_bytes(),
            other => other.to_string().into_bytes(),
        };
        let metadata = line
            .metadata
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k.to_ascii_lowercase(), text)
            })
            .collect();
        items.push(Item {
            id: line.id.unwrap_or_else(|| format!("line-{number}")),
            content_type: line
                .content_type
                .unwrap_or_else(|| "application/json".to_owned()),
            body,
            label,
            metadata,
        });
    }
    if items.is_empty() {
        return Err(PlanError::Workload {
            path: path.to_owned(),
            line: 0,
            message: "no requests in the file".to_owned(),
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("hybrid-workload-{}.jsonl", fastrand::u64(..)));
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn lines_become_requests_with_defaults() {
        let path = write(
            "{\"id\":\"a\",\"body\":{\"pixels\":[1,2]},\"label\":\"7\"}\n\n\
             {\"body\":\"raw text\",\"label\":3,\"content_type\":\"text/plain\",\"metadata\":{\"Private\":true}}\n",
        );
        let items = load(&path).expect("loads");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].id, "a");
        assert_eq!(items[0].body, br#"{"pixels":[1,2]}"#);
        assert_eq!(items[0].content_type, "application/json");
        assert_eq!(items[1].id, "line-3");
        assert_eq!(items[1].label, "3");
        assert_eq!(items[1].body, b"raw text");
        assert_eq!(items[1].metadata, vec![("private".into(), "true".into())]);
    }

    #[test]
    fn errors_name_the_line() {
        let path = write("{\"body\":1,\"label\":\"1\"}\n{\"body\":1}\n");
        let e = load(&path).expect_err("refused").to_string();
        assert!(e.contains(":2:") && e.contains("label"), "{e}");
        let path = write("\n");
        assert!(
            load(&path)
                .expect_err("refused")
                .to_string()
                .contains("no requests")
        );
    }
}
