//! Log-mel and MFCC features of mono audio, frame by frame, in a streaming-friendly
//! layout.
//!
//! Conventions:
//! - Framing: frame t covers samples `[t * hop, t * hop + window)`, with no centre
//!   padding, so frame t can be computed once `t * hop + window` samples have
//!   arrived ([`FrontendConfig::end_of_frame_ms`]). Only whole frames are produced.
//!   Window and hop lengths are `round(ms * sample_rate / 1000)` samples.
//! - Window: periodic Hann, `w[n] = 0.5 - 0.5 cos(2 pi n / window)`, zero-padded at
//!   the end to the FFT size (the next power of two at or above the window). No
//!   pre-emphasis, no DC removal, no dither.
//! - Spectrum: unnormalised power `|X_k|^2` with `X_k = sum_n x[n] w[n] e^(-2 pi i k n / N)`
//!   for bins `k = 0..=N/2` at `k * sample_rate / N` Hz, on samples in [-1, 1].
//! - Mel filterbank: HTK mel scale `mel = 2595 log10(1 + f / 700)`; `mel_bands + 2`
//!   points equally spaced in mel from `f_min` to `f_max`; band m is a triangle over
//!   points m, m + 1, m + 2 (rising from 0 to 1, then falling to 0, linear in Hz),
//!   sampled at the bin frequencies, with peak weight 1 (no area normalisation).
//!   A band that catches no bin is refused by [`FrontendConfig::validate`].
//! - Log-mel: `ln(energy + 1e-6)` per band.
//! - MFCC: the first n coefficients of the orthonormal DCT-II of the log-mel vector
//!   `x` of M bands, `c_k = s_k sum_m x_m cos(pi k (m + 1/2) / M)` with
//!   `s_0 = sqrt(1/M)` and `s_k = sqrt(2/M)`; c_0 is kept.
//!
//! Features are laid out frame-major: value f of frame t at `t * feature_size() + f`.
//! The arithmetic is done in f64 and stored as f32.

use crate::error::{Error, Result, ensure};
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Added to each band energy before the logarithm.
const LOG_FLOOR: f64 = 1e-6;

/// The longest clip accepted, in milliseconds (a model reads one frame a step).
const MAX_CLIP_MS: u32 = 60_000;

/// The longest analysis window accepted, in samples.
const MAX_WINDOW: usize = 1 << 20;

/// Front-end settings. Every field has a default (missing fields in a saved
/// configuration take it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrontendConfig {
    /// Sample rate of the audio, Hz. Default 16,000.
    pub sample_rate: u32,
    /// Analysis window length, milliseconds. Default 25.
    pub window_ms: f32,
    /// Hop between frame starts, milliseconds, at most the window. Default 10.
    pub hop_ms: f32,
    /// Number of mel bands. Default 40.
    pub mel_bands: usize,
    /// Lower edge of the lowest mel band, Hz. Default 20.
    pub f_min: f32,
    /// Upper edge of the highest mel band, Hz, at most the Nyquist frequency;
    /// 0 means the Nyquist frequency (`sample_rate / 2`). Default 0.
    pub f_max: f32,
    /// `None`: log-mel features; `Some(n)`: the first n MFCCs (n <= mel_bands).
    /// Default `None`.
    pub mfcc: Option<usize>,
    /// Length clips are padded (with zeros at the end) or trimmed to before framing,
    /// milliseconds. Default 1000.
    pub clip_ms: u32,
    /// How each clip's own frames normalise its features (before the training split's
    /// statistics). Default none.
    #[serde(skip_serializing_if = "UtteranceNorm::is_none")]
    pub utterance_norm: UtteranceNorm,
}

/// How each clip's own frames normalise its features, before the training split's
/// statistics: a speaker's level and channel are constant offsets of every log-mel
/// band, which these remove ([`UtteranceNorm::about`] says how each does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UtteranceNorm {
    #[default]
    None,
    Causal,
    Whole,
}

impl UtteranceNorm {
    /// Every normalisation.
    pub const ALL: [UtteranceNorm; 3] = [
        UtteranceNorm::None,
        UtteranceNorm::Causal,
        UtteranceNorm::Whole,
    ];

    /// The name on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            UtteranceNorm::None => "none",
            UtteranceNorm::Causal => "causal",
            UtteranceNorm::Whole => "whole",
        }
    }

    /// What the normalisation does, in a line.
    pub fn about(self) -> &'static str {
        match self {
            UtteranceNorm::None => "The training split's statistics only",
            UtteranceNorm::Causal => {
                "Each frame minus the mean of the clip's frames up to and including it (causal \
                 mean normalisation): the features of a prefix stay a prefix of the whole \
                 clip's, so an early decision sees no later audio"
            }
            UtteranceNorm::Whole => {
                "Each band minus its mean over the clip's frames of audio (not the padding), \
                 divided by their standard deviation: normalisation over the whole utterance, \
                 which lets an early decision see statistics of audio after it"
            }
        }
    }

    /// True for no normalisation per clip (what configurations saved before it mean).
    pub fn is_none(&self) -> bool {
        *self == UtteranceNorm::None
    }

    /// Normalises `values` (frame-major, `features` a frame), whose first
    /// `audio_frames` frames hold audio and the rest padding.
    pub fn apply(self, values: &mut [f32], features: usize, audio_frames: usize) {
        let frames = values.len() / features;
        match self {
            UtteranceNorm::None => {}
            UtteranceNorm::Causal => {
                let mut sum = vec![0f64; features];
                for (t, frame) in values.chunks_mut(features).enumerate() {
                    for (s, v) in sum.iter_mut().zip(frame.iter_mut()) {
                        *s += *v as f64;
                        *v = (*v as f64 - *s / (t + 1) as f64) as f32;
                    }
                }
            }
            UtteranceNorm::Whole => {
                let n = audio_frames.clamp(1, frames.max(1));
                let audio = &values[..n * features];
                let norm =
                    crate::data::audio::FeatureNorm::from_features(&[audio.to_vec()], features);
                norm.apply(values);
            }
        }
    }
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            sample_rate: 16000,
            window_ms: 25.0,
            hop_ms: 10.0,
            mel_bands: 40,
            f_min: 20.0,
            f_max: 0.0,
            mfcc: None,
            clip_ms: 1000,
            utterance_norm: UtteranceNorm::None,
        }
    }
}

/// One triangular mel filter, stored from its first bin of non-zero weight.
#[derive(Debug, Clone, PartialEq)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f64>,
}

/// HTK mel of a frequency in Hz.
fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

/// Frequency in Hz of an HTK mel.
fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

impl FrontendConfig {
    /// Checks every setting, including that each mel band catches at least one FFT
    /// bin; the messages name the setting and the allowed range.
    pub fn validate(&self) -> Result<()> {
        self.mel_filters().map(|_| ())
    }

    /// Samples in `ms` milliseconds, rounded (saturating for absurd values).
    fn samples_in(&self, ms: f64) -> usize {
        (ms * f64::from(self.sample_rate) / 1000.0).round() as usize
    }

    /// Analysis window length in samples.
    pub fn window_samples(&self) -> usize {
        self.samples_in(f64::from(self.window_ms))
    }

    /// Hop between frames in samples.
    pub fn hop_samples(&self) -> usize {
        self.samples_in(f64::from(self.hop_ms))
    }

    /// Clip length in samples.
    pub fn clip_samples(&self) -> usize {
        self.samples_in(f64::from(self.clip_ms))
    }

    /// FFT length: the next power of two at or above the window (0 if there is none).
    pub fn fft_size(&self) -> usize {
        self.window_samples()
            .checked_next_power_of_two()
            .unwrap_or(0)
    }

    /// Values per frame: the mel bands, or the number of MFCCs.
    pub fn feature_size(&self) -> usize {
        self.mfcc.unwrap_or(self.mel_bands)
    }

    /// The upper edge of the filterbank in Hz, with 0 read as the Nyquist frequency.
    pub fn f_max_hz(&self) -> f32 {
        if self.f_max == 0.0 {
            self.sample_rate as f32 / 2.0
        } else {
            self.f_max
        }
    }

    /// Whole frames in `len` samples.
    fn frames_in(&self, len: usize) -> usize {
        let (window, hop) = (self.window_samples(), self.hop_samples());
        if hop == 0 || window == 0 || len < window {
            0
        } else {
            1 + (len - window) / hop
        }
    }

    /// Frames of a `clip_ms` clip: `1 + (clip_samples - window) / hop` (98 at the
    /// defaults).
    pub fn frames(&self) -> usize {
        self.frames_in(self.clip_samples())
    }

    /// Time into the audio, in milliseconds, at which frame `t` is complete:
    /// `(t * hop + window) / sample_rate * 1000`.
    pub fn end_of_frame_ms(&self, t: usize) -> f32 {
        let end = t as f64 * self.hop_samples() as f64 + self.window_samples() as f64;
        (end / f64::from(self.sample_rate) * 1000.0) as f32
    }

    /// The `mel_bands + 2` filterbank points in Hz, equally spaced in mel.
    fn mel_points_hz(&self) -> Vec<f64> {
        let (lo, hi) = (
            hz_to_mel(f64::from(self.f_min)),
            hz_to_mel(f64::from(self.f_max_hz())),
        );
        let steps = (self.mel_bands + 1) as f64;
        (0..self.mel_bands + 2)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / steps))
            .collect()
    }

    /// Checks everything but the filterbank.
    fn check_settings(&self) -> Result<()> {
        ensure(self.sample_rate > 0, || {
            "front end sample rate must be positive".into()
        })?;
        let (window, hop) = (self.window_samples(), self.hop_samples());
        ensure(
            self.window_ms.is_finite() && (2..=MAX_WINDOW).contains(&window),
            || {
                format!(
                    "front end window of {} ms is {window} samples at {} Hz, must be 2 to {MAX_WINDOW}",
                    self.window_ms, self.sample_rate
                )
            },
        )?;
        ensure(self.hop_ms.is_finite() && hop >= 1, || {
            format!(
                "front end hop of {} ms is {hop} samples at {} Hz, must be at least 1",
                self.hop_ms, self.sample_rate
            )
        })?;
        ensure(hop <= window, || {
            format!(
                "front end hop ({} ms) must not exceed the window ({} ms), or samples between frames are lost",
                self.hop_ms, self.window_ms
            )
        })?;
        ensure(
            self.mel_bands >= 1 && self.mel_bands <= self.fft_size() / 2,
            || {
                format!(
                    "mel bands must be between 1 and {} (half the FFT size) for a {}-sample window, got {}",
                    self.fft_size() / 2,
                    window,
                    self.mel_bands
                )
            },
        )?;
        let nyquist = self.sample_rate as f32 / 2.0;
        ensure(self.f_min.is_finite() && self.f_min >= 0.0, || {
            format!("f_min must be a frequency >= 0 Hz, got {}", self.f_min)
        })?;
        ensure(
            self.f_max.is_finite() && self.f_max >= 0.0 && self.f_max <= nyquist,
            || {
                format!(
                    "f_max must be between 0 (meaning the Nyquist frequency) and the Nyquist frequency {nyquist} Hz, got {}",
                    self.f_max
                )
            },
        )?;
        ensure(self.f_min < self.f_max_hz(), || {
            format!(
                "f_min ({} Hz) must be below f_max ({} Hz)",
                self.f_min,
                self.f_max_hz()
            )
        })?;
        if let Some(n) = self.mfcc {
            ensure(n >= 1 && n <= self.mel_bands, || {
                format!(
                    "the number of MFCCs must be between 1 and the {} mel bands, got {n}",
                    self.mel_bands
                )
            })?;
        }
        ensure(self.clip_samples() >= window, || {
            format!(
                "clips of {} ms are shorter than one window ({} ms)",
                self.clip_ms, self.window_ms
            )
        })?;
        ensure(self.clip_ms <= MAX_CLIP_MS, || {
            format!(
                "clips of {} ms are longer than the {MAX_CLIP_MS} ms allowed",
                self.clip_ms
            )
        })
    }

    /// The validated triangular filters, one per mel band.
    fn mel_filters(&self) -> Result<Vec<MelFilter>> {
        self.check_settings()?;
        let points = self.mel_points_hz();
        let n_fft = self.fft_size();
        let bin_hz = f64::from(self.sample_rate) / n_fft as f64;
        points
            .windows(3)
            .enumerate()
            .map(|(band, p)| {
                let (lo, centre, hi) = (p[0], p[1], p[2]);
                let weight = |k: usize| {
                    let f = k as f64 * bin_hz;
                    if f <= lo || f >= hi {
                        0.0
                    } else if f <= centre {
                        (f - lo) / (centre - lo)
                    } else {
                        (hi - f) / (hi - centre)
                    }
                };
                let bins: Vec<usize> = (0..=n_fft / 2).filter(|&k| weight(k) > 0.0).collect();
                match (bins.first(), bins.last()) {
                    (Some(&first), Some(&last)) => Ok(MelFilter {
                        first_bin: first,
                        weights: (first..=last).map(weight).collect(),
                    }),
                    _ => Err(Error::InvalidConfig(format!(
                        "mel band {band} ({lo:.1} to {hi:.1} Hz) falls between FFT bins \
                         {bin_hz:.2} Hz apart: use fewer mel bands, a longer window or a higher f_min"
                    ))),
                }
            })
            .collect()
    }
}

/// A built front end: window, FFT plan, mel filterbank, DCT matrix.
pub struct Frontend {
    config: FrontendConfig,
    /// The periodic Hann window, `window_samples()` long.
    window: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
    filters: Vec<MelFilter>,
    /// For MFCCs, the `n x mel_bands` DCT-II rows, row-major.
    dct: Option<Vec<f64>>,
}

impl std::fmt::Debug for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Frontend {
    /// Validates `config` and builds the window, FFT plan, filterbank and DCT.
    pub fn new(config: FrontendConfig) -> Result<Self> {
        let filters = config.mel_filters()?;
        let len = config.window_samples();
        let window = (0..len)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / len as f64).cos())
            .collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(config.fft_size());
        let bands = config.mel_bands;
        let dct = config.mfcc.map(|n| {
            (0..n)
                .flat_map(|k| {
                    let scale = if k == 0 { 1.0 } else { 2.0 } / bands as f64;
                    (0..bands).map(move |m| {
                        scale.sqrt()
                            * (std::f64::consts::PI * k as f64 * (m as f64 + 0.5) / bands as f64)
                                .cos()
                    })
                })
                .collect()
        });
        Ok(Frontend {
            config,
            window,
            fft,
            filters,
            dct,
        })
    }

    /// The settings this front end was built with.
    pub fn config(&self) -> &FrontendConfig {
        &self.config
    }

    /// Features of `samples` (already at `config.sample_rate`), padded with zeros or
    /// trimmed to `clip_ms`: `frames() * feature_size()` values, frame-major.
    /// Each clip's own normalisation (`utterance_norm`) applies.
    pub fn clip_features(&self, samples: &[f32]) -> Vec<f32> {
        let clip = self.config.clip_samples();
        let mut values = if samples.len() >= clip {
            self.features(&samples[..clip])
        } else {
            let mut padded = samples.to_vec();
            padded.resize(clip, 0.0);
            self.features(&padded)
        };
        let audio_frames = self.config.frames_in(samples.len().min(clip));
        self.config
            .utterance_norm
            .apply(&mut values, self.config.feature_size(), audio_frames);
        values
    }

    /// Features of every whole frame in `samples`, with no padding or trimming
    /// (streaming use): `n_frames * feature_size()` values, frame-major. Features of
    /// a prefix of the audio are a prefix of the features of all of it.
    pub fn features(&self, samples: &[f32]) -> Vec<f32> {
        let (window, hop) = (self.config.window_samples(), self.config.hop_samples());
        let frames = self.config.frames_in(samples.len());
        let mut out = Vec::with_capacity(frames * self.config.feature_size());
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut log_mel = vec![0.0; self.filters.len()];
        for frame in (0..frames).map(|t| &samples[t * hop..t * hop + window]) {
            // The transform uses its input as scratch, so the padding is rewritten too.
            for (i, x) in input.iter_mut().enumerate() {
                *x = frame.get(i).map_or(0.0, |&s| f64::from(s) * self.window[i]);
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("buffers come from the plan, so their lengths match it");
            for (value, filter) in log_mel.iter_mut().zip(&self.filters) {
                let energy: f64 = filter
                    .weights
                    .iter()
                    .zip(&spectrum[filter.first_bin..])
                    .map(|(w, x): (&f64, &Complex<f64>)| w * x.norm_sqr())
                    .sum();
                *value = (energy + LOG_FLOOR).ln();
            }
            match &self.dct {
                None => out.extend(log_mel.iter().map(|&v| v as f32)),
                Some(dct) => {
                    out.extend(dct.chunks_exact(log_mel.len()).map(|row| {
                        row.iter().zip(&log_mel).map(|(a, b)| a * b).sum::<f64>() as f32
                    }))
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// `amp * sin(2 pi f t)` summed over `tones`, `len` samples at `rate` Hz.
    fn tones(tones: &[(f64, f64)], rate: u32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| {
                let t = n as f64 / f64::from(rate);
                tones
                    .iter()
                    .map(|&(f, amp)| amp * (2.0 * PI * f * t).sin())
                    .sum::<f64>() as f32
            })
            .collect()
    }

    /// Log-mel frames by the definitions, written out directly: a Hann window, an
    /// O(N^2) DFT in f64, and triangles on the HTK mel scale evaluated per bin.
    fn reference_log_mel(cfg: &FrontendConfig, x: &[f32]) -> Vec<Vec<f64>> {
        let rate = f64::from(cfg.sample_rate);
        let w = (f64::from(cfg.window_ms) * rate / 1000.0).round() as usize;
        let hop = (f64::from(cfg.hop_ms) * rate / 1000.0).round() as usize;
        let mut n_fft = 1;
        while n_fft < w {
            n_fft *= 2;
        }
        let f_max = if cfg.f_max == 0.0 {
            rate / 2.0
        } else {
            f64::from(cfg.f_max)
        };
        let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
        let (m_lo, m_hi) = (mel(f64::from(cfg.f_min)), mel(f_max));
        let hz: Vec<f64> = (0..cfg.mel_bands + 2)
            .map(|i| {
                let m = m_lo + (m_hi - m_lo) * i as f64 / (cfg.mel_bands + 1) as f64;
                700.0 * (10f64.powf(m / 2595.0) - 1.0)
            })
            .collect();
        let mut frames = Vec::new();
        let mut start = 0;
        while start + w <= x.len() {
            let windowed: Vec<f64> = (0..w)
                .map(|n| {
                    f64::from(x[start + n]) * (0.5 - 0.5 * (2.0 * PI * n as f64 / w as f64).cos())
                })
                .collect();
            let power: Vec<f64> = (0..=n_fft / 2)
                .map(|k| {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (n, v) in windowed.iter().enumerate() {
                        let phase = -2.0 * PI * (k * n % n_fft) as f64 / n_fft as f64;
                        re += v * phase.cos();
                        im += v * phase.sin();
                    }
                    re * re + im * im
                })
                .collect();
            frames.push(
                (0..cfg.mel_bands)
                    .map(|m| {
                        let (a, b, c) = (hz[m], hz[m + 1], hz[m + 2]);
                        let energy: f64 = power
                            .iter()
                            .enumerate()
                            .map(|(k, p)| {
                                let f = k as f64 * rate / n_fft as f64;
                                let tri = ((f - a) / (b - a)).min((c - f) / (c - b)).max(0.0);
                                tri * p
                            })
                            .sum();
                        (energy + 1e-6).ln()
                    })
                    .collect(),
            );
            start += hop;
        }
        frames
    }

    fn close(got: f32, want: f64, rel: f64) -> bool {
        (f64::from(got) - want).abs() <= rel * want.abs().max(1.0)
    }

    #[test]
    fn log_mel_matches_a_direct_dft_reference() {
        let other = FrontendConfig {
            sample_rate: 8000,
            window_ms: 32.0,
            hop_ms: 12.5,
            mel_bands: 23,
            f_min: 100.0,
            f_max: 3500.0,
            ..FrontendConfig::default()
        };
        for cfg in [FrontendConfig::default(), other] {
            // An awkward length: the last partial frame is dropped.
            let x = tones(&[(1000.0, 0.5), (3000.0, 0.05)], cfg.sample_rate, 5933);
            let frontend = Frontend::new(cfg.clone()).unwrap();
            let got = frontend.features(&x);
            let want = reference_log_mel(&cfg, &x);
            assert_eq!(want.len(), cfg.frames_in(x.len()));
            assert_eq!(got.len(), want.len() * cfg.mel_bands);
            for (t, frame) in want.iter().enumerate() {
                for (m, &v) in frame.iter().enumerate() {
                    let g = got[t * cfg.mel_bands + m];
                    assert!(close(g, v, 1e-4), "frame {t} band {m}: {g} vs {v}");
                }
            }
        }
    }

    #[test]
    fn a_pure_tone_peaks_in_the_band_centred_nearest_it() {
        let cfg = FrontendConfig::default();
        let frontend = Frontend::new(cfg.clone()).unwrap();
        let centres = &cfg.mel_points_hz()[1..=cfg.mel_bands];
        // Tones 30% of the way from a band centre to a neighbour's.
        for (band, towards) in [(6, 1), (12, -1), (20, 1), (31, -1), (38, 1)] {
            let neighbour = centres[(band as isize + towards) as usize];
            let freq = centres[band] + 0.3 * (neighbour - centres[band]);
            let feats = frontend.clip_features(&tones(&[(freq, 0.3)], cfg.sample_rate, 16000));
            for (t, frame) in feats.chunks_exact(cfg.mel_bands).enumerate() {
                let peak = (0..frame.len())
                    .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
                    .unwrap();
                assert_eq!(peak, band, "{freq:.1} Hz, frame {t}");
            }
        }
    }

    #[test]
    fn clips_are_padded_or_trimmed_and_frames_stream() {
        let cfg = FrontendConfig::default();
        assert_eq!(
            (
                cfg.window_samples(),
                cfg.hop_samples(),
                cfg.fft_size(),
                cfg.feature_size()
            ),
            (400, 160, 512, 40)
        );
        assert_eq!(cfg.frames(), 98);
        assert_eq!(cfg.end_of_frame_ms(0), 25.0);
        assert_eq!(cfg.end_of_frame_ms(97), 995.0);
        let frontend = Frontend::new(cfg.clone()).unwrap();
        let x = tones(&[(440.0, 0.4), (2000.0, 0.2)], 16000, 24000);
        // Half a second, padded with zeros to the clip.
        let mut padded = x[..8000].to_vec();
        padded.resize(16000, 0.0);
        let half = frontend.clip_features(&x[..8000]);
        assert_eq!(half.len(), 98 * 40);
        assert_eq!(half, frontend.features(&padded));
        // A second and a half, trimmed to the clip.
        assert_eq!(frontend.clip_features(&x), frontend.features(&x[..16000]));
        // Streaming: frame t is there once end_of_frame_ms(t) of audio has arrived,
        // and features of a prefix are a prefix of the features.
        let all = frontend.features(&x);
        for t in [0, 1, 37, 97] {
            let arrived = (cfg.end_of_frame_ms(t) / 1000.0 * 16000.0) as usize;
            let partial = frontend.features(&x[..arrived]);
            assert_eq!(partial.len(), (t + 1) * 40);
            assert_eq!(partial[..], all[..partial.len()]);
            assert_eq!(frontend.features(&x[..arrived - 1]).len(), t * 40);
        }
        assert!(frontend.features(&x[..399]).is_empty());
    }

    #[test]
    fn mfccs_are_the_orthonormal_dct_of_the_log_mel() {
        let log_mel = Frontend::new(FrontendConfig::default()).unwrap();
        let x = tones(&[(700.0, 0.3), (1900.0, 0.1)], 16000, 7000);
        let reference = log_mel.features(&x);
        let m = 40;
        for n in [13, m] {
            let mfcc = Frontend::new(FrontendConfig {
                mfcc: Some(n),
                ..FrontendConfig::default()
            })
            .unwrap();
            assert_eq!(mfcc.config().feature_size(), n);
            let got = mfcc.features(&x);
            assert_eq!(got.len(), reference.len() / m * n);
            for (frame, mel) in got.chunks_exact(n).zip(reference.chunks_exact(m)) {
                for (k, &c) in frame.iter().enumerate() {
                    let sum: f64 = mel
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            f64::from(v) * (PI * k as f64 * (i as f64 + 0.5) / m as f64).cos()
                        })
                        .sum();
                    let want = sum * (if k == 0 { 1.0 } else { 2.0 } / m as f64).sqrt();
                    assert!(close(c, want, 1e-4), "c{k}: {c} vs {want}");
                }
                if n == m {
                    // Orthonormal: the full transform keeps the energy.
                    let energy = |v: &[f32]| v.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>();
                    let (e_mfcc, e_mel) = (energy(frame), energy(mel));
                    assert!(
                        (e_mfcc - e_mel).abs() <= 1e-5 * e_mel,
                        "{e_mfcc} vs {e_mel}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let d = FrontendConfig::default;
        let cases: Vec<(FrontendConfig, &str)> = vec![
            (
                FrontendConfig {
                    sample_rate: 0,
                    ..d()
                },
                "sample rate",
            ),
            (
                FrontendConfig {
                    window_ms: 0.0,
                    ..d()
                },
                "window",
            ),
            (
                FrontendConfig {
                    window_ms: f32::NAN,
                    ..d()
                },
                "window",
            ),
            (
                FrontendConfig {
                    window_ms: 1e9,
                    ..d()
                },
                "window",
            ),
            (FrontendConfig { hop_ms: 0.0, ..d() }, "hop"),
            (
                FrontendConfig {
                    hop_ms: 30.0,
                    ..d()
                },
                "must not exceed the window",
            ),
            (
                FrontendConfig {
                    mel_bands: 0,
                    ..d()
                },
                "mel bands",
            ),
            (
                FrontendConfig {
                    mel_bands: 100_000,
                    ..d()
                },
                "mel bands",
            ),
            (
                FrontendConfig {
                    mel_bands: 200,
                    ..d()
                },
                "falls between FFT bins",
            ),
            (FrontendConfig { f_min: -1.0, ..d() }, "f_min"),
            (
                FrontendConfig {
                    f_max: 9000.0,
                    ..d()
                },
                "Nyquist",
            ),
            (
                FrontendConfig {
                    f_min: 4000.0,
                    f_max: 3000.0,
                    ..d()
                },
                "below f_max",
            ),
            (
                FrontendConfig {
                    mfcc: Some(0),
                    ..d()
                },
                "MFCCs",
            ),
            (
                FrontendConfig {
                    mfcc: Some(41),
                    ..d()
                },
                "MFCCs",
            ),
            (
                FrontendConfig { clip_ms: 0, ..d() },
                "shorter than one window",
            ),
            (
                FrontendConfig { clip_ms: 20, ..d() },
                "shorter than one window",
            ),
            (
                FrontendConfig {
                    clip_ms: 4_000_000_000,
                    ..d()
                },
                "longer than",
            ),
        ];
        for (cfg, needle) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(
                err.starts_with("invalid configuration") && err.contains(needle),
                "{needle}: {err}"
            );
            assert!(Frontend::new(cfg).is_err());
        }
        assert!(d().validate().is_ok());
        // Missing fields take their defaults; a saved configuration reads back.
        let cfg: FrontendConfig = serde_json::from_str(r#"{"mfcc": 13}"#).unwrap();
        assert_eq!(
            cfg,
            FrontendConfig {
                mfcc: Some(13),
                ..d()
            }
        );
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<FrontendConfig>(&json).unwrap(), cfg);
    }

    #[test]
    fn utterance_norms_remove_a_constant_gain() {
        // 5 frames of 2 features, the last two padding; the same clip 3 nats louder.
        let clip: Vec<f32> = vec![1., 4., 2., 6., 6., 2., -9., -9., -9., -9.];
        let louder: Vec<f32> = clip.iter().map(|v| v + 3.0).collect();
        for norm in [UtteranceNorm::Causal, UtteranceNorm::Whole] {
            let (mut a, mut b) = (clip.clone(), louder.clone());
            norm.apply(&mut a, 2, 3);
            norm.apply(&mut b, 2, 3);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{norm:?}: {a:?} against {b:?}");
            }
        }
        // Causal: frame t minus the mean of frames 0..=t; a prefix normalises alone
        // as it does within the whole clip.
        let mut causal = clip.clone();
        UtteranceNorm::Causal.apply(&mut causal, 2, 3);
        assert_eq!(&causal[..4], &[0., 0., 0.5, 1.0]);
        let mut prefix = clip[..6].to_vec();
        UtteranceNorm::Causal.apply(&mut prefix, 2, 3);
        assert_eq!(prefix, causal[..6]);
        // Whole: each feature's audio frames have mean 0 and deviation 1.
        let mut whole = clip.clone();
        UtteranceNorm::Whole.apply(&mut whole, 2, 3);
        for f in 0..2 {
            let audio: Vec<f32> = (0..3).map(|t| whole[t * 2 + f]).collect();
            let mean = audio.iter().sum::<f32>() / 3.0;
            let var = audio.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
            assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "{audio:?}");
        }
        let mut off = clip.clone();
        UtteranceNorm::None.apply(&mut off, 2, 3);
        assert_eq!(off, clip);
    }
}
