//! Decoding any supported container to mono `f32` at its native rate.
//!
//! The whole file goes through symphonia: probe the container, take the first track a
//! decoder exists for (video and subtitle tracks have no audio decoder, so they are
//! skipped), decode packet by packet and average the channels into one. A packet that
//! fails to decode is skipped, since one bad frame in an hour of speech should not lose
//! the hour; a file where no packet decodes is an error.

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

use symphonia::core::audio::{AudioBuffer, AudioBufferRef, Signal};
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::conv::FromSample;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::sample::Sample;

use super::resample::StreamResampler;
use super::{Audio, AudioError, frames_to_ms};

/// The highest native sample rate accepted.
///
/// Memory use is bounded by duration × rate, so an absurd rate in a crafted header
/// would make the duration limit meaningless. 768 kHz is beyond any real recording.
const MAX_SAMPLE_RATE: u32 = 768_000;

/// Caps applied while decoding an untrusted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted file, in bytes.
    pub max_bytes: u64,
    /// Longest accepted audio, in milliseconds; decoding stops as soon as it is passed.
    pub max_duration_ms: u64,
}

impl Default for DecodeLimits {
    /// 500 MiB and 4 hours: generous for speech, small enough to keep one job's
    /// samples (4 h of mono at 48 kHz is about 2.8 GB) within a server's memory.
    fn default() -> Self {
        Self {
            max_bytes: 500 * 1024 * 1024,
            max_duration_ms: 4 * 60 * 60 * 1000,
        }
    }
}

/// Decode a file to mono at its native rate.
///
/// The file's extension, if any, is passed to symphonia as a format hint.
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> Result<Audio, AudioError> {
    decode_path(path, limits, Keep::Samples).map(Decoded::into_audio)
}

/// Decode a file to mono at `rate`, resampling as it decodes.
///
/// What a job does: the samples are held once, at the plugin's rate, never at the
/// file's rate as well.
pub fn decode_file_at(path: &Path, limits: &DecodeLimits, rate: u32) -> Result<Audio, AudioError> {
    decode_path(path, limits, Keep::SamplesAt(rate)).map(Decoded::into_audio)
}

/// Checks that a file decodes and measures it, without keeping its samples.
///
/// Used when an upload arrives, before anything is queued: memory stays at one packet
/// whatever the file expands to, so a small file that decodes to hours of audio (a
/// "decompression bomb") costs the server time up to the duration limit, never memory.
pub fn scan_file(path: &Path, limits: &DecodeLimits) -> Result<AudioScan, AudioError> {
    let decoded = decode_path(path, limits, Keep::Count)?;
    Ok(AudioScan {
        frames: decoded.frames,
        sample_rate: decoded.sample_rate,
    })
}

/// Same as [`decode_file`], from memory (extension hint optional, e.g. `Some("mp3")`).
pub fn decode_bytes(
    bytes: Vec<u8>,
    hint_extension: Option<&str>,
    limits: &DecodeLimits,
) -> Result<Audio, AudioError> {
    check_size(bytes.len() as u64, limits)?;
    decode_source(
        Box::new(std::io::Cursor::new(bytes)),
        hint_extension,
        limits,
        Keep::Samples,
    )
    .map(Decoded::into_audio)
}

/// How long a file is, as found by [`scan_file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioScan {
    /// Mono frames the file decodes to.
    pub frames: u64,
    /// Samples per second.
    pub sample_rate: u32,
}

impl AudioScan {
    /// Length in whole milliseconds, computed exactly as [`Audio::duration_ms`] would.
    pub fn duration_ms(&self) -> u64 {
        frames_to_ms(self.frames, self.sample_rate)
    }
}

/// Whether a decode keeps the samples (at the file's rate or another) or only counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Samples,
    SamplesAt(u32),
    Count,
}

fn decode_path(path: &Path, limits: &DecodeLimits, keep: Keep) -> Result<Decoded, AudioError> {
    let file = File::open(path)?;
    check_size(file.metadata()?.len(), limits)?;
    let extension = path.extension().and_then(|ext| ext.to_str());
    decode_source(Box::new(file), extension, limits, keep)
}

fn check_size(actual_bytes: u64, limits: &DecodeLimits) -> Result<(), AudioError> {
    if actual_bytes > limits.max_bytes {
        return Err(AudioError::TooLarge {
            limit_bytes: limits.max_bytes,
            actual_bytes,
        });
    }
    if actual_bytes == 0 {
        return Err(AudioError::Empty);
    }
    Ok(())
}

/// Decodes with a panic in symphonia turned into an error about this file.
///
/// Some demuxers assert on states a corrupt or cut-off file can reach (a truncated MKV
/// makes the EBML reader panic); one bad upload must fail alone, with a 4xx, instead of
/// taking down the request or the job's worker.
fn decode_source(
    source: Box<dyn MediaSource>,
    hint_extension: Option<&str>,
    limits: &DecodeLimits,
    keep: Keep,
) -> Result<Decoded, AudioError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(source, hint_extension, limits, keep)
    }))
    .unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no detail".to_owned());
        // Assertion messages run over several lines; the first says what failed.
        let detail = detail.lines().next().unwrap_or_default();
        Err(AudioError::Undecodable(format!(
            "the file is damaged or cut short, and the decoder gave up on it ({detail})"
        )))
    })
}

fn decode_unguarded(
    source: Box<dyn MediaSource>,
    hint_extension: Option<&str>,
    limits: &DecodeLimits,
    keep: Keep,
) -> Result<Decoded, AudioError> {
    let mut hint = Hint::new();
    if let Some(extension) = hint_extension {
        hint.with_extension(extension);
    }
    let stream = MediaSourceStream::new(source, Default::default());
    // Gapless mode trims encoder delay and padding (MP3, AAC), so the first sample of
    // the output is the first sample of the recording and timestamps are not shifted.
    let format_options = FormatOptions {
        enable_gapless: true,
        ..Default::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &format_options, &MetadataOptions::default())
        .map_err(probe_error)?;
    let format = probed.format;
    let (track_id, decoder) = open_first_audio_track(format.as_ref())?;
    let declared_frames = format
        .tracks()
        .iter()
        .find(|track| track.id == track_id)
        .and_then(|track| {
            Some((
                track.codec_params.n_frames?,
                track.codec_params.sample_rate?,
            ))
        });
    let sink = MonoSink {
        declared_frames,
        limits,
        keep,
        frames: 0,
        samples: Vec::new(),
        resampler: None,
        mixed: Vec::new(),
        sample_rate: None,
        skipped_packets: 0,
        last_decode_error: None,
    };
    decode_track(format, decoder, track_id, sink)
}

/// Maps a failure to recognise the container to an error a person can act on.
fn probe_error(err: SymphoniaError) -> AudioError {
    match err {
        SymphoniaError::IoError(io) if !is_damage(&io) => AudioError::Io(io),
        SymphoniaError::IoError(io) if io.kind() != ErrorKind::UnexpectedEof => {
            AudioError::UnsupportedFormat(points_outside(&io))
        }
        SymphoniaError::IoError(_) => AudioError::UnsupportedFormat(
            "the file ended before its format could be recognised (is it cut short?)".into(),
        ),
        // The probe's own "nothing matched"; anything else came from a recognised
        // container that uses a feature symphonia lacks, and naming it helps more.
        SymphoniaError::Unsupported(what) if what.starts_with("core (probe)") => {
            AudioError::UnsupportedFormat("no known audio or video format was recognised".into())
        }
        SymphoniaError::Unsupported(what) => {
            AudioError::UnsupportedFormat(format!("it uses an unsupported feature ({what})"))
        }
        other => AudioError::UnsupportedFormat(format!("its header is malformed ({other})")),
    }
}

/// Whether an I/O error while demuxing comes from the file's bytes rather than the disk.
///
/// A corrupt container can send the demuxer to seek before the start or far past the
/// end (`EINVAL`), or hand it data it rejects; that is a damaged upload (4xx), not a
/// server fault (5xx).
fn is_damage(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::InvalidInput | ErrorKind::InvalidData
    )
}

fn points_outside(err: &std::io::Error) -> String {
    format!("the file is damaged: its structure points outside the file ({err})")
}

/// Picks the first track symphonia has a decoder for.
fn open_first_audio_track(
    format: &dyn FormatReader,
) -> Result<(u32, Box<dyn Decoder>), AudioError> {
    let codecs = symphonia::default::get_codecs();
    format
        .tracks()
        .iter()
        .filter(|track| track.codec_params.codec != CODEC_TYPE_NULL)
        .find_map(|track| {
            let decoder = codecs
                .make(&track.codec_params, &DecoderOptions::default())
                .ok()?;
            Some((track.id, decoder))
        })
        .ok_or(AudioError::NoAudioTrack)
}

/// Reads every packet of `track_id` and collects it, downmixed, in `sink`.
fn decode_track(
    mut format: Box<dyn FormatReader>,
    mut decoder: Box<dyn Decoder>,
    track_id: u32,
    mut sink: MonoSink<'_>,
) -> Result<Decoded, AudioError> {
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(err)) if err.kind() == ErrorKind::UnexpectedEof => break,
            // A new chained stream (e.g. chained Ogg) may change the track list; the
            // first stream is the recording, so stop there.
            Err(SymphoniaError::ResetRequired) => break,
            Err(SymphoniaError::IoError(err)) if !is_damage(&err) => {
                return Err(AudioError::Io(err));
            }
            // The demuxer cannot find its place again after a corrupt container
            // structure; keep what decoded so far, like a truncated upload.
            Err(err) if sink.frames > 0 => {
                tracing::warn!("stopped decoding at a corrupt container structure: {err}");
                break;
            }
            Err(SymphoniaError::IoError(err)) => {
                return Err(AudioError::Undecodable(points_outside(&err)));
            }
            Err(err) => return Err(AudioError::Undecodable(err.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(decoded) => sink.append(decoded)?,
            // Recoverable: one corrupt packet (decoders report a packet that is too
            // short as an I/O error).
            Err(SymphoniaError::DecodeError(msg)) => sink.skip(format!("malformed stream: {msg}")),
            Err(SymphoniaError::IoError(err)) => sink.skip(err.to_string()),
            Err(err) => return Err(AudioError::Undecodable(err.to_string())),
        }
    }
    sink.finish()
}

/// The mono output of one decode, and what is needed to judge it against the limits.
struct MonoSink<'a> {
    /// `(frames, rate)` the container declares, used only to report how long an
    /// over-long file is, since decoding stops before reaching its end.
    declared_frames: Option<(u64, u32)>,
    limits: &'a DecodeLimits,
    keep: Keep,
    /// Frames decoded so far, kept or not.
    frames: u64,
    /// The downmixed samples, when kept at the file's rate.
    samples: Vec<f32>,
    /// With [`Keep::SamplesAt`] another rate: the samples go through this instead.
    resampler: Option<StreamResampler>,
    /// One packet downmixed, on its way into the resampler.
    mixed: Vec<f32>,
    sample_rate: Option<u32>,
    skipped_packets: u64,
    last_decode_error: Option<String>,
}

impl MonoSink<'_> {
    fn skip(&mut self, reason: String) {
        self.skipped_packets += 1;
        self.last_decode_error = Some(reason);
    }

    fn append(&mut self, decoded: AudioBufferRef<'_>) -> Result<(), AudioError> {
        let rate = decoded.spec().rate;
        match self.sample_rate {
            None if rate == 0 || rate > MAX_SAMPLE_RATE => {
                return Err(AudioError::Undecodable(format!(
                    "its sample rate of {rate} Hz is not supported (at most {MAX_SAMPLE_RATE} Hz)"
                )));
            }
            None => {
                self.sample_rate = Some(rate);
                if let Keep::SamplesAt(to) = self.keep
                    && to != rate
                {
                    self.resampler = Some(StreamResampler::new(rate, to)?);
                }
            }
            Some(first) if first != rate => {
                return Err(AudioError::Undecodable(format!(
                    "the sample rate changes from {first} Hz to {rate} Hz part way through"
                )));
            }
            Some(_) => {}
        }
        self.frames += decoded.frames() as u64;
        if self.keep == Keep::Count {
            return self.check_duration(rate);
        }
        let out = match self.resampler {
            Some(_) => {
                self.mixed.clear();
                &mut self.mixed
            }
            None => &mut self.samples,
        };
        match decoded {
            AudioBufferRef::U8(buf) => mix_into(&buf, out),
            AudioBufferRef::U16(buf) => mix_into(&buf, out),
            AudioBufferRef::U24(buf) => mix_into(&buf, out),
            AudioBufferRef::U32(buf) => mix_into(&buf, out),
            AudioBufferRef::S8(buf) => mix_into(&buf, out),
            AudioBufferRef::S16(buf) => mix_into(&buf, out),
            AudioBufferRef::S24(buf) => mix_into(&buf, out),
            AudioBufferRef::S32(buf) => mix_into(&buf, out),
            AudioBufferRef::F32(buf) => mix_into(&buf, out),
            AudioBufferRef::F64(buf) => mix_into(&buf, out),
        }
        if let Some(resampler) = self.resampler.as_mut() {
            resampler.push(&self.mixed)?;
        }
        self.check_duration(rate)
    }

    fn check_duration(&self, rate: u32) -> Result<(), AudioError> {
        let decoded_ms = frames_to_ms(self.frames, rate);
        if decoded_ms <= self.limits.max_duration_ms {
            return Ok(());
        }
        let declared_ms = self
            .declared_frames
            .map_or(0, |(frames, rate)| frames_to_ms(frames, rate));
        Err(AudioError::TooLong {
            limit_ms: self.limits.max_duration_ms,
            actual_ms: decoded_ms.max(declared_ms),
        })
    }

    fn finish(self) -> Result<Decoded, AudioError> {
        match (self.sample_rate, self.last_decode_error) {
            (Some(sample_rate), _) if self.frames > 0 => {
                if self.skipped_packets > 0 {
                    tracing::warn!(
                        skipped = self.skipped_packets,
                        "skipped audio packets that failed to decode"
                    );
                }
                let (samples, sample_rate) = match (self.resampler, self.keep) {
                    (Some(resampler), Keep::SamplesAt(to)) => (resampler.finish()?, to),
                    _ => (self.samples, sample_rate),
                };
                Ok(Decoded {
                    samples,
                    frames: self.frames,
                    sample_rate,
                })
            }
            (_, Some(reason)) => Err(AudioError::Undecodable(format!(
                "none of its {} audio packets could be decoded; the last error was: {reason}",
                self.skipped_packets
            ))),
            _ => Err(AudioError::Empty),
        }
    }
}

/// What one decode found: the samples when they were kept (at `sample_rate`), and
/// always how many frames the file had at its own rate.
struct Decoded {
    samples: Vec<f32>,
    frames: u64,
    sample_rate: u32,
}

impl Decoded {
    fn into_audio(self) -> Audio {
        Audio {
            samples: self.samples.into(),
            sample_rate: self.sample_rate,
        }
    }
}

/// Appends `buf` averaged to one channel. Channel counts of zero (which no decoder
/// should produce) append nothing rather than panic.
fn mix_into<S>(buf: &AudioBuffer<S>, out: &mut Vec<f32>)
where
    S: Sample,
    f32: FromSample<S>,
{
    let channels = buf.spec().channels.count();
    if channels == 0 {
        return;
    }
    let start = out.len();
    out.extend(buf.chan(0).iter().map(|&s| f32::from_sample(s)));
    if channels == 1 {
        return;
    }
    let mixed = &mut out[start..];
    for channel in 1..channels {
        for (sum, &s) in mixed.iter_mut().zip(buf.chan(channel)) {
            *sum += f32::from_sample(s);
        }
    }
    let scale = 1.0 / channels as f32;
    mixed.iter_mut().for_each(|sum| *sum *= scale);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const PCM: u16 = 1;
    const IEEE_FLOAT: u16 = 3;

    /// A canonical 44-byte-header WAV. `declared_data_len` lets a test lie about the
    /// data size, as a truncated upload does.
    fn wav(
        format: u16,
        channels: u16,
        rate: u32,
        bits: u16,
        data: &[u8],
        declared_data_len: u32,
    ) -> Vec<u8> {
        let block_align = channels * bits / 8;
        let mut out = Vec::with_capacity(44 + data.len());
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + declared_data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
        out.extend_from_slice(&block_align.to_le_bytes());
        out.extend_from_slice(&bits.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&declared_data_len.to_le_bytes());
        out.extend_from_slice(data);
        out
    }

    /// A canonical 16-bit PCM WAV of interleaved samples (shared with the properties).
    pub(in crate::audio) fn wav_16bit(channels: u16, rate: u32, interleaved: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = interleaved.iter().flat_map(|s| s.to_le_bytes()).collect();
        wav(PCM, channels, rate, 16, &data, data.len() as u32)
    }

    fn sine_i16(freq: f64, rate: u32, frames: usize) -> Vec<i16> {
        (0..frames)
            .map(|i| {
                ((2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() * 16_384.0)
                    as i16
            })
            .collect()
    }

    fn decode(bytes: Vec<u8>) -> Result<Audio, AudioError> {
        decode_bytes(bytes, Some("wav"), &DecodeLimits::default())
    }

    fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32) {
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= tolerance, "sample {i}: {a} != {e}");
        }
    }

    #[test]
    fn stereo_16bit_wav_is_averaged_to_mono_at_native_rate() {
        // Left carries a 440 Hz sine, right is silent, so mono is half the sine.
        let left = sine_i16(440.0, 44_100, 44_100);
        let interleaved: Vec<i16> = left.iter().flat_map(|&s| [s, 0]).collect();
        let audio = decode(wav_16bit(2, 44_100, &interleaved)).expect("decode");

        assert_eq!(audio.sample_rate, 44_100);
        assert_eq!(audio.frames(), 44_100);
        assert_eq!(audio.duration_ms(), 1000);
        let expected: Vec<f32> = left
            .iter()
            .map(|&s| f32::from(s) / 32_768.0 / 2.0)
            .collect();
        assert_close(&audio.samples, &expected, 1e-6);
    }

    #[test]
    fn opposite_channels_cancel_when_downmixed() {
        let interleaved = [16_384i16, -16_384, -8_192, 8_192, 32_767, 32_767];
        let audio = decode(wav_16bit(2, 8_000, &interleaved)).expect("decode");
        assert_close(&audio.samples, &[0.0, 0.0, 32_767.0 / 32_768.0], 1e-6);
    }

    /// The same four values in every integer depth WAV supports, and in float.
    const LEVELS: [f32; 4] = [0.0, 0.5, -0.5, -1.0];

    #[test]
    fn unsigned_8bit_wav_decodes() {
        let data = [128u8, 192, 64, 0];
        let audio = decode(wav(PCM, 1, 8_000, 8, &data, 4)).expect("decode");
        assert_close(&audio.samples, &LEVELS, 1e-6);
    }

    #[test]
    fn signed_24bit_wav_decodes() {
        let data: Vec<u8> = [0i32, 0x40_0000, -0x40_0000, -0x80_0000]
            .iter()
            .flat_map(|s| s.to_le_bytes()[..3].to_vec())
            .collect();
        let audio = decode(wav(PCM, 1, 16_000, 24, &data, 12)).expect("decode");
        assert_close(&audio.samples, &LEVELS, 1e-6);
    }

    #[test]
    fn signed_32bit_wav_decodes() {
        let data: Vec<u8> = [0i32, 0x4000_0000, -0x4000_0000, i32::MIN]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let audio = decode(wav(PCM, 1, 16_000, 32, &data, 16)).expect("decode");
        assert_close(&audio.samples, &LEVELS, 1e-6);
    }

    #[test]
    fn float_32bit_wav_decodes() {
        let data: Vec<u8> = LEVELS.iter().flat_map(|s| s.to_le_bytes()).collect();
        let audio = decode(wav(IEEE_FLOAT, 1, 16_000, 32, &data, 16)).expect("decode");
        assert_eq!(audio.sample_rate, 16_000);
        assert_close(&audio.samples, &LEVELS, 0.0);
    }

    #[test]
    fn garbage_is_an_unsupported_format() {
        let bytes = b"This is a text file, not a recording. ".repeat(100);
        let err = decode_bytes(bytes, None, &DecodeLimits::default()).expect_err("garbage");
        assert!(matches!(err, AudioError::UnsupportedFormat(_)), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("no known audio or video format"),
            "{message}"
        );
        assert!(message.contains("Supported formats are WAV"), "{message}");
    }

    #[test]
    fn wav_with_an_unknown_codec_is_rejected_with_a_reason() {
        let err = decode(wav(0x1234, 1, 8_000, 16, &[0; 16], 16)).expect_err("unknown codec");
        assert!(matches!(err, AudioError::UnsupportedFormat(_)), "{err:?}");
        assert!(err.to_string().contains("unsupported feature"), "{err}");
    }

    #[test]
    fn truncated_wav_keeps_the_data_that_is_there() {
        // The header promises 1 s of audio, but only 0.25 s arrived.
        let samples = sine_i16(440.0, 16_000, 4_000);
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let bytes = wav(PCM, 1, 16_000, 16, &data, 32_000);
        let audio = decode(bytes).expect("the samples present decode");
        assert_eq!(audio.frames(), 4_000);
        assert_eq!(audio.duration_ms(), 250);
        let expected: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32_768.0).collect();
        assert_close(&audio.samples, &expected, 0.0);
    }

    #[test]
    fn header_cut_short_is_an_error_not_a_panic() {
        let full = wav_16bit(1, 16_000, &[1, 2, 3]);
        for len in 1..44 {
            let result = decode(full[..len].to_vec());
            assert!(result.is_err(), "{len} bytes decoded");
        }
    }

    #[test]
    fn audio_longer_than_the_limit_is_too_long() {
        let limits = DecodeLimits {
            max_duration_ms: 1_000,
            ..DecodeLimits::default()
        };
        let bytes = wav_16bit(1, 8_000, &vec![0; 8_000 * 3]);
        match decode_bytes(bytes, Some("wav"), &limits) {
            Err(AudioError::TooLong {
                limit_ms,
                actual_ms,
            }) => {
                assert_eq!(limit_ms, 1_000);
                // The header declares 3 s, which is reported though decoding stopped early.
                assert_eq!(actual_ms, 3_000);
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    #[test]
    fn audio_exactly_at_the_limit_is_accepted() {
        let limits = DecodeLimits {
            max_duration_ms: 1_000,
            ..DecodeLimits::default()
        };
        let audio =
            decode_bytes(wav_16bit(1, 8_000, &vec![0; 8_000]), None, &limits).expect("decode");
        assert_eq!(audio.duration_ms(), 1_000);
    }

    #[test]
    fn bytes_over_the_size_limit_are_too_large() {
        let bytes = wav_16bit(1, 8_000, &[0; 100]);
        let size = bytes.len() as u64;
        let limits = DecodeLimits {
            max_bytes: 100,
            ..DecodeLimits::default()
        };
        match decode_bytes(bytes, None, &limits) {
            Err(AudioError::TooLarge {
                limit_bytes,
                actual_bytes,
            }) => {
                assert_eq!(limit_bytes, 100);
                assert_eq!(actual_bytes, size);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn file_over_the_size_limit_is_too_large() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.wav");
        std::fs::write(&path, wav_16bit(1, 8_000, &[0; 100])).expect("write");
        let limits = DecodeLimits {
            max_bytes: 243,
            ..DecodeLimits::default()
        };
        let err = decode_file(&path, &limits).expect_err("too large");
        assert!(
            matches!(
                err,
                AudioError::TooLarge {
                    limit_bytes: 243,
                    actual_bytes: 244
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn file_on_disk_decodes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tone.wav");
        std::fs::write(&path, wav_16bit(1, 16_000, &sine_i16(440.0, 16_000, 8_000)))
            .expect("write");
        let audio = decode_file(&path, &DecodeLimits::default()).expect("decode");
        assert_eq!(audio.sample_rate, 16_000);
        assert_eq!(audio.duration_ms(), 500);
    }

    #[test]
    fn scan_measures_what_decode_returns_and_refuses_the_same_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tone.wav");
        std::fs::write(&path, wav_16bit(2, 22_050, &vec![7; 2 * 33_075])).expect("write");
        let scan = scan_file(&path, &DecodeLimits::default()).expect("scan");
        let audio = decode_file(&path, &DecodeLimits::default()).expect("decode");
        assert_eq!(scan.frames, audio.frames());
        assert_eq!(scan.sample_rate, audio.sample_rate);
        assert_eq!(scan.duration_ms(), 1_500);

        let limits = DecodeLimits {
            max_duration_ms: 1_000,
            ..DecodeLimits::default()
        };
        let err = scan_file(&path, &limits).expect_err("too long");
        assert!(
            matches!(
                err,
                AudioError::TooLong {
                    limit_ms: 1_000,
                    actual_ms: 1_500
                }
            ),
            "{err:?}"
        );
        std::fs::write(&path, b"not audio at all").expect("write");
        let err = scan_file(&path, &DecodeLimits::default()).expect_err("garbage");
        assert!(matches!(err, AudioError::UnsupportedFormat(_)), "{err:?}");
    }

    #[test]
    fn decoding_at_a_rate_gives_what_decoding_then_resampling_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tone.wav");
        let left = sine_i16(440.0, 44_100, 44_100 * 2);
        let interleaved: Vec<i16> = left.iter().flat_map(|&s| [s, s / 2]).collect();
        std::fs::write(&path, wav_16bit(2, 44_100, &interleaved)).expect("write");
        let limits = DecodeLimits::default();
        let direct = decode_file_at(&path, &limits, 16_000).expect("decode at 16 kHz");
        let native = decode_file(&path, &limits).expect("decode");
        let after = super::super::resample(&native, 16_000).expect("resample");
        assert_eq!(direct.sample_rate, 16_000);
        assert_eq!(direct.frames(), 32_000);
        assert_eq!(direct.samples, after.samples);
        // At the file's own rate nothing is resampled.
        let same = decode_file_at(&path, &limits, 44_100).expect("decode");
        assert_eq!(same.samples, native.samples);
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = decode_file(&dir.path().join("absent.wav"), &DecodeLimits::default())
            .expect_err("missing");
        assert!(matches!(err, AudioError::Io(_)), "{err:?}");
    }

    #[test]
    fn wav_without_samples_is_empty() {
        let err = decode(wav_16bit(2, 44_100, &[])).expect_err("empty");
        assert!(matches!(err, AudioError::Empty), "{err:?}");
    }

    #[test]
    fn zero_byte_upload_is_empty() {
        let err = decode(Vec::new()).expect_err("empty");
        assert!(matches!(err, AudioError::Empty), "{err:?}");
    }
}
