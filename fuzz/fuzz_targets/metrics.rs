//! The resume checks of `metrics.jsonl` from arbitrary bytes: the first byte picks
//! the checkpoint's epoch (255: no checkpoint), the rest is the file's text; its
//! lines are parsed and checked against that epoch. No call may panic or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rankcode::run::metrics::{check_metrics_agree, parse_metrics_lines};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let checkpoint = (first != 255).then_some(usize::from(first));
    let out = Path::new("/nonexistent/run");
    if let Ok((records, _cut)) = parse_metrics_lines(&out.join("metrics.jsonl"), text) {
        let _ = check_metrics_agree(out, &records, checkpoint);
    }
});
