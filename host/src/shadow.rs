//! Shadow evaluation: the online half of choosing a routing threshold.
//!
//! `hybrid plan` picks a cascade's threshold offline, on a labelled workload. In
//! production there are no labels, but there is the serverless side: for a share of the
//! requests a pipeline answered locally, the host asks it too, after the client already
//! has its answer, and counts how often the two agree per local model version. A falling
//! agreement after a model swap, or a low one at the current threshold, tells the operator
//! to look again. The host does not know the guest's formats: it re-serves the same
//! request through the same pipeline with operator-chosen metadata (`shadow.params`, e.g.
//! `route = "remote"`) and compares one top-level field of the two JSON bodies
//! (`shadow.answer`). A [`Shadows`] takes these steps for every served request:
//! 1. [`Shadows::offer`]: only an answer whose route is exactly `local`, on a pipeline
//!    with `shadow` configured, and then only with probability `share`;
//! 2. read the original's answer field (missing or not JSON: counted `error`, nothing is
//!    sent);
//! 3. take one of [`MAX_IN_FLIGHT`] shadow slots and a free worker slot from the caller
//!    (a shadow never waits for either: when one is taken it is counted `skipped`), so
//!    shadows never pile up or queue ahead of clients;
//! 4. on a thread of its own, serve the shadow request (same body, content type and client
//!    metadata, `params` replacing same-named keys, id `<id>-shadow`) with the component
//!    version that served the original ([`Runtime::serve_uncounted`]: not counted in the
//!    version's stats, so it never judges a canary);
//! 5. judge it ([`judge`]): `agree` or `disagree`, or `error` when the shadow failed (a
//!    spent budget, an endpoint down) or was itself answered locally (serverless was not
//!    consulted);
//! 6. report the verdict to the observer under the original's model and model version,
//!    with what the shadow cost.
//!
//! Shadow calls go through the same [`crate::remote::Remote`] as every other request, so
//! they are charged to the same `[budget]`: once it is spent they fail (`error`) without
//! reaching the endpoint. Their spend also shows in the ordinary remote metrics; they are
//! not client requests, so `hybrid_requests_total` leaves them out. Only `hybrid serve`
//! shadows (not `hybrid run` or `hybrid plan`), and a shadow still running when the host
//! shuts down is abandoned uncounted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use serde_json::Value;

use crate::config::ShadowConfig;
use crate::runtime::{Outcome, PipelineError, Request, Runtime};

/// Shadow requests in flight at once, across pipelines; beyond it they are skipped.
pub const MAX_IN_FLIGHT: usize = 4;

/// What one shadow evaluation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Both answer fields are equal.
    Agree,
    /// Both answered, differently.
    Disagree,
    /// No comparison: the shadow failed or was answered locally, or an answer field was
    /// missing.
    Error,
    /// Not sent: too many shadows in flight, or no free worker.
    Skipped,
}

impl Verdict {
    /// `agree`, `disagree`, `error` or `skipped`, as the metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Agree => "agree",
            Self::Disagree => "disagree",
            Self::Error => "error",
            Self::Skipped => "skipped",
        }
    }
}

/// One finished (or skipped) shadow evaluation, as the observer is told of it.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The local model that answered the original request (its routing record).
    pub model: &'a str,
    /// That model's version.
    pub version: &'a str,
    /// What the comparison found.
    pub verdict: Verdict,
    /// Serverless spend of the shadow request in US dollars; `None` when none was served.
    pub cost_usd: Option<f64>,
}

/// Told of every shadow verdict (the server counts them).
pub type ShadowObserver = Arc<dyn Fn(&Report<'_>) + Send + Sync>;

/// What [`Shadows::offer`] did with a served request.
#[derive(Debug)]
pub enum Offer {
    /// Not shadowed: no `shadow` on the pipeline, not answered locally, or not drawn.
    NotShadowed,
    /// Judged at once, without serving a shadow (`error` or `skipped`).
    Judged(Verdict),
    /// The shadow request is being served on this thread.
    Started(JoinHandle<()>),
}

/// Shadow requests of every pipeline, bounded by [`MAX_IN_FLIGHT`].
pub struct Shadows {
    runtime: Arc<Runtime>,
    in_flight: Arc<AtomicUsize>,
    observer: ShadowObserver,
}

/// A shadow slot, given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(in_flight: &Arc<AtomicUsize>) -> Option<Self> {
        in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_IN_FLIGHT).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(in_flight.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shadows {
    /// Shadows served by `runtime`, each verdict told to `observer`.
    pub fn new(runtime: Arc<Runtime>, observer: ShadowObserver) -> Self {
        Self {
            runtime,
            in_flight: Arc::new(AtomicUsize::new(0)),
            observer,
        }
    }

    /// Shadow requests being served now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Considers `request`, just answered by `pipeline` with `outcome`, for a shadow (the
    /// steps of the module doc) and returns at once. `worker` is asked for a worker slot
    /// only when a shadow is about to start; it must not wait, and `None` skips the
    /// shadow. The slot is held until the shadow is judged.
    pub fn offer<P: Send + 'static>(
        &self,
        pipeline: &str,
        request: &Request,
        outcome: &Outcome,
        worker: impl FnOnce() -> Option<P>,
    ) -> Offer {
        let routing = &outcome.response.routing;
        if routing.route != "local" {
            return Offer::NotShadowed;
        }
        let Some(config) = self
            .runtime
            .pipeline(pipeline)
            .ok()
            .and_then(|p| p.config.shadow.clone())
        else {
            return Offer::NotShadowed;
        };
        // `f64()` is in [0, 1): a share of 1 shadows every local answer.
        if fastrand::f64() >= config.share {
            return Offer::NotShadowed;
        }
        let report = |verdict, cost_usd| {
            (self.observer)(&Report {
                pipeline,
                model: &routing.model,
                version: &routing.model_version,
                verdict,
                cost_usd,
            });
        };
        let Some(original) = answer_of(&outcome.response.body, &config.answer) else {
            tracing::debug!(
                request_id = %request.id,
                pipeline,
                field = %config.answer,
                "shadow not sent: the local answer has no such JSON field"
            );
            report(Verdict::Error, None);
            return Offer::Judged(Verdict::Error);
        };
        let Some((slot, permit)) = Slot::take(&self.in_flight).and_then(|s| Some((s, worker()?)))
        else {
            tracing::debug!(request_id = %request.id, pipeline, "shadow skipped: no free slot");
            report(Verdict::Skipped, None);
            return Offer::Judged(Verdict::Skipped);
        };
        let job = Job {
            runtime: self.runtime.clone(),
            observer: self.observer.clone(),
            pipeline: pipeline.to_owned(),
            model: routing.model.clone(),
            version: routing.model_version.clone(),
            component: outcome.component.digest.clone(),
            request: shadow_request(request, &config),
            answer: config.answer,
            original,
        };
        let spawned = std::thread::Builder::new()
            .name("hybrid-shadow".into())
            .spawn(move || {
                let _held = (slot, permit);
                job.run();
            });
        match spawned {
            Ok(handle) => Offer::Started(handle),
            Err(e) => {
                tracing::warn!(pipeline, error = %e, "shadow not sent: cannot start a thread");
                report(Verdict::Error, None);
                Offer::Judged(Verdict::Error)
            }
        }
    }
}

/// One shadow request and what it is compared with.
struct Job {
    runtime: Arc<Runtime>,
    observer: ShadowObserver,
    pipeline: String,
    model: String,
    version: String,
    component: String,
    request: Request,
    answer: String,
    original: Value,
}

impl Job {
    fn run(self) {
        let served = self
            .runtime
            .serve_uncounted(&self.pipeline, &self.component, &self.request);
        let cost_usd = served
            .result
            .as_ref()
            .map_or(0.0, crate::envelope::cost_usd);
        let verdict = judge(&self.original, &served.result, &self.answer);
        match &served.result {
            Err(error) => tracing::debug!(
                request_id = %self.request.id,
                pipeline = %self.pipeline,
                error = %error,
                "shadow failed"
            ),
            Ok(o) => tracing::debug!(
                request_id = %self.request.id,
                pipeline = %self.pipeline,
                route = %o.response.routing.route,
                verdict = verdict.name(),
                cost_usd,
                "shadow judged"
            ),
        }
        (self.observer)(&Report {
            pipeline: &self.pipeline,
            model: &self.model,
            version: &self.version,
            verdict,
            cost_usd: Some(cost_usd),
        });
    }
}

/// The shadow of `request`: the same body and content type, the client's metadata with
/// `config.params` replacing same-named keys, and the id `<id>-shadow`.
pub fn shadow_request(request: &Request, config: &ShadowConfig) -> Request {
    Request {
        id: format!("{}-shadow", request.id),
        content_type: request.content_type.clone(),
        body: request.body.clone(),
        metadata: config.metadata(&request.metadata),
    }
}

/// The top-level `field` of a JSON object body, if the body is one and has it.
pub fn answer_of(body: &[u8], field: &str) -> Option<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => map.remove(field),
        _ => None,
    }
}

/// Compares the original's answer with the shadow's: `error` when the shadow failed, was
/// answered locally (so serverless was not consulted) or has no such field.
pub fn judge(original: &Value, shadow: &Result<Outcome, PipelineError>, field: &str) -> Verdict {
    let Ok(shadow) = shadow else {
        return Verdict::Error;
    };
    if shadow.response.routing.route == "local" {
        return Verdict::Error;
    }
    match answer_of(&shadow.response.body, field) {
        Some(answer) if &answer == original => Verdict::Agree,
        Some(_) => Verdict::Disagree,
        None => Verdict::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Response, Role, Routing, ServedBy, Timings};
    use serde_json::json;

    fn outcome(route: &str, body: &str) -> Outcome {
        Outcome {
            response: Response {
                content_type: "application/json".into(),
                body: body.as_bytes().to_vec(),
                routing: Routing {
                    route: route.into(),
                    reason: String::new(),
                    model: "digits-v1".into(),
                    model_version: "1.0.0".into(),
                },
            },
            model_runs: Vec::new(),
            remote_calls: Vec::new(),
            remote_failures: Vec::new(),
            timings: Timings::default(),
            component: ServedBy {
                digest: "0".repeat(64),
                role: Role::Stable,
            },
            streamed: false,
        }
    }

    #[test]
    fn answers_agree_disagree_or_cannot_be_compared() {
        let original = json!("7");
        let judged = |route: &str, body: &str| judge(&original, &Ok(outcome(route, body)), "label");
        assert_eq!(judged("remote:strong", r#"{"label": "7"}"#), Verdict::Agree);
        assert_eq!(
            judged("remote:strong", r#"{"label": "1"}"#),
            Verdict::Disagree
        );
        // Types count: "7" and 7 are different answers.
        assert_eq!(
            judged("remote:strong", r#"{"label": 7}"#),
            Verdict::Disagree
        );
        assert_eq!(judged("remote:strong", r#"{"digit": "7"}"#), Verdict::Error);
        assert_eq!(judged("remote:strong", "not json"), Verdict::Error);
        assert_eq!(judged("remote:strong", r#"["7"]"#), Verdict::Error);
        // Answered locally after all (e.g. the escalation failed): serverless said nothing.
        assert_eq!(judged("local", r#"{"label": "7"}"#), Verdict::Error);
        let failed = Err(PipelineError::UnknownPipeline {
            name: "cascade".into(),
            known: Vec::new(),
        });
        assert_eq!(judge(&original, &failed, "label"), Verdict::Error);
    }

    #[test]
    fn the_shadow_request_has_its_own_id_and_the_params() {
        let config: ShadowConfig =
            toml::from_str("share = 1.0\nparams = { route = \"remote\" }").expect("parses");
        let request = Request {
            id: "req-1".into(),
            content_type: "application/json".into(),
            body: b"{\"pixels\": []}".to_vec(),
            metadata: vec![
                ("route".into(), "local".into()),
                ("threshold".into(), "0.9".into()),
            ],
        };
        let shadow = shadow_request(&request, &config);
        assert_eq!(shadow.id, "req-1-shadow");
        assert_eq!(
            (shadow.content_type.as_str(), shadow.body.as_slice()),
            ("application/json", request.body.as_slice())
        );
        assert_eq!(
            shadow.metadata,
            vec![
                ("threshold".to_owned(), "0.9".to_owned()),
                ("route".to_owned(), "remote".to_owned()),
            ]
        );
    }

    #[test]
    fn slots_are_bounded_and_given_back() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let held: Vec<Slot> = (0..MAX_IN_FLIGHT)
            .map(|_| Slot::take(&in_flight).expect("free"))
            .collect();
        assert!(Slot::take(&in_flight).is_none(), "all taken");
        drop(held);
        assert_eq!(in_flight.load(Ordering::Acquire), 0);
        assert!(Slot::take(&in_flight).is_some());
    }
}
