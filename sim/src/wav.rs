//! Reads just enough of a RIFF/WAVE header to know how long the clip is, so the simulated
//! transcription can report realistic `usage.seconds` for the audio the host uploads.

/// Duration in seconds of a WAV file, or `None` if the bytes are not a readable WAV.
pub fn duration_seconds(bytes: &[u8]) -> Option<f64> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut byte_rate = None;
    let mut pos = 12;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let id = &header[0..4];
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body_start = pos + 8;
        match id {
            b"fmt " => {
                let fmt = bytes.get(body_start..body_start + 16)?;
                let rate = u32::from_le_bytes([fmt[8], fmt[9], fmt[10], fmt[11]]);
                byte_rate = Some(rate).filter(|r| *r > 0);
            }
            b"data" => {
                // Streamed WAVs leave the size at 0 or u32::MAX; trust the bytes we have.
                let available = bytes.len() - body_start;
                let declared = size as usize;
                let data_len = if declared == 0 || size == u32::MAX {
                    available
                } else {
                    declared.min(available)
                };
                return Some(data_len as f64 / f64::from(byte_rate?));
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos = body_start.checked_add(size as usize + (size as usize & 1))?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono WAV of `samples` silent samples at `rate` Hz.
    pub fn wav(rate: u32, samples: usize) -> Vec<u8> {
        let data_len = (samples * 2) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        out.resize(out.len() + samples * 2, 0);
        out
    }

    #[test]
    fn reads_duration_of_pcm_wav() {
        let seconds = duration_seconds(&wav(16_000, 37_600)).expect("a wav");
        assert!((seconds - 2.35).abs() < 1e-9);
    }

    #[test]
    fn rejects_non_wav_and_truncated_headers() {
        assert_eq!(duration_seconds(b"ID3 not a wav"), None);
        assert_eq!(duration_seconds(&wav(16_000, 10)[..20]), None);
    }
}
