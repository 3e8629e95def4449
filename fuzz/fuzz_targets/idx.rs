//! The IDX reader on arbitrary bytes, gunzipped when they start with the gzip magic
//! (as a file is read) and parsed raw. Each call must return Ok or Err: no panic, no
//! allocation sized by the header beyond what the input holds (or inflates to), no
//! hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rankcode::data::idx;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("<fuzz>");
    let _ = idx::read_buffered(name, data);
    let _ = idx::parse(name, data);
});
