//! Spoken-word corpora turned into datasets: the clips of each split, their front-end
//! features (cached on disk), and normalisation with statistics of the training split
//! only.
//!
//! A corpus layout (FSDD, Google Speech Commands) lists [`Clip`]s per split; this module
//! decodes them, resamples to the front end's rate, pads or trims them to the clip
//! length, computes the frames ([`super::frontend`]) and normalises each feature with
//! the training split's mean and standard deviation.
//!
//! The feature cache lives in `$RANKCODE_CACHE`, else `$XDG_CACHE_HOME/rankcode`, else
//! `~/.cache/rankcode`. An entry's key is a SHA-256 of the front-end configuration, the
//! clip's place in its file and the file's bytes, so an edited file or another front
//! end never reads stale features. A cache that cannot be written is skipped with a
//! warning; features are then computed each time.

use super::Dataset;
use super::frontend::{Frontend, FrontendConfig};
use super::wav;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Floor of the normalisation's standard deviation (features are log energies).
pub const MIN_STD: f64 = 1e-2;

/// Version of the feature computation, part of every cache key: bump it when the
/// decoding, resampling or front-end code changes what it computes.
const FEATURES_VERSION: u32 = 2;

/// Environment variable naming the feature cache folder.
pub const CACHE_ENV: &str = "RANKCODE_CACHE";

/// One labelled recording, or a stretch of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    pub path: PathBuf,
    pub label: u32,
    /// Where the clip starts in the file, in milliseconds (0 for whole-file clips; the
    /// `_silence_` clips are slices of long noise files).
    pub offset_ms: u32,
}

impl Clip {
    /// A whole file.
    pub fn file(path: PathBuf, label: u32) -> Self {
        Clip {
            path,
            label,
            offset_ms: 0,
        }
    }
}

/// The clips of a corpus, split, with the class names.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    pub classes: Vec<String>,
    pub train: Vec<Clip>,
    pub val: Vec<Clip>,
    pub test: Vec<Clip>,
}

impl Corpus {
    /// The clips of one split.
    pub fn split(&self, split: super::task::Split) -> &[Clip] {
        use super::task::Split;
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

/// Per-feature mean and standard deviation of the training split's frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureNorm {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl FeatureNorm {
    /// Statistics over every frame of `clips` (each `frames * features` values), in
    /// f64 so the sums are exact enough for any corpus size. The std has a floor of
    /// [`MIN_STD`], so a feature that barely varies (numerical residue) is not blown
    /// up to unit variance.
    pub fn from_features(clips: &[Vec<f32>], features: usize) -> Self {
        let mut sum = vec![0f64; features];
        let mut sum_sq = vec![0f64; features];
        let mut frames = 0usize;
        for frame in clips.iter().flat_map(|c| c.chunks_exact(features)) {
            for (f, &v) in frame.iter().enumerate() {
                sum[f] += v as f64;
                sum_sq[f] += v as f64 * v as f64;
            }
            frames += 1;
        }
        let n = frames.max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sum_sq
            .iter()
            .zip(&mean)
            .map(|(sq, m)| {
                let var = (sq / n - m * m).max(0.0);
                var.sqrt().max(MIN_STD) as f32
            })
            .collect();
        FeatureNorm {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Normalises frames in place: (v - mean) / std per feature.
    pub fn apply(&self, values: &mut [f32]) {
        let features = self.mean.len();
        for frame in values.chunks_exact_mut(features) {
            for ((v, m), s) in frame.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

/// What a trained audio model needs besides its weights to classify new audio: the
/// front end, the training split's statistics and the class names. Saved as
/// `features.json` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub frontend: FrontendConfig,
    pub norm: FeatureNorm,
    pub classes: Vec<String>,
}

/// Features of the clips, computed (or read from the cache) in parallel, in order.
pub struct FeatureExtractor {
    frontend: Frontend,
    cache: Option<PathBuf>,
}

impl FeatureExtractor {
    /// A front end with the default cache folder.
    pub fn new(config: FrontendConfig) -> Result<Self> {
        Ok(FeatureExtractor {
            frontend: Frontend::new(config)?,
            cache: default_cache_dir(),
        })
    }

    /// A front end with the cache in `dir`, or no cache.
    pub fn with_cache(config: FrontendConfig, dir: Option<PathBuf>) -> Result<Self> {
        Ok(FeatureExtractor {
            frontend: Frontend::new(config)?,
            cache: dir,
        })
    }

    /// The front end's configuration.
    pub fn config(&self) -> &FrontendConfig {
        self.frontend.config()
    }

    /// The clip's `frames * features` values (unnormalised).
    pub fn clip(&self, clip: &Clip) -> Result<Vec<f32>> {
        let bytes = wav::read_wav_bytes(&clip.path)?;
        let key = self.cache_key(clip, &bytes);
        if let Some(values) = self.read_cached(&key) {
            return Ok(values);
        }
        let config = self.frontend.config();
        let audio = wav::decode(&bytes, &clip.path, config.sample_rate)?;
        let start =
            (clip.offset_ms as usize * config.sample_rate as usize / 1000).min(audio.samples.len());
        let values = self.frontend.clip_features(&audio.samples[start..]);
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::file(
                &clip.path,
                "its features are not finite (samples far outside [-1, 1]?)",
            ));
        }
        self.write_cached(&key, &values);
        Ok(values)
    }

    /// Features of every clip, in order, on all cores.
    pub fn clips(&self, clips: &[Clip]) -> Result<Vec<Vec<f32>>> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let chunk = clips.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = clips
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|c| self.clip(c)).collect::<Vec<_>>())
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("feature worker panicked"))
                .collect()
        })
    }

    fn cache_key(&self, clip: &Clip, bytes: &[u8]) -> String {
        let mut hash = Sha256::new();
        hash.update(FEATURES_VERSION.to_le_bytes());
        hash.update(
            serde_json::to_vec(self.frontend.config()).expect("front-end config serialises"),
        );
        hash.update(clip.offset_ms.to_le_bytes());
        hash.update(bytes);
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cache_path(&self, key: &str) -> Option<PathBuf> {
        self.cache
            .as_ref()
            .map(|dir| dir.join(&key[..2]).join(format!("{key}.f32")))
    }

    /// Cached values, if there is an intact entry: the right size, and its values
    /// still match the SHA-256 stored after them (a damaged entry is recomputed).
    fn read_cached(&self, key: &str) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.cache_path(key)?).ok()?;
        let config = self.frontend.config();
        let expected = config.frames() * config.feature_size() * 4;
        if bytes.len() != expected + 32 {
            return None;
        }
        let (values, digest) = bytes.split_at(expected);
        (Sha256::digest(values).as_slice() == digest).then(|| {
            values
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
    }

    /// Stores values; a cache that cannot be written only costs time.
    fn write_cached(&self, key: &str, values: &[f32]) {
        let Some(path) = self.cache_path(key) else {
            return;
        };
        let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let digest = Sha256::digest(&bytes);
        bytes.extend_from_slice(&digest);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                crate::files::write_atomic(&path, &bytes)
                    .map_err(|e| crate::error::full_message(&e))
            });
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if let Err(e) = written
            && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            log::warn!("feature cache not written ({e}); features will be recomputed next time");
        }
    }
}

/// `$RANKCODE_CACHE`, else `$XDG_CACHE_HOME/rankcode`, else `~/.cache/rankcode`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    env(CACHE_ENV)
        .map(PathBuf::from)
        .or_else(|| env("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("rankcode")))
        .or_else(|| env("HOME").map(|d| PathBuf::from(d).join(".cache").join("rankcode")))
}

/// The training statistics and class names of a corpus under a front end.
pub fn feature_spec(corpus: &Corpus, extractor: &FeatureExtractor) -> Result<FeatureSpec> {
    let train = extractor.clips(&corpus.train)?;
    let features = extractor.config().feature_size();
    Ok(FeatureSpec {
        frontend: extractor.config().clone(),
        norm: FeatureNorm::from_features(&train, features),
        classes: corpus.classes.clone(),
    })
}

/// The normalised dataset of `clips`.
pub fn dataset(
    clips: &[Clip],
    extractor: &FeatureExtractor,
    norm: &FeatureNorm,
    classes: usize,
) -> Result<Dataset> {
    let mut seqs = extractor.clips(clips)?;
    for seq in &mut seqs {
        norm.apply(seq);
    }
    let config = extractor.config();
    Ok(Dataset::from_sequences(
        seqs,
        clips.iter().map(|c| c.label).collect(),
        config.frames(),
        config.feature_size(),
        classes,
    ))
}

/// Checks that a layout found any clips at all; `dir` names the folder. (A split
/// that is needed and empty is refused when it is loaded.)
pub fn ensure_not_empty(corpus: &Corpus, dir: &Path, layout: &str) -> Result<()> {
    if corpus.train.is_empty() && corpus.val.is_empty() && corpus.test.is_empty() {
        return Err(Error::file(
            dir,
            format!("holds no recordings in the {layout} layout"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_uses_frames_and_keeps_constant_features_finite() {
        // Two clips of two frames, two features; feature 1 never varies.
        let clips = vec![vec![1.0, 5.0, 3.0, 5.0], vec![5.0, 5.0, 7.0, 5.0]];
        let norm = FeatureNorm::from_features(&clips, 2);
        assert_eq!(norm.mean, vec![4.0, 5.0]);
        assert!((norm.std[0] - 5f32.sqrt()).abs() < 1e-6);
        assert_eq!(norm.std[1], MIN_STD as f32);
        let mut v = clips[0].clone();
        norm.apply(&mut v);
        assert!((v[0] + 3.0 / 5f32.sqrt()).abs() < 1e-6);
        assert_eq!(v[1], 0.0, "a constant feature normalises to 0");
    }
}
