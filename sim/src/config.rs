//! What one simulator instance serves: the key it accepts, the model ids it lists and
//! answers for, the embedding dimension, the fault scenario it starts with (replaceable
//! at runtime through `POST /sim/scenario` or [`crate::SimHandle::set_scenario`]), and an
//! optional labelled workload that turns chat completions into a classification stand-in.

use crate::auth::ApiKey;
use crate::classify::Classifier;
use crate::scenario::Scenario;

/// Model ids served when none are configured: DigitalOcean-style chat ids plus one
/// embedding and one transcription model. Any listed id is accepted on every route; the
/// simulator does not check that a model suits the route.
pub const DEFAULT_MODELS: &[&str] = &[
    "llama3.3-70b-instruct",
    "llama3-8b-instruct",
    "all-mini-lm-l6-v2",
    "whisper-large-v3",
];

/// Embedding dimension when none is configured (that of the MiniLM family).
pub const DEFAULT_EMBEDDING_DIM: usize = 384;

/// Configuration of one simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The key clients must present; `None` serves without authentication.
    pub api_key: Option<ApiKey>,
    /// Model ids listed by `/v1/models` and accepted by the inference routes.
    pub models: Vec<String>,
    /// Length of each embedding vector unless the request asks for `dimensions`.
    pub embedding_dim: usize,
    /// The fault scenario in force at start.
    pub scenario: Scenario,
    /// When set, chat completions whose last user message carries a workload example's
    /// numbers are answered with a label ([`crate::classify`]); seeded by the scenario's `seed`.
    pub classifier: Option<Classifier>,
}

impl SimConfig {
    /// A fault-free simulator with the default models, accepting `key`.
    pub fn with_key(key: ApiKey) -> Self {
        Self {
            api_key: Some(key),
            ..Self::without_auth()
        }
    }

    /// A fault-free simulator with the default models and no authentication.
    pub fn without_auth() -> Self {
        Self {
            api_key: None,
            models: DEFAULT_MODELS.iter().map(|m| m.to_string()).collect(),
            embedding_dim: DEFAULT_EMBEDDING_DIM,
            scenario: Scenario::default(),
            classifier: None,
        }
    }

    /// Replaces the starting scenario.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = scenario;
        self
    }

    /// Answers classification prompts from a labelled workload.
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = Some(classifier);
        self
    }
}
