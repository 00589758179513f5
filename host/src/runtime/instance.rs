//! A live instance of a pipeline: one store, one instance, serving one request (the
//! server's case) or several in turn (batch work, benchmarks).
//!
//! A 0.2 guest may answer with the chunks it emitted (`answer.emitted`): the outcome's
//! response is then their text (`text/plain`), and [`Outcome::streamed`] says whether
//! they already went to a live client. Streams the guest still holds when `handle`
//! returns are cancelled and accounted for.
//!
//! A `wasi:cli` command runs once per instance (its `run` is its `main`): the request
//! body is its stdin, its stdout the answer's body (typed by the pipeline's
//! `content_type`), each line of its stderr a log line under the log limits; exit status
//! 0 answers, any other status is [`PipelineError::Exited`].

use std::sync::Arc;
use std::time::Instant;

use crate::config::{Limit, PipelineConfig};

use wasmtime::Store;

use super::bindings::log::{Host as _, Level};
use super::bindings::messages::{Response, Routing};
use super::clock_host::ClockCtx;
use super::contract::{Answer, Bindings};
use super::error::{failure, rejected};
use super::load::Load;
use super::state::RequestState;
use super::{ModelRunRecord, Outcome, PipelineError, Request, ServedBy, Timings};

/// The content type of a command's answer when its pipeline sets no `content_type`.
pub const DEFAULT_COMMAND_CONTENT_TYPE: &str = "application/octet-stream";

/// The most of a failed command's stderr its error message quotes (its end, where the
/// reason usually is); all of it went to the log.
const MAX_EXIT_MESSAGE: usize = 2048;

/// The last `max` bytes of `s`, cut at a character boundary.
fn tail(s: &str, max: usize) -> String {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_owned()
}

/// A live instance of a pipeline's component. After a trap it is poisoned: the guest's
/// state is unknown, so further calls are refused.
pub struct PipelineInstance {
    store: Store<RequestState>,
    bindings: Bindings,
    config: PipelineConfig,
    component: ServedBy,
    deadline_ticks: u64,
    /// The fuel each call gets, when the engine meters fuel.
    fuel: Option<u64>,
    load: Arc<Load>,
    poisoned: bool,
}

impl PipelineInstance {
    pub(super) fn new(
        store: Store<RequestState>,
        bindings: Bindings,
        config: PipelineConfig,
        component: ServedBy,
        deadline_ticks: u64,
        fuel: Option<u64>,
        load: Arc<Load>,
    ) -> Self {
        Self {
            store,
            bindings,
            config,
            component,
            deadline_ticks,
            fuel,
            load,
            poisoned: false,
        }
    }

    /// Calls the guest's `handle` with a fresh deadline.
    pub fn handle(&mut self, request: &Request) -> Result<Outcome, PipelineError> {
        let config = &self.config;
        if self.poisoned {
            let message = if matches!(self.bindings, Bindings::Command(_)) {
                "a wasi:cli command runs once per instance; this one has run"
            } else {
                "this instance trapped earlier and cannot serve again"
            };
            return Err(PipelineError::Trapped {
                pipeline: config.name.clone(),
                message: message.into(),
            });
        }
        let started = Instant::now();
        self.store.set_epoch_deadline(self.deadline_ticks);
        let deadline = started + config.deadline();
        let state = self.store.data_mut();
        state.clock = ClockCtx::new(deadline);
        state.remote.set_deadline(deadline);
        state.remote.set_call_limit(config.limits.remote_calls);
        state.local.set_run_limit(config.limits.model_runs);
        state
            .log
            .set_limits(config.limits.log_lines, config.limits.log_bytes);
        state.reply.set_limit(config.limits.response_bytes);
        if let Some(fuel) = self.fuel {
            // Every call gets the full budget again, like the deadline.
            if let Err(e) = self.store.set_fuel(fuel) {
                return Err(failure(&self.store, config, e));
            }
        }
        if matches!(self.bindings, Bindings::Command(_)) {
            return self.run_command(request, started);
        }
        let called = self.bindings.call_handle(&mut self.store, request);
        let state = self.store.data_mut();
        state.remote.close_streams();
        state.reply.close();
        // A refused call past a limit ends the request however the guest went on.
        if let Some(hit) = self.limit_hit() {
            if called.is_err() {
                self.poisoned = true;
            }
            let state = self.store.data_mut();
            state.local.runs.clear();
            state.remote.calls.clear();
            state.remote.failures.clear();
            return Err(hit);
        }
        let result = called.map_err(|e| {
            self.poisoned = true;
            failure(&self.store, config, e)
        })?;
        let finished = Instant::now();
        let model_runs = take_model_runs(self.store.data_mut(), &self.load);
        let state = self.store.data_mut();
        let remote_calls = std::mem::take(&mut state.remote.calls);
        let remote_failures = std::mem::take(&mut state.remote.failures);
        let reply = &mut self.store.data_mut().reply;
        let emitted_past_limit = std::mem::take(&mut reply.limit_hit);
        let streamed = reply.take_streamed();
        let text = std::mem::take(&mut reply.text);
        reply.chunks = 0;
        if emitted_past_limit {
            return Err(self.limit_error(Limit::ResponseBytes));
        }
        let response = match result.map_err(|e| rejected(config, e))? {
            Answer::Complete(response) => response,
            Answer::Emitted(routing) => Response {
                content_type: "text/plain; charset=utf-8".into(),
                body: text.into_bytes(),
                routing,
            },
        };
        if response.body.len() as u64 > config.limits.response_bytes {
            return Err(self.limit_error(Limit::ResponseBytes));
        }
        Ok(Outcome {
            timings: Timings::of_call(finished - started, &model_runs),
            response,
            model_runs,
            remote_calls,
            remote_failures,
            component: self.component.clone(),
            streamed,
        })
    }

    /// Runs a command's `run` with `request` as its stdin (see the module docs).
    fn run_command(
        &mut self,
        request: &Request,
        started: Instant,
    ) -> Result<Outcome, PipelineError> {
        // wasi-libc's start code traps when started twice, and the guest's state after
        // `main` is not one to serve from: one run per instance.
        self.poisoned = true;
        let stdio = self.store.data().stdio.clone();
        stdio.stdin.set(&request.body);
        let called = self
            .bindings
            .call_run(&mut self.store)
            .expect("the bindings of a command");
        let finished = Instant::now();
        let config = &self.config;
        if stdio.stdout.overflowed() {
            return Err(self.limit_error(Limit::ResponseBytes));
        }
        if stdio.stderr.overflowed() {
            return Err(self.limit_error(Limit::LogBytes));
        }
        let stderr = String::from_utf8_lossy(&stdio.stderr.contents()).into_owned();
        let log = &mut self.store.data_mut().log;
        for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
            log.log(Level::Info, line.to_owned());
        }
        if let Some(hit) = self.limit_hit() {
            return Err(hit);
        }
        let status = match called {
            Ok(Ok(())) => 0,
            Ok(Err(())) => 1,
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => exit.0,
                None => return Err(failure(&self.store, config, e)),
            },
        };
        if status != 0 {
            return Err(PipelineError::Exited {
                pipeline: config.name.clone(),
                status,
                message: tail(stderr.trim(), MAX_EXIT_MESSAGE),
            });
        }
        let model_runs = take_model_runs(self.store.data_mut(), &self.load);
        let (model, model_version) = model_runs
            .last()
            .map(|r| (r.model.clone(), r.version.clone()))
            .unwrap_or_default();
        let response = Response {
            content_type: config
                .content_type
                .clone()
                .unwrap_or_else(|| DEFAULT_COMMAND_CONTENT_TYPE.to_owned()),
            body: stdio.stdout.take(),
            routing: Routing {
                route: "local".into(),
                reason: "wasi:cli command: stdout of its run".into(),
                model,
                model_version,
            },
        };
        Ok(Outcome {
            timings: Timings::of_call(finished - started, &model_runs),
            response,
            model_runs,
            remote_calls: Vec::new(),
            remote_failures: Vec::new(),
            component: self.component.clone(),
            streamed: false,
        })
    }

    /// The limit error, if the guest asked for a call past one.
    fn limit_hit(&self) -> Option<PipelineError> {
        let state = self.store.data();
        if state.remote.limit_hit {
            Some(self.limit_error(Limit::RemoteCalls))
        } else if state.local.limit_hit {
            Some(self.limit_error(Limit::ModelRuns))
        } else {
            state.log.limit_hit.map(|limit| self.limit_error(limit))
        }
    }

    fn limit_error(&self, limit: Limit) -> PipelineError {
        PipelineError::LimitExceeded {
            pipeline: self.config.name.clone(),
            limit,
            max: self.config.limits.max(limit),
        }
    }
}

/// The call's model runs, each also counted in the box's load.
fn take_model_runs(state: &mut RequestState, load: &Load) -> Vec<ModelRunRecord> {
    let runs = std::mem::take(&mut state.local.runs);
    for run in &runs {
        load.record_model_run(run.elapsed);
    }
    runs
}
