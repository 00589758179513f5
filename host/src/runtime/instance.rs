//! A live instance of a pipeline: one store, one instance, serving one request (the
//! server's case) or several in turn (batch work, benchmarks).
//!
//! A 0.2 guest may answer with the chunks it emitted (`answer.emitted`): the outcome's
//! response is then their text (`text/plain`), and [`Outcome::streamed`] says whether
//! they already went to a live client. Streams the guest still holds when `handle`
//! returns are cancelled and accounted for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Limit, PipelineConfig};

use wasmtime::Store;

use super::bindings::messages::Response;
use super::clock_host::ClockCtx;
use super::contract::{Answer, Bindings};
use super::error::{failure, rejected};
use super::load::Load;
use super::state::RequestState;
use super::{Outcome, PipelineError, Request, ServedBy, Timings};

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
            return Err(PipelineError::Trapped {
                pipeline: config.name.clone(),
                message: "this instance trapped earlier and cannot serve again".into(),
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
        let state = self.store.data_mut();
        let model_runs = std::mem::take(&mut state.local.runs);
        let remote_calls = std::mem::take(&mut state.remote.calls);
        let remote_failures = std::mem::take(&mut state.remote.failures);
        for run in &model_runs {
            self.load.record_model_run(run.elapsed);
        }
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
            timings: Timings {
                instantiate: Duration::ZERO,
                handle: finished - started,
                local_models: model_runs.iter().map(|r| r.elapsed).sum(),
                total: finished - started,
            },
            response,
            model_runs,
            remote_calls,
            remote_failures,
            component: self.component.clone(),
            streamed,
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
