//! WAV decoding: checks the declared content type, walks the RIFF chunks of the body and
//! returns the 16-bit PCM mono samples with their sample rate.
//!
//! Steps: check the `RIFF....WAVE` header, walk chunks (skipping unknown ones such as
//! `LIST`, honouring the pad byte after odd-sized chunks) until both `fmt ` and `data` are
//! found, validate the format (plain PCM or WAVE_FORMAT_EXTENSIBLE with the PCM subformat;
//! mono; 16 bits; an accepted rate) and decode the samples. Corrupt or truncated files are
//! [`Error::BadRequest`]; well-formed files in another format are
//! [`Error::Unsupported`] naming what was found and what is accepted.
//!
//! Streaming writers (sox or espeak writing to a pipe) cannot seek back to fill in sizes.
//! A data size of `0xFFFFFFFF` cannot be genuine under any body limit, so it means "to the
//! end of the body". A data size of 0 followed by more bytes is read the same way unless
//! those bytes start with a plausible chunk id (four printable ASCII characters), in which
//! case the data chunk really is empty and the file has no samples. A trailing odd byte
//! of a streamed data chunk (half a sample) is dropped.

use hybrid_guest::Error;

/// Sample rates the gate accepts; everything but 16 kHz is resampled to 16 kHz.
pub const ACCEPTED_RATES: [u32; 5] = [8000, 16000, 32000, 44100, 48000];

/// Content types (without parameters) the gate accepts; empty means "not declared".
const ACCEPTED_CONTENT_TYPES: [&str; 6] = [
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "application/octet-stream",
    "",
];

/// `fmt ` format tag for integer PCM.
const WAVE_FORMAT_PCM: u16 = 0x0001;
/// `fmt ` format tag for IEEE float samples (named in errors only).
const WAVE_FORMAT_IEEE_FLOAT: u16 = 0x0003;
/// `fmt ` format tag whose real format is the subformat GUID in the extension.
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Bytes 2..16 of every `KSDATAFORMAT_SUBTYPE_*` GUID; bytes 0..2 carry the format tag.
const KSDATAFORMAT_SUBTYPE_TAIL: [u8; 14] = [
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];
/// Data size streaming writers put in the header when they cannot seek back.
const STREAMING_SIZE: u32 = 0xFFFF_FFFF;

/// Decoded audio: 16-bit samples of one channel at `sample_rate` Hz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcm {
    /// Samples per second, one of [`ACCEPTED_RATES`].
    pub sample_rate: u32,
    /// The samples in time order.
    pub samples: Vec<i16>,
}

/// Accepts the WAV content types and `application/octet-stream` or none; parameters after
/// `;` and letter case are ignored.
pub fn check_content_type(content_type: &str) -> Result<(), Error> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if ACCEPTED_CONTENT_TYPES.contains(&essence.as_str()) {
        Ok(())
    } else {
        Err(Error::unsupported(format!(
            "content type {content_type} is not supported; send audio/wav"
        )))
    }
}

/// The parts of the `fmt ` chunk the gate needs.
#[derive(Debug, Clone, Copy)]
struct Format {
    tag: u16,
    channels: u16,
    sample_rate: u32,
    block_align: u16,
    bits_per_sample: u16,
}

/// Parses a WAV file into 16-bit mono samples, or says precisely why it cannot.
pub fn parse(body: &[u8]) -> Result<Pcm, Error> {
    if body.is_empty() {
        return Err(Error::bad_request("empty body: expected a WAV file"));
    }
    if body.len() < 12 || &body[0..4] != b"RIFF" || &body[8..12] != b"WAVE" {
        return Err(Error::bad_request(
            "not a WAV file: the body does not start with a RIFF/WAVE header",
        ));
    }
    // The RIFF size field is ignored on purpose: streaming writers leave it wrong, and the
    // chunk walk checks every size against the bytes actually present.
    let mut format = None;
    let mut data = None;
    let mut offset = 12;
    while offset < body.len() && (format.is_none() || data.is_none()) {
        let Some(header) = body.get(offset..offset + 8) else {
            return Err(Error::bad_request(format!(
                "truncated WAV: chunk header at byte {offset} runs past the end of the {}-byte body",
                body.len()
            )));
        };
        let id = [header[0], header[1], header[2], header[3]];
        let declared = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let start = offset + 8;
        let present = body.len() - start;
        if &id == b"data" {
            let bytes = data_bytes(&body[start..], declared)?;
            data = Some(bytes);
            // A streamed data chunk runs to the end; nothing after it can be a chunk.
            offset = start + bytes.len().max(declared as usize).min(present);
        } else {
            let size = declared as usize;
            if size > present {
                return Err(Error::bad_request(format!(
                    "truncated WAV: {} chunk declares {size} bytes but only {present} are present",
                    chunk_name(&id)
                )));
            }
            if &id == b"fmt " {
                format = Some(parse_format(&body[start..start + size])?);
            }
            offset = start + size;
        }
        // RIFF pads odd-sized chunks to an even length.
        if declared % 2 == 1 {
            offset += 1;
        }
    }
    let format = format.ok_or_else(|| Error::bad_request("corrupt WAV: no fmt chunk"))?;
    let data = data.ok_or_else(|| Error::bad_request("corrupt WAV: no data chunk"))?;
    check_format(&format)?;
    let samples: Vec<i16> = data
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    if samples.is_empty() {
        return Err(Error::bad_request(
            "no audio samples: the WAV data chunk is empty",
        ));
    }
    Ok(Pcm {
        sample_rate: format.sample_rate,
        samples,
    })
}

/// The bytes of a data chunk whose header declared `declared` bytes, given everything after
/// the header (see the module docs for the streaming-size rules).
fn data_bytes(rest: &[u8], declared: u32) -> Result<&[u8], Error> {
    let streaming = declared == STREAMING_SIZE
        || (declared == 0 && !rest.is_empty() && !starts_with_chunk_id(rest));
    if streaming {
        return Ok(rest);
    }
    let size = declared as usize;
    rest.get(..size).ok_or_else(|| {
        Error::bad_request(format!(
            "truncated WAV: data chunk declares {size} bytes but only {} are present",
            rest.len()
        ))
    })
}

/// Whether `bytes` begin with four printable ASCII characters, as every chunk id does.
fn starts_with_chunk_id(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4].iter().all(|b| (0x20..0x7F).contains(b))
}

/// A chunk id for messages: the id itself when printable, its hex bytes otherwise.
fn chunk_name(id: &[u8; 4]) -> String {
    if id.iter().all(|b| (0x20..0x7F).contains(b)) {
        format!("'{}'", String::from_utf8_lossy(id))
    } else {
        format!("0x{:02x}{:02x}{:02x}{:02x}", id[0], id[1], id[2], id[3])
    }
}

/// Reads the `fmt ` chunk, resolving WAVE_FORMAT_EXTENSIBLE to its subformat tag.
fn parse_format(chunk: &[u8]) -> Result<Format, Error> {
    if chunk.len() < 16 {
        return Err(Error::bad_request(format!(
            "corrupt WAV: fmt chunk is {} bytes; expected at least 16",
            chunk.len()
        )));
    }
    let u16_at = |i: usize| u16::from_le_bytes([chunk[i], chunk[i + 1]]);
    let mut tag = u16_at(0);
    if tag == WAVE_FORMAT_EXTENSIBLE {
        // cbSize (2) + valid bits (2) + channel mask (4) + subformat GUID (16) = 40 bytes.
        if chunk.len() < 40 {
            return Err(Error::bad_request(format!(
                "corrupt WAV: WAVE_FORMAT_EXTENSIBLE fmt chunk is {} bytes; expected at least 40",
                chunk.len()
            )));
        }
        let guid = &chunk[24..40];
        if guid[2..] != KSDATAFORMAT_SUBTYPE_TAIL {
            return Err(Error::unsupported(
                "WAVE_FORMAT_EXTENSIBLE with an unknown subformat is not supported; send 16-bit PCM mono",
            ));
        }
        tag = u16::from_le_bytes([guid[0], guid[1]]);
    }
    Ok(Format {
        tag,
        channels: u16_at(2),
        sample_rate: u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
        block_align: u16_at(12),
        bits_per_sample: u16_at(14),
    })
}

/// Accepts 16-bit PCM mono at one of [`ACCEPTED_RATES`].
fn check_format(format: &Format) -> Result<(), Error> {
    const ACCEPTED: &str = "16-bit PCM mono";
    match format.tag {
        WAVE_FORMAT_PCM => {}
        WAVE_FORMAT_IEEE_FLOAT => {
            return Err(Error::unsupported(format!(
                "{}-bit float samples are not supported; send {ACCEPTED}",
                format.bits_per_sample
            )));
        }
        other => {
            return Err(Error::unsupported(format!(
                "WAV format tag 0x{other:04x} is not supported; send {ACCEPTED}"
            )));
        }
    }
    if format.channels != 1 {
        return Err(Error::unsupported(format!(
            "{} channels are not supported; send {ACCEPTED}",
            format.channels
        )));
    }
    if format.bits_per_sample != 16 {
        return Err(Error::unsupported(format!(
            "{}-bit samples are not supported; send {ACCEPTED}",
            format.bits_per_sample
        )));
    }
    if format.block_align != 2 {
        return Err(Error::bad_request(format!(
            "corrupt WAV: block align is {} bytes but one 16-bit mono sample takes 2",
            format.block_align
        )));
    }
    if !ACCEPTED_RATES.contains(&format.sample_rate) {
        return Err(Error::unsupported(format!(
            "sample rate {} Hz is not supported; accepted rates are 8000, 16000, 32000, 44100 and 48000 Hz",
            format.sample_rate
        )));
    }
    Ok(())
}

/// Builds WAV files for tests: a writer with knobs for every defect the parser handles.
#[cfg(test)]
pub(crate) mod build {
    /// A `fmt ` chunk body for plain PCM.
    pub fn fmt_pcm(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&channels.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f
    }

    /// One chunk with its header and pad byte.
    pub fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut c = id.to_vec();
        c.extend_from_slice(&(body.len() as u32).to_le_bytes());
        c.extend_from_slice(body);
        if body.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    /// A RIFF/WAVE file from whole chunks.
    pub fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = chunks.concat();
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        w.extend_from_slice(b"WAVE");
        w.extend_from_slice(&body);
        w
    }

    /// Little-endian bytes of 16-bit samples.
    pub fn samples(s: &[i16]) -> Vec<u8> {
        s.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// A well-formed 16-bit mono WAV.
    pub fn wav(rate: u32, s: &[i16]) -> Vec<u8> {
        riff(&[
            chunk(b"fmt ", &fmt_pcm(1, 1, rate, 16)),
            chunk(b"data", &samples(s)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn bad_request(body: &[u8]) -> String {
        match parse(body) {
            Err(Error::BadRequest(m)) => m,
            other => panic!("expected bad-request, got {other:?}"),
        }
    }

    fn unsupported(body: &[u8]) -> String {
        match parse(body) {
            Err(Error::Unsupported(m)) => m,
            other => panic!("expected unsupported, got {other:?}"),
        }
    }

    #[test]
    fn content_types_accept_wav_names_and_parameters() {
        for ok in [
            "audio/wav",
            "Audio/X-WAV",
            "audio/wave; codecs=1",
            "audio/vnd.wave",
            "application/octet-stream",
            "",
        ] {
            assert_eq!(check_content_type(ok), Ok(()), "{ok}");
        }
        let err = check_content_type("audio/mpeg").expect_err("mp3 rejected");
        assert_eq!(
            err,
            Error::unsupported("content type audio/mpeg is not supported; send audio/wav")
        );
    }

    #[test]
    fn parses_plain_pcm() {
        let pcm = parse(&wav(16000, &[0, 1, -1, i16::MIN, i16::MAX])).expect("valid");
        assert_eq!(pcm.sample_rate, 16000);
        assert_eq!(pcm.samples, vec![0, 1, -1, i16::MIN, i16::MAX]);
    }

    #[test]
    fn skips_unknown_and_odd_sized_chunks() {
        let body = riff(&[
            chunk(b"LIST", b"INFOabc"), // 7 bytes: padded to 8
            chunk(b"fmt ", &fmt_pcm(1, 1, 44100, 16)),
            chunk(b"fact", &[1, 2, 3]),
            chunk(b"data", &samples(&[5, -5])),
            chunk(b"id3 ", b"trailing metadata"),
        ]);
        let pcm = parse(&body).expect("valid");
        assert_eq!((pcm.sample_rate, pcm.samples), (44100, vec![5, -5]));
    }

    #[test]
    fn accepts_extensible_pcm_and_rejects_extensible_float() {
        let ext = |sub: u16| {
            let mut f = fmt_pcm(WAVE_FORMAT_EXTENSIBLE, 1, 48000, 16);
            f.extend_from_slice(&22u16.to_le_bytes());
            f.extend_from_slice(&16u16.to_le_bytes());
            f.extend_from_slice(&4u32.to_le_bytes());
            f.extend_from_slice(&sub.to_le_bytes());
            f.extend_from_slice(&KSDATAFORMAT_SUBTYPE_TAIL);
            riff(&[chunk(b"fmt ", &f), chunk(b"data", &samples(&[7]))])
        };
        assert_eq!(parse(&ext(1)).expect("pcm subformat").samples, vec![7]);
        assert!(unsupported(&ext(3)).contains("float"));
    }

    #[test]
    fn corrupt_files_name_the_problem() {
        assert_eq!(bad_request(&[]), "empty body: expected a WAV file");
        assert!(bad_request(b"ID3\x03 this is an mp3").contains("RIFF/WAVE"));
        let no_fmt = riff(&[chunk(b"data", &samples(&[1]))]);
        assert_eq!(bad_request(&no_fmt), "corrupt WAV: no fmt chunk");
        let no_data = riff(&[chunk(b"fmt ", &fmt_pcm(1, 1, 16000, 16))]);
        assert_eq!(bad_request(&no_data), "corrupt WAV: no data chunk");
        let short_fmt = riff(&[chunk(b"fmt ", &[1, 0, 1, 0]), chunk(b"data", &[0, 0])]);
        assert!(bad_request(&short_fmt).contains("fmt chunk is 4 bytes"));
        let empty = riff(&[
            chunk(b"fmt ", &fmt_pcm(1, 1, 16000, 16)),
            chunk(b"data", &[]),
        ]);
        assert!(bad_request(&empty).starts_with("no audio samples"));
    }

    #[test]
    fn truncated_files_say_declared_and_present() {
        let mut body = wav(16000, &[1, 2, 3, 4]);
        body.truncate(body.len() - 3);
        assert_eq!(
            bad_request(&body),
            "truncated WAV: data chunk declares 8 bytes but only 5 are present"
        );
        let mut list = riff(&[chunk(b"LIST", &[0; 10])]);
        list.truncate(list.len() - 4);
        assert!(bad_request(&list).contains("'LIST' chunk declares 10 bytes but only 6"));
        let mut header = riff(&[chunk(b"fmt ", &fmt_pcm(1, 1, 16000, 16))]);
        header.extend_from_slice(b"da");
        assert!(bad_request(&header).contains("chunk header at byte 36 runs past the end"));
    }

    #[test]
    fn streaming_sizes_read_to_the_end() {
        let streamed = |size: u32| {
            let mut body = riff(&[chunk(b"fmt ", &fmt_pcm(1, 1, 16000, 16))]);
            body.extend_from_slice(b"data");
            body.extend_from_slice(&size.to_le_bytes());
            body.extend_from_slice(&samples(&[-300, 300, -300]));
            body.push(9); // half a sample, dropped
            body
        };
        for size in [STREAMING_SIZE, 0] {
            assert_eq!(
                parse(&streamed(size)).expect("streamed").samples,
                vec![-300, 300, -300]
            );
        }
        // A genuinely empty data chunk followed by another chunk has no samples.
        let empty_then_list = riff(&[
            chunk(b"fmt ", &fmt_pcm(1, 1, 16000, 16)),
            chunk(b"data", &[]),
            chunk(b"LIST", b"INFO"),
        ]);
        assert!(bad_request(&empty_then_list).starts_with("no audio samples"));
    }

    #[test]
    fn unsupported_formats_say_what_is_accepted() {
        let stereo = riff(&[
            chunk(b"fmt ", &fmt_pcm(1, 2, 16000, 16)),
            chunk(b"data", &[0; 8]),
        ]);
        assert_eq!(
            unsupported(&stereo),
            "2 channels are not supported; send 16-bit PCM mono"
        );
        for bits in [8, 24, 32] {
            let body = riff(&[
                chunk(b"fmt ", &fmt_pcm(1, 1, 16000, bits)),
                chunk(b"data", &[0; 12]),
            ]);
            assert!(unsupported(&body).starts_with(&format!("{bits}-bit samples")));
        }
        let float = riff(&[
            chunk(b"fmt ", &fmt_pcm(3, 1, 16000, 32)),
            chunk(b"data", &[0; 8]),
        ]);
        assert!(unsupported(&float).contains("32-bit float"));
        let msg = unsupported(&wav(22050, &[0; 4]));
        assert!(msg.contains("22050 Hz") && msg.contains("44100"), "{msg}");
    }
}
