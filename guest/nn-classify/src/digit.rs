//! The request body, the model input and the answer, without any host calls.

use serde_json::{Value, json};

/// Pixels in an 8x8 image.
pub const PIXELS: usize = 64;
/// The darkest grey level; the model takes `level / MAX_LEVEL` (0.0 to 1.0).
pub const MAX_LEVEL: f32 = 16.0;
/// The model used when the request names none.
pub const DEFAULT_MODEL: &str = "digits-v1";
/// Classes listed under `top` in the answer.
pub const TOP: usize = 5;

/// Reads `{"pixels": [64 numbers 0..=16]}` into the model's input values (level / 16,
/// row-major), or says what is wrong with the body.
pub fn input(body: &[u8]) -> Result<Vec<f32>, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let pixels = json
        .get("pixels")
        .and_then(Value::as_array)
        .ok_or("the body must be {\"pixels\": [64 grey levels 0 to 16]}")?;
    if pixels.len() != PIXELS {
        return Err(format!(
            "\"pixels\" has {} values; an 8x8 image has {PIXELS}",
            pixels.len()
        ));
    }
    pixels
        .iter()
        .enumerate()
        .map(|(i, p)| match p.as_f64() {
            Some(level) if (0.0..=f64::from(MAX_LEVEL)).contains(&level) => {
                Ok(level as f32 / MAX_LEVEL)
            }
            _ => Err(format!("pixel {i} is {p}, not a grey level from 0 to 16")),
        })
        .collect()
}

/// Classes by falling probability, as `(class, probability)`.
pub fn ranked(probabilities: &[f32]) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = probabilities.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

/// The answer for `probabilities` from `model`.
pub fn answer(model: &str, probabilities: &[f32]) -> Result<Value, String> {
    let ranked = ranked(probabilities);
    let Some(&(label, confidence)) = ranked.first() else {
        return Err(format!("model {model:?} returned no probabilities"));
    };
    let top: Vec<Value> = ranked
        .iter()
        .take(TOP)
        .map(|(c, p)| json!([c, p]))
        .collect();
    Ok(json!({
        "label": label,
        "confidence": confidence,
        "top": top,
        "probabilities": probabilities,
        "model": model,
    }))
}

/// Decodes little-endian FP32 tensor bytes.
pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_levels_and_names_bad_pixels() {
        let white = vec![16.0; PIXELS];
        let body = serde_json::to_vec(&json!({ "pixels": white })).expect("json");
        assert_eq!(input(&body), Ok(vec![1.0; PIXELS]));
        let short = br#"{"pixels": [1, 2]}"#;
        assert!(input(short).expect_err("short").contains("has 2 values"));
        let mut bad = vec![json!(0); PIXELS];
        bad[5] = json!(17);
        let body = serde_json::to_vec(&json!({ "pixels": bad })).expect("json");
        assert!(input(&body).expect_err("bad").starts_with("pixel 5 is 17"));
    }

    #[test]
    fn ranks_by_probability_then_class() {
        assert_eq!(ranked(&[0.1, 0.6, 0.3]), vec![(1, 0.6), (2, 0.3), (0, 0.1)]);
        let a = answer("m", &[0.2, 0.8]).expect("answer");
        assert_eq!(a["label"], 1);
        assert_eq!(a["top"][1][0], 0);
        assert!(answer("m", &[]).is_err());
    }

    #[test]
    fn decodes_little_endian() {
        assert_eq!(f32s(&1.5f32.to_le_bytes()), vec![1.5]);
    }
}
