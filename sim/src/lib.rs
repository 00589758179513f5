//! `hybrid-sim`: a serverless-inference simulator that speaks the OpenAI-compatible HTTP API
//! of DigitalOcean Serverless Inference over loopback, so the host's remote client can be
//! tested and demonstrated offline, and that injects the faults the client must survive.
//!
//! The simulator answers deterministically: replies, embeddings and transcripts are pure
//! functions of the request, and every fault is drawn from a seeded RNG or a scripted
//! sequence, so a test that fixes the scenario gets the same answers on every run.
//!
//! # Layout
//!
//! - [`config`]: [`SimConfig`], what one simulator serves (key, models, embedding dimension,
//!   starting scenario, classification workload).
//! - [`cli`]: the `hybrid-sim` command line, turned into a [`SimConfig`].
//! - [`scenario`]: the fault scenario schema, loaded from TOML or JSON and validated.
//! - [`faults`]: per-request fault decisions (sequence, bursts, seeded probabilities, latency).
//! - [`damage`]: the broken answers those faults produce (errors, cut, truncated, padded,
//!   mislabelled bodies).
//! - [`ratelimit`]: the DigitalOcean-style quota windows behind the `x-ratelimit-*` headers.
//! - [`stats`]: counters by route, status, fault kind, request id and idempotency key, and
//!   the classification stand-in's right and wrong answers.
//! - [`classify`]: the classification stand-in: a labelled JSONL workload, keyed by the
//!   numbers of each example, answered at a configured accuracy.
//! - [`auth`]: the bearer key, kept out of logs and responses.
//! - [`api_error`]: the OpenAI error body every failure uses.
//! - [`usage`]: the token-counting rule and the usage a handler reports.
//! - [`wav`]: reads a WAV header to learn the clip's duration.
//! - [`routes`]: one file per API route, plus the `/healthz` and `/sim/*` control routes.
//! - [`state`]: what one simulator's connections share (scenario, quota, stats, shutdown).
//! - [`pipeline`]: the middleware every route runs behind: auth, quota, faults, headers,
//!   stats.
//! - [`server`]: the router and [`serve`] / [`serve_with_shutdown`].
//! - [`handle`]: [`spawn`], the simulator on its own thread for synchronous tests.

pub mod api_error;
pub mod auth;
pub mod classify;
pub mod cli;
pub mod config;
pub mod damage;
pub mod faults;
pub mod handle;
pub mod pipeline;
pub mod ratelimit;
pub mod routes;
pub mod scenario;
pub mod server;
pub mod state;
pub mod stats;
pub mod usage;
pub mod wav;

pub use auth::ApiKey;
pub use classify::{Classifier, ClassifyError};
pub use config::SimConfig;
pub use handle::{SimHandle, spawn, spawn_on};
pub use scenario::{Scenario, ScenarioError};
pub use server::{SimError, serve, serve_with_shutdown};
pub use stats::StatsSnapshot;
