//! Where speech starts in a recording, by an energy rule: the first 10 ms frame whose
//! RMS reaches a tenth of the loudest frame's (-20 dB), and at least an absolute floor
//! (-60 dBFS), so that a recording of silence has no onset. `classify` reports the
//! decision time from it, so that a word said late in a file is not counted slow.

/// The frame of the rule, in ms.
pub const FRAME_MS: u32 = 10;
/// The onset frame's RMS, relative to the loudest frame's.
const RELATIVE: f64 = 0.1;
/// The least RMS of an onset frame (samples in [-1, 1]): -60 dBFS.
const FLOOR: f64 = 1e-3;

/// The start of the first frame of speech in `samples` at `rate` Hz, in ms, or `None`
/// when no frame is loud enough.
pub fn speech_onset_ms(samples: &[f32], rate: u32) -> Option<f32> {
    let frame = (rate as usize * FRAME_MS as usize / 1000).max(1);
    let rms: Vec<f64> = samples
        .chunks(frame)
        .map(|c| (c.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
        .collect();
    let loudest = rms.iter().cloned().fold(0.0, f64::max);
    let threshold = (RELATIVE * loudest).max(FLOOR);
    rms.iter()
        .position(|&r| r >= threshold)
        .map(|n| (n * frame) as f32 * 1000.0 / rate as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `silence_ms` of low noise, then `tone_ms` of a 440 Hz tone, at 8 kHz.
    fn word_after(silence_ms: usize, tone_ms: usize) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(4);
        let quiet = (0..silence_ms * 8).map(|_| 2e-4 * rng.normal() as f32);
        let tone = (0..tone_ms * 8)
            .map(|n| 0.3 * (n as f32 * 440.0 * std::f32::consts::TAU / 8000.0).sin());
        quiet.chain(tone).collect()
    }

    #[test]
    fn the_onset_is_where_the_word_begins() {
        assert_eq!(speech_onset_ms(&word_after(200, 300), 8000), Some(200.0));
        assert_eq!(speech_onset_ms(&word_after(0, 300), 8000), Some(0.0));
        // A quiet word is still found; silence, or nothing, has no onset.
        let quiet: Vec<f32> = word_after(120, 100).iter().map(|s| s * 0.05).collect();
        assert_eq!(speech_onset_ms(&quiet, 8000), Some(120.0));
        assert_eq!(speech_onset_ms(&word_after(300, 0), 8000), None);
        assert_eq!(speech_onset_ms(&[], 8000), None);
    }
}
