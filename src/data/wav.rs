//! WAV input (through `hound`) and resampling (through `rubato`'s synchronous FFT
//! resampler).
//!
//! Integer PCM of 8, 16, 24 or 32 bits (24 bits packed in 3 or 4 bytes) and 32-bit
//! IEEE float are read; an integer sample `x` of `b` bits becomes `x / 2^(b-1)`, so
//! full scale is [-1, 1) (8-bit files store unsigned bytes, which hound already
//! centres on zero). Float samples are taken as they are, without clipping, but
//! NaN or infinite ones are refused. Several channels are mixed down to mono by
//! averaging. The whole input is read into memory first, so a reader need not seek;
//! input that does not begin as a WAV file is refused at its first bytes, and no
//! allocation is sized by a header beyond what the input holds. Sample rates outside
//! [`SAMPLE_RATES`] are refused. Every error names the file (or the name given for a
//! reader, e.g. `<stdin>`).

use crate::error::{Error, Result};
use hound::{SampleFormat, WavReader};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};
use std::io::{Cursor, Read};
use std::ops::{Range, RangeInclusive};
use std::path::Path;

/// Mono audio: samples nominally in [-1, 1] at `sample_rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl Audio {
    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

/// What this reader accepts, appended to format errors.
const SUPPORTED: &str = "only integer PCM of 8, 16, 24 or 32 bits and 32-bit float are read";

/// The sample rates read and resampled, in Hz. A header outside them is refused: at
/// 1 Hz, resampling to 16 kHz would make 16,000 samples of every one read.
pub const SAMPLE_RATES: RangeInclusive<u32> = 4_000..=384_000;

/// The most bytes a RIFF file can hold: its size field is 32 bits and counts all but
/// the 8 bytes before it. No more input than this is read.
const MAX_RIFF_BYTES: u64 = u32::MAX as u64 + 8;

/// Input frames the resampler's FFT block should at least span (rubato's default
/// target): it sets the anti-aliasing filter's length and the resampler's delay.
const RESAMPLE_BLOCK_TARGET: u64 = 256;

/// The largest minimal FFT block (`rate / gcd(in_rate, out_rate)` frames, on either
/// side) the resampler may use; rates with a smaller common factor than this allows
/// are refused instead of allocating gigabytes. 44.1 kHz to 16 kHz has minimal blocks
/// of 441 and 160 frames.
const MAX_RESAMPLE_BLOCK: u64 = 1 << 16;

/// Reads a WAV file: integer PCM of 8 to 32 bits, or 32-bit float; any channel count
/// (mixed down to mono by averaging); errors name the file.
pub fn read_wav_file(path: &Path) -> Result<Audio> {
    parse_wav(&read_wav_bytes(path)?, path, false)
}

/// The same from any reader (e.g. standard input); `name` is used in errors
/// (e.g. `<stdin>`). The reader is read to its end first (see [`read_riff`]).
pub fn read_wav(reader: impl Read, name: &Path) -> Result<Audio> {
    parse_wav(&read_riff(reader, name)?, name, false)
}

/// A WAV streamed through a pipe, resampled to `rate`. Unlike a file, a stream that
/// ends before the size its header declares is read as far as it goes (with a
/// warning): a recorder stopped early still gives its audio.
pub fn read_wav_stream(reader: impl Read, name: &Path, rate: u32) -> Result<Audio> {
    decode_as(&read_riff(reader, name)?, name, rate, true)
}

/// The bytes of the WAV file at `path`, read as [`read_riff`] reads them: a file
/// that does not begin as a WAV file (`/dev/zero`, say) is refused at its first bytes.
pub fn read_wav_bytes(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| Error::file_caused(path, "cannot read", e))?;
    read_riff(file, path)
}

/// The bytes of a WAV input, to its end. Input that does not begin as a RIFF/WAVE
/// file is refused after its first 12 bytes, and no more than a RIFF file can hold
/// ([`MAX_RIFF_BYTES`]) is read, so endless input (a device, a pipe) is never read
/// whole.
fn read_riff(reader: impl Read, name: &Path) -> Result<Vec<u8>> {
    let cannot = |e: std::io::Error| Error::file_caused(name, "cannot read", e);
    let mut reader = reader.take(MAX_RIFF_BYTES + 1);
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(12)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    check_riff(&bytes, name)?;
    reader.read_to_end(&mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > MAX_RIFF_BYTES {
        return Err(Error::file(
            name,
            format!("longer than a RIFF file can be ({MAX_RIFF_BYTES} bytes)"),
        ));
    }
    Ok(bytes)
}

/// Refuses input whose first 12 bytes (all of `bytes` that there are) are not those
/// of a RIFF/WAVE file.
fn check_riff(bytes: &[u8], name: &Path) -> Result<()> {
    if bytes.is_empty() {
        return Err(Error::file(name, "empty file, not a WAV file"));
    }
    if !b"RIFF".starts_with(&bytes[..bytes.len().min(4)]) {
        return Err(Error::file(name, "not a WAV file (no RIFF tag found)"));
    }
    if bytes.len() < 12 {
        return Err(Error::file(
            name,
            format!(
                "truncated WAV header (the input ends after {} bytes)",
                bytes.len()
            ),
        ));
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(Error::file(name, "not a WAV file (no WAVE tag found)"));
    }
    Ok(())
}

/// Data sizes that writers which cannot seek back (ffmpeg, sox or arecord writing
/// to a pipe) leave in the header: the data then runs to the end of the input.
const PLACEHOLDER_SIZES: [usize; 2] = [0, 0xFFFF_FFFF];

/// Where the decoder reads a RIFF/WAVE file: its `fmt ` chunk and its data.
#[derive(Debug)]
struct Layout {
    /// The body of the `fmt ` chunk.
    fmt: Range<usize>,
    /// Where the data chunk's body starts.
    data: usize,
    /// How many data bytes to read: the size the header declares or, for a
    /// placeholder (see [`PLACEHOLDER_SIZES`]) or a stream cut short, the whole
    /// frames the input holds.
    data_size: usize,
    /// True when the header declares more data than the input holds.
    declared_past_end: bool,
}

impl Layout {
    /// Walks the chunks of `bytes` (a RIFF/WAVE file, see [`check_riff`]) up to the
    /// data chunk, as the RIFF rule has it: a chunk of odd size is followed by a pad
    /// byte. A writer that left the pad byte out is read too, since a pad byte is 0
    /// and a chunk id never starts with one. Chunks after the data are not read.
    /// `stream` reads data declared past the end as far as it goes. The reason for a
    /// refusal comes back as a bare message.
    fn of(bytes: &[u8], stream: bool) -> std::result::Result<Layout, String> {
        let mut at = 12;
        let mut fmt: Option<Range<usize>> = None;
        loop {
            let Some(header) = bytes.get(at..at + 8) else {
                return Err(format!(
                    "truncated WAV header (no data chunk in its {} bytes)",
                    bytes.len()
                ));
            };
            let id = &header[..4];
            let size = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
            let body = at + 8;
            if id == b"data" {
                let fmt = fmt.ok_or("malformed WAV file: no fmt chunk before the data")?;
                let available = bytes.len() - body;
                let placeholder = PLACEHOLDER_SIZES.contains(&size);
                let declared_past_end = !placeholder && size > available;
                let data_size = if placeholder || (stream && declared_past_end) {
                    let align = frame_layout(&bytes[fmt.clone()]).map_or(1, |(a, _)| a.max(1));
                    available - available % align
                } else {
                    size
                };
                return Ok(Layout {
                    fmt,
                    data: body,
                    data_size,
                    declared_past_end,
                });
            }
            let end = body + size;
            if end > bytes.len() {
                return Err(format!(
                    "truncated WAV header (its '{}' chunk declares {size} bytes, the input \
                     ends after {})",
                    String::from_utf8_lossy(id),
                    bytes.len() - body
                ));
            }
            if id == b"fmt " {
                if fmt.is_some() {
                    return Err("malformed WAV file: two fmt chunks (a WAV file has one)".into());
                }
                fmt = Some(body..end);
            }
            at = end + usize::from(size % 2 == 1 && bytes.get(end) == Some(&0));
        }
    }

    /// What hound reads: a header of RIFF/WAVE, the `fmt ` chunk and a data chunk
    /// of [`Self::data_size`] bytes, followed by the data of `bytes`.
    fn reader<'a>(&self, bytes: &'a [u8]) -> std::io::Chain<Cursor<Vec<u8>>, &'a [u8]> {
        let fmt = &bytes[self.fmt.clone()];
        let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        let mut header = Vec::with_capacity(28 + fmt.len());
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&as_u32(20 + fmt.len() + self.data_size));
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&as_u32(fmt.len()));
        header.extend_from_slice(fmt);
        header.extend_from_slice(b"data");
        header.extend_from_slice(&as_u32(self.data_size));
        Cursor::new(header).chain(&bytes[self.data..])
    }
}

/// Block align and channels from the body of a `fmt ` chunk: the bytes of one frame
/// and how many samples share them.
fn frame_layout(fmt: &[u8]) -> Option<(usize, usize)> {
    let field = |at: usize| {
        fmt.get(at..at + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    Some((field(12)?, field(2)?))
}

/// Decodes the bytes of a WAV file and resamples it to `rate`; every error names
/// `name`.
pub fn decode(bytes: &[u8], name: &Path, rate: u32) -> Result<Audio> {
    decode_as(bytes, name, rate, false)
}

/// [`decode`] of a file, or with `stream` of a stream (see [`read_wav_stream`]).
fn decode_as(bytes: &[u8], name: &Path, rate: u32, stream: bool) -> Result<Audio> {
    let audio = parse_wav(bytes, name, stream)?;
    resample_or_reason(&audio, rate).map_err(|e| Error::file(name, e))
}

/// Decodes the bytes of a whole WAV file; `name` is only used in errors. A
/// placeholder data size (see [`PLACEHOLDER_SIZES`]) means "to the end"; any other
/// size past the end is a truncated file or, with `stream`, a stream cut short,
/// read as far as it goes with a warning.
fn parse_wav(bytes: &[u8], name: &Path, stream: bool) -> Result<Audio> {
    check_riff(bytes, name)?;
    let layout = Layout::of(bytes, stream).map_err(|e| Error::file(name, e))?;
    if stream && layout.declared_past_end {
        log::warn!(
            "{}: the stream ended before the data size its header declares; \
             reading what arrived",
            name.display()
        );
    }
    let mut reader = WavReader::new(layout.reader(bytes)).map_err(|e| match e {
        hound::Error::IoError(e) => Error::file(name, format!("truncated WAV header ({e})")),
        hound::Error::FormatError(m) => {
            Error::file(name, format!("malformed or unsupported WAV file: {m}"))
        }
        hound::Error::Unsupported => {
            Error::file(name, format!("unsupported WAV encoding: {SUPPORTED}"))
        }
        other => Error::file_caused(name, "cannot read the WAV header", other),
    })?;
    let spec = reader.spec();
    // hound reads integer samples narrower than their container (24 bits in 4
    // bytes) from the low bits, where the standard puts them in the high ones.
    if let Some((align, channels)) = frame_layout(&bytes[layout.fmt.clone()])
        && channels > 0
        && spec.sample_format == SampleFormat::Int
        && align / channels * 8 != usize::from(spec.bits_per_sample)
    {
        return Err(Error::file(
            name,
            format!(
                "{}-bit samples in {}-byte containers: {SUPPORTED}",
                spec.bits_per_sample,
                align / channels
            ),
        ));
    }
    if !SAMPLE_RATES.contains(&spec.sample_rate) {
        return Err(Error::file(
            name,
            format!(
                "the WAV header gives a sample rate of {} Hz; only rates of {} to {} Hz are read",
                spec.sample_rate,
                SAMPLE_RATES.start(),
                SAMPLE_RATES.end()
            ),
        ));
    }
    let bits = spec.bits_per_sample;
    let available = bytes.len() - layout.data;
    let mono = match spec.sample_format {
        SampleFormat::Int if matches!(bits, 8 | 16 | 24 | 32) => {
            let scale = 1.0 / f64::from(1u32 << (bits - 1));
            mix_down(&mut reader, available, name, |x: i32| {
                Ok(f64::from(x) * scale)
            })?
        }
        SampleFormat::Float if bits == 32 => mix_down(&mut reader, available, name, |x: f32| {
            if x.is_finite() {
                Ok(f64::from(x))
            } else {
                Err(format!("holds a non-finite sample ({x})"))
            }
        })?,
        SampleFormat::Int => {
            return Err(Error::file(
                name,
                format!("{bits}-bit integer PCM: {SUPPORTED}"),
            ));
        }
        SampleFormat::Float => {
            return Err(Error::file(
                name,
                format!("{bits}-bit float samples: {SUPPORTED}"),
            ));
        }
    };
    if mono.is_empty() {
        return Err(Error::file(name, "the WAV file holds no samples"));
    }
    Ok(Audio {
        samples: mono,
        sample_rate: spec.sample_rate,
    })
}

/// Reads every sample of `reader` as `S`, converts it with `value` and averages the
/// channels of each frame. A read failure (most often data that ends before the
/// header says it does) is an error, never a short clip. `available` is the size of
/// the input from the start of the data, in bytes.
fn mix_down<S: hound::Sample>(
    reader: &mut WavReader<impl Read>,
    available: usize,
    name: &Path,
    value: impl Fn(S) -> std::result::Result<f64, String>,
) -> Result<Vec<f32>> {
    let channels = usize::from(reader.spec().channels);
    let declared = reader.len() as usize;
    // The header's count is not trusted for the allocation: a truncated file may
    // declare gigabytes. The input bytes bound the real count.
    let mut mono = Vec::with_capacity(declared.min(available) / channels);
    let mut sum = 0.0;
    for (read, sample) in reader.samples::<S>().enumerate() {
        let x = match sample {
            Ok(x) => value(x).map_err(|e| Error::file(name, e))?,
            Err(hound::Error::IoError(_)) => {
                return Err(Error::file(
                    name,
                    format!(
                        "truncated: the header declares {declared} samples but the data ends after {read}"
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::file_caused(
                    name,
                    format!("cannot decode sample {read}"),
                    e,
                ));
            }
        };
        sum += x;
        if (read + 1) % channels == 0 {
            mono.push((sum / channels as f64) as f32);
            sum = 0.0;
        }
    }
    Ok(mono)
}

/// Resampled to `rate` Hz with rubato's FFT (synchronous) resampler; the input comes
/// back unchanged when the rate already matches. The output holds
/// `round(len * rate / in_rate)` samples and has no delay: sample k lies at time
/// k / rate, like input sample j at j / in_rate (rubato's `process_all` trims the
/// resampler's output delay of half an FFT block, which is exact because the blocks
/// are chosen of even length). The audio is taken as silent before its start and
/// after its end. Deterministic. Refused (`InvalidConfig`) for a rate outside
/// [`SAMPLE_RATES`] on either side (which bounds the output at 96 samples an input
/// sample) and for rates whose greatest common divisor is so small that a minimal FFT
/// block would exceed 65,536 frames.
pub fn resample(audio: &Audio, rate: u32) -> Result<Audio> {
    resample_or_reason(audio, rate).map_err(Error::InvalidConfig)
}

/// [`resample`] with the reason for a refusal as a bare message.
fn resample_or_reason(audio: &Audio, rate: u32) -> std::result::Result<Audio, String> {
    let from = audio.sample_rate;
    if !SAMPLE_RATES.contains(&from) || !SAMPLE_RATES.contains(&rate) {
        return Err(format!(
            "cannot resample from {from} Hz to {rate} Hz: rates must lie between {} and {} Hz",
            SAMPLE_RATES.start(),
            SAMPLE_RATES.end()
        ));
    }
    if from == rate {
        return Ok(audio.clone());
    }
    let (from64, to64) = (u64::from(from), u64::from(rate));
    let divisor = gcd(from64, to64);
    if from64 / divisor > MAX_RESAMPLE_BLOCK || to64 / divisor > MAX_RESAMPLE_BLOCK {
        return Err(format!(
            "cannot resample from {from} Hz to {rate} Hz: the rates share too small a \
             common factor ({divisor}), the FFT resampler would need blocks of {} and {} frames",
            from64 / divisor,
            to64 / divisor
        ));
    }
    let len = audio.samples.len();
    let out_len =
        ((len as u128 * u128::from(rate) + u128::from(from) / 2) / u128::from(from)) as usize;
    if len == 0 {
        return Ok(Audio {
            samples: Vec::new(),
            sample_rate: rate,
        });
    }
    let fail = |e: &dyn std::fmt::Display| format!("resampling {from} Hz to {rate} Hz failed: {e}");
    // The FFT blocks are a whole number of minimal blocks (from / divisor input frames);
    // that number is made even so both blocks have an even length. rubato centres its
    // filter on input frame fft_size_in / 2 (integer division) but reports a delay of
    // fft_size_out / 2 output frames, which disagree by half an input frame for odd
    // blocks (44.1 kHz to 16 kHz has a minimal block of 441 frames); the output would
    // then lead the input by that much.
    let min_block = from64 / divisor;
    let blocks = RESAMPLE_BLOCK_TARGET
        .div_ceil(min_block)
        .next_multiple_of(2);
    let mut resampler = Fft::<f64>::new_custom(
        from as usize,
        rate as usize,
        (blocks * min_block) as usize,
        1,
        1,
        WindowFunction::BlackmanHarris2,
        FixedSync::Input,
    )
    .map_err(|e| fail(&e))?;
    let input: Vec<f64> = audio.samples.iter().map(|&x| f64::from(x)).collect();
    let adapter = InterleavedSlice::new(&input, 1, len).map_err(|e| fail(&e))?;
    let output = resampler
        .process_all(&adapter, len, None)
        .map_err(|e| fail(&e))?;
    // `process_all` returns ceil(len * ratio) frames, never fewer than the rounded count.
    let mut samples: Vec<f32> = output.take_data().into_iter().map(|x| x as f32).collect();
    samples.resize(out_len, 0.0);
    Ok(Audio {
        samples,
        sample_rate: rate,
    })
}

/// Greatest common divisor.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// [`read_wav_file`] then [`resample`] to `rate` Hz; every error names the file.
pub fn load_wav(path: &Path, rate: u32) -> Result<Audio> {
    decode(&read_wav_bytes(path)?, path, rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_dir;
    use hound::{WavSpec, WavWriter};
    use std::f64::consts::PI;

    fn spec(channels: u16, bits: u16, format: SampleFormat) -> WavSpec {
        WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    /// Writes interleaved samples `S` to `path` with hound.
    fn write<S: hound::Sample + Copy>(path: &Path, spec: WavSpec, samples: &[S]) {
        let mut w = WavWriter::create(path, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    /// The bytes of a WAV file with a plain 16-byte fmt chunk, made by hand.
    fn handmade(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let align = channels * bits.div_ceil(8);
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        for v in [tag, channels] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        for v in [align, bits] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn integer_and_float_files_scale_and_mix_down() {
        let dir = test_dir("wav-formats");
        let cases: Vec<(&str, Audio)> = vec![
            ("i8.wav", {
                let p = dir.join("i8.wav");
                write::<i8>(&p, spec(1, 8, SampleFormat::Int), &[-128, 0, 64, 127]);
                Audio {
                    samples: vec![-1.0, 0.0, 0.5, 127.0 / 128.0],
                    sample_rate: 8000,
                }
            }),
            ("i16.wav", {
                let p = dir.join("i16.wav");
                write::<i16>(&p, spec(1, 16, SampleFormat::Int), &[-32768, 16384, 1]);
                Audio {
                    samples: vec![-1.0, 0.5, 1.0 / 32768.0],
                    sample_rate: 8000,
                }
            }),
            ("i24.wav", {
                let p = dir.join("i24.wav");
                write::<i32>(&p, spec(1, 24, SampleFormat::Int), &[-(1 << 23), 1 << 21]);
                Audio {
                    samples: vec![-1.0, 0.25],
                    sample_rate: 8000,
                }
            }),
            ("i32.wav", {
                let p = dir.join("i32.wav");
                write::<i32>(&p, spec(1, 32, SampleFormat::Int), &[i32::MIN, 1 << 29]);
                Audio {
                    samples: vec![-1.0, 0.25],
                    sample_rate: 8000,
                }
            }),
            ("f32.wav", {
                let p = dir.join("f32.wav");
                write::<f32>(&p, spec(1, 32, SampleFormat::Float), &[0.125, -0.75]);
                Audio {
                    samples: vec![0.125, -0.75],
                    sample_rate: 8000,
                }
            }),
            // Stereo frames (L, R) average to (L + R) / 2.
            ("stereo16.wav", {
                let p = dir.join("stereo16.wav");
                let s = [16384, -16384, 8192, 8192, -32768, 0];
                write::<i16>(&p, spec(2, 16, SampleFormat::Int), &s);
                Audio {
                    samples: vec![0.0, 0.25, -0.5],
                    sample_rate: 8000,
                }
            }),
            ("stereo8.wav", {
                let p = dir.join("stereo8.wav");
                write::<i8>(&p, spec(2, 8, SampleFormat::Int), &[-128, 64, 32, 32]);
                Audio {
                    samples: vec![-0.25, 0.25],
                    sample_rate: 8000,
                }
            }),
            ("stereo24.wav", {
                let p = dir.join("stereo24.wav");
                let s = [1 << 22, 1 << 21, -(1 << 23), -(1 << 23)];
                write::<i32>(&p, spec(2, 24, SampleFormat::Int), &s);
                Audio {
                    samples: vec![0.375, -1.0],
                    sample_rate: 8000,
                }
            }),
            ("surround-float.wav", {
                let p = dir.join("surround-float.wav");
                write::<f32>(&p, spec(3, 32, SampleFormat::Float), &[0.3, 0.6, -0.3]);
                Audio {
                    samples: vec![0.2],
                    sample_rate: 8000,
                }
            }),
        ];
        for (file, expected) in cases {
            let path = dir.join(file);
            let got = read_wav_file(&path).unwrap();
            assert_eq!(got.sample_rate, expected.sample_rate, "{file}");
            assert_eq!(got.samples.len(), expected.samples.len(), "{file}");
            for (g, e) in got.samples.iter().zip(&expected.samples) {
                assert!((g - e).abs() < 1e-7, "{file}: {g} vs {e}");
            }
            // The reader path gives the same audio.
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(read_wav(&bytes[..], Path::new("<stdin>")).unwrap(), got);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A WAVE_FORMAT_EXTENSIBLE file of one channel: sub-format `sub` (1 PCM, 3
    /// float), `container` bits per sample of which `valid` are used.
    fn extensible(sub: u8, container: u16, valid: u16) -> Vec<u8> {
        let mut b = handmade(0xfffe, 1, 8000, container, &[0; 16]);
        b[16..20].copy_from_slice(&40u32.to_le_bytes());
        let mut fmt_ext = vec![];
        fmt_ext.extend_from_slice(&22u16.to_le_bytes());
        fmt_ext.extend_from_slice(&valid.to_le_bytes());
        fmt_ext.extend_from_slice(&4u32.to_le_bytes());
        fmt_ext.extend_from_slice(&[
            sub, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38,
            0x9b, 0x71,
        ]);
        b.splice(36..36, fmt_ext);
        let riff = b.len() as u32 - 8;
        b[4..8].copy_from_slice(&riff.to_le_bytes());
        b
    }

    #[test]
    fn broken_and_unsupported_files_are_refused_with_the_reason() {
        let dir = test_dir("wav-broken");
        let good = dir.join("good.wav");
        write::<i16>(&good, spec(2, 16, SampleFormat::Int), &[1; 200]);
        let good = std::fs::read(&good).unwrap();
        let ext = extensible(3, 64, 64);
        // A second fmt chunk (of 8 kHz stereo) after one of 16 kHz mono.
        let mut two_fmt = handmade(1, 1, 16000, 16, &[0; 4]);
        two_fmt.splice(36..36, good[12..36].iter().copied());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty.wav", vec![], "empty"),
            (
                "random.wav",
                (0..300u32).map(|i| (i * 7919 % 251) as u8).collect(),
                "not a WAV file",
            ),
            (
                "header-cut.wav",
                good[..30].to_vec(),
                "truncated WAV header",
            ),
            (
                "data-cut.wav",
                good[..good.len() - 101].to_vec(),
                "truncated: the header declares 200 samples but the data ends after 149",
            ),
            (
                "no-samples.wav",
                handmade(1, 1, 8000, 16, &[]),
                "holds no samples",
            ),
            (
                "zero-rate.wav",
                handmade(1, 1, 0, 16, &[0; 4]),
                "sample rate of 0",
            ),
            // Resampled to 16 kHz, a clip at 1 Hz would be 16,000 times longer.
            (
                "one-hertz.wav",
                handmade(1, 1, 1, 16, &[0; 4]),
                "sample rate of 1 Hz; only rates of 4000 to 384000 Hz are read",
            ),
            (
                "two-hertz.wav",
                handmade(1, 1, 2, 16, &[0; 4]),
                "sample rate of 2 Hz",
            ),
            (
                "too-fast.wav",
                handmade(1, 1, 384_001, 16, &[0; 4]),
                "sample rate of 384001 Hz",
            ),
            ("two-fmt.wav", two_fmt, "two fmt chunks"),
            (
                "no-fmt.wav",
                [&good[..12], &good[36..]].concat(),
                "no fmt chunk before the data",
            ),
            (
                "f64.wav",
                handmade(3, 1, 8000, 64, &[0; 16]),
                "bits per sample is not 32",
            ),
            (
                "f24.wav",
                handmade(3, 1, 8000, 24, &[0; 6]),
                "bits per sample is not 32",
            ),
            ("f64-extensible.wav", ext, "64-bit float samples"),
            (
                "i24-in-4-bytes.wav",
                extensible(1, 32, 24),
                "24-bit samples in 4-byte containers",
            ),
            (
                "mp3.wav",
                handmade(0x55, 1, 8000, 16, &[0; 8]),
                "unsupported WAV encoding",
            ),
            (
                "nan.wav",
                handmade(3, 1, 8000, 32, &f32::NAN.to_le_bytes()),
                "non-finite",
            ),
        ];
        for (file, bytes, needle) in cases {
            let path = dir.join(file);
            std::fs::write(&path, &bytes).unwrap();
            let err = read_wav_file(&path).unwrap_err().to_string();
            assert!(err.contains(file) && err.contains(needle), "{err}");
            let err = read_wav(&bytes[..], Path::new("<stdin>"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("<stdin>: ") && err.contains(needle),
                "{err}"
            );
            let err = load_wav(&path, 16000).unwrap_err().to_string();
            assert!(err.contains(file) && err.contains(needle), "{err}");
        }
        let err = read_wav_file(Path::new("/no/such/file.wav"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/file.wav"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn streams_with_placeholder_sizes_read_to_their_end() {
        let samples: Vec<i16> = (0..101).map(|i| (i * 300 - 15_000) as i16).collect();
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let exact = read_wav(&handmade(1, 1, 8000, 16, &data)[..], Path::new("a")).unwrap();
        for placeholder in [0u32, u32::MAX] {
            let mut b = handmade(1, 1, 8000, 16, &data);
            b[4..8].copy_from_slice(&placeholder.to_le_bytes());
            b[40..44].copy_from_slice(&placeholder.to_le_bytes());
            // A pipe may also end in the middle of a frame.
            b.push(7);
            let streamed = read_wav_stream(&b[..], Path::new("<stdin>"), 8000).unwrap();
            assert_eq!(streamed, exact, "data size {placeholder:#x}");
            // A file written the same way reads the same.
            assert_eq!(read_wav(&b[..], Path::new("f.wav")).unwrap(), exact);
        }
        // A header that declares more data than there is: a stream cut short reads
        // what arrived; a file is truncated.
        let mut b = handmade(1, 1, 8000, 16, &data);
        b[40..44].copy_from_slice(&1000u32.to_le_bytes());
        let streamed = read_wav_stream(&b[..], Path::new("<stdin>"), 8000).unwrap();
        assert_eq!(streamed, exact);
        let err = read_wav(&b[..], Path::new("f.wav"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    /// `bytes` with `chunk` put before the chunk that starts at `at`, and the RIFF size
    /// set to match.
    fn with_chunk(bytes: &[u8], at: usize, chunk: &[u8]) -> Vec<u8> {
        let mut b = bytes.to_vec();
        b.splice(at..at, chunk.iter().copied());
        let riff = b.len() as u32 - 8;
        b[4..8].copy_from_slice(&riff.to_le_bytes());
        b
    }

    #[test]
    fn a_chunk_of_odd_size_is_followed_by_its_pad_byte() {
        let data: Vec<u8> = (0..20u8).map(|i| i * 11).collect();
        let plain = handmade(1, 1, 8000, 16, &data);
        let expected = read_wav(&plain[..], Path::new("plain.wav")).unwrap();
        // LIST/INFO of 17 bytes (as some writers leave an ISFT of "Lavf" with its
        // terminating zero), then the pad byte; or, as some writers do, without it.
        let list = b"LIST\x11\0\0\0INFOISFT\x05\0\0\0Lavf\0";
        let padded = with_chunk(&plain, 36, &[&list[..], &[0]].concat());
        let unpadded = with_chunk(&plain, 36, list);
        for (name, bytes) in [("padded.wav", padded), ("unpadded.wav", unpadded)] {
            let got = read_wav(&bytes[..], Path::new(name)).unwrap();
            assert_eq!(got, expected, "{name}");
        }
        // 8-bit data of odd size, its pad byte, and a chunk after it.
        let odd = handmade(1, 1, 8000, 8, &data[..7]);
        let expected = read_wav(&odd[..], Path::new("odd.wav")).unwrap();
        assert_eq!(expected.samples.len(), 7);
        let after = with_chunk(&odd, odd.len(), &[&[0][..], &list[..], &[0]].concat());
        assert_eq!(
            read_wav(&after[..], Path::new("after.wav")).unwrap(),
            expected
        );
    }

    #[test]
    fn endless_input_that_is_not_a_wav_file_is_refused_at_its_first_bytes() {
        let name = Path::new("<stdin>");
        for byte in [0, b'R', 0xff] {
            let err = read_wav(std::io::repeat(byte), name)
                .unwrap_err()
                .to_string();
            assert!(err.contains("<stdin>: not a WAV file"), "{err}");
            let err = read_wav_stream(std::io::repeat(byte), name, 16000)
                .unwrap_err()
                .to_string();
            assert!(err.contains("<stdin>: not a WAV file"), "{err}");
        }
        let avi = Read::chain(&b"RIFF\0\0\0\0AVI "[..], std::io::repeat(0));
        let err = read_wav_stream(avi, name, 16000).unwrap_err().to_string();
        assert!(err.contains("no WAVE tag"), "{err}");
        for device in ["/dev/zero", "/dev/urandom"] {
            let path = Path::new(device);
            if path.exists() {
                let err = load_wav(path, 16000).unwrap_err().to_string();
                assert!(
                    err.contains(device) && err.contains("not a WAV file"),
                    "{err}"
                );
            }
        }
    }

    fn sine(freq: f64, rate: u32, len: usize) -> Audio {
        Audio {
            samples: (0..len)
                .map(|k| (2.0 * PI * freq * k as f64 / rate as f64).sin() as f32)
                .collect(),
            sample_rate: rate,
        }
    }

    /// Largest deviation from the analytic sine over the middle 80% of `audio`.
    fn middle_error(audio: &Audio, freq: f64) -> f64 {
        let n = audio.samples.len();
        let expected = sine(freq, audio.sample_rate, n);
        (n / 10..n - n / 10)
            .map(|k| (f64::from(audio.samples[k]) - f64::from(expected.samples[k])).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn resampling_keeps_timing_and_length() {
        // 8 kHz -> 16 kHz, 44.1 kHz -> 16 kHz and 11.025 kHz -> 16 kHz, clips long and
        // short, with lengths that do not divide evenly. A delay off by half an input
        // sample (rubato's own choice of block for 44.1 kHz) is an error of 0.03.
        for (from, len, out_len) in [
            (8000, 8000, 16000),
            (8000, 333, 666),
            (44100, 44100, 16000),
            (44100, 10007, 3631),
            (44100, 300, 109),
            (11025, 5000, 7256),
        ] {
            let out = resample(&sine(440.0, from, len), 16000).unwrap();
            assert_eq!(
                (out.sample_rate, out.samples.len()),
                (16000, out_len),
                "{from}"
            );
            let err = middle_error(&out, 440.0);
            assert!(err < 1e-2, "{from} Hz, {len} samples: error {err}");
            // Deterministic.
            assert_eq!(resample(&sine(440.0, from, len), 16000).unwrap(), out);
        }
        let same = sine(440.0, 16000, 1234);
        assert_eq!(resample(&same, 16000).unwrap(), same);
        assert!(resample(&same, 0).is_err());
        let err = resample(&sine(440.0, 383_999, 10), 16000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("common factor"), "{err}");
    }

    #[test]
    fn load_wav_reads_and_resamples() {
        let dir = test_dir("wav-load");
        let path = dir.join("tone.wav");
        let tone = sine(440.0, 8000, 4000);
        write::<f32>(&path, spec(1, 32, SampleFormat::Float), &tone.samples);
        let audio = load_wav(&path, 16000).unwrap();
        assert_eq!(audio, resample(&tone, 16000).unwrap());
        assert_eq!(audio.duration_s(), 0.5);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The deterministic fuzz smoke test (the short, seeded version of `fuzz/`'s `wav`
/// target that runs with the test suite).
#[cfg(test)]
mod fuzz_smoke {
    use super::*;
    use crate::mutate::no_panics;

    /// Seeds: synthetic 8 kHz "words" and hand-made files of every sample format, with and
    /// without extra chunks and placeholder sizes (`fuzz/seeds/wav`).
    const SEEDS: [&[u8]; 6] = [
        include_bytes!("../../fuzz/seeds/wav/sweep-8k.wav"),
        include_bytes!("../../fuzz/seeds/wav/u8.wav"),
        include_bytes!("../../fuzz/seeds/wav/i24.wav"),
        include_bytes!("../../fuzz/seeds/wav/f32.wav"),
        include_bytes!("../../fuzz/seeds/wav/extensible24.wav"),
        include_bytes!("../../fuzz/seeds/wav/list-unpadded.wav"),
    ];

    #[test]
    fn mutated_wav_files_are_read_or_refused_without_panicking() {
        let name = Path::new("<fuzz>");
        let ok = no_panics("wav", &SEEDS, 28, 5000, |b| {
            let file = read_wav(b, name).is_ok();
            let stream = read_wav_stream(b, name, 16_000).is_ok();
            let decoded = decode(b, name, 16_000).is_ok();
            file || stream || decoded
        });
        // The seeds read, and so do many mutants (edits in the samples).
        assert!(ok > 300, "{ok} inputs read");
    }
}
