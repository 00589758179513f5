//! Both cores for one batch, end to end: the real binary serving `/v1/embeddings` with
//! all-MiniLM-L6-v2, once with the model's `split_batch = "B"` (as `hybrid.toml` ships it)
//! and once without. An idle box splits a batch across its free CPU slots
//! (`hybrid_local_model_split_runs_total` counts it); the vectors must be those of the
//! unsplit batch, in the same order, within [`TOLERANCE`]. Not always bit for bit: for
//! some sequence lengths tract computes a few elements of a smaller batch differently in
//! the last bits (measured over 93 batches of 2 to 32 reference sentences: 14 batches had
//! a vector that differed, by at most 1.7e-7 per element, cosine 1 - 5e-13; see
//! BENCHMARKS.md, "Both cores for batches").

use base64::Engine as _;
use hybrid_tests::edge_box::{EdgeBox, Scratch, agent, send};
use hybrid_tests::{component, minilm_model, test_data};
use serde_json::{Value, json};

const MODEL: &str = "minilm-l6-v2";
/// The largest difference allowed in any element of a unit-length vector, split vs not
/// (measured at most 1.7e-7; a vector from another row or another sentence differs by
/// orders of magnitude more).
const TOLERANCE: f32 = 1e-6;

/// Writes `hybrid.toml` for a box serving the embed pipeline with MiniLM, its batches
/// split along `split` when given.
fn write_config(dir: &std::path::Path, split: Option<&str>) {
    let m = minilm_model();
    let vocab = &m.assets["vocab"];
    let split = split.map_or_else(String::new, |s| format!("split_batch = \"{s}\"\n"));
    let config = format!(
        r#"
[[model]]
name = "{MODEL}"
version = "{version}"
path = "{path}"
sha256 = "{sha}"
input = [
    {{ name = "input_ids", type = "i64", shape = ["B", "S"] }},
    {{ name = "attention_mask", type = "i64", shape = ["B", "S"] }},
]
{split}
[model.assets.vocab]
path = "{vocab_path}"
sha256 = "{vocab_sha}"

[[pipeline]]
name = "embed"
component = "{embed}"
embedding_model = "{MODEL}"
deadline_ms = 60000
memory_mib = 256

[[openai_model]]
id = "{MODEL}"
kind = "embeddings"
pipeline = "embed"

[admin]
token_env = "HYBRID_ADMIN_TOKEN"

[deploy]
state_dir = "{state}"
"#,
        version = m.version,
        path = m.path.display(),
        sha = m.sha256,
        vocab_path = vocab.path.display(),
        vocab_sha = vocab.sha256,
        embed = component("embed").display(),
        state = dir.join("state").display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// The first `n` sentences of the committed reference set (lengths vary, so the batch is
/// padded and the mask matters).
fn sentences(n: usize) -> Vec<String> {
    let text = String::from_utf8(test_data("embeddings/sentences.txt")).expect("UTF-8");
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(lines.len() >= n, "{} sentences", lines.len());
    lines.into_iter().take(n).collect()
}

/// The vectors of `texts` as the box returns them (base64 of little-endian f32), in order.
fn embed(b: &EdgeBox, texts: &[String]) -> Vec<Vec<f32>> {
    let body = json!({ "model": MODEL, "input": texts, "encoding_format": "base64" });
    let answer = send(
        &agent(),
        "POST",
        &format!("{}/v1/embeddings", b.base),
        None,
        Some(("application/json", body.to_string().as_bytes())),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let v: Value = answer.json();
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .enumerate()
        .map(|(i, item)| {
            assert_eq!(item["index"], i);
            let text = item["embedding"].as_str().expect("base64 embedding");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64");
            assert_eq!(bytes.len(), 384 * 4);
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect()
}

/// `hybrid_local_model_split_runs_total` for MiniLM (0 when the box has not split yet).
fn split_runs(b: &EdgeBox) -> u64 {
    let metrics = send(&agent(), "GET", &format!("{}/metrics", b.base), None, None);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains("# TYPE hybrid_local_model_split_runs_total counter"),
        "the family is exported"
    );
    let sample = format!("hybrid_local_model_split_runs_total{{model=\"{MODEL}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&sample))
        .map_or(0, |n| n.parse().expect("a count"))
}

#[test]
fn a_split_batch_embeds_as_the_unsplit_batch_does() {
    let (split_dir, whole_dir) = (Scratch::new("split-on"), Scratch::new("split-off"));
    write_config(&split_dir.0, Some("B"));
    write_config(&whole_dir.0, None);
    let split_box = EdgeBox::start(&split_dir.0, &[]);
    let whole_box = EdgeBox::start(&whole_dir.0, &[]);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    // A full guest batch (32), an odd one (parts of unequal rows) and a single input.
    for n in [32, 5, 1] {
        let texts = sentences(n);
        let before = split_runs(&split_box);
        let split = embed(&split_box, &texts);
        let whole = embed(&whole_box, &texts);
        assert_eq!(split.len(), n);
        for (i, (a, b)) in split.iter().zip(&whole).enumerate() {
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst <= TOLERANCE,
                "vector {i} of a batch of {n}: split and unsplit differ by {worst:e}"
            );
        }
        // Each box is idle, so with two cores or more a batch of two rows or more has a
        // free slot to split onto; one row (or one core) never splits.
        let splits = split_runs(&split_box) - before;
        let expected = u64::from(n >= 2 && cores >= 2);
        assert_eq!(
            splits, expected,
            "split runs for a batch of {n} on {cores} cores"
        );
        assert_eq!(split_runs(&whole_box), 0, "no split_batch, no split");
    }
}
