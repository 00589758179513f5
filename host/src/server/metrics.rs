//! Prometheus metrics, written in the text exposition format (version 0.0.4) by hand:
//! a handful of counter and histogram families keyed by label values, so the output is
//! exactly what `promtool check metrics` and every scraper accept.
//!
//! Label values come from configuration (pipeline, endpoint and model names, routes a
//! guest reports, error case names), never from request payloads, so cardinality stays
//! bounded by the config.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets in seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One family of counters.
struct CounterFamily {
    name: &'static str,
    help: &'static str,
    values: Mutex<BTreeMap<Labels, f64>>,
}

impl CounterFamily {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn add(&self, labels: Labels, by: f64) {
        *self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(labels)
            .or_default() += by;
    }

    fn encode(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} counter",
            self.name, self.help, self.name
        );
        for (labels, value) in self.values.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                render(labels, None),
                number(*value)
            );
        }
    }
}

/// One family of latency histograms.
struct HistogramFamily {
    name: &'static str,
    help: &'static str,
    values: Mutex<BTreeMap<Labels, Histogram>>,
}

impl HistogramFamily {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn observe(&self, labels: Labels, value: Duration) {
        let seconds = value.as_secs_f64();
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let h = values.entry(labels).or_default();
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    fn encode(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} histogram",
            self.name, self.help, self.name
        );
        for (labels, h) in self.values.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let le = number(*bound);
                let _ = writeln!(
                    out,
                    "{}_bucket{} {}",
                    self.name,
                    render(labels, Some(&le)),
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "{}_bucket{} {}",
                self.name,
                render(labels, Some("+Inf")),
                h.count
            );
            let _ = writeln!(
                out,
                "{}_sum{} {}",
                self.name,
                render(labels, None),
                number(h.sum)
            );
            let _ = writeln!(
                out,
                "{}_count{} {}",
                self.name,
                render(labels, None),
                h.count
            );
        }
    }
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A gauge sample computed at scrape time.
pub struct GaugeSample {
    /// Metric name.
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Label pairs.
    pub labels: Vec<(&'static str, String)>,
    /// Value.
    pub value: f64,
}

/// One serverless call as the metrics see it.
pub struct RemoteCallSample<'a> {
    /// Endpoint name.
    pub endpoint: &'a str,
    /// HTTP attempts made.
    pub attempts: u32,
    /// Wall-clock time, retries included.
    pub elapsed: Duration,
    /// Bytes sent off the box.
    pub bytes_sent: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// The error case, when the call failed.
    pub error: Option<&'a str>,
}

/// Every metric the server exports.
pub struct Metrics {
    requests: CounterFamily,
    request_seconds: HistogramFamily,
    model_seconds: HistogramFamily,
    model_split_runs: CounterFamily,
    remote_attempts: CounterFamily,
    remote_errors: CounterFamily,
    remote_seconds: HistogramFamily,
    cost: CounterFamily,
    egress: CounterFamily,
    deploys: CounterFamily,
    canary_rollbacks: CounterFamily,
    quarantines: CounterFamily,
    limit_hits: CounterFamily,
    shadows: CounterFamily,
    shadow_cost: CounterFamily,
    streams: CounterFamily,
}

/// Shadow verdicts for one local model version of a pipeline (see [`crate::shadow`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShadowCounts {
    /// The local model.
    pub model: String,
    /// Its version.
    pub version: String,
    /// Shadows whose answer matched the local one.
    pub agree: u64,
    /// Shadows whose answer differed.
    pub disagree: u64,
    /// Shadows that failed, were answered locally, or had nothing to compare.
    pub error: u64,
    /// Shadows not sent because the box or the shadow slots were full.
    pub skipped: u64,
}

impl ShadowCounts {
    /// Agreeing share of the compared shadows (agree + disagree); `None` before any.
    pub fn agreement(&self) -> Option<f64> {
        let compared = self.agree + self.disagree;
        (compared > 0).then(|| self.agree as f64 / compared as f64)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metric families.
    pub fn new() -> Self {
        Self {
            requests: CounterFamily::new(
                "hybrid_requests_total",
                "Requests served, by pipeline, component version (first 12 hex digits of its sha256), route and outcome.",
            ),
            request_seconds: HistogramFamily::new(
                "hybrid_request_duration_seconds",
                "Request latency from admission to response, by route.",
            ),
            model_seconds: HistogramFamily::new(
                "hybrid_local_model_duration_seconds",
                "Time inside one local model run, by model.",
            ),
            model_split_runs: CounterFamily::new(
                "hybrid_local_model_split_runs_total",
                "Local model runs whose batch was split across CPU cores that were free at the time (models with split_batch set), by model.",
            ),
            remote_attempts: CounterFamily::new(
                "hybrid_remote_attempts_total",
                "HTTP attempts made to serverless endpoints, by endpoint.",
            ),
            remote_errors: CounterFamily::new(
                "hybrid_remote_errors_total",
                "Failed serverless calls, by endpoint and error case.",
            ),
            remote_seconds: HistogramFamily::new(
                "hybrid_remote_duration_seconds",
                "Serverless call latency including retries, by endpoint.",
            ),
            cost: CounterFamily::new(
                "hybrid_cost_usd_total",
                "Serverless spend in US dollars, by pipeline and endpoint.",
            ),
            egress: CounterFamily::new(
                "hybrid_egress_bytes_total",
                "Bytes sent off the box to serverless endpoints, by pipeline and endpoint.",
            ),
            deploys: CounterFamily::new(
                "hybrid_deploys_total",
                "Deploys and model rollbacks through the admin API, by target (pipeline or model name), kind (component, model, model_rollback) and outcome (ok or the refusal's code).",
            ),
            canary_rollbacks: CounterFamily::new(
                "hybrid_canary_rollbacks_total",
                "Canaries dropped automatically for failing more often than the stable version, by pipeline.",
            ),
            quarantines: CounterFamily::new(
                "hybrid_quarantines_total",
                "Times a pipeline was quarantined for consecutive failures of its component, by pipeline (see hybrid_pipeline_quarantined).",
            ),
            limit_hits: CounterFamily::new(
                "hybrid_limit_hits_total",
                "Requests ended for going past a per-request limit, by pipeline and limit (remote_calls, model_runs, response_bytes).",
            ),
            shadows: CounterFamily::new(
                "hybrid_shadow_total",
                "Shadow evaluations of local answers against serverless ones, by pipeline, the local model and version that answered, and outcome (agree, disagree, error, skipped).",
            ),
            shadow_cost: CounterFamily::new(
                "hybrid_shadow_cost_usd_total",
                "Serverless spend of shadow requests in US dollars, by pipeline (also part of hybrid_cost_usd_total).",
            ),
            streams: CounterFamily::new(
                "hybrid_streams_total",
                "Answers streamed to clients chunk by chunk, by pipeline and how they ended (completed; error: an SSE error event after the first chunk; client_gone: the client disconnected first).",
            ),
        }
    }

    /// Records one finished request served by `component` (a short digest, or `none`).
    pub fn request(
        &self,
        pipeline: &str,
        component: &str,
        route: &str,
        outcome: &str,
        elapsed: Duration,
    ) {
        self.requests.add(
            vec![
                ("pipeline", pipeline.into()),
                ("component", component.into()),
                ("route", route.into()),
                ("outcome", outcome.into()),
            ],
            1.0,
        );
        self.request_seconds
            .observe(vec![("route", route.into())], elapsed);
    }

    /// Records one deploy attempt.
    pub fn deploy(&self, target: &str, kind: &str, outcome: &str) {
        self.deploys.add(
            vec![
                ("target", target.into()),
                ("kind", kind.into()),
                ("outcome", outcome.into()),
            ],
            1.0,
        );
    }

    /// Records one pipeline entering quarantine.
    pub fn quarantined(&self, pipeline: &str) {
        self.quarantines
            .add(vec![("pipeline", pipeline.into())], 1.0);
    }

    /// Records one request ended by a per-request limit (`limit` is its config name).
    pub fn limit_hit(&self, pipeline: &str, limit: &str) {
        self.limit_hits.add(
            vec![("pipeline", pipeline.into()), ("limit", limit.into())],
            1.0,
        );
    }

    /// Records one streamed answer's end (`how`: `completed`, `error`, `client_gone`).
    pub fn stream_ended(&self, pipeline: &str, how: &str) {
        self.streams.add(
            vec![("pipeline", pipeline.into()), ("outcome", how.into())],
            1.0,
        );
    }

    /// Records one automatic canary rollback.
    pub fn canary_rolled_back(&self, pipeline: &str) {
        self.canary_rollbacks
            .add(vec![("pipeline", pipeline.into())], 1.0);
    }

    /// Records one shadow verdict (`outcome` is its name) and what the shadow cost, if
    /// one was served.
    pub fn shadow(
        &self,
        pipeline: &str,
        model: &str,
        version: &str,
        outcome: &str,
        cost_usd: Option<f64>,
    ) {
        self.shadows.add(
            vec![
                ("pipeline", pipeline.into()),
                ("model", model.into()),
                ("version", version.into()),
                ("outcome", outcome.into()),
            ],
            1.0,
        );
        if let Some(cost) = cost_usd {
            self.shadow_cost
                .add(vec![("pipeline", pipeline.into())], cost);
        }
    }

    /// Shadow verdicts of `pipeline` so far, per local model version.
    pub fn shadow_counts(&self, pipeline: &str) -> Vec<ShadowCounts> {
        let values = self
            .shadows
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut counts: BTreeMap<(String, String), ShadowCounts> = BTreeMap::new();
        for (labels, value) in values.iter() {
            let label = |name: &str| {
                labels
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map_or("", |(_, v)| v.as_str())
            };
            if label("pipeline") != pipeline {
                continue;
            }
            let (model, version) = (label("model"), label("version"));
            let entry = counts
                .entry((model.to_owned(), version.to_owned()))
                .or_insert_with(|| ShadowCounts {
                    model: model.to_owned(),
                    version: version.to_owned(),
                    ..ShadowCounts::default()
                });
            let n = *value as u64;
            match label("outcome") {
                "agree" => entry.agree += n,
                "disagree" => entry.disagree += n,
                "skipped" => entry.skipped += n,
                _ => entry.error += n,
            }
        }
        counts.into_values().collect()
    }

    /// Records one local model run, split into `parts` run side by side (1: not split).
    pub fn model_run(&self, model: &str, elapsed: Duration, parts: usize) {
        self.model_seconds
            .observe(vec![("model", model.into())], elapsed);
        if parts > 1 {
            self.model_split_runs
                .add(vec![("model", model.into())], 1.0);
        }
    }

    /// Records one serverless call (successful or not) made by `pipeline`.
    pub fn remote_call(&self, pipeline: &str, call: &RemoteCallSample<'_>) {
        let endpoint = call.endpoint;
        self.remote_attempts.add(
            vec![("endpoint", endpoint.into())],
            f64::from(call.attempts),
        );
        self.remote_seconds
            .observe(vec![("endpoint", endpoint.into())], call.elapsed);
        let both = || {
            vec![
                ("pipeline", pipeline.to_owned()),
                ("endpoint", endpoint.to_owned()),
            ]
        };
        self.egress.add(both(), call.bytes_sent as f64);
        self.cost.add(both(), call.cost_usd);
        if let Some(case) = call.error {
            self.remote_errors.add(
                vec![("endpoint", endpoint.into()), ("error", case.into())],
                1.0,
            );
        }
    }

    /// The exposition text, with `gauges` computed by the caller at scrape time.
    pub fn encode(&self, gauges: &[GaugeSample]) -> String {
        let mut out = String::new();
        self.requests.encode(&mut out);
        self.request_seconds.encode(&mut out);
        self.model_seconds.encode(&mut out);
        self.model_split_runs.encode(&mut out);
        self.remote_attempts.encode(&mut out);
        self.remote_errors.encode(&mut out);
        self.remote_seconds.encode(&mut out);
        self.cost.encode(&mut out);
        self.egress.encode(&mut out);
        self.streams.encode(&mut out);
        self.deploys.encode(&mut out);
        self.canary_rollbacks.encode(&mut out);
        self.quarantines.encode(&mut out);
        self.limit_hits.encode(&mut out);
        self.shadows.encode(&mut out);
        self.shadow_cost.encode(&mut out);
        let mut last = "";
        for g in gauges {
            if g.name != last {
                let _ = writeln!(out, "# HELP {} {}\n# TYPE {} gauge", g.name, g.help, g.name);
                last = g.name;
            }
            let _ = writeln!(
                out,
                "{}{} {}",
                g.name,
                render(&g.labels, None),
                number(g.value)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_split_model_runs_only() {
        let m = Metrics::new();
        m.model_run("minilm-l6-v2", Duration::from_millis(900), 2);
        m.model_run("minilm-l6-v2", Duration::from_millis(1800), 1);
        m.model_run("silero-vad", Duration::from_millis(1), 1);
        let text = m.encode(&[]);
        assert!(
            text.contains("hybrid_local_model_split_runs_total{model=\"minilm-l6-v2\"} 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("hybrid_local_model_split_runs_total{model=\"silero-vad\"}"),
            "{text}"
        );
        assert!(
            text.contains("hybrid_local_model_duration_seconds_count{model=\"minilm-l6-v2\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn encodes_counters_histograms_and_gauges() {
        let m = Metrics::new();
        m.request(
            "voice-gate",
            "0123456789ab",
            "local",
            "ok",
            Duration::from_millis(3),
        );
        m.request(
            "voice-gate",
            "0123456789ab",
            "local",
            "ok",
            Duration::from_millis(30),
        );
        m.remote_call(
            "voice-gate",
            &RemoteCallSample {
                endpoint: "transcribe",
                attempts: 2,
                elapsed: Duration::from_millis(200),
                bytes_sent: 1000,
                cost_usd: 0.0025,
                error: Some("timeout"),
            },
        );
        let text = m.encode(&[GaugeSample {
            name: "hybrid_in_flight",
            help: "Requests executing.",
            labels: vec![],
            value: 1.0,
        }]);
        assert!(
            text.contains(
                "hybrid_requests_total{pipeline=\"voice-gate\",component=\"0123456789ab\",route=\"local\",outcome=\"ok\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("hybrid_request_duration_seconds_bucket{route=\"local\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hybrid_request_duration_seconds_bucket{route=\"local\",le=\"+Inf\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hybrid_remote_attempts_total{endpoint=\"transcribe\"} 2"),
            "{text}"
        );
        assert!(
            text.contains(
                "hybrid_remote_errors_total{endpoint=\"transcribe\",error=\"timeout\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "hybrid_cost_usd_total{pipeline=\"voice-gate\",endpoint=\"transcribe\"} 0.0025"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE hybrid_in_flight gauge\nhybrid_in_flight 1"),
            "{text}"
        );
    }

    #[test]
    fn counts_shadow_verdicts_per_model_version() {
        let m = Metrics::new();
        for (version, outcome, cost) in [
            ("1.0.0", "agree", Some(0.25)),
            ("1.0.0", "agree", Some(0.25)),
            ("1.0.0", "disagree", Some(0.25)),
            ("1.0.1", "skipped", None),
            ("1.0.1", "error", Some(0.0)),
        ] {
            m.shadow("cascade", "digits-v1", version, outcome, cost);
        }
        m.shadow("other", "digits-v1", "1.0.0", "agree", Some(0.0));
        let text = m.encode(&[]);
        assert!(
            text.contains(
                "hybrid_shadow_total{pipeline=\"cascade\",model=\"digits-v1\",version=\"1.0.0\",outcome=\"agree\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("hybrid_shadow_cost_usd_total{pipeline=\"cascade\"} 0.75"),
            "{text}"
        );
        let counts = m.shadow_counts("cascade");
        assert_eq!(counts.len(), 2, "{counts:?}");
        assert_eq!(
            (counts[0].agree, counts[0].disagree, counts[0].agreement()),
            (2, 1, Some(2.0 / 3.0))
        );
        assert_eq!(
            (
                counts[1].version.as_str(),
                counts[1].skipped,
                counts[1].error
            ),
            ("1.0.1", 1, 1)
        );
        assert_eq!(counts[1].agreement(), None);
    }

    #[test]
    fn counts_limit_hits_per_pipeline_and_limit() {
        let m = Metrics::new();
        m.limit_hit("echo", "remote_calls");
        m.limit_hit("echo", "remote_calls");
        m.limit_hit("echo", "response_bytes");
        let text = m.encode(&[]);
        assert!(
            text.contains("hybrid_limit_hits_total{pipeline=\"echo\",limit=\"remote_calls\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hybrid_limit_hits_total{pipeline=\"echo\",limit=\"response_bytes\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
