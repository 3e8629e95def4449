//! The WAV reader on arbitrary bytes: as a file read through a reader, as a stream
//! cut short, and decoded and resampled to 16 kHz. Each call must return Ok or Err:
//! no panic, no allocation sized by a header beyond what the input holds, no hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rankcode::data::wav;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("<fuzz>");
    let _ = wav::read_wav(std::io::Cursor::new(data), name);
    let _ = wav::read_wav_stream(std::io::Cursor::new(data), name, 16_000);
    let _ = wav::decode(data, name, 16_000);
});
