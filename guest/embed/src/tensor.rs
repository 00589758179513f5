//! Tensors as the pipeline exchanges them with the host's `local` interface: a mirror of
//! the WIT `named-tensor` that native unit tests can build, plus the i64 and fp32
//! encodings (row-major, little-endian, as the WIT contract fixes).

/// Element type of a tensor, mirroring WIT `tensors.tensor-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A tensor bound to a model input or output name, mirroring WIT `tensors.named-tensor`.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// The model's name for this input or output.
    pub name: String,
    /// Dimensions, outermost first.
    pub dims: Vec<u32>,
    /// Element type of `data`.
    pub ty: ElementType,
    /// Row-major, little-endian element bytes.
    pub data: Vec<u8>,
}

impl NamedTensor {
    /// An i64 tensor holding `values` with dimensions `dims`.
    pub fn i64(name: &str, dims: &[u32], values: &[i64]) -> Self {
        Self {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ty: ElementType::I64,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An fp32 tensor holding `values` with dimensions `dims`.
    pub fn fp32(name: &str, dims: &[u32], values: &[f32]) -> Self {
        Self {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ty: ElementType::Fp32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The elements of an fp32 tensor, or why they cannot be read.
    pub fn to_f32(&self) -> Result<Vec<f32>, String> {
        if self.ty != ElementType::Fp32 {
            return Err(format!("{} is {:?}, expected fp32", self.name, self.ty));
        }
        if !self.data.len().is_multiple_of(4) {
            return Err(format!(
                "{} has {} bytes, not a whole number of fp32 values",
                self.name,
                self.data.len()
            ));
        }
        Ok(self
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i64_is_little_endian() {
        let t = NamedTensor::i64("ids", &[2], &[101, -1]);
        assert_eq!(&t.data[..8], &[101, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&t.data[8..], &[0xFF; 8]);
    }

    #[test]
    fn fp32_round_trips_and_rejects_other_types() {
        let t = NamedTensor::fp32("x", &[2], &[1.0, -0.5]);
        assert_eq!(t.to_f32(), Ok(vec![1.0, -0.5]));
        let ids = NamedTensor::i64("ids", &[1], &[1]);
        assert!(ids.to_f32().expect_err("i64").contains("expected fp32"));
    }
}
