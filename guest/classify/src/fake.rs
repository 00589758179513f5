//! The digits scenario on the SDK's scriptable host (`hybrid_guest::fake`), for this
//! crate's tests and, with feature `fake`, those of the components built on it: model
//! `digits-v1` version `1` answering the probabilities a test sets ([`digits`]), endpoint
//! `strong` healthy, priced at $1 per million tokens each way and replying `7` ([`reply`]),
//! and every call recorded by the fake host.

use hybrid_guest::Request;
use hybrid_guest::local::LocalError;
use hybrid_guest::remote::{CallRecord, ChatResult, RemoteError};
use hybrid_guest::signals::{EndpointHealth, EndpointPrice};
use hybrid_guest::tensor::NamedTensor;

pub use hybrid_guest::fake::{ChatCall, FakeHost, ModelRun, Script, fail, json_body};

use crate::model::{CLASSES, INPUT, LABEL, PROBABILITIES};
use crate::request::PIXELS;

/// A host whose model answers `label` with probability `confidence` (the rest spread
/// evenly), whose endpoint `strong` replies `7`, is healthy, has no budget and costs $1
/// per million tokens each way; the box is idle.
pub fn confident(label: usize, confidence: f32) -> FakeHost {
    let rest = (1.0 - confidence) / (CLASSES - 1) as f32;
    let mut probabilities = vec![rest; CLASSES];
    probabilities[label] = confidence;
    let mut host = FakeHost::new().with_model("digits-v1", "1", digits(probabilities));
    host.on_chat = reply("7");
    host.endpoints = vec![EndpointHealth::healthy("strong")];
    host.prices = vec![EndpointPrice {
        name: "strong".into(),
        kind: "chat".into(),
        input_usd_per_mtok: 1.0,
        output_usd_per_mtok: 1.0,
        usd_per_audio_second: 0.0,
        usd_per_request: 0.0,
    }];
    host
}

/// A digits model answering `probabilities` (fp32 `[1, n]`) and their arg-max as the
/// label (i64 `[1]`) for any image given as input `input`.
pub fn digits(probabilities: Vec<f32>) -> Script<ModelRun, Result<Vec<NamedTensor>, LocalError>> {
    Box::new(move |run| {
        if run.input(INPUT).is_none() {
            return Err(LocalError::BadInputName(format!(
                "no input named {INPUT:?}"
            )));
        }
        let p = &probabilities;
        let best = (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b });
        let tensors = [
            NamedTensor::i64(LABEL, &[1], &[best as i64]),
            NamedTensor::fp32(PROBABILITIES, &[1, p.len() as u32], p),
        ];
        tensors
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| LocalError::ExecutionFailed(e.to_string()))
    })
}

/// A chat script replying `content` from model `sim-large`, for 3 micro-dollars in one
/// 20 ms attempt.
pub fn reply(content: &str) -> Script<ChatCall, Result<ChatResult, RemoteError>> {
    hybrid_guest::fake::reply(
        content,
        CallRecord {
            model: "sim-large".into(),
            cost_micro_usd: 3,
            latency_ms: 20,
            attempts: 1,
            ..CallRecord::default()
        },
    )
}

/// A request body: an image of grey level 3 everywhere (140 bytes of JSON), with `text`
/// when given.
pub fn body(text: Option<&str>) -> Vec<u8> {
    let mut v = serde_json::json!({ "pixels": vec![3; PIXELS] });
    if let Some(text) = text {
        v["text"] = text.into();
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Request `r1` of `body` as `application/json`, with the `metadata` pairs.
pub fn request(body: &[u8], metadata: &[(&str, &str)]) -> Request {
    Request::new("r1", "application/json", body).with_metadata_pairs(metadata)
}

/// The image a model run was given: the fp32 values of its input `input`.
pub fn image(run: &ModelRun) -> Vec<f32> {
    run.input(INPUT)
        .and_then(|t| t.to_f32().ok())
        .unwrap_or_default()
}
