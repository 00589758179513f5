//! The local model run: one image through `digits-v1` (or the model `setting.model`
//! names) with `local.run`.
//!
//! Steps: find the model with `list-models` (its version goes in the routing record; a
//! model that is not loaded is `upstream`); build input `input`, fp32 `[1, 64]`, each
//! grey level divided by 16 (0.0 to 1.0, as the model was trained); run it; read
//! `probabilities` (fp32 `[1, 10]`) and `label` (i64 `[1]`, the arg-max when the model
//! has no such output). The confidence is the top probability.

use hybrid_guest::tensor::NamedTensor;
use hybrid_guest::{Error, Host};

use crate::request::{Digit, MAX_LEVEL, PIXELS};

/// The model's input name.
pub const INPUT: &str = "input";
/// The output holding one probability per class.
pub const PROBABILITIES: &str = "probabilities";
/// The output holding the predicted class.
pub const LABEL: &str = "label";
/// Classes: the digits 0 to 9.
pub const CLASSES: usize = 10;

/// What the local model said about one image.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAnswer {
    /// The predicted digit, 0 to 9.
    pub label: u8,
    /// The top probability, 0.0 to 1.0.
    pub confidence: f32,
    /// The model's name.
    pub model: String,
    /// The model's version, as the host reports it.
    pub version: String,
}

/// Runs `model` on `digit`'s image.
pub fn classify(host: &mut impl Host, model: &str, digit: &Digit) -> Result<LocalAnswer, Error> {
    let info = host
        .list_models()
        .into_iter()
        .find(|m| m.name == model)
        .ok_or_else(|| {
            Error::upstream(format!("local model {model:?} is not loaded on this host"))
        })?;
    let input: Vec<f32> = digit.levels.iter().map(|l| l / MAX_LEVEL).collect();
    let input = NamedTensor::fp32(INPUT, &[1, PIXELS as u32], &input)?;
    let outputs = host
        .run_model(model, &[input])
        .map_err(|e| Error::upstream(format!("local model {model:?}: {e}")))?;
    let unusable = |what: String| Error::upstream(format!("local model {model:?}: {what}"));
    let probabilities = outputs
        .iter()
        .find(|t| t.name == PROBABILITIES)
        .ok_or_else(|| unusable(format!("no {PROBABILITIES:?} output")))?
        .to_f32()
        .map_err(|e| unusable(e.to_string()))?;
    if probabilities.len() != CLASSES || probabilities.iter().any(|p| !p.is_finite()) {
        return Err(unusable(format!(
            "{PROBABILITIES:?} has {} values, expected {CLASSES} finite ones",
            probabilities.len()
        )));
    }
    let best = (0..CLASSES).fold(0, |b, i| {
        if probabilities[i] > probabilities[b] {
            i
        } else {
            b
        }
    });
    let label = match outputs.iter().find(|t| t.name == LABEL) {
        None => best,
        Some(t) => match t.to_i64().map_err(|e| unusable(e.to_string()))?.as_slice() {
            [l] if (0..CLASSES as i64).contains(l) => *l as usize,
            other => return Err(unusable(format!("{LABEL:?} is {other:?}, not one digit"))),
        },
    };
    Ok(LocalAnswer {
        label: label as u8,
        confidence: probabilities[best],
        model: info.name,
        version: info.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake;
    use hybrid_guest::local::LocalError;

    fn digit() -> Digit {
        let mut levels = [0.0; PIXELS];
        levels[0] = 16.0;
        levels[1] = 8.0;
        Digit { levels, text: None }
    }

    #[test]
    fn runs_the_model_on_levels_over_16_and_reads_label_and_confidence() {
        let mut host = fake::confident(3, 0.81);
        let answer = classify(&mut host, "digits-v1", &digit()).expect("runs");
        assert_eq!(
            answer,
            LocalAnswer {
                label: 3,
                confidence: 0.81,
                model: "digits-v1".into(),
                version: "1".into(),
            }
        );
        let input = fake::image(&host.runs[0]);
        assert_eq!(input.len(), PIXELS);
        assert_eq!((input[0], input[1], input[2]), (1.0, 0.5, 0.0));
    }

    #[test]
    fn failures_are_upstream_and_name_the_model() {
        let mut host = fake::confident(3, 0.81);
        let e = classify(&mut host, "digits-v2", &digit()).expect_err("absent");
        assert_eq!(
            e,
            Error::upstream("local model \"digits-v2\" is not loaded on this host")
        );
        host.on_run_model = fake::fail(LocalError::ShapeMismatch("input is [1, 63]".into()));
        let e = classify(&mut host, "digits-v1", &digit()).expect_err("fails");
        assert_eq!(
            e.to_string(),
            "upstream: local model \"digits-v1\": shape-mismatch: input is [1, 63]"
        );
        host.on_run_model = fake::digits(vec![0.5; 9]);
        let e = classify(&mut host, "digits-v1", &digit()).expect_err("9 classes");
        assert!(e.message().contains("has 9 values"), "{e}");
    }
}
