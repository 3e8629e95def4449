//! The IDX format of MNIST (and Fashion-MNIST): a big-endian header (two zero bytes,
//! a type code, the number of dimensions, then each dimension as a u32) followed by
//! the data. Files may be gzip-compressed (`.gz`) or raw. Every check failure names
//! the file.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Type code of unsigned bytes, the only element type MNIST uses.
const UBYTE: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

fn problem(path: &Path, what: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        problem: what.into(),
    }
}

/// Reads the whole file, gunzipping it when it starts with the gzip magic.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| problem(path, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| problem(path, format!("broken gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes; `path` is only used in error messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(problem(
            path,
            format!("too short for an IDX header ({} bytes)", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(problem(path, "not an IDX file (bad magic number)"));
    }
    if bytes[2] != UBYTE {
        return Err(problem(
            path,
            format!(
                "IDX element type 0x{:02x} is not unsigned bytes (0x08)",
                bytes[2]
            ),
        ));
    }
    let n_dims = bytes[3] as usize;
    if n_dims == 0 {
        return Err(problem(path, "IDX header declares no dimensions"));
    }
    let header = 4 + 4 * n_dims;
    if bytes.len() < header {
        return Err(problem(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = (0..n_dims)
        .map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else {
        return Err(problem(path, format!("IDX dimensions {dims:?} overflow")));
    };
    let have = bytes.len() - header;
    if have != expected {
        let kind = if have < expected {
            "truncated"
        } else {
            "has trailing bytes"
        };
        return Err(problem(
            path,
            format!("{kind}: dimensions {dims:?} need {expected} data bytes, the file has {have}"),
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file (raw or gzip) from disk.
pub fn read(path: &Path) -> Result<IdxArray> {
    parse(path, &read_bytes(path)?)
}

/// Encodes an IDX array of unsigned bytes (for tests and tools).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, UBYTE, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn p() -> &'static Path {
        Path::new("t.idx")
    }

    #[test]
    fn round_trip_and_gzip() {
        let bytes = encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let arr = parse(p(), &bytes).unwrap();
        assert_eq!(
            (arr.dims.as_slice(), arr.data.as_slice()),
            (&[2, 3][..], &[1, 2, 3, 4, 5, 6][..])
        );
        let dir = std::env::temp_dir().join(format!("rankcode-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gz = dir.join("a.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read(&gz).unwrap(), arr);
        // A broken gzip stream names the file.
        let broken = dir.join("b.gz");
        std::fs::write(&broken, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        let err = read(&broken).unwrap_err().to_string();
        assert!(err.contains("b.gz") && err.contains("gzip"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn broken_files_are_refused_with_the_reason() {
        let good = encode(&[2, 2], &[1, 2, 3, 4]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0, 0], "too short"),
            (
                {
                    let mut b = good.clone();
                    b[1] = 7;
                    b
                },
                "magic",
            ),
            (
                {
                    let mut b = good.clone();
                    b[2] = 0x0d;
                    b
                },
                "element type",
            ),
            (good[..good.len() - 1].to_vec(), "truncated"),
            (
                {
                    let mut b = good.clone();
                    b.push(9);
                    b
                },
                "trailing",
            ),
            (good[..6].to_vec(), "truncated IDX header"),
        ];
        for (bytes, needle) in cases {
            let err = parse(p(), &bytes).unwrap_err().to_string();
            assert!(
                err.contains("t.idx") && err.contains(needle),
                "{needle}: {err}"
            );
        }
        let err = read(Path::new("/no/such/file.idx"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/file.idx"), "{err}");
    }
}
