//! Tensors as they cross the sandbox boundary (WIT `tensors`): the generated types, with
//! typed builders and readers over `&[f32]`, `&[i64]`, `&[i32]` and `&[u8]`.
//!
//! The WIT contract fixes the layout: row-major bytes, every element little-endian, and
//! exactly `product(dimensions) * element size` of them (an empty dimension list is a
//! scalar, one element). Builders check that the values fill the dimensions; readers
//! check the element type and that the bytes match the dimensions, so a model answering
//! something else is an error naming the tensor, never a panic or a silent truncation.

use std::fmt;

pub use crate::bindings::hybrid::inference::tensors::{NamedTensor, Tensor, TensorType};

/// Why a tensor could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorError {
    /// The tensor holds another element type than the one asked for.
    Type {
        /// The tensor's name (empty for an unnamed [`Tensor`]).
        name: String,
        /// The type asked for.
        expected: TensorType,
        /// The tensor's type.
        actual: TensorType,
    },
    /// The values given to a builder do not fill the dimensions.
    Values {
        /// The tensor's name (empty for an unnamed [`Tensor`]).
        name: String,
        /// The dimensions asked for.
        dims: Vec<u32>,
        /// The values given.
        count: usize,
    },
    /// The tensor's bytes do not match its dimensions and element type.
    Bytes {
        /// The tensor's name (empty for an unnamed [`Tensor`]).
        name: String,
        /// The tensor's dimensions.
        dims: Vec<u32>,
        /// The tensor's element type.
        ty: TensorType,
        /// The bytes it holds.
        len: usize,
    },
}

impl TensorError {
    /// The same error, about the tensor called `name`.
    fn named(mut self, tensor: &str) -> Self {
        match &mut self {
            Self::Type { name, .. } | Self::Values { name, .. } | Self::Bytes { name, .. } => {
                tensor.clone_into(name)
            }
        }
        self
    }
}

impl fmt::Display for TensorError {
    /// E.g. `probabilities is i64, expected fp32`, `input: 63 values do not fill
    /// dimensions [1, 64] (64 elements)`, or `p has 5 bytes; [1] of fp32 takes 4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = |name: &str| {
            if name.is_empty() {
                "tensor".to_owned()
            } else {
                name.to_owned()
            }
        };
        match self {
            Self::Type {
                name,
                expected,
                actual,
            } => write!(
                f,
                "{} is {}, expected {}",
                label(name),
                actual.name(),
                expected.name()
            ),
            Self::Values { name, dims, count } => match element_count(dims) {
                Some(n) => write!(
                    f,
                    "{}: {count} values do not fill dimensions {dims:?} ({n} elements)",
                    label(name)
                ),
                None => write!(
                    f,
                    "{}: dimensions {dims:?} hold more elements than fit in memory",
                    label(name)
                ),
            },
            Self::Bytes {
                name,
                dims,
                ty,
                len,
            } => match element_count(dims) {
                Some(n) => write!(
                    f,
                    "{} has {len} bytes; {dims:?} of {ty} takes {}",
                    label(name),
                    n.saturating_mul(ty.size())
                ),
                None => write!(
                    f,
                    "{} has {len} bytes; {dims:?} of {ty} takes more than fits in memory",
                    label(name)
                ),
            },
        }
    }
}

impl std::error::Error for TensorError {}

impl From<TensorError> for crate::Error {
    /// A tensor the guest built wrong is a bug: `internal`. Reading a model's output, map
    /// the error to `upstream` yourself (the model answered something unusable).
    fn from(error: TensorError) -> Self {
        Self::internal(error.to_string())
    }
}

/// The number of elements `dims` holds: their product (1 for a scalar), or `None` on
/// overflow.
pub fn element_count(dims: &[u32]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
}

impl TensorType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::Fp32 | Self::I32 => 4,
            Self::U8 => 1,
            Self::I64 => 8,
        }
    }

    /// The type's name as the host's messages spell it: `fp32`, `u8`, `i32`, `i64`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::U8 => "u8",
            Self::I32 => "i32",
            Self::I64 => "i64",
        }
    }
}

impl fmt::Display for TensorType {
    /// [`TensorType::name`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An element type's little-endian encoding.
trait Element: Copy {
    const TYPE: TensorType;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

impl Element for f32 {
    const TYPE: TensorType = TensorType::Fp32;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        Self::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for i64 {
    const TYPE: TensorType = TensorType::I64;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        Self::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl Element for i32 {
    const TYPE: TensorType = TensorType::I32;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        Self::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl Element for u8 {
    const TYPE: TensorType = TensorType::U8;
    fn put(self, out: &mut Vec<u8>) {
        out.push(self);
    }
    fn get(b: &[u8]) -> Self {
        b[0]
    }
}

impl Tensor {
    /// An fp32 tensor of dimensions `dims` holding `values`.
    pub fn from_f32(dims: &[u32], values: &[f32]) -> Result<Self, TensorError> {
        build(dims, values)
    }

    /// An i64 tensor of dimensions `dims` holding `values`.
    pub fn from_i64(dims: &[u32], values: &[i64]) -> Result<Self, TensorError> {
        build(dims, values)
    }

    /// An i32 tensor of dimensions `dims` holding `values`.
    pub fn from_i32(dims: &[u32], values: &[i32]) -> Result<Self, TensorError> {
        build(dims, values)
    }

    /// A u8 tensor of dimensions `dims` holding `values`.
    pub fn from_u8(dims: &[u32], values: &[u8]) -> Result<Self, TensorError> {
        build(dims, values)
    }

    /// The elements of an fp32 tensor.
    pub fn to_f32(&self) -> Result<Vec<f32>, TensorError> {
        read(self)
    }

    /// The elements of an i64 tensor.
    pub fn to_i64(&self) -> Result<Vec<i64>, TensorError> {
        read(self)
    }

    /// The elements of an i32 tensor.
    pub fn to_i32(&self) -> Result<Vec<i32>, TensorError> {
        read(self)
    }

    /// The elements of a u8 tensor.
    pub fn to_u8(&self) -> Result<Vec<u8>, TensorError> {
        read(self)
    }
}

impl NamedTensor {
    /// `tensor` bound to the model input or output `name`.
    pub fn new(name: &str, tensor: Tensor) -> Self {
        Self {
            name: name.to_owned(),
            tensor,
        }
    }

    /// An fp32 tensor named `name`, of dimensions `dims`, holding `values`.
    pub fn fp32(name: &str, dims: &[u32], values: &[f32]) -> Result<Self, TensorError> {
        named(name, Tensor::from_f32(dims, values))
    }

    /// An i64 tensor named `name`, of dimensions `dims`, holding `values`.
    pub fn i64(name: &str, dims: &[u32], values: &[i64]) -> Result<Self, TensorError> {
        named(name, Tensor::from_i64(dims, values))
    }

    /// An i32 tensor named `name`, of dimensions `dims`, holding `values`.
    pub fn i32(name: &str, dims: &[u32], values: &[i32]) -> Result<Self, TensorError> {
        named(name, Tensor::from_i32(dims, values))
    }

    /// A u8 tensor named `name`, of dimensions `dims`, holding `values`.
    pub fn u8(name: &str, dims: &[u32], values: &[u8]) -> Result<Self, TensorError> {
        named(name, Tensor::from_u8(dims, values))
    }

    /// The tensor's dimensions.
    pub fn dims(&self) -> &[u32] {
        &self.tensor.dimensions
    }

    /// The elements of an fp32 tensor; errors name the tensor.
    pub fn to_f32(&self) -> Result<Vec<f32>, TensorError> {
        self.tensor.to_f32().map_err(|e| e.named(&self.name))
    }

    /// The elements of an i64 tensor; errors name the tensor.
    pub fn to_i64(&self) -> Result<Vec<i64>, TensorError> {
        self.tensor.to_i64().map_err(|e| e.named(&self.name))
    }

    /// The elements of an i32 tensor; errors name the tensor.
    pub fn to_i32(&self) -> Result<Vec<i32>, TensorError> {
        self.tensor.to_i32().map_err(|e| e.named(&self.name))
    }

    /// The elements of a u8 tensor; errors name the tensor.
    pub fn to_u8(&self) -> Result<Vec<u8>, TensorError> {
        self.tensor.to_u8().map_err(|e| e.named(&self.name))
    }
}

fn named(name: &str, tensor: Result<Tensor, TensorError>) -> Result<NamedTensor, TensorError> {
    match tensor {
        Ok(tensor) => Ok(NamedTensor::new(name, tensor)),
        Err(e) => Err(e.named(name)),
    }
}

fn build<T: Element>(dims: &[u32], values: &[T]) -> Result<Tensor, TensorError> {
    if element_count(dims) != Some(values.len()) {
        return Err(TensorError::Values {
            name: String::new(),
            dims: dims.to_vec(),
            count: values.len(),
        });
    }
    let mut data = Vec::with_capacity(values.len() * T::TYPE.size());
    values.iter().for_each(|v| v.put(&mut data));
    Ok(Tensor {
        dimensions: dims.to_vec(),
        ty: T::TYPE,
        data,
    })
}

fn read<T: Element>(tensor: &Tensor) -> Result<Vec<T>, TensorError> {
    if tensor.ty != T::TYPE {
        return Err(TensorError::Type {
            name: String::new(),
            expected: T::TYPE,
            actual: tensor.ty,
        });
    }
    let size = T::TYPE.size();
    let expected = element_count(&tensor.dimensions).and_then(|n| n.checked_mul(size));
    if expected != Some(tensor.data.len()) {
        return Err(TensorError::Bytes {
            name: String::new(),
            dims: tensor.dimensions.clone(),
            ty: tensor.ty,
            len: tensor.data.len(),
        });
    }
    Ok(tensor.data.chunks_exact(size).map(T::get).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_little_endian() {
        let t = NamedTensor::fp32("x", &[2], &[1.0, -0.5]).expect("fits");
        assert_eq!(t.tensor.data, [0, 0, 0x80, 0x3F, 0, 0, 0, 0xBF]);
        assert_eq!(t.to_f32(), Ok(vec![1.0, -0.5]));
        let ids = NamedTensor::i64("ids", &[2], &[101, -1]).expect("fits");
        assert_eq!(&ids.tensor.data[..8], &[101, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&ids.tensor.data[8..], &[0xFF; 8]);
        assert_eq!(ids.to_i64(), Ok(vec![101, -1]));
        let t = NamedTensor::i32("n", &[1, 2], &[7, -2]).expect("fits");
        assert_eq!(&t.tensor.data[..4], &[7, 0, 0, 0]);
        assert_eq!(t.to_i32(), Ok(vec![7, -2]));
        let t = NamedTensor::u8("px", &[3], &[0, 128, 255]).expect("fits");
        assert_eq!((t.dims(), t.to_u8()), (&[3][..], Ok(vec![0, 128, 255])));
    }

    #[test]
    fn a_scalar_is_one_element() {
        let t = Tensor::from_f32(&[], &[2.5]).expect("scalar");
        assert_eq!(t.to_f32(), Ok(vec![2.5]));
        assert_eq!(element_count(&[]), Some(1));
        assert_eq!(element_count(&[2, 0, 3]), Some(0));
    }

    #[test]
    fn building_checks_the_values_fill_the_dimensions() {
        let e = NamedTensor::fp32("input", &[1, 64], &[0.0; 63]).expect_err("63 of 64");
        assert_eq!(
            e.to_string(),
            "input: 63 values do not fill dimensions [1, 64] (64 elements)"
        );
        let e = Tensor::from_i64(&[2], &[1]).expect_err("1 of 2");
        assert_eq!(
            e.to_string(),
            "tensor: 1 values do not fill dimensions [2] (2 elements)"
        );
        assert_eq!(
            crate::Error::from(e).case(),
            "internal",
            "a tensor the guest built wrong is a bug"
        );
    }

    #[test]
    fn reading_refuses_the_wrong_type_or_a_length_off_the_dimensions() {
        let ids = NamedTensor::i64("label", &[1], &[1]).expect("fits");
        let e = ids.to_f32().expect_err("i64");
        assert_eq!(e.to_string(), "label is i64, expected fp32");
        let mut t = NamedTensor::fp32("p", &[1], &[1.0]).expect("fits");
        t.tensor.data.push(0);
        assert_eq!(
            t.to_f32().expect_err("5 bytes").to_string(),
            "p has 5 bytes; [1] of fp32 takes 4"
        );
        t.tensor.data.truncate(3);
        assert!(
            t.to_f32()
                .expect_err("ragged")
                .to_string()
                .contains("3 bytes")
        );
        t.tensor.dimensions = vec![u32::MAX, u32::MAX, u32::MAX];
        assert!(
            t.to_f32()
                .expect_err("overflow")
                .to_string()
                .contains("more than fits in memory")
        );
    }
}
