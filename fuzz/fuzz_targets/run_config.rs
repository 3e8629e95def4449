//! `config.json` and `features.json` from arbitrary bytes: parsed and validated, and
//! a configuration that loads is asked what a resumed run asks of it (its learning
//! rate, its extension by more epochs). No call may panic or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rankcode::run::RunConfig;
use rankcode::run::features::feature_spec_from_json;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("config.json");
    if let Ok(cfg) = RunConfig::from_json(name, data) {
        let _ = cfg.lr(1);
        let _ = cfg.lr(cfg.epochs);
        let _ = cfg.ends_lr_cycle(cfg.epochs);
        let _ = cfg.how_to_extend();
        let _ = cfg.continued_to(cfg.epochs.saturating_add(1));
    }
    let _ = feature_spec_from_json(Path::new("features.json"), data);
});
