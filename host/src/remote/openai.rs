//! The OpenAI-compatible wire format that DigitalOcean Serverless Inference and most
//! providers speak: request bodies for chat, embeddings and transcription, and parsers
//! that turn 2xx bodies into typed results or a `bad-response` naming what is wrong.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::RemoteError;
use super::accounting::Usage;
use super::sse;
use super::transport::{BodyReader, read_error};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user`, `assistant`...
    pub role: String,
    /// The text.
    pub content: String,
}

/// A chat completion request, minus the endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<Message>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    pub top_p: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Model id overriding the endpoint's.
    pub model: Option<String>,
}

/// What a parser extracted from a response.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    /// The value.
    pub value: T,
    /// Usage the provider reported.
    pub usage: Usage,
    /// The model id the provider reported, if any.
    pub model: Option<String>,
}

/// A generated completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The text of the first choice.
    pub content: String,
    /// Why generation stopped.
    pub finish_reason: String,
}

/// The JSON body of a chat completion request.
pub fn chat_body(request: &ChatRequest, model: &str, stream: bool) -> Vec<u8> {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({"model": model, "messages": messages});
    if let Some(v) = request.max_tokens {
        body["max_tokens"] = json!(v);
    }
    if let Some(v) = request.temperature {
        body["temperature"] = json!(v);
    }
    if let Some(v) = request.top_p {
        body["top_p"] = json!(v);
    }
    if !request.stop.is_empty() {
        body["stop"] = json!(request.stop);
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The JSON body of an embeddings request.
pub fn embeddings_body(inputs: &[String], model: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": model, "input": inputs, "encoding_format": "float"}))
        .unwrap_or_default()
}

/// A multipart/form-data body for `/audio/transcriptions`, and its content type.
pub fn transcription_body(
    audio: &[u8],
    format: &str,
    model: &str,
    language: Option<&str>,
    boundary: &str,
) -> (Vec<u8>, String) {
    let mut body = Vec::with_capacity(audio.len() + 512);
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("model", model);
    field("response_format", "json");
    if let Some(language) = language {
        field("language", language);
    }
    let ext: String = format.chars().filter(char::is_ascii_alphanumeric).collect();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.{ext}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(audio);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
    #[serde(default)]
    seconds: Option<f32>,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            audio_seconds: self.seconds.unwrap_or(0.0),
        }
    }
}

fn expect_json(endpoint: &str, content_type: &str) -> Result<(), RemoteError> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(RemoteError::BadResponse(format!(
            "endpoint {endpoint:?} answered with content type {content_type:?}, expected application/json"
        )))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    endpoint: &str,
    reader: &mut BodyReader<'_>,
    content_type: &str,
) -> Result<T, RemoteError> {
    expect_json(endpoint, content_type)?;
    let bytes = reader
        .read_all()
        .map_err(|e| read_error(endpoint, reader, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        RemoteError::BadResponse(format!(
            "endpoint {endpoint:?} sent a body that is not the expected JSON: {e}"
        ))
    })
}

/// Parses a chat completion: a JSON body, or an SSE stream when the content type says so.
pub fn parse_chat(
    endpoint: &str,
    reader: &mut BodyReader<'_>,
    content_type: &str,
) -> Result<Parsed<Completion>, RemoteError> {
    if content_type.starts_with("text/event-stream") {
        return parse_chat_stream(endpoint, reader);
    }
    #[derive(Deserialize)]
    struct Body {
        model: Option<String>,
        choices: Vec<Choice>,
        #[serde(default)]
        usage: WireUsage,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: ChoiceMessage,
        finish_reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct ChoiceMessage {
        content: Option<String>,
    }
    let body: Body = read_json(endpoint, reader, content_type)?;
    let choice = body.choices.into_iter().next().ok_or_else(|| {
        RemoteError::BadResponse(format!("endpoint {endpoint:?} returned no choices"))
    })?;
    Ok(Parsed {
        value: Completion {
            content: choice.message.content.unwrap_or_default(),
            finish_reason: choice.finish_reason.unwrap_or_else(|| "stop".into()),
        },
        usage: body.usage.usage(),
        model: body.model,
    })
}

/// What one chunk of a streamed chat completion carries (the first choice's part).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamPiece {
    /// The model id the provider reported, if any.
    pub model: Option<String>,
    /// Text generated since the previous chunk.
    pub text: String,
    /// Set on the chunk that ends generation.
    pub finish_reason: Option<String>,
    /// Usage, on the chunk that reports it (with `stream_options.include_usage`).
    pub usage: Option<Usage>,
}

/// Decodes one `chat.completion.chunk` event.
pub fn parse_chunk(data: &str) -> Result<StreamPiece, serde_json::Error> {
    #[derive(Deserialize)]
    struct Chunk {
        model: Option<String>,
        #[serde(default)]
        choices: Vec<ChunkChoice>,
        usage: Option<WireUsage>,
    }
    #[derive(Deserialize)]
    struct ChunkChoice {
        #[serde(default)]
        delta: Delta,
        finish_reason: Option<String>,
    }
    #[derive(Deserialize, Default)]
    struct Delta {
        content: Option<String>,
    }
    let chunk: Chunk = serde_json::from_str(data)?;
    let mut piece = StreamPiece {
        model: chunk.model,
        usage: chunk.usage.map(|u| u.usage()),
        ..StreamPiece::default()
    };
    for choice in chunk.choices {
        if let Some(text) = choice.delta.content {
            piece.text.push_str(&text);
        }
        if let Some(reason) = choice.finish_reason {
            piece.finish_reason = Some(reason);
        }
    }
    Ok(piece)
}

fn parse_chat_stream(
    endpoint: &str,
    reader: &mut BodyReader<'_>,
) -> Result<Parsed<Completion>, RemoteError> {
    let mut completion = Completion {
        content: String::new(),
        finish_reason: String::new(),
    };
    let mut usage = Usage::default();
    let mut model = None;
    let mut malformed = None;
    let done = sse::for_each_data(&mut *reader, |data| {
        let piece = match parse_chunk(data) {
            Ok(c) => c,
            Err(e) => {
                malformed = Some(e.to_string());
                return Err(std::io::Error::other("malformed chunk"));
            }
        };
        model = piece.model.or(model.take());
        if let Some(u) = piece.usage {
            usage = u;
        }
        completion.content.push_str(&piece.text);
        if let Some(reason) = piece.finish_reason {
            completion.finish_reason = reason;
        }
        Ok(())
    });
    if let Some(e) = malformed {
        return Err(RemoteError::BadResponse(format!(
            "endpoint {endpoint:?} sent a malformed stream chunk: {e}"
        )));
    }
    match done {
        Err(e) => Err(read_error(endpoint, reader, &e)),
        Ok(false) => Err(RemoteError::Unavailable(format!(
            "endpoint {endpoint:?} ended the stream before [DONE]"
        ))),
        Ok(true) => {
            if completion.finish_reason.is_empty() {
                completion.finish_reason = "stop".into();
            }
            Ok(Parsed {
                value: completion,
                usage,
                model,
            })
        }
    }
}

/// Parses an embeddings response into vectors in input order (float or base64 encoded).
pub fn parse_embeddings(
    endpoint: &str,
    reader: &mut BodyReader<'_>,
    content_type: &str,
    expected: usize,
) -> Result<Parsed<Vec<Vec<f32>>>, RemoteError> {
    #[derive(Deserialize)]
    struct Body {
        model: Option<String>,
        data: Vec<Item>,
        #[serde(default)]
        usage: WireUsage,
    }
    #[derive(Deserialize)]
    struct Item {
        index: usize,
        embedding: Value,
    }
    let body: Body = read_json(endpoint, reader, content_type)?;
    let bad = |m: String| RemoteError::BadResponse(format!("endpoint {endpoint:?}: {m}"));
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; expected];
    for item in body.data {
        let vector = match item.embedding {
            Value::Array(values) => values
                .iter()
                .map(|v| v.as_f64().map(|f| f as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| bad("an embedding has a non-number".into()))?,
            Value::String(b64) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| bad(format!("bad base64 embedding: {e}")))?;
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            }
            _ => return Err(bad("an embedding is neither a list nor base64".into())),
        };
        let slot = vectors
            .get_mut(item.index)
            .ok_or_else(|| bad(format!("embedding index {} out of range", item.index)))?;
        *slot = Some(vector);
    }
    let vectors = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| bad(format!("no embedding for input {i}"))))
        .collect::<Result<_, _>>()?;
    Ok(Parsed {
        value: vectors,
        usage: body.usage.usage(),
        model: body.model,
    })
}

/// Parses a transcription response (`{"text": ...}`).
pub fn parse_transcription(
    endpoint: &str,
    reader: &mut BodyReader<'_>,
    content_type: &str,
) -> Result<Parsed<String>, RemoteError> {
    #[derive(Deserialize)]
    struct Body {
        text: String,
        #[serde(default)]
        usage: WireUsage,
    }
    let body: Body = read_json(endpoint, reader, content_type)?;
    Ok(Parsed {
        value: body.text,
        usage: body.usage.usage(),
        model: None,
    })
}

/// Reads a raw JSON answer, checking it is JSON; usage from a top-level `usage` object.
pub fn parse_raw(
    endpoint: &str,
    reader: &mut BodyReader<'_>,
    content_type: &str,
) -> Result<Parsed<String>, RemoteError> {
    let value: Value = read_json(endpoint, reader, content_type)?;
    let usage = value
        .get("usage")
        .and_then(|u| serde_json::from_value::<WireUsage>(u.clone()).ok())
        .unwrap_or_default()
        .usage();
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Parsed {
        value: value.to_string(),
        usage,
        model,
    })
}

/// Seconds of audio in a 16-bit PCM WAV body, for pricing when the provider reports no
/// usage; `None` for other formats.
pub fn wav_seconds(audio: &[u8]) -> Option<f32> {
    if audio.len() < 44 || &audio[..4] != b"RIFF" || &audio[8..12] != b"WAVE" {
        return None;
    }
    let rate = u32::from_le_bytes([audio[24], audio[25], audio[26], audio[27]]);
    let block = u16::from_le_bytes([audio[32], audio[33]]);
    (rate > 0 && block > 0).then(|| (audio.len() - 44) as f32 / (rate as f32 * f32::from(block)))
}
