//! Tensors as the host handles them: element type, dimensions and little-endian bytes.
//!
//! This mirrors the WIT `tensors` interface without depending on the wasm bindings, so the
//! model registry and its backends can be used and tested without a guest. Everything a
//! guest sends is validated here before a backend sees it: a tensor whose byte length does
//! not match its dimensions never reaches tract.

use std::fmt;

/// The element type of a tensor (the WIT `tensor-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// 32-bit IEEE 754 float.
    Fp32,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
}

impl ElementType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::Fp32 | Self::I32 => 4,
            Self::I64 => 8,
        }
    }

    /// Parses the names used in configs and manifests (`fp32`, `u8`, `i32`, `i64`).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "fp32" | "f32" => Ok(Self::Fp32),
            "u8" => Ok(Self::U8),
            "i32" => Ok(Self::I32),
            "i64" => Ok(Self::I64),
            other => Err(format!(
                "unsupported element type {other:?}; expected fp32, u8, i32 or i64"
            )),
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fp32 => "fp32",
            Self::U8 => "u8",
            Self::I32 => "i32",
            Self::I64 => "i64",
        })
    }
}

/// A dense tensor: row-major, little-endian element bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first; empty for a scalar.
    pub dims: Vec<usize>,
    /// Element type of `data`.
    pub ty: ElementType,
    /// `dims.product() * ty.size()` bytes.
    pub data: Vec<u8>,
}

impl Tensor {
    /// Builds an fp32 tensor from values (convenient for tests and benchmarks).
    pub fn from_f32(dims: Vec<usize>, values: &[f32]) -> Self {
        Self {
            dims,
            ty: ElementType::Fp32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// Decodes fp32 data; `None` if this is not an fp32 tensor.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        (self.ty == ElementType::Fp32).then(|| {
            self.data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    }

    /// The number of elements the dimensions describe, or `None` on overflow.
    pub fn element_count(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Checks that the byte length matches the dimensions and element type.
    pub fn check_len(&self) -> Result<(), String> {
        let expected = self
            .element_count()
            .and_then(|n| n.checked_mul(self.ty.size()))
            .ok_or_else(|| format!("dimensions {:?} overflow", self.dims))?;
        if expected == self.data.len() {
            Ok(())
        } else {
            Err(format!(
                "dimensions {:?} of {} need {expected} bytes, got {}",
                self.dims,
                self.ty,
                self.data.len()
            ))
        }
    }
}

/// A tensor bound to a model input or output name.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// The model's name for this input or output.
    pub name: String,
    /// The tensor.
    pub tensor: Tensor,
}

/// The declared type and shape of a model input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The model's name for it.
    pub name: String,
    /// Element type.
    pub ty: ElementType,
    /// One entry per dimension: `Some(n)` fixed, `None` chosen per call.
    pub shape: Vec<Option<usize>>,
}

impl TensorSpec {
    /// Checks a tensor against this spec: type, rank, fixed dimensions and byte length.
    pub fn check(&self, tensor: &Tensor) -> Result<(), ShapeProblem> {
        if tensor.ty != self.ty {
            return Err(ShapeProblem::Type(format!(
                "input {:?}: expected {}, got {}",
                self.name, self.ty, tensor.ty
            )));
        }
        let fits = tensor.dims.len() == self.shape.len()
            && self
                .shape
                .iter()
                .zip(&tensor.dims)
                .all(|(want, &got)| want.is_none_or(|w| w == got));
        if !fits {
            return Err(ShapeProblem::Shape(format!(
                "input {:?}: expected shape {}, got {:?}",
                self.name,
                self.shape_string(),
                tensor.dims
            )));
        }
        tensor
            .check_len()
            .map_err(|e| ShapeProblem::Shape(format!("input {:?}: {e}", self.name)))
    }

    /// The shape as people write it, with `?` for dimensions chosen per call.
    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .map(|d| d.map_or_else(|| "?".to_string(), |n| n.to_string()))
            .collect();
        format!("[{}]", dims.join(", "))
    }
}

impl fmt::Display for TensorSpec {
    /// `name: type shape`, e.g. `input: fp32 [?, 576]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {}", self.name, self.ty, self.shape_string())
    }
}

/// Why a tensor does not fit its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeProblem {
    /// The element type differs.
    Type(String),
    /// The rank, a fixed dimension or the byte length differs.
    Shape(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TensorSpec {
        TensorSpec {
            name: "input".into(),
            ty: ElementType::Fp32,
            shape: vec![None, Some(576)],
        }
    }

    #[test]
    fn accepts_any_size_on_dynamic_dimensions() {
        let t = Tensor::from_f32(vec![3, 576], &vec![0.0; 3 * 576]);
        assert_eq!(spec().check(&t), Ok(()));
    }

    #[test]
    fn names_the_wrong_shape() {
        let t = Tensor::from_f32(vec![1, 100], &[0.0; 100]);
        let Err(ShapeProblem::Shape(msg)) = spec().check(&t) else {
            panic!("expected a shape problem")
        };
        assert_eq!(
            msg,
            "input \"input\": expected shape [?, 576], got [1, 100]"
        );
    }

    #[test]
    fn names_the_wrong_type_and_byte_length() {
        let t = Tensor {
            dims: vec![1, 576],
            ty: ElementType::I64,
            data: vec![0; 576 * 8],
        };
        assert!(
            matches!(spec().check(&t), Err(ShapeProblem::Type(m)) if m.contains("expected fp32, got i64"))
        );
        let short = Tensor {
            dims: vec![1, 576],
            ty: ElementType::Fp32,
            data: vec![0; 10],
        };
        assert!(
            matches!(spec().check(&short), Err(ShapeProblem::Shape(m)) if m.contains("need 2304 bytes, got 10"))
        );
    }

    #[test]
    fn overflowing_dimensions_are_an_error_not_a_panic() {
        let t = Tensor {
            dims: vec![usize::MAX, 576],
            ty: ElementType::Fp32,
            data: vec![],
        };
        assert!(t.check_len().expect_err("overflow").contains("overflow"));
    }

    #[test]
    fn f32_round_trips_little_endian() {
        let t = Tensor::from_f32(vec![2], &[1.5, -2.0]);
        assert_eq!(t.data[..4], 1.5f32.to_le_bytes());
        assert_eq!(t.to_f32(), Some(vec![1.5, -2.0]));
    }
}
