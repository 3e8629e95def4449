//! Classifying recordings with a trained audio model, as the audio would arrive: the
//! model reads one front-end frame per step (frame t is complete once t * hop +
//! window of audio has arrived), stops at the first spike, and the decision time is
//! the audio time at the end of that frame.
//!
//! Recordings are resampled to the front end's rate and padded with silence or
//! trimmed to the clip length the model was trained on, exactly as in training; a
//! recording that ends before the model spikes is therefore read on into silence,
//! and one that never spikes is decided at the last frame ("not fired").

use crate::data::Dataset;
use crate::data::audio::FeatureSpec;
use crate::data::frontend::Frontend;
use crate::data::onset::speech_onset_ms;
use crate::data::wav::Audio;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Readout, decision};
use serde::Serialize;

/// The decision on one recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The class index and its name.
    pub class: u32,
    pub label: String,
    /// The output score of the class at the decision (sigmoid or softmax).
    pub score: f32,
    /// False when no unit reached the threshold and the decision was forced at the
    /// last frame.
    pub fired: bool,
    /// The frame of the decision (0-based) and the audio time at its end, in ms.
    pub decision_frame: usize,
    pub decision_ms: f32,
    /// The recording's own length, in ms.
    pub audio_ms: f32,
    /// Where speech starts in the recording, in ms (`data::onset`); none in silence.
    pub onset_ms: Option<f32>,
    /// The decision time counted from the speech onset, in ms.
    pub decision_after_onset_ms: Option<f32>,
}

/// Classifies `recordings` (at the front end's sample rate: see
/// [`crate::data::wav::load_wav`]) with a model trained on the features of `spec`, in
/// batches of up to `batch` recordings. `theta` is the engine's threshold, for `fired`.
pub fn classify(
    engine: &mut Engine,
    spec: &FeatureSpec,
    readout: Readout,
    theta: f32,
    batch: usize,
    recordings: &[Audio],
) -> Result<Vec<Classification>> {
    let frontend = Frontend::new(spec.frontend.clone())?;
    let config = frontend.config();
    let mut seqs = Vec::with_capacity(recordings.len());
    for audio in recordings {
        if audio.sample_rate != config.sample_rate {
            return Err(Error::InvalidConfig(format!(
                "a recording at {} Hz; the front end reads {} Hz",
                audio.sample_rate, config.sample_rate
            )));
        }
        let mut seq = frontend.clip_features(&audio.samples);
        spec.norm.apply(&mut seq);
        seqs.push(seq);
    }
    let data = Dataset::from_sequences(
        seqs,
        vec![0; recordings.len()],
        config.frames(),
        config.feature_size(),
        spec.classes.len(),
    );
    let mut out = Vec::with_capacity(recordings.len());
    let order: Vec<usize> = (0..data.len()).collect();
    for rows in order.chunks(batch.max(1)) {
        let report = engine.evaluate(&data.batch(rows))?;
        let classes = spec.classes.len();
        // The logits of each decision step, read back once per step.
        let mut logits_at = std::collections::HashMap::new();
        for (row, &n) in rows.iter().enumerate() {
            let t = report.decision_step[row] as usize;
            let class = report.prediction[row];
            if let std::collections::hash_map::Entry::Vacant(e) = logits_at.entry(t) {
                e.insert(engine.logits_at(t, rows.len())?);
            }
            let z: Vec<f64> = logits_at[&t][row * classes..(row + 1) * classes]
                .iter()
                .map(|&v| v as f64)
                .collect();
            let scores = decision::scores(readout, &z);
            let score = scores[class as usize];
            // The decision step and class are the GPU's; whether the row spiked is
            // recomputed from its logits by the host's copy of the rule.
            let top = scores[decision::argmax(&z)];
            let audio = &recordings[n];
            let decision_ms = config.end_of_frame_ms(t);
            let onset_ms = speech_onset_ms(&audio.samples, audio.sample_rate);
            out.push(Classification {
                class,
                label: spec.classes[class as usize].clone(),
                score: score as f32,
                fired: decision::spikes(top, theta),
                decision_frame: t,
                decision_ms,
                audio_ms: (audio.duration_s() * 1000.0) as f32,
                onset_ms,
                decision_after_onset_ms: onset_ms.map(|onset| decision_ms - onset),
            });
        }
    }
    Ok(out)
}
