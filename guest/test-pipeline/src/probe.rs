//! The malformed `local::run` calls of the probe modes, described as plain data so the
//! host's validation can be tested case by case.
//!
//! Every probe is a valid Silero VAD call (`input` fp32 [1, 576], `h` and `c` fp32
//! [1, 1, 128]) with exactly one thing wrong.

/// A probe mode: which part of the call is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `input` has dimensions [1, 100].
    BadShape,
    /// `input` is i64.
    BadType,
    /// `input` declares [1, 576] fp32 but carries 10 bytes.
    BadBytes,
    /// The model is `no-such-model`.
    UnknownModel,
    /// `c` is missing.
    MissingInput,
}

/// Element type of a probe input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// 32-bit float, 4 bytes.
    Fp32,
    /// 64-bit signed integer, 8 bytes.
    I64,
}

/// One input tensor of a probe call; its data is `bytes` zero bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInput {
    /// Input name.
    pub name: &'static str,
    /// Dimensions.
    pub dims: Vec<u32>,
    /// Element type.
    pub ty: Element,
    /// Length of the data in bytes.
    pub bytes: usize,
}

/// The model every probe but `unknown-model` runs.
pub const VOICE_MODEL: &str = "silero-vad";

impl Probe {
    /// The model name the probe runs.
    pub fn model(self) -> &'static str {
        match self {
            Self::UnknownModel => "no-such-model",
            _ => VOICE_MODEL,
        }
    }

    /// The inputs the probe passes.
    pub fn inputs(self) -> Vec<ProbeInput> {
        let fp32 = |name, dims: &[u32]| ProbeInput {
            name,
            dims: dims.to_vec(),
            ty: Element::Fp32,
            bytes: dims.iter().product::<u32>() as usize * 4,
        };
        let mut input = fp32("input", &[1, 576]);
        match self {
            Self::BadShape => input = fp32("input", &[1, 100]),
            Self::BadType => {
                input.ty = Element::I64;
                input.bytes = 576 * 8;
            }
            Self::BadBytes => input.bytes = 10,
            Self::UnknownModel | Self::MissingInput => {}
        }
        let mut inputs = vec![input, fp32("h", &[1, 1, 128])];
        if self != Self::MissingInput {
            inputs.push(fp32("c", &[1, 1, 128]));
        }
        inputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_probe_breaks_one_thing() {
        let good = Probe::UnknownModel.inputs();
        assert_eq!(good.len(), 3);
        assert_eq!(good[0].bytes, 576 * 4);
        assert_eq!(Probe::UnknownModel.model(), "no-such-model");
        assert_eq!(Probe::BadShape.inputs()[0].dims, vec![1, 100]);
        assert_eq!(Probe::BadShape.inputs()[0].bytes, 400);
        assert_eq!(Probe::BadType.inputs()[0].ty, Element::I64);
        assert_eq!(Probe::BadBytes.inputs()[0].bytes, 10);
        let missing = Probe::MissingInput.inputs();
        assert!(missing.iter().all(|i| i.name != "c"));
        assert_eq!(Probe::MissingInput.model(), VOICE_MODEL);
    }
}
