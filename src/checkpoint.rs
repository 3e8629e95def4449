//! The safetensors files of a run directory, written atomically (temp file + rename),
//! the same bytes for the same contents, and read back with errors that name the file
//! and the problem: `model.safetensors`, the parameters under PyTorch state-dict
//! names, and `checkpoint.safetensors`, parameters, Adam moments and the epoch, in one
//! file so that a resumed run never mixes two epochs. The rest of a run directory:
//! [`crate::run::directory`].
//!
//! Both files carry SHA-256 checksums of their tensors and metadata, checked on every
//! load ([`verify_checksums`]).

use crate::engine::OptimizerState;
use crate::error::{Error, Result};
use crate::files::{read, write_atomic};
use crate::model::{ModelConfig, ParamLayout};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

pub const MODEL_FILE: &str = "model.safetensors";

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// What a checkpoint restores.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// Epochs completed.
    pub epoch: usize,
    pub params: Vec<f32>,
    pub optimizer: OptimizerState,
}

fn f32_bytes(v: &[f32]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// The prefix of the metadata keys that hold checksums: `sha256:NAME` holds the
/// SHA-256 (hex) of the bytes of tensor `NAME`, and [`METADATA_CHECKSUM`] that of the
/// file's other metadata. Files written before checksums were stored have none.
const CHECKSUM_PREFIX: &str = "sha256:";

/// The metadata key of the checksum of the other metadata entries (the epoch and the
/// optimizer steps of a checkpoint), over [`metadata_bytes`].
const METADATA_CHECKSUM: &str = "sha256:__metadata__";

/// The SHA-256 of `bytes`, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The metadata entries that are not checksums, as the bytes [`METADATA_CHECKSUM`]
/// covers: `key=value` lines in key order.
fn metadata_bytes(meta: &HashMap<String, String>) -> Vec<u8> {
    let entries: std::collections::BTreeMap<&String, &String> = meta
        .iter()
        .filter(|(k, _)| !k.starts_with(CHECKSUM_PREFIX))
        .collect();
    entries
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Serialises named f32 tensors (and string metadata) to safetensors bytes, with a
/// checksum of every tensor and of the metadata (string metadata only: the tensors'
/// names, types and layout stay those PyTorch loads).
fn to_safetensors(
    tensors: Vec<(String, Vec<usize>, &[f32])>,
    mut meta: HashMap<String, String>,
) -> Vec<u8> {
    meta.insert(METADATA_CHECKSUM.into(), sha256_hex(&metadata_bytes(&meta)));
    for (name, _, data) in &tensors {
        meta.insert(
            format!("{CHECKSUM_PREFIX}{name}"),
            sha256_hex(f32_bytes(data)),
        );
    }
    let views: Vec<(String, TensorView)> = tensors
        .into_iter()
        .map(|(name, shape, data)| {
            let view =
                TensorView::new(Dtype::F32, shape, f32_bytes(data)).expect("shape matches data");
            (name, view)
        })
        .collect();
    let bytes = safetensors::serialize(views, Some(meta)).expect("safetensors serialisation");
    with_sorted_header(&bytes)
}

/// Safetensors `bytes` with the keys of their header in sorted order: the serialiser
/// writes the metadata from a `HashMap`, in an order that changes from one call to
/// the next, and the same weights must make the same file, byte for byte. The header
/// is padded with spaces to a multiple of 8 bytes, as the format aligns its data.
fn with_sorted_header(bytes: &[u8]) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    // serde_json's maps keep their keys sorted (its `preserve_order` feature is off), so
    // reading the header and writing it again sorts it, nested maps included;
    // `checkpoint_round_trips_exactly` checks that the same contents make the same bytes.
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + len]).expect("the header just written reads");
    let mut json = serde_json::to_vec(&header).expect("the header serialises");
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - len);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + len..]);
    out
}

/// The model's tensors under their PyTorch names.
fn named_params<'a>(
    layout: &ParamLayout,
    params: &'a [f32],
) -> Vec<(String, Vec<usize>, &'a [f32])> {
    layout
        .slots
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone(), &params[s.range()]))
        .collect()
}

/// Reads tensor `name` of `shape` as f32 values.
fn read_tensor(st: &SafeTensors, path: &Path, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = st
        .tensor(name)
        .map_err(|_| Error::file(path, format!("has no tensor '{name}'")))?;
    if t.dtype() != Dtype::F32 {
        return Err(Error::file(
            path,
            format!("tensor '{name}' is {:?}, expected F32", t.dtype()),
        ));
    }
    if t.shape() != shape {
        return Err(Error::file(
            path,
            format!(
                "tensor '{name}' has shape {:?}, the model needs {shape:?}",
                t.shape()
            ),
        ));
    }
    Ok(t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Parses the safetensors bytes read from `path` and checks them against the
/// checksums in their metadata, if they have any (files written before checksums were
/// stored have none, and are accepted as they are); returns the tensors and the
/// metadata.
fn parse_safetensors<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let invalid = |e: safetensors::SafeTensorError| {
        Error::file_caused(path, "not a valid safetensors file", e)
    };
    let st = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let meta = header.metadata().clone().unwrap_or_default();
    verify_checksums(&st, &meta, path)?;
    Ok((st, meta))
}

/// Checks every tensor of `st`, and the metadata, against their checksums in `meta`,
/// when it holds any: a file with checksums must have one for every tensor and for
/// the metadata, and all must match.
fn verify_checksums(st: &SafeTensors, meta: &HashMap<String, String>, path: &Path) -> Result<()> {
    if !meta.keys().any(|k| k.starts_with(CHECKSUM_PREFIX)) {
        return Ok(());
    }
    let check = |what: &str, key: &str, bytes: &[u8]| -> Result<()> {
        match meta.get(key) {
            Some(sum) if *sum == sha256_hex(bytes) => Ok(()),
            Some(_) => Err(Error::file(
                path,
                format!("{what} is damaged: its bytes do not match their SHA-256 checksum"),
            )),
            None => Err(Error::file(
                path,
                format!("{what} has no checksum, although the file's other parts do"),
            )),
        }
    };
    check("the metadata", METADATA_CHECKSUM, &metadata_bytes(meta))?;
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for name in names {
        let tensor = st
            .tensor(&name)
            .map_err(|e| Error::file_caused(path, format!("tensor '{name}'"), e))?;
        check(
            &format!("tensor '{name}'"),
            &format!("{CHECKSUM_PREFIX}{name}"),
            tensor.data(),
        )?;
    }
    Ok(())
}

/// Reads every parameter tensor of `model` from the safetensors bytes at `path`.
fn read_params(st: &SafeTensors, path: &Path, model: &ModelConfig) -> Result<Vec<f32>> {
    let layout = ParamLayout::new(model);
    let mut params = vec![0f32; layout.total];
    for slot in &layout.slots {
        params[slot.range()].copy_from_slice(&read_tensor(st, path, &slot.name, &slot.shape)?);
    }
    if params.iter().any(|v| !v.is_finite()) {
        return Err(Error::file(path, "holds NaN or infinite parameters"));
    }
    Ok(params)
}

/// Writes the parameters as `model.safetensors` (PyTorch-loadable) into `dir`.
pub fn save_model(dir: &Path, model: &ModelConfig, params: &[f32]) -> Result<()> {
    let bytes = to_safetensors(
        named_params(&ParamLayout::new(model), params),
        HashMap::new(),
    );
    write_atomic(&dir.join(MODEL_FILE), &bytes)
}

/// Reads `model.safetensors` from `dir`, checking names and shapes against `model`.
pub fn load_model(dir: &Path, model: &ModelConfig) -> Result<Vec<f32>> {
    let path = dir.join(MODEL_FILE);
    model_from_bytes(&path, &read(&path)?, model)
}

/// The parameters of `model` from the bytes of a `model.safetensors`, checked as
/// [`load_model`] checks them; `path` names them in errors.
pub fn model_from_bytes(path: &Path, bytes: &[u8], model: &ModelConfig) -> Result<Vec<f32>> {
    read_params(&parse_safetensors(path, bytes)?.0, path, model)
}

/// Writes the resumable checkpoint (parameters, Adam state, epoch) into `dir`.
pub fn save_checkpoint(dir: &Path, model: &ModelConfig, ck: &Checkpoint) -> Result<()> {
    let layout = ParamLayout::new(model);
    let mut tensors = named_params(&layout, &ck.params);
    tensors.push((
        "optimizer.adam_m".into(),
        vec![layout.total],
        &ck.optimizer.m,
    ));
    tensors.push((
        "optimizer.adam_v".into(),
        vec![layout.total],
        &ck.optimizer.v,
    ));
    let meta = HashMap::from([
        ("epoch".to_string(), ck.epoch.to_string()),
        ("adam_steps".to_string(), ck.optimizer.steps.to_string()),
    ]);
    write_atomic(&dir.join(CHECKPOINT_FILE), &to_safetensors(tensors, meta))
}

/// Reads the resumable checkpoint from `dir`.
pub fn load_checkpoint(dir: &Path, model: &ModelConfig) -> Result<Checkpoint> {
    let path = dir.join(CHECKPOINT_FILE);
    checkpoint_from_bytes(&path, &read(&path)?, model)
}

/// The checkpoint of `model` from the bytes of a `checkpoint.safetensors`, checked as
/// [`load_checkpoint`] checks them; `path` names them in errors.
pub fn checkpoint_from_bytes(path: &Path, bytes: &[u8], model: &ModelConfig) -> Result<Checkpoint> {
    let (st, meta) = parse_safetensors(path, bytes)?;
    let params = read_params(&st, path, model)?;
    let total = params.len();
    let m = read_tensor(&st, path, "optimizer.adam_m", &[total])?;
    let v = read_tensor(&st, path, "optimizer.adam_v", &[total])?;
    let number = |key: &str| -> Result<u32> {
        meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| {
            Error::file(
                path,
                format!("metadata '{key}' is missing or not a 32-bit number"),
            )
        })
    };
    Ok(Checkpoint {
        epoch: number("epoch")? as usize,
        params,
        optimizer: OptimizerState {
            steps: number("adam_steps")?,
            m,
            v,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_dir;
    use crate::model::{Readout, init_params};

    fn model(hidden: usize) -> ModelConfig {
        ModelConfig {
            input_size: 2,
            hidden_size: hidden,
            layers: 2,
            classes: 3,
            readout: Readout::Sigmoid,
        }
    }

    #[test]
    fn checkpoint_round_trips_exactly() {
        let dir = test_dir("ck-roundtrip");
        let m = model(5);
        let params = init_params(&m, 3);
        let n = params.len();
        let ck = Checkpoint {
            epoch: 7,
            params: params.clone(),
            optimizer: OptimizerState {
                steps: 42,
                m: vec![0.5; n],
                v: vec![0.25; n],
            },
        };
        save_checkpoint(&dir, &m, &ck).unwrap();
        assert_eq!(load_checkpoint(&dir, &m).unwrap(), ck);
        save_model(&dir, &m, &params).unwrap();
        assert_eq!(load_model(&dir, &m).unwrap(), params);
        // The same contents make the same file, byte for byte (metadata included).
        let bytes = |file: &str| std::fs::read(dir.join(file)).unwrap();
        let (model_bytes, ck_bytes) = (bytes(MODEL_FILE), bytes(CHECKPOINT_FILE));
        save_checkpoint(&dir, &m, &ck).unwrap();
        save_model(&dir, &m, &params).unwrap();
        assert!(bytes(MODEL_FILE) == model_bytes && bytes(CHECKPOINT_FILE) == ck_bytes);
        let names = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
            "{names:?}"
        );
    }

    #[test]
    fn bad_files_get_errors_that_name_them() {
        let dir = test_dir("ck-bad");
        let m = model(5);
        save_model(&dir, &m, &init_params(&m, 1)).unwrap();
        // Another shape.
        let err = load_model(&dir, &model(6)).unwrap_err().to_string();
        assert!(err.contains(MODEL_FILE) && err.contains("shape"), "{err}");
        // Truncated.
        let path = dir.join(MODEL_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_model(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(MODEL_FILE) && err.contains("safetensors"),
            "{err}"
        );
        // Missing.
        let err = load_checkpoint(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(CHECKPOINT_FILE) && err.contains("cannot read"),
            "{err}"
        );
    }

    /// Rewrites the safetensors file at `path` with the same tensors and the metadata
    /// that `edit` makes of its own.
    fn rewrite_metadata(path: &Path, edit: impl FnOnce(&mut HashMap<String, String>)) {
        let bytes = std::fs::read(path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap_or_default();
        edit(&mut meta);
        std::fs::write(
            path,
            safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
        )
        .unwrap();
    }

    /// Flips one bit in the data of tensor `name` of the safetensors file at `path`.
    fn flip_bit(path: &Path, name: &str) {
        let mut bytes = std::fs::read(path).unwrap();
        let (header_len, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let at = 8 + header_len + header.info(name).unwrap().data_offsets.0 + 1;
        bytes[at] ^= 0x10;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn damaged_tensors_and_metadata_are_refused_and_files_without_checksums_accepted() {
        let dir = test_dir("ck-checksums");
        let m = model(5);
        let params = init_params(&m, 3);
        let n = params.len();
        let ck = Checkpoint {
            epoch: 2,
            params: params.clone(),
            optimizer: OptimizerState {
                steps: 8,
                m: vec![0.5; n],
                v: vec![0.25; n],
            },
        };
        let write = || {
            save_checkpoint(&dir, &m, &ck).unwrap();
            save_model(&dir, &m, &params).unwrap();
        };
        let model_path = dir.join(MODEL_FILE);
        let ck_path = dir.join(CHECKPOINT_FILE);
        // One flipped bit in a tensor's data.
        write();
        let tensor = ParamLayout::new(&m).slots[1].name.clone();
        flip_bit(&model_path, &tensor);
        let err = load_model(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(MODEL_FILE) && err.contains(&format!("tensor '{tensor}' is damaged")),
            "{err}"
        );
        flip_bit(&ck_path, "optimizer.adam_v");
        let err = load_checkpoint(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(CHECKPOINT_FILE) && err.contains("tensor 'optimizer.adam_v' is damaged"),
            "{err}"
        );
        // An edited epoch.
        write();
        rewrite_metadata(&ck_path, |meta| {
            meta.insert("epoch".into(), "0".into());
        });
        let err = load_checkpoint(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(CHECKPOINT_FILE) && err.contains("the metadata is damaged"),
            "{err}"
        );
        // A checksum missing from a file that has others.
        write();
        rewrite_metadata(&model_path, |meta| {
            meta.remove(&format!("sha256:{tensor}"));
        });
        let err = load_model(&dir, &m).unwrap_err().to_string();
        assert!(
            err.contains(&format!("tensor '{tensor}' has no checksum")),
            "{err}"
        );
        // Files from before checksums: accepted as they are.
        write();
        for path in [&model_path, &ck_path] {
            rewrite_metadata(path, |meta| meta.retain(|k, _| !k.starts_with("sha256:")));
        }
        assert_eq!(load_checkpoint(&dir, &m).unwrap(), ck);
        assert_eq!(load_model(&dir, &m).unwrap(), params);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The deterministic fuzz smoke test (the short, seeded version of `fuzz/`'s
/// `safetensors` target that runs with the test suite).
#[cfg(test)]
mod fuzz_smoke {
    use super::*;
    use crate::mutate::no_panics;
    use crate::run::RunConfig;

    /// The `config.json` of a tiny run (seq-spotting, 3 hidden units, 1 epoch), whose
    /// model the seeds hold.
    const CONFIG: &[u8] = include_bytes!("../fuzz/seeds/run_config/config.json");

    #[test]
    fn mutated_safetensors_are_read_or_refused_without_panicking() {
        let model = RunConfig::from_json(Path::new("config.json"), CONFIG)
            .unwrap()
            .model;
        let seeds: [&[u8]; 2] = [
            include_bytes!("../fuzz/seeds/safetensors/model.safetensors"),
            include_bytes!("../fuzz/seeds/safetensors/checkpoint.safetensors"),
        ];
        let path = Path::new("checkpoint.safetensors");
        let ok = no_panics("safetensors", &seeds, 28, 5000, |b| {
            let params = model_from_bytes(path, b, &model).is_ok();
            checkpoint_from_bytes(path, b, &model).is_ok() || params
        });
        assert!(ok >= 2, "{ok} inputs read");
    }
}
