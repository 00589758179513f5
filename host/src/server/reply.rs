//! Turning outcomes and refusals into HTTP responses: the `x-hybrid-*` headers on every
//! answer, and errors as an OpenAI-style JSON body (`{"error": {"message", "type",
//! "code"}}`) with a status that names the problem.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, Refusal};
use crate::envelope;
use crate::runtime::{Outcome, PipelineError, Request};

/// An error answer.
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// OpenAI-style error type, e.g. `invalid_request_error`.
    pub kind: &'static str,
    /// Machine-readable code, e.g. `model_not_found`.
    pub code: Option<&'static str>,
    /// The offending request field, if any.
    pub param: Option<&'static str>,
    /// What is wrong, for people.
    pub message: String,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u32>,
    /// The request id, echoed in `x-request-id`.
    pub request_id: Option<String>,
    /// The component version that failed, in `x-hybrid-component`.
    pub component: Option<String>,
}

impl ApiError {
    /// A 4xx/5xx with a message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            param: None,
            message: message.into(),
            retry_after: None,
            request_id: None,
            component: None,
        }
    }

    /// Sets the code.
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets the param.
    pub fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_owned());
        self
    }

    /// A refusal from [`AppState::execute`].
    pub fn from_refusal(state: &AppState, refusal: Refusal, request_id: &str) -> Self {
        let error = match refusal {
            Refusal::Busy => {
                let mut e = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the edge box is at capacity and its queue is full; retry later",
                )
                .code("overloaded");
                e.retry_after = Some(state.retry_after_s);
                e
            }
            Refusal::Internal(m) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", m),
            Refusal::Pipeline(e, component) => {
                let mut error = Self::from_pipeline(&e, state.retry_after_s);
                error.component = component;
                error
            }
        };
        error.request_id(request_id)
    }

    fn from_pipeline(error: &PipelineError, retry_after_s: u32) -> Self {
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (kind, code) = match error {
            PipelineError::UnknownPipeline { .. } => {
                ("invalid_request_error", "pipeline_not_found")
            }
            PipelineError::Rejected {
                kind: "bad-request",
                ..
            } => ("invalid_request_error", "bad_request"),
            PipelineError::Rejected {
                kind: "unsupported",
                ..
            } => ("invalid_request_error", "unsupported"),
            PipelineError::Rejected {
                kind: "upstream", ..
            } => ("upstream_error", "upstream"),
            PipelineError::Rejected {
                kind: "rate-limited",
                ..
            } => ("rate_limit_error", "rate_limited"),
            PipelineError::Rejected {
                kind: "unavailable",
                ..
            } => ("upstream_error", "upstream_unavailable"),
            PipelineError::Rejected {
                kind: "timeout", ..
            } => ("upstream_error", "upstream_timeout"),
            PipelineError::DeadlineExceeded { .. } => ("server_error", "deadline_exceeded"),
            PipelineError::MemoryExceeded { .. } => ("server_error", "memory_exceeded"),
            PipelineError::LimitExceeded { .. } => ("server_error", "limit_exceeded"),
            PipelineError::Overloaded { .. } => ("overloaded", "overloaded"),
            PipelineError::Quarantined { .. } => ("server_error", "pipeline_quarantined"),
            PipelineError::Exited { .. } => ("server_error", "command_failed"),
            _ => ("server_error", "pipeline_failed"),
        };
        let mut e = Self::new(status, kind, error.to_string()).code(code);
        match error {
            PipelineError::Overloaded { .. } => e.retry_after = Some(retry_after_s),
            // Seconds left in the cool-down, so clients come back when a probe may run.
            PipelineError::Quarantined {
                retry_after_s: left,
                ..
            } => e.retry_after = Some(u32::try_from(*left).unwrap_or(u32::MAX)),
            // A provider's rate limit, an open circuit or a spent budget: the guest's hint,
            // rounded up to whole seconds (at least 1), else the configured default.
            PipelineError::Rejected {
                kind: "rate-limited" | "unavailable",
                retry_after_ms,
                ..
            } => {
                e.retry_after =
                    Some(retry_after_ms.map_or(retry_after_s, |ms| ms.div_ceil(1000).max(1)));
            }
            _ => {}
        }
        e
    }
}

impl ApiError {
    /// The OpenAI error body, `{"error": {"message", "type", "param", "code"}}` (also the
    /// data of the SSE error event that ends a failed stream).
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(id) = self
            .request_id
            .and_then(|id| HeaderValue::from_str(&id).ok())
        {
            headers.insert("x-request-id", id);
        }
        if let Some(v) = self.component.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert("x-hybrid-component", v);
        }
        response
    }
}

/// The `x-hybrid-*` headers and `x-request-id` for a served request.
pub fn hybrid_headers(request: &Request, outcome: &Outcome) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put("x-request-id", request.id.clone());
    put("x-hybrid-route", outcome.response.routing.route.clone());
    put("x-hybrid-model", envelope::model_label(outcome));
    put("x-hybrid-component", outcome.component.digest.clone());
    put(
        "x-hybrid-cost-usd",
        format!("{:.6}", envelope::cost_usd(outcome)),
    );
    put(
        "x-hybrid-egress-bytes",
        envelope::egress_bytes(outcome).to_string(),
    );
    headers
}

/// A JSON answer with the hybrid headers.
pub fn json_with_headers(headers: HeaderMap, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
