//! A scriptable host for unit tests (this crate's, and with feature `fake` those of the
//! components built on it): model `digits-v1` version `1` answering the probabilities a
//! test sets, endpoint `strong` replying [`FakeHost::reply`] or failing with
//! [`FakeHost::chat_error`], and signals a test edits. Every model run, chat call and log
//! line is recorded.

use crate::host::{CallRecord, ChatParams, ChatResult, Host, Message, ModelInfo, RemoteError};
use crate::model::{CLASSES, LABEL, PROBABILITIES};
use crate::signals::{Circuit, EndpointHealth, EndpointPrice, Load, Signals, WindowSpend};
use crate::tensor::NamedTensor;

/// A host whose every answer a test sets.
#[derive(Debug, Clone)]
pub struct FakeHost {
    /// What `list-models` returns.
    pub models: Vec<ModelInfo>,
    /// The probabilities every model run returns (the label is their arg-max).
    pub probabilities: Vec<f32>,
    /// When set, model runs fail with this message.
    pub model_error: Option<String>,
    /// The chat reply's content.
    pub reply: String,
    /// When set, chat calls fail with this error.
    pub chat_error: Option<RemoteError>,
    /// What `local-load` returns.
    pub load: Load,
    /// What `endpoints` returns.
    pub endpoints: Vec<EndpointHealth>,
    /// What `spend` returns.
    pub spend: Vec<WindowSpend>,
    /// What `prices` returns.
    pub prices: Vec<EndpointPrice>,
    /// The `input` tensor of every model run, as f32 values.
    pub runs: Vec<Vec<f32>>,
    /// Every chat call: endpoint, messages, params.
    pub calls: Vec<(String, Vec<Message>, ChatParams)>,
    /// Every log line.
    pub logs: Vec<String>,
}

impl FakeHost {
    /// A host whose model answers `label` with probability `confidence` (the rest spread
    /// evenly), whose endpoint `strong` replies `7`, is healthy, has no budget and costs
    /// $1 per million tokens each way; the box is idle.
    pub fn confident(label: usize, confidence: f32) -> Self {
        let rest = (1.0 - confidence) / (CLASSES - 1) as f32;
        let mut probabilities = vec![rest; CLASSES];
        probabilities[label] = confidence;
        Self {
            models: vec![ModelInfo {
                name: "digits-v1".into(),
                version: "1".into(),
            }],
            probabilities,
            model_error: None,
            reply: "7".into(),
            chat_error: None,
            load: Load {
                in_flight: 1,
                queue_depth: 0,
                capacity: 4,
            },
            endpoints: vec![EndpointHealth {
                name: "strong".into(),
                circuit: Circuit::Closed,
                error_rate: 0.0,
            }],
            spend: ["minute", "hour", "day"]
                .into_iter()
                .map(|w| WindowSpend {
                    window: w.into(),
                    spent_micro_usd: 0,
                    budget_micro_usd: None,
                })
                .collect(),
            prices: vec![EndpointPrice {
                name: "strong".into(),
                input_usd_per_mtok: 1.0,
                output_usd_per_mtok: 1.0,
                usd_per_request: 0.0,
            }],
            runs: Vec::new(),
            calls: Vec::new(),
            logs: Vec::new(),
        }
    }
}

impl Host for FakeHost {
    fn list_models(&mut self) -> Vec<ModelInfo> {
        self.models.clone()
    }

    fn run_model(
        &mut self,
        _model: &str,
        inputs: Vec<NamedTensor>,
    ) -> Result<Vec<NamedTensor>, String> {
        let input = inputs
            .iter()
            .find(|t| t.name == "input")
            .ok_or("bad-input-name: no input named \"input\"")?;
        self.runs.push(input.to_f32()?);
        if let Some(error) = &self.model_error {
            return Err(error.clone());
        }
        let p = &self.probabilities;
        let best = (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b });
        Ok(vec![
            NamedTensor::i64(LABEL, &[1], &[best as i64]),
            NamedTensor::fp32(PROBABILITIES, &[1, p.len() as u32], p),
        ])
    }

    fn chat(
        &mut self,
        endpoint: &str,
        messages: Vec<Message>,
        params: ChatParams,
    ) -> Result<ChatResult, RemoteError> {
        self.calls.push((endpoint.to_owned(), messages, params));
        if let Some(error) = &self.chat_error {
            return Err(error.clone());
        }
        Ok(ChatResult {
            content: self.reply.clone(),
            call: CallRecord {
                endpoint: endpoint.to_owned(),
                model: "sim-large".into(),
                cost_micro_usd: 3,
                latency_ms: 20,
                attempts: 1,
            },
        })
    }

    fn log_info(&mut self, message: &str) {
        self.logs.push(message.to_owned());
    }
}

impl Signals for FakeHost {
    fn local_load(&mut self) -> Load {
        self.load
    }

    fn endpoints(&mut self) -> Vec<EndpointHealth> {
        self.endpoints.clone()
    }

    fn spend(&mut self) -> Vec<WindowSpend> {
        self.spend.clone()
    }

    fn prices(&mut self) -> Vec<EndpointPrice> {
        self.prices.clone()
    }
}
