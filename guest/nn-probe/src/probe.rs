//! What each mode is, the fixed input and the answers' JSON.

use serde_json::{Value, json};

/// The grey levels (0 to 16) of `samples/smoke/digit.json`, row-major 8x8.
pub const DIGIT: [u8; 64] = [
    0, 0, 7, 16, 14, 3, 0, 0, 0, 0, 9, 14, 11, 15, 0, 0, 0, 0, 1, 5, 0, 15, 5, 0, 0, 0, 0, 0, 0,
    16, 5, 0, 0, 0, 0, 0, 3, 16, 4, 0, 0, 0, 0, 1, 12, 14, 1, 0, 0, 0, 5, 12, 16, 16, 14, 1, 0, 0,
    8, 16, 14, 10, 13, 3,
];

/// The model's input for [`DIGIT`]: each level divided by 16, as little-endian FP32.
pub fn digit_input() -> Vec<u8> {
    DIGIT
        .iter()
        .flat_map(|&l| (f32::from(l) / 16.0).to_le_bytes())
        .collect()
}

/// What the probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `load-by-name` and `compute`.
    ByName,
    /// `local.run` on the same input.
    Local,
    /// `load` of the request body.
    Load,
    /// An I64 input where the model takes FP32.
    WrongType,
    /// A `[1, 63]` input where the model takes `[N, 64]`.
    WrongShape,
    /// An FP16 input (a type tract is not given across the boundary).
    Fp16,
    /// An input name the model does not have.
    BadName,
    /// `compute` many times on one context.
    ComputeLoop,
    /// Tensors created and kept until the host stops the guest.
    TensorFlood,
    /// The request body's inputs through `wasi:nn` or `local` (metadata `via`), for
    /// benchmarks.
    Run,
}

impl Mode {
    /// Parses metadata `mode` (absent: [`Mode::ByName`]).
    pub fn parse(mode: Option<&str>) -> Result<Self, String> {
        Ok(match mode.unwrap_or("by-name") {
            "by-name" => Self::ByName,
            "local" => Self::Local,
            "load" => Self::Load,
            "wrong-type" => Self::WrongType,
            "wrong-shape" => Self::WrongShape,
            "fp16" => Self::Fp16,
            "bad-name" => Self::BadName,
            "compute-loop" => Self::ComputeLoop,
            "tensor-flood" => Self::TensorFlood,
            "run" => Self::Run,
            other => return Err(format!("unknown mode {other:?}")),
        })
    }
}

/// One input tensor of mode `run`, as decoded from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The model's input name.
    pub name: String,
    /// Element type code: 0 FP32, 1 U8, 2 I32, 3 I64.
    pub ty: u8,
    /// Dimensions.
    pub dims: Vec<u32>,
    /// Little-endian element bytes.
    pub data: Vec<u8>,
}

/// Decodes mode `run`'s body: per tensor, little-endian `u32` name length, the name,
/// one type byte, `u32` rank, `u32` dimensions, `u32` data length, the data.
pub fn decode_inputs(mut body: &[u8]) -> Result<Vec<Input>, String> {
    fn take<'a>(body: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
        if body.len() < n {
            return Err("the body ends inside a tensor".into());
        }
        let (head, rest) = body.split_at(n);
        *body = rest;
        Ok(head)
    }
    fn word(body: &mut &[u8]) -> Result<u32, String> {
        let b = take(body, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    let mut inputs = Vec::new();
    while !body.is_empty() {
        let len = word(&mut body)? as usize;
        let name = String::from_utf8(take(&mut body, len)?.to_vec())
            .map_err(|_| "a tensor name is not UTF-8".to_string())?;
        let ty = take(&mut body, 1)?[0];
        let rank = word(&mut body)? as usize;
        let dims = (0..rank)
            .map(|_| word(&mut body))
            .collect::<Result<Vec<_>, _>>()?;
        let len = word(&mut body)? as usize;
        let data = take(&mut body, len)?.to_vec();
        inputs.push(Input {
            name,
            ty,
            dims,
            data,
        });
    }
    Ok(inputs)
}

/// One output tensor of a run, for the answer.
pub struct Output {
    /// Its name.
    pub name: String,
    /// Its element type, WIT spelling.
    pub ty: String,
    /// Its dimensions.
    pub dims: Vec<u32>,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// `{"outputs": [...]}`, sorted by name so both interfaces compare equal.
pub fn outputs_answer(mut outputs: Vec<Output>) -> Value {
    outputs.sort_by(|a, b| a.name.cmp(&b.name));
    let outputs: Vec<Value> = outputs
        .iter()
        .map(|o| json!({ "name": o.name, "type": o.ty, "dims": o.dims, "hex": hex(&o.data) }))
        .collect();
    json!({ "outputs": outputs })
}

/// `{"call", "code", "data"}` for a refused call.
pub fn error_answer(call: &str, code: &str, data: &str) -> Value {
    json!({ "call": call, "code": code, "data": data })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_modes_and_encodes_outputs() {
        assert_eq!(Mode::parse(None), Ok(Mode::ByName));
        assert_eq!(Mode::parse(Some("fp16")), Ok(Mode::Fp16));
        assert!(Mode::parse(Some("nope")).is_err());
        assert_eq!(digit_input().len(), 256);
        let answer = outputs_answer(vec![
            Output {
                name: "b".into(),
                ty: "FP32".into(),
                dims: vec![1],
                data: vec![0, 255],
            },
            Output {
                name: "a".into(),
                ty: "I64".into(),
                dims: vec![],
                data: vec![],
            },
        ]);
        assert_eq!(answer["outputs"][0]["name"], "a");
        assert_eq!(answer["outputs"][1]["hex"], "00ff");
    }

    #[test]
    fn decodes_run_bodies_and_refuses_truncated_ones() {
        let mut body = Vec::new();
        body.extend_from_slice(&1u32.to_le_bytes());
        body.push(b'x');
        body.push(0);
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&8u32.to_le_bytes());
        body.extend_from_slice(&[1; 8]);
        let inputs = decode_inputs(&body).expect("decodes");
        assert_eq!(
            inputs,
            vec![Input {
                name: "x".into(),
                ty: 0,
                dims: vec![2],
                data: vec![1; 8],
            }]
        );
        assert!(decode_inputs(&body[..body.len() - 1]).is_err());
    }
}
