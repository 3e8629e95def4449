//! `features.json`, which a run of an audio task keeps: its front end, its training
//! split's feature statistics and its class names, with which its model reads new
//! audio (`classify`) and a resumed run reads its data.

use super::directory::{CONFIG_FILE, FEATURES_FILE, not_a_run};
use crate::data::audio::FeatureSpec;
use crate::error::{Error, Result};
use crate::files::{read, write_atomic};
use std::path::Path;

/// Writes `features.json` into `dir`.
pub fn save_feature_spec(dir: &Path, spec: &FeatureSpec) -> Result<()> {
    let json = serde_json::to_string_pretty(spec).expect("feature spec serialises");
    write_atomic(&dir.join(FEATURES_FILE), json.as_bytes())
}

/// Reads `features.json` from the run in `dir`.
pub fn load_feature_spec(dir: &Path) -> Result<FeatureSpec> {
    let path = dir.join(FEATURES_FILE);
    if !dir.join(CONFIG_FILE).is_file() {
        return Err(not_a_run(dir));
    }
    if !path.is_file() {
        return Err(Error::file(
            dir,
            "has no features.json: it is not a run of an audio task",
        ));
    }
    feature_spec_from_json(&path, &read(&path)?)
}

/// Parses and checks the bytes of a `features.json` as [`load_feature_spec`] does;
/// `path` names them in errors.
pub fn feature_spec_from_json(path: &Path, bytes: &[u8]) -> Result<FeatureSpec> {
    let spec: FeatureSpec = serde_json::from_slice(bytes)
        .map_err(|e| Error::file_caused(path, "not a rankcode feature description", e))?;
    spec.frontend
        .validate()
        .map_err(|e| Error::file_caused(path, "", e))?;
    let n = spec.frontend.feature_size();
    let finite = spec.norm.mean.iter().all(|m| m.is_finite())
        && spec.norm.std.iter().all(|s| s.is_finite() && *s > 0.0);
    if spec.norm.mean.len() != n || spec.norm.std.len() != n || spec.classes.is_empty() || !finite {
        return Err(Error::file(
            path,
            format!(
                "its statistics are not {n} finite values (positive spreads), or it names no class"
            ),
        ));
    }
    Ok(spec)
}
