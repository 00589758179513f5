//! Quarantine of a pipeline whose component keeps failing: outlier ejection for
//! sandboxed guests, so a hostile or broken component stops being instantiated while the
//! other pipelines serve on.
//!
//! Each pipeline has one [`Quarantine`] (its rule is the pipeline's `quarantine` config).
//! A request goes through it in three steps:
//! 1. [`Quarantine::admit`]: a healthy pipeline lets the request run. A quarantined one
//!    refuses it at once (the caller answers 503 with `Retry-After`) until its cool-down
//!    ends; then it lets exactly one request through as a probe and refuses the others
//!    while the probe runs.
//! 2. The request runs; its result is judged a [`Verdict`]: the component failed (a trap,
//!    the deadline, the memory cap, another per-request limit), it answered (a response,
//!    or an error the guest returned itself: it ran to completion), or neither (it never
//!    ran, e.g. no instance slot was free).
//! 3. [`Pass::finish`] counts the verdict. Consecutive failures reaching `after`
//!    quarantine the pipeline; an answer resets the count. A probe that answers makes the
//!    pipeline healthy again; a probe that fails starts the cool-down over.
//!
//! Failures are counted per pipeline, across its stable and canary versions. Any change
//! of the pipeline's live versions (deploy, promote, rollback) clears the quarantine and
//! the count ([`Quarantine::clear`]), since the failures were another version's. Each
//! phase change starts a new *generation*: the verdicts of requests admitted before it
//! (still running on the old version, or admitted before the quarantine began) are
//! ignored, so only the probe decides how a quarantine ends.
//!
//! The clock is passed in (`now`), so the state machine is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::PipelineError;
use crate::config::QuarantineConfig;

/// What one request's result says about the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The component misbehaved; the message says how.
    Failed(String),
    /// The component ran to completion: a response, or an error it returned itself.
    Answered,
    /// The component did not run (no instance slot, unknown pipeline, quarantined):
    /// nothing is learnt about it.
    Neither,
}

impl Verdict {
    /// Judges a request's result. Only errors meaning the component misbehaved count as
    /// failures; guest errors (`bad-request`, `unsupported`, `upstream`, `internal`) are
    /// answers, and refusals before the component ran say nothing.
    pub fn of<T>(result: &Result<T, PipelineError>) -> Self {
        let Err(error) = result else {
            return Self::Answered;
        };
        match error {
            PipelineError::Trapped { .. }
            | PipelineError::DeadlineExceeded { .. }
            | PipelineError::MemoryExceeded { .. }
            | PipelineError::LimitExceeded { .. } => Self::Failed(error.to_string()),
            // A command's non-zero exit is its way of answering with an error.
            PipelineError::Rejected { .. } | PipelineError::Exited { .. } => Self::Answered,
            PipelineError::UnknownPipeline { .. }
            | PipelineError::Overloaded { .. }
            | PipelineError::Quarantined { .. } => Self::Neither,
        }
    }
}

/// Where a pipeline is in its quarantine cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Requests run.
    Healthy,
    /// Requests are refused until the cool-down ends.
    Quarantined,
    /// One probe request is running; the others are refused.
    Probing,
}

impl Phase {
    /// `healthy`, `quarantined` or `probing`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Quarantined => "quarantined",
            Self::Probing => "probing",
        }
    }
}

/// A request refused because the pipeline is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The last failure's message.
    pub reason: String,
    /// Consecutive failures so far.
    pub failures: u32,
    /// Time until a probe may be let through (zero while a probe runs or is due).
    pub retry_after: Duration,
    /// A probe is running now.
    pub probing: bool,
}

impl Refusal {
    /// `retry_after` in whole seconds, rounded up, at least 1 (for `Retry-After`).
    pub fn retry_after_s(&self) -> u64 {
        whole_seconds(self.retry_after)
    }

    /// The error a refused request gets.
    pub fn into_error(self, pipeline: &str) -> PipelineError {
        PipelineError::Quarantined {
            pipeline: pipeline.to_owned(),
            retry_after_s: self.retry_after_s(),
            reason: self.reason,
            failures: self.failures,
            probing: self.probing,
        }
    }
}

/// A phase change a finished request caused, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The pipeline was healthy and is quarantined now.
    Entered {
        /// Consecutive failures.
        failures: u32,
        /// The last failure's message.
        reason: String,
    },
    /// The probe failed: the cool-down starts over.
    ProbeFailed {
        /// Consecutive failures, the probe's included.
        failures: u32,
        /// The probe's failure.
        reason: String,
    },
    /// The probe answered: the pipeline is healthy again.
    Recovered {
        /// How long it was quarantined.
        after: Duration,
    },
}

impl Transition {
    /// Logs the change: a warning when the pipeline is (still) quarantined, info when it
    /// leaves.
    pub fn log(&self, pipeline: &str) {
        match self {
            Self::Entered { failures, reason } => tracing::warn!(
                pipeline,
                failures,
                %reason,
                "pipeline quarantined: its requests are refused until the cool-down ends"
            ),
            Self::ProbeFailed { failures, reason } => tracing::warn!(
                pipeline,
                failures,
                %reason,
                "quarantine probe failed: the cool-down starts over"
            ),
            Self::Recovered { after } => tracing::info!(
                pipeline,
                quarantined_ms = after.as_secs_f64() * 1e3,
                "pipeline left quarantine: its probe request succeeded"
            ),
        }
    }
}

/// A pipeline's quarantine as the admin API and `/readyz` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineStatus {
    /// The phase.
    pub phase: Phase,
    /// Consecutive failures so far (0 after an answer).
    pub consecutive_failures: u32,
    /// The last failure's message, while failures are being counted.
    pub reason: Option<String>,
    /// How long ago it was quarantined, unless healthy.
    pub quarantined_for: Option<Duration>,
    /// What a refused request is told to wait, in seconds, unless healthy.
    pub retry_after_s: Option<u64>,
    /// Times the pipeline was quarantined since it was loaded.
    pub times: u64,
}

impl QuarantineStatus {
    /// Whether requests are refused (quarantined or probing).
    pub fn is_quarantined(&self) -> bool {
        self.phase != Phase::Healthy
    }

    /// When it was quarantined, by the wall clock, unless healthy.
    pub fn since(&self) -> Option<std::time::SystemTime> {
        let ago = self.quarantined_for?;
        std::time::SystemTime::now().checked_sub(ago)
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Healthy,
    Quarantined { since: Instant, probe_at: Instant },
    Probing { since: Instant },
}

#[derive(Debug)]
struct Inner {
    state: State,
    failures: u32,
    last_failure: Option<String>,
    generation: u64,
    times: u64,
}

/// One pipeline's quarantine state machine.
#[derive(Debug)]
pub struct Quarantine {
    rule: QuarantineConfig,
    inner: Mutex<Inner>,
}

/// Leave to run one request, from [`Quarantine::admit`]. Finish it with the request's
/// verdict; dropped unfinished (a panicking worker) it counts as [`Verdict::Neither`], so
/// a probe never holds the pipeline quarantined for ever.
#[must_use = "finish the pass with the request's verdict"]
pub struct Pass<'a> {
    quarantine: &'a Quarantine,
    generation: u64,
    probe: bool,
    settled: bool,
}

impl Pass<'_> {
    /// Whether this request is the probe of a quarantined pipeline.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Counts the request's verdict at `now`; returns the phase change it caused.
    pub fn finish(mut self, verdict: Verdict, now: Instant) -> Option<Transition> {
        self.settled = true;
        self.quarantine
            .settle(self.generation, self.probe, verdict, now)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.quarantine.settle(
                self.generation,
                self.probe,
                Verdict::Neither,
                Instant::now(),
            );
        }
    }
}

impl Quarantine {
    /// A healthy pipeline under `rule`.
    pub fn new(rule: QuarantineConfig) -> Self {
        Self {
            rule,
            inner: Mutex::new(Inner {
                state: State::Healthy,
                failures: 0,
                last_failure: None,
                generation: 0,
                times: 0,
            }),
        }
    }

    /// The rule.
    pub fn rule(&self) -> &QuarantineConfig {
        &self.rule
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a request run at `now`, as a probe when the cool-down has ended, or refuses
    /// it.
    pub fn admit(&self, now: Instant) -> Result<Pass<'_>, Refusal> {
        let mut inner = self.lock();
        let probe = match inner.state {
            State::Healthy => false,
            State::Quarantined { since, probe_at } if now >= probe_at => {
                inner.state = State::Probing { since };
                inner.generation += 1;
                true
            }
            State::Quarantined { probe_at, .. } => {
                return Err(refused(
                    &inner,
                    probe_at.saturating_duration_since(now),
                    false,
                ));
            }
            State::Probing { .. } => return Err(refused(&inner, Duration::ZERO, true)),
        };
        Ok(Pass {
            quarantine: self,
            generation: inner.generation,
            probe,
            settled: false,
        })
    }

    /// The refusal for a request that must not be a probe (a shadow the host made up),
    /// `None` when the pipeline is healthy.
    pub fn refusal(&self, now: Instant) -> Option<Refusal> {
        refusal(&self.lock(), now)
    }

    /// Makes the pipeline healthy with no failures counted (its live versions changed);
    /// returns whether it was quarantined.
    pub fn clear(&self) -> bool {
        let mut inner = self.lock();
        let was = !matches!(inner.state, State::Healthy);
        inner.state = State::Healthy;
        inner.failures = 0;
        inner.last_failure = None;
        inner.generation += 1;
        was
    }

    /// The state at `now`.
    pub fn status(&self, now: Instant) -> QuarantineStatus {
        let inner = self.lock();
        let (phase, since) = match inner.state {
            State::Healthy => (Phase::Healthy, None),
            State::Quarantined { since, .. } => (Phase::Quarantined, Some(since)),
            State::Probing { since } => (Phase::Probing, Some(since)),
        };
        QuarantineStatus {
            phase,
            consecutive_failures: inner.failures,
            reason: (inner.failures > 0)
                .then(|| inner.last_failure.clone())
                .flatten(),
            quarantined_for: since.map(|s| now.saturating_duration_since(s)),
            retry_after_s: refusal(&inner, now).map(|r| r.retry_after_s()),
            times: inner.times,
        }
    }

    fn settle(
        &self,
        generation: u64,
        probe: bool,
        verdict: Verdict,
        now: Instant,
    ) -> Option<Transition> {
        let mut inner = self.lock();
        if generation != inner.generation {
            return None; // admitted before the last phase change: no say in this one
        }
        match (inner.state, verdict) {
            (State::Probing { since }, Verdict::Answered) if probe => {
                inner.state = State::Healthy;
                inner.failures = 0;
                inner.last_failure = None;
                inner.generation += 1;
                Some(Transition::Recovered {
                    after: now.saturating_duration_since(since),
                })
            }
            (State::Probing { since }, Verdict::Failed(reason)) if probe => {
                inner.failures = inner.failures.saturating_add(1);
                inner.last_failure = Some(reason.clone());
                inner.state = State::Quarantined {
                    since,
                    probe_at: self.cool_down_from(now),
                };
                inner.generation += 1;
                Some(Transition::ProbeFailed {
                    failures: inner.failures,
                    reason,
                })
            }
            (State::Probing { since }, Verdict::Neither) if probe => {
                // The probe never ran: the next request probes instead.
                inner.state = State::Quarantined {
                    since,
                    probe_at: now,
                };
                inner.generation += 1;
                None
            }
            (State::Healthy, Verdict::Answered) => {
                inner.failures = 0;
                inner.last_failure = None;
                None
            }
            (State::Healthy, Verdict::Failed(reason)) => {
                inner.failures = inner.failures.saturating_add(1);
                inner.last_failure = Some(reason.clone());
                if !self.rule.enabled() || inner.failures < self.rule.after {
                    return None;
                }
                inner.state = State::Quarantined {
                    since: now,
                    probe_at: self.cool_down_from(now),
                };
                inner.generation += 1;
                inner.times += 1;
                Some(Transition::Entered {
                    failures: inner.failures,
                    reason,
                })
            }
            _ => None,
        }
    }

    fn cool_down_from(&self, now: Instant) -> Instant {
        // A cool-down too long for the clock is as good as a day: deploys still clear it.
        now.checked_add(self.rule.cool_down())
            .unwrap_or_else(|| now + Duration::from_secs(86_400))
    }
}

/// The refusal for a request at `now`, `None` when healthy.
fn refusal(inner: &Inner, now: Instant) -> Option<Refusal> {
    match inner.state {
        State::Healthy => None,
        State::Quarantined { probe_at, .. } => Some(refused(
            inner,
            probe_at.saturating_duration_since(now),
            false,
        )),
        State::Probing { .. } => Some(refused(inner, Duration::ZERO, true)),
    }
}

fn refused(inner: &Inner, retry_after: Duration, probing: bool) -> Refusal {
    Refusal {
        reason: inner.last_failure.clone().unwrap_or_default(),
        failures: inner.failures,
        retry_after,
        probing,
    }
}

fn whole_seconds(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_millis(30_000);

    fn quarantine(after: u32) -> Quarantine {
        Quarantine::new(QuarantineConfig {
            after,
            cool_down_ms: COOL_DOWN.as_millis() as u64,
        })
    }

    fn trap(n: u32) -> Verdict {
        Verdict::Failed(format!("crashed {n}"))
    }

    /// Runs one request at `now` with `verdict`; the transition, or the refusal.
    fn run(q: &Quarantine, now: Instant, verdict: Verdict) -> Result<Option<Transition>, Refusal> {
        Ok(q.admit(now)?.finish(verdict, now))
    }

    /// A quarantine with `after` = 3 entered at `t0`.
    fn quarantined(t0: Instant) -> Quarantine {
        let q = quarantine(3);
        for n in 1..=3 {
            run(&q, t0, trap(n)).expect("admitted");
        }
        assert_eq!(q.status(t0).phase, Phase::Quarantined);
        q
    }

    #[test]
    fn consecutive_failures_quarantine_and_an_answer_resets_the_count() {
        let (q, t0) = (quarantine(3), Instant::now());
        assert_eq!(run(&q, t0, trap(1)), Ok(None));
        assert_eq!(run(&q, t0, trap(2)), Ok(None));
        assert_eq!(run(&q, t0, Verdict::Answered), Ok(None));
        assert_eq!(q.status(t0).consecutive_failures, 0);
        assert_eq!(q.status(t0).reason, None);
        // Requests that never ran neither count nor reset.
        assert_eq!(run(&q, t0, trap(3)), Ok(None));
        assert_eq!(run(&q, t0, Verdict::Neither), Ok(None));
        assert_eq!(run(&q, t0, trap(4)), Ok(None));
        assert_eq!(q.status(t0).reason.as_deref(), Some("crashed 4"));
        assert_eq!(
            run(&q, t0, trap(5)),
            Ok(Some(Transition::Entered {
                failures: 3,
                reason: "crashed 5".into()
            }))
        );
        let status = q.status(t0);
        assert_eq!(
            (status.phase, status.times, status.retry_after_s),
            (Phase::Quarantined, 1, Some(30))
        );
    }

    #[test]
    fn refuses_during_the_cool_down_naming_the_last_failure() {
        let t0 = Instant::now();
        let q = quarantined(t0);
        let refused = q
            .admit(t0 + Duration::from_millis(10_500))
            .err()
            .expect("refused");
        assert_eq!(refused.reason, "crashed 3");
        assert_eq!((refused.failures, refused.probing), (3, false));
        assert_eq!(refused.retry_after, Duration::from_millis(19_500));
        assert_eq!(refused.retry_after_s(), 20);
        let almost = q.admit(t0 + COOL_DOWN - Duration::from_millis(1)).err();
        assert_eq!(almost.expect("refused").retry_after_s(), 1);
        let error = refused.into_error("echo");
        assert_eq!(error.status(), 503);
        let message = error.to_string();
        assert!(
            message.contains("pipeline \"echo\" is quarantined"),
            "{message}"
        );
        assert!(message.contains("crashed 3"), "{message}");
        assert!(message.contains("after 20 s"), "{message}");
    }

    #[test]
    fn after_the_cool_down_one_probe_runs_and_its_answer_recovers() {
        let t0 = Instant::now();
        let q = quarantined(t0);
        let t1 = t0 + COOL_DOWN;
        let probe = q.admit(t1).expect("probe let through");
        assert!(probe.is_probe());
        let other = q.admit(t1).err().expect("refused while the probe runs");
        assert!(other.probing);
        assert_eq!(other.retry_after_s(), 1);
        assert_eq!(q.status(t1).phase, Phase::Probing);
        let t2 = t1 + Duration::from_millis(40);
        assert_eq!(
            probe.finish(Verdict::Answered, t2),
            Some(Transition::Recovered {
                after: COOL_DOWN + Duration::from_millis(40)
            })
        );
        let status = q.status(t2);
        assert_eq!(
            (
                status.phase,
                status.consecutive_failures,
                status.retry_after_s
            ),
            (Phase::Healthy, 0, None)
        );
        assert!(!q.admit(t2).expect("admitted").is_probe());
    }

    #[test]
    fn a_failing_probe_starts_the_cool_down_over() {
        let t0 = Instant::now();
        let q = quarantined(t0);
        let t1 = t0 + COOL_DOWN + Duration::from_secs(5);
        assert_eq!(
            run(&q, t1, trap(9)),
            Ok(Some(Transition::ProbeFailed {
                failures: 4,
                reason: "crashed 9".into()
            }))
        );
        let refused = q.admit(t1 + Duration::from_secs(1)).err().expect("refused");
        assert_eq!(
            (refused.retry_after_s(), refused.reason.as_str()),
            (29, "crashed 9")
        );
        // Still counted as one quarantine, since the first failure.
        let status = q.status(t1);
        assert_eq!(status.times, 1);
        assert_eq!(
            status.quarantined_for,
            Some(COOL_DOWN + Duration::from_secs(5))
        );
        assert!(q.admit(t1 + COOL_DOWN).expect("probe").is_probe());
    }

    #[test]
    fn a_probe_that_never_ran_or_was_dropped_hands_the_probe_on() {
        let t0 = Instant::now();
        let q = quarantined(t0);
        let t1 = t0 + COOL_DOWN;
        assert_eq!(run(&q, t1, Verdict::Neither), Ok(None));
        let probe = q.admit(t1).expect("the next request probes");
        assert!(probe.is_probe());
        drop(probe); // a worker that panicked
        assert!(q.admit(t1).expect("probes again").is_probe());
    }

    #[test]
    fn verdicts_of_requests_admitted_before_a_phase_change_are_ignored() {
        let t0 = Instant::now();
        let q = quarantine(2);
        let early = q.admit(t0).expect("admitted");
        run(&q, t0, trap(1)).expect("admitted");
        run(&q, t0, trap(2)).expect("admitted");
        // A request admitted while healthy answers late: the quarantine stands.
        assert_eq!(early.finish(Verdict::Answered, t0), None);
        assert_eq!(q.status(t0).phase, Phase::Quarantined);

        // Requests on the old version fail after a deploy cleared it: not counted.
        let q = quarantine(2);
        let old = [q.admit(t0).expect("a"), q.admit(t0).expect("b")];
        assert!(!q.clear());
        for pass in old {
            assert_eq!(pass.finish(trap(1), t0), None);
        }
        assert_eq!(q.status(t0).consecutive_failures, 0);
    }

    #[test]
    fn clearing_makes_it_healthy_at_once() {
        let t0 = Instant::now();
        let q = quarantined(t0);
        assert!(q.clear());
        let status = q.status(t0);
        assert_eq!(
            (status.phase, status.consecutive_failures, status.times),
            (Phase::Healthy, 0, 1)
        );
        assert!(!q.admit(t0).expect("admitted").is_probe());
        assert!(q.refusal(t0).is_none());
    }

    #[test]
    fn after_zero_never_quarantines() {
        let (q, t0) = (quarantine(0), Instant::now());
        for n in 0..100 {
            assert_eq!(run(&q, t0, trap(n)), Ok(None));
        }
        assert_eq!(q.status(t0).phase, Phase::Healthy);
        assert_eq!(q.status(t0).consecutive_failures, 100);
    }

    #[test]
    fn shadows_are_refused_without_taking_the_probe() {
        let t0 = Instant::now();
        let q = quarantined(t0);
        let due = t0 + COOL_DOWN;
        assert_eq!(q.refusal(due).expect("refused").retry_after_s(), 1);
        assert!(q.admit(due).expect("the probe is still free").is_probe());
    }

    #[test]
    fn only_misbehaviour_counts_as_a_failure() {
        let pipeline = || "p".to_owned();
        let failed = [
            PipelineError::Trapped {
                pipeline: pipeline(),
                message: "unreachable".into(),
            },
            PipelineError::DeadlineExceeded {
                pipeline: pipeline(),
                deadline_ms: 5,
            },
            PipelineError::MemoryExceeded {
                pipeline: pipeline(),
                cap_mib: 1,
            },
            PipelineError::LimitExceeded {
                pipeline: pipeline(),
                limit: crate::config::Limit::RemoteCalls,
                max: 1,
            },
        ];
        for error in failed {
            let message = error.to_string();
            assert_eq!(Verdict::of::<()>(&Err(error)), Verdict::Failed(message));
        }
        for kind in [
            "bad-request",
            "unsupported",
            "upstream",
            "internal",
            "rate-limited",
            "unavailable",
            "timeout",
        ] {
            let rejected = PipelineError::Rejected {
                pipeline: pipeline(),
                kind,
                message: "no".into(),
                retry_after_ms: None,
            };
            assert_eq!(Verdict::of::<()>(&Err(rejected)), Verdict::Answered);
        }
        let busy = PipelineError::Overloaded {
            pipeline: pipeline(),
            message: "full".into(),
        };
        assert_eq!(Verdict::of::<()>(&Err(busy)), Verdict::Neither);
        assert_eq!(Verdict::of::<()>(&Ok(())), Verdict::Answered);
    }
}
