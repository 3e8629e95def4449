//! `model.safetensors` and `checkpoint.safetensors` from arbitrary bytes, for the
//! model of the seed run's `config.json` (an LSTM of 3 hidden units), with the
//! resume check of a checkpoint's Adam steps. Each call must return Ok or Err: no
//! panic, no allocation sized by a header beyond what the input holds, no hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rankcode::checkpoint::{checkpoint_from_bytes, model_from_bytes};
use rankcode::run::RunConfig;
use std::path::Path;
use std::sync::LazyLock;

/// The configuration of the run that made the seeds.
static CONFIG: LazyLock<RunConfig> = LazyLock::new(|| {
    RunConfig::from_json(
        Path::new("config.json"),
        include_bytes!("../seeds/run_config/config.json"),
    )
    .expect("the seed configuration loads")
});

fuzz_target!(|data: &[u8]| {
    let model = &CONFIG.model;
    let _ = model_from_bytes(Path::new("model.safetensors"), data, model);
    if let Ok(ck) = checkpoint_from_bytes(Path::new("checkpoint.safetensors"), data, model) {
        let _ = rankcode::run::resume::check_checkpoint_steps(Path::new("/nonexistent"), &ck, 2);
    }
});
