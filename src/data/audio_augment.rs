//! Training-data augmentation for the audio tasks, on the normalised front-end frames
//! of each clip (T frames of I bands, frame-major), drawn anew every epoch from the
//! run's seed so that a resumed run sees the same data. The cached features are never
//! touched: each epoch works on a copy.
//!
//! In the order applied to a clip:
//! 1. tempo: time stretched by a factor from [1 - tempo, 1 + tempo] (linear
//!    interpolation between frames; past the last frame, the last frame);
//! 2. frequency warp: the band axis scaled by a factor from [1 - warp, 1 + warp] about
//!    its lowest band, as vocal tract length perturbation does for a new speaker;
//! 3. shift: the clip moved by up to `shift_frames` frames either way, the frames that
//!    come in copying the nearest edge frame (silence before and after a word);
//! 4. SpecAugment masks: a run of up to `freq_mask` bands and one of up to
//!    `time_mask` frames set to 0, the training split's mean.

use super::Dataset;
use crate::error::{Error, Result, ensure};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// What to draw for each training clip; 0 turns a part off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioAugment {
    /// Most frames a clip is moved either way.
    pub shift_frames: usize,
    /// Largest relative change of the frequency scale, in [0, 0.5].
    pub warp: f64,
    /// Largest relative change of the tempo, in [0, 0.5].
    pub tempo: f64,
    /// Widest frequency mask, in bands.
    pub freq_mask: usize,
    /// Widest time mask, in frames.
    pub time_mask: usize,
}

impl AudioAugment {
    /// Checks the factors are in range and the masks and shift fit a clip of `steps`
    /// frames of `bands` bands.
    pub fn validate(&self, steps: usize, bands: usize) -> Result<()> {
        for (flag, v) in [
            ("--augment-warp", self.warp),
            ("--augment-tempo", self.tempo),
        ] {
            ensure((0.0..=0.5).contains(&v), || {
                format!("{flag} must be between 0 and 0.5, not {v}")
            })?;
        }
        ensure(self.shift_frames < steps, || {
            format!(
                "--augment-frames-shift {} leaves nothing of a clip of {steps} frames",
                self.shift_frames
            )
        })?;
        ensure(self.freq_mask < bands, || {
            format!(
                "--augment-freq-mask {} would mask all {bands} bands",
                self.freq_mask
            )
        })?;
        ensure(self.time_mask < steps, || {
            format!(
                "--augment-time-mask {} would mask all {steps} frames",
                self.time_mask
            )
        })
    }

    /// `clip` (`steps` frames of `bands` values) with this epoch's draws applied.
    pub fn apply(&self, clip: &[f32], steps: usize, bands: usize, rng: &mut Rng) -> Vec<f32> {
        let mut out = clip.to_vec();
        if self.tempo > 0.0 {
            let rate = rng.uniform_in(1.0 - self.tempo, 1.0 + self.tempo);
            out = stretch_time(&out, steps, bands, rate);
        }
        if self.warp > 0.0 {
            let factor = rng.uniform_in(1.0 - self.warp, 1.0 + self.warp);
            out = warp_bands(&out, bands, factor);
        }
        if self.shift_frames > 0 {
            let span = 2 * self.shift_frames + 1;
            let by = rng.below(span) as isize - self.shift_frames as isize;
            out = shift_frames(&out, steps, bands, by);
        }
        if self.freq_mask > 0 {
            let width = rng.below(self.freq_mask + 1);
            let start = rng.below(bands - width + 1);
            for frame in out.chunks_mut(bands) {
                frame[start..start + width].fill(0.0);
            }
        }
        if self.time_mask > 0 {
            let width = rng.below(self.time_mask + 1);
            let start = rng.below(steps - width + 1);
            out[start * bands..(start + width) * bands].fill(0.0);
        }
        out
    }
}

/// Frame `t` of the result is the clip at time `t * rate`, linearly interpolated
/// between frames (past the last frame: the last frame). A rate above 1 speeds up.
pub fn stretch_time(clip: &[f32], steps: usize, bands: usize, rate: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(clip.len());
    for t in 0..steps {
        let at = (t as f64 * rate).min((steps - 1) as f64);
        let (lo, w) = (at.floor() as usize, (at - at.floor()) as f32);
        let hi = (lo + 1).min(steps - 1);
        for f in 0..bands {
            let (a, b) = (clip[lo * bands + f], clip[hi * bands + f]);
            out.push(a + w * (b - a));
        }
    }
    out
}

/// Band `f` of each frame is the frame at band `f / factor`, linearly interpolated
/// between bands (past the top band: the top band). A factor above 1 moves the
/// spectrum up, as a shorter vocal tract does.
pub fn warp_bands(clip: &[f32], bands: usize, factor: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(clip.len());
    for frame in clip.chunks(bands) {
        for f in 0..bands {
            let at = (f as f64 / factor).min((bands - 1) as f64);
            let (lo, w) = (at.floor() as usize, (at - at.floor()) as f32);
            let hi = (lo + 1).min(bands - 1);
            out.push(frame[lo] + w * (frame[hi] - frame[lo]));
        }
    }
    out
}

/// The clip moved `by` frames later (earlier if negative); the frames that come in
/// copy the edge frame they come in from.
pub fn shift_frames(clip: &[f32], steps: usize, bands: usize, by: isize) -> Vec<f32> {
    (0..steps)
        .flat_map(|t| {
            let from = (t as isize - by).clamp(0, steps as isize - 1) as usize;
            clip[from * bands..(from + 1) * bands].iter().copied()
        })
        .collect()
}

impl Dataset {
    /// A copy whose every clip has its own draws of `augment` applied. Only for
    /// dense front-end frames (the audio tasks).
    pub fn audio_augmented(&self, augment: &AudioAugment, rng: &mut Rng) -> Result<Dataset> {
        if self.image_size.is_some() || !self.is_dense() {
            return Err(Error::InvalidConfig(
                "audio augmentation applies to the audio tasks only".into(),
            ));
        }
        let (steps, bands) = (self.steps, self.input);
        let clips = (0..self.len())
            .map(|n| augment.apply(&self.sequence(n), steps, bands, rng))
            .collect();
        Ok(Dataset::from_sequences(
            clips,
            self.labels.clone(),
            steps,
            bands,
            self.classes,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 frames of 3 bands: frame t, band f holds 10 t + f.
    fn ramp() -> Vec<f32> {
        (0..4)
            .flat_map(|t| (0..3).map(move |f| (10 * t + f) as f32))
            .collect()
    }

    #[test]
    fn each_part_moves_the_frames_it_should() {
        let clip = ramp();
        assert_eq!(stretch_time(&clip, 4, 3, 1.0), clip);
        assert_eq!(warp_bands(&clip, 3, 1.0), clip);
        assert_eq!(shift_frames(&clip, 4, 3, 0), clip);
        // Twice as fast: frames 0, 2, then the last frame twice; half as fast: halfway.
        let fast = stretch_time(&clip, 4, 3, 2.0);
        assert_eq!(&fast[3..6], &[20.0, 21.0, 22.0]);
        assert_eq!(&fast[9..12], &[30.0, 31.0, 32.0]);
        assert_eq!(&stretch_time(&clip, 4, 3, 0.5)[3..6], &[5.0, 6.0, 7.0]);
        // The spectrum moved up by a factor 2: band 1 reads band 0.5, band 2 band 1.
        assert_eq!(&warp_bands(&clip, 3, 2.0)[0..3], &[0.0, 0.5, 1.0]);
        // One frame later: the first frame comes in twice.
        assert_eq!(
            shift_frames(&clip, 4, 3, 1),
            [0., 1., 2., 0., 1., 2., 10., 11., 12., 20., 21., 22.]
        );
        assert_eq!(
            &shift_frames(&clip, 4, 3, -2)[6..12],
            &[30., 31., 32., 30., 31., 32.]
        );
    }

    #[test]
    fn draws_are_the_seeds_and_keep_the_shape() {
        let augment = AudioAugment {
            shift_frames: 1,
            warp: 0.1,
            tempo: 0.1,
            freq_mask: 2,
            time_mask: 2,
        };
        augment.validate(4, 3).unwrap();
        let data = Dataset::from_sequences(vec![ramp(), ramp()], vec![0, 1], 4, 3, 2);
        let a = data.audio_augmented(&augment, &mut Rng::new(9)).unwrap();
        let b = data.audio_augmented(&augment, &mut Rng::new(9)).unwrap();
        let c = data.audio_augmented(&augment, &mut Rng::new(10)).unwrap();
        assert_eq!(a, b, "the same seed draws the same data");
        assert_ne!(a, c, "another seed draws other data");
        assert_eq!(
            (a.len(), a.steps, a.input, &a.labels),
            (2, 4, 3, &data.labels)
        );
        // Off: the clips come back as they were.
        let off = data
            .audio_augmented(&AudioAugment::default(), &mut Rng::new(9))
            .unwrap();
        assert_eq!(off, data);
    }

    #[test]
    fn masks_set_a_run_of_bands_and_of_frames_to_the_mean() {
        let bands_only = AudioAugment {
            freq_mask: 2,
            ..Default::default()
        };
        let frames_only = AudioAugment {
            time_mask: 3,
            ..Default::default()
        };
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            let masked = bands_only.apply(&ramp(), 4, 3, &mut rng);
            let zero: Vec<usize> = (0..3).filter(|&f| masked[3 + f] == 0.0).collect();
            assert!(zero.len() <= 2 && zero.windows(2).all(|w| w[1] == w[0] + 1));
            for t in 0..4 {
                for f in 0..3 {
                    let v = masked[t * 3 + f];
                    assert!(v == (10 * t + f) as f32 || zero.contains(&f));
                }
            }
            let masked = frames_only.apply(&ramp(), 4, 3, &mut rng);
            let zero: Vec<usize> = (0..4).filter(|&t| masked[t * 3 + 1] == 0.0).collect();
            assert!(zero.len() <= 3 && zero.windows(2).all(|w| w[1] == w[0] + 1));
        }
        assert!(frames_only.validate(3, 3).is_err(), "a mask of every frame");
        let too_wide = AudioAugment {
            warp: 0.6,
            ..Default::default()
        };
        assert!(too_wide.validate(4, 3).is_err());
    }
}
