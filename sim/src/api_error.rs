//! The OpenAI error body, `{"error":{"message","type","param","code"}}`, which DigitalOcean
//! Serverless Inference returns for every failure; the simulator uses it for every failure
//! too (auth, validation, injected 5xx and 429), so the client's error parsing is exercised
//! on exactly the shape it will meet in production.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A failure answered with the OpenAI error body.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// Human-readable message; never contains request payloads or the key.
    pub message: String,
    /// The `type` field: `invalid_request_error`, `server_error`, `rate_limit_error`.
    pub kind: &'static str,
    /// The request field at fault, if any.
    pub param: Option<&'static str>,
    /// The machine-readable `code`, if any.
    pub code: Option<&'static str>,
}

impl ApiError {
    /// 400 `invalid_request_error` naming the offending field.
    pub fn bad_request(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: None,
        }
    }

    /// 401 for a missing or wrong bearer key; the message never repeats what was sent.
    pub fn invalid_api_key() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "Incorrect API key provided".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    /// 404 for a model id the simulator was not configured with.
    pub fn model_not_found(model: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist"),
            kind: "invalid_request_error",
            param: Some("model"),
            code: Some("model_not_found"),
        }
    }

    /// 404 for a path the API does not have.
    pub fn unknown_route(method: &str, path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("Invalid URL ({method} {path})"),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    /// 429 as DigitalOcean answers it: the body carries `too_many_requests`.
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            kind: "rate_limit_error",
            param: None,
            code: Some("too_many_requests"),
        }
    }

    /// An injected upstream failure with the given 5xx (or other) status.
    pub fn server_error(status: StatusCode) -> Self {
        Self {
            status,
            message: format!(
                "The server had an error while processing your request ({})",
                status.as_u16()
            ),
            kind: "server_error",
            param: None,
            code: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        });
        (self.status, Json(body)).into_response()
    }
}
