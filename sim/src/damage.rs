//! The misbehaving answers a [`Fault`] produces. Faults that replace the answer (status,
//! 429) are answered without running the route; faults that corrupt it (drop, malformed,
//! oversize, wrong content type) run the route and then damage its response, so the broken
//! bytes look like the real answer gone wrong in transit.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::response::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use crate::api_error::ApiError;
use crate::faults::Fault;

/// The answer for a fault that replaces the route's answer; `None` for the others.
pub fn replacement(fault: Fault) -> Option<Response> {
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(ApiError::server_error(status).into_response())
        }
        Fault::RateLimited(retry_after) => {
            let mut response =
                ApiError::too_many_requests("Rate limit reached for requests").into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            Some(response)
        }
        _ => None,
    }
}

/// Damages a successful route answer whose body has already been collected. The route's
/// status and headers are kept (except where the fault is the header), so the damage looks
/// like the real answer gone wrong in transit.
pub fn corrupt(fault: Fault, mut parts: Parts, body: Bytes) -> Response {
    parts.headers.remove(CONTENT_LENGTH);
    let body = match fault {
        Fault::Drop => {
            // Advertise the full length, send half, then fail the body stream: hyper closes the
            // socket and the client sees a truncated body. The pause lets the half go out first.
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            let half = body.slice(..body.len() / 2);
            let chunks = stream::unfold(Some(half), |half| async move {
                match half {
                    Some(half) => Some((Ok::<Bytes, std::io::Error>(half), None)),
                    None => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some((
                            Err(std::io::Error::other("hybrid-sim: injected drop")),
                            None,
                        ))
                    }
                }
            });
            // After the error hyper stops polling, so the stream never runs past it.
            Body::from_stream(chunks)
        }
        Fault::Malformed => {
            // A strict prefix of a JSON document never parses (the closing brace is missing);
            // for a stream it is an event cut mid-line with no [DONE].
            Body::from(if body.len() >= 2 {
                body.slice(..body.len() / 2)
            } else {
                Bytes::from_static(b"{\"id\":")
            })
        }
        Fault::Oversize(size) => Body::from(pad(&parts, &body, size)),
        Fault::WrongContentType => {
            parts.headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Body::from(
                "<html><head><title>502 Bad Gateway</title></head>\
                 <body><h1>502 Bad Gateway</h1></body></html>\n",
            )
        }
        Fault::Status(_) | Fault::RateLimited(_) | Fault::Hang => Body::from(body),
    };
    Response::from_parts(parts, body)
}

/// Grows an answer to `size` bytes (or leaves it if already larger) and keeps it valid:
/// a JSON object gains a `sim_padding` string, a server-sent-events stream a leading comment
/// (which SSE parsers skip), anything else trailing whitespace.
fn pad(parts: &Parts, body: &Bytes, size: usize) -> Bytes {
    let fill = size.saturating_sub(body.len());
    if fill == 0 {
        return body.clone();
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("text/event-stream") && fill >= 4 {
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(b": ");
        out.resize(fill - 2, b'x');
        out.extend_from_slice(b"\n\n");
        out.extend_from_slice(body);
        return Bytes::from(out);
    }
    if let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(body) {
        // An empty padding field costs `,"sim_padding":""` (or no comma in an empty object).
        object.insert(
            "sim_padding".into(),
            serde_json::Value::String(String::new()),
        );
        let base = serde_json::to_vec(&object)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        let padding = "x".repeat(size.saturating_sub(base));
        object.insert("sim_padding".into(), serde_json::Value::String(padding));
        if let Ok(padded) = serde_json::to_vec(&object) {
            return Bytes::from(padded);
        }
    }
    let mut out = body.to_vec();
    out.resize(size, b' ');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(content_type: &'static str) -> Parts {
        let mut response = Response::new(Body::empty());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response.into_parts().0
    }

    #[test]
    fn padding_reaches_the_size_and_stays_valid() {
        let padded = pad(
            &parts("application/json"),
            &Bytes::from_static(br#"{"id":"x"}"#),
            1000,
        );
        assert_eq!(padded.len(), 1000);
        let value: serde_json::Value = serde_json::from_slice(&padded).expect("valid");
        assert_eq!(value["id"], "x");

        let sse = Bytes::from_static(b"data: [DONE]\n\n");
        let padded = pad(&parts("text/event-stream"), &sse, 100);
        assert_eq!(padded.len(), 100);
        assert!(padded.starts_with(b": xx") && padded.ends_with(&sse));
    }
}
