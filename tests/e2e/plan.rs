//! `hybrid plan` end to end: a small fixed slice of the held-out digits replayed through
//! all-local, all-remote and a cascade threshold sweep, against a running box and in
//! process, with the simulator's strong-model stand-in behind the `strong` endpoint. The
//! test sends the same requests itself and computes the table independently; the plot
//! must be a well-formed SVG with a point per strategy.

use std::process::Command;

use hybrid_sim::{Classifier, SimConfig, SimHandle};
use hybrid_tests::edge_box::{EdgeBox, Scratch, agent, send};
use hybrid_tests::{component, hybrid_bin, root};
use serde_json::Value;

/// Requests replayed: enough for the sweep to move, few enough to stay quick.
const REQUESTS: usize = 40;
const THRESHOLDS: [f64; 3] = [0.5, 0.9, 0.999];

fn strong_model(workload: &std::path::Path) -> SimHandle {
    let classifier = Classifier::load(workload, 0.9).expect("workload loads");
    hybrid_sim::spawn(SimConfig::without_auth().classifier(classifier)).expect("sim starts")
}

fn write_config(dir: &std::path::Path, sim: &SimHandle) {
    let config = format!(
        r#"
{digits}
[[endpoint]]
name = "strong"
kind = "chat"
base_url = "{sim}"
model = "llama3.3-70b-instruct"
price = {{ input_per_mtok = 0.65, output_per_mtok = 0.65, per_request = 0.0001 }}
timeout_ms = 5000
max_attempts = 1

[[pipeline]]
name = "cascade"
component = "{cascade}"
deadline_ms = 10000
memory_mib = 64
settings = {{ model = "digits-v1", endpoint = "strong" }}

[admin]
token_env = "HYBRID_ADMIN_TOKEN"

[deploy]
state_dir = "{state}"
"#,
        digits = hybrid_tests::digits_model_toml("1.0.0"),
        sim = sim.base_url(),
        cascade = component("cascade").display(),
        state = dir.join("state").display(),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

fn write_plan(dir: &std::path::Path) -> Vec<Value> {
    let all =
        std::fs::read_to_string(root().join("workloads/digits-heldout.jsonl")).expect("workload");
    let lines: Vec<&str> = all.lines().take(REQUESTS).collect();
    std::fs::write(dir.join("slice.jsonl"), lines.join("\n") + "\n").expect("slice");
    let sweep: Vec<String> = THRESHOLDS.iter().map(|t| t.to_string()).collect();
    std::fs::write(
        dir.join("plan.toml"),
        format!(
            "workload = \"slice.jsonl\"\n\
             [[strategy]]\nname = \"all-local\"\npipeline = \"cascade\"\nparams = {{ route = \"local\" }}\n\
             [[strategy]]\nname = \"all-remote\"\npipeline = \"cascade\"\nparams = {{ route = \"remote\" }}\n\
             [[strategy]]\nname = \"cascade\"\npipeline = \"cascade\"\nsweep = {{ param = \"threshold\", values = [{}] }}\n",
            sweep.join(", ")
        ),
    )
    .expect("plan");
    lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// What the test itself measures for one strategy: accuracy, local share, cost per 1k
/// requests and egress, from the envelopes of its own requests.
fn measure(b: &EdgeBox, items: &[Value], params: &str) -> (f64, f64, f64, u64) {
    let agent = agent();
    let (mut correct, mut local, mut cost, mut egress) = (0usize, 0usize, 0.0f64, 0u64);
    for item in items {
        let body = item["body"].to_string();
        let answer = send(
            &agent,
            "POST",
            &format!("{}/v1/pipelines/cascade?{params}", b.base),
            None,
            Some(("application/json", body.as_bytes())),
        );
        assert_eq!(answer.status, 200, "{:?}", answer.json());
        let envelope = answer.json();
        if envelope["body"]["label"] == item["label"] {
            correct += 1;
        }
        if envelope["routing"]["route"] == "local" {
            local += 1;
        }
        cost += envelope["cost_usd"].as_f64().expect("cost");
        egress += envelope["egress_bytes"].as_u64().expect("egress");
    }
    let n = items.len() as f64;
    (
        correct as f64 / n,
        local as f64 / n,
        cost / n * 1000.0,
        egress,
    )
}

fn run_plan(dir: &std::path::Path, out: &str, target: &[&str]) -> Value {
    let output = Command::new(hybrid_bin())
        .arg("plan")
        .arg(dir.join("plan.toml"))
        .args(target)
        .args(["--out", dir.join(out).to_str().expect("utf8")])
        .output()
        .expect("hybrid plan runs");
    assert!(
        output.status.success(),
        "hybrid plan failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| strategy | accuracy |"), "{stdout}");
    let report = std::fs::read(dir.join(out).join("report.json")).expect("report.json");
    serde_json::from_slice(&report).expect("report is JSON")
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["strategies"]
        .as_array()
        .expect("strategies")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no strategy {name} in {report}"))
}

#[test]
fn plan_reports_the_table_the_test_computes_and_a_valid_plot() {
    let scratch = Scratch::new("plan");
    let sim = strong_model(&root().join("workloads/digits-heldout.jsonl"));
    write_config(&scratch.0, &sim);
    let items = write_plan(&scratch.0);
    let b = EdgeBox::start(&scratch.0, &[]);

    let over_http = run_plan(&scratch.0, "http", &["--host", &b.base]);
    let config = scratch.0.join("hybrid.toml");
    let in_process = run_plan(
        &scratch.0,
        "local",
        &["--config", config.to_str().expect("utf8")],
    );

    let mut strategies = vec![
        ("all-local".to_owned(), "route=local".to_owned()),
        ("all-remote".to_owned(), "route=remote".to_owned()),
    ];
    for t in THRESHOLDS {
        strategies.push((format!("cascade threshold={t}"), format!("threshold={t}")));
    }
    let mut escalated = Vec::new();
    for (name, params) in &strategies {
        let (accuracy, local, usd_per_1k, egress) = measure(&b, &items, params);
        for report in [&over_http, &in_process] {
            let r = row(report, name);
            assert_eq!(r["requests"], REQUESTS, "{name}");
            assert_eq!(r["errors"], 0, "{name}: {r}");
            assert!(
                (r["accuracy"].as_f64().expect("accuracy") - accuracy).abs() < 1e-12,
                "{name}: {r} vs {accuracy}"
            );
            assert!(
                (r["local_share"].as_f64().expect("local") - local).abs() < 1e-12,
                "{name}: {r}"
            );
            let usd = r["usd_per_1k"].as_f64().expect("usd");
            assert!(
                (usd - usd_per_1k).abs() <= 1e-9 * usd_per_1k.max(1.0),
                "{name}: {usd} vs {usd_per_1k}"
            );
            assert_eq!(r["egress_bytes"], egress, "{name}");
        }
        if name.starts_with("cascade") {
            escalated.push(1.0 - local);
        }
    }
    // The ends of the table are what they say: all-local sends nothing, all-remote all.
    assert_eq!(row(&over_http, "all-local")["egress_bytes"], 0);
    assert_eq!(row(&over_http, "all-local")["local_share"], 1.0);
    assert_eq!(row(&over_http, "all-remote")["local_share"], 0.0);
    assert!(
        row(&over_http, "all-remote")["usd_per_1k"]
            .as_f64()
            .expect("usd")
            > 0.0
    );
    // Raising the threshold escalates at least as much.
    assert!(escalated.windows(2).all(|w| w[0] <= w[1]), "{escalated:?}");
    assert!(
        escalated[0] < escalated[escalated.len() - 1],
        "{escalated:?}"
    );

    let recommendation = &over_http["recommendation"];
    assert!(
        recommendation["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{recommendation}"
    );

    // The plot: well-formed SVG, one point per strategy, the names in its text.
    let svg = std::fs::read_to_string(scratch.0.join("http/frontier.svg")).expect("svg");
    let doc = roxmltree::Document::parse(&svg).expect("frontier.svg is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let points = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    assert!(
        points >= strategies.len(),
        "{points} circles for {} strategies",
        strategies.len()
    );
    let text: String = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(
        text.contains("all-local") && text.contains("all-remote"),
        "{text}"
    );
    let md = std::fs::read_to_string(scratch.0.join("http/report.md")).expect("report.md");
    assert!(
        md.contains("![cost/accuracy frontier](frontier.svg)"),
        "{md}"
    );
}
