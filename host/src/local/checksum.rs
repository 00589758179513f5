//! SHA-256 verification of model files, so a corrupted or swapped file never loads.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A model file failed its integrity check.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    /// The file could not be opened or read.
    #[error("cannot read {path:?}: {error}")]
    Read {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file's digest differs from the configured one.
    #[error("checksum mismatch for {path:?}: expected sha256 {expected}, file has {actual}")]
    Mismatch {
        /// The model file.
        path: PathBuf,
        /// The configured digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
}

/// Lower-case hex SHA-256 of the file at `path`, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String, ChecksumError> {
    let read_err = |error| ChecksumError::Read {
        path: path.to_owned(),
        error,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The lower-case hex SHA-256 of `bytes`: the name of a component or model version.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks that the file at `path` has the digest `expected` (hex, any case).
pub fn verify(path: &Path, expected: &str) -> Result<(), ChecksumError> {
    let actual = sha256_file(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(ChecksumError::Mismatch {
            path: path.to_owned(),
            expected: expected.to_ascii_lowercase(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_a_changed_file() {
        let dir = std::env::temp_dir().join(format!("hybrid-checksum-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("m.onnx");
        std::fs::write(&path, b"abc").expect("write");
        // sha256("abc")
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        verify(&path, &good.to_uppercase()).expect("matches");
        std::fs::write(&path, b"abd").expect("write");
        let err = verify(&path, good).expect_err("mismatch").to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains(good),
            "{err}"
        );
        let missing = verify(&dir.join("absent.onnx"), good)
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("cannot read"), "{missing}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
