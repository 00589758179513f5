//! Tensors as the pipelines exchange them with the host's `local` interface: a mirror of
//! the WIT `named-tensor` that native unit tests can build, with the fp32 and i64
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
    /// An fp32 tensor holding `values` with dimensions `dims`.
    pub fn fp32(name: &str, dims: &[u32], values: &[f32]) -> Self {
        Self {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ty: ElementType::Fp32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// An i64 tensor holding `values` with dimensions `dims`.
    pub fn i64(name: &str, dims: &[u32], values: &[i64]) -> Self {
        Self {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ty: ElementType::I64,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The elements of an fp32 tensor, or why they cannot be read.
    pub fn to_f32(&self) -> Result<Vec<f32>, String> {
        Ok(self
            .elements(ElementType::Fp32, 4)?
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// The elements of an i64 tensor, or why they cannot be read.
    pub fn to_i64(&self) -> Result<Vec<i64>, String> {
        Ok(self
            .elements(ElementType::I64, 8)?
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect())
    }

    fn elements(
        &self,
        ty: ElementType,
        size: usize,
    ) -> Result<std::slice::ChunksExact<'_, u8>, String> {
        if self.ty != ty {
            return Err(format!("{} is {:?}, expected {ty:?}", self.name, self.ty));
        }
        if !self.data.len().is_multiple_of(size) {
            return Err(format!(
                "{} has {} bytes, not a whole number of {ty:?} values",
                self.name,
                self.data.len()
            ));
        }
        Ok(self.data.chunks_exact(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp32_and_i64_round_trip_little_endian() {
        let t = NamedTensor::fp32("x", &[2], &[1.0, -0.5]);
        assert_eq!(&t.data[..4], &1.0f32.to_le_bytes());
        assert_eq!(t.to_f32(), Ok(vec![1.0, -0.5]));
        let ids = NamedTensor::i64("label", &[2], &[7, -1]);
        assert_eq!(&ids.data[..8], &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ids.to_i64(), Ok(vec![7, -1]));
    }

    #[test]
    fn refuses_the_wrong_type_or_a_ragged_length() {
        let ids = NamedTensor::i64("label", &[1], &[1]);
        assert!(ids.to_f32().expect_err("i64").contains("expected Fp32"));
        let mut t = NamedTensor::fp32("p", &[1], &[1.0]);
        t.data.push(0);
        assert!(t.to_f32().expect_err("5 bytes").contains("5 bytes"));
    }
}
