//! The IDX format of MNIST (and Fashion-MNIST): a big-endian header (two zero bytes,
//! a type code, the number of dimensions, then each dimension as a u32) followed by
//! the data. Files may be gzip-compressed (`.gz`) or raw. Every check failure names
//! the file.

use crate::error::{Error, Result};
use std::io::{BufRead, Read};
use std::path::Path;

/// Type code of unsigned bytes, the only element type MNIST uses.
const UBYTE: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Parses IDX bytes; `path` is only used in error messages.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<IdxArray> {
    read_from(path, bytes, "cannot read")
}

/// Reads an IDX file (raw or gzip) from disk, gunzipping it when it starts with the
/// gzip magic. The data is read (and inflated) no further than the header says it
/// goes, plus one byte to tell trailing data: a gzip bomb is refused after its header.
pub fn read(path: &Path) -> Result<IdxArray> {
    let file = std::fs::File::open(path).map_err(|e| Error::file_caused(path, "cannot read", e))?;
    read_buffered(path, std::io::BufReader::new(file))
}

/// Reads an IDX array (raw or gzip) from `input` as [`read`] reads a file: gunzipped
/// when it starts with the gzip magic, and read no further than the header says the
/// data goes, plus one byte. `path` names the input in errors.
pub fn read_buffered(path: &Path, mut input: impl BufRead) -> Result<IdxArray> {
    let start = input
        .fill_buf()
        .map_err(|e| Error::file_caused(path, "cannot read", e))?;
    if start.starts_with(&[0x1f, 0x8b]) {
        read_from(
            path,
            flate2::read::GzDecoder::new(input),
            "broken gzip data",
        )
    } else {
        read_from(path, input, "cannot read")
    }
}

/// Reads an IDX array from `input`: the header first, then exactly the data bytes
/// its dimensions declare, refusing input that ends before them or goes on after
/// them. `path` names the input in errors; a read error is reported after
/// `read_failure` (e.g. "broken gzip data").
fn read_from(path: &Path, mut input: impl Read, read_failure: &str) -> Result<IdxArray> {
    let mut read_up_to = |n: usize, into: &mut Vec<u8>| {
        input
            .by_ref()
            .take(n as u64)
            .read_to_end(into)
            .map_err(|e| Error::file_caused(path, read_failure, e))
    };
    let mut magic = Vec::with_capacity(4);
    read_up_to(4, &mut magic)?;
    if magic.len() < 4 {
        return Err(Error::file(
            path,
            format!("too short for an IDX header ({} bytes)", magic.len()),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(Error::file(path, "not an IDX file (bad magic number)"));
    }
    if magic[2] != UBYTE {
        return Err(Error::file(
            path,
            format!(
                "IDX element type 0x{:02x} is not unsigned bytes (0x08)",
                magic[2]
            ),
        ));
    }
    let n_dims = magic[3] as usize;
    if n_dims == 0 {
        return Err(Error::file(path, "IDX header declares no dimensions"));
    }
    let mut sizes = Vec::with_capacity(4 * n_dims);
    read_up_to(4 * n_dims, &mut sizes)?;
    if sizes.len() < 4 * n_dims {
        return Err(Error::file(path, "truncated IDX header"));
    }
    let dims: Vec<usize> = sizes
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes(d.try_into().expect("4 bytes")) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else {
        return Err(Error::file(
            path,
            format!("IDX dimensions {dims:?} overflow"),
        ));
    };
    // Not allocated up front: the header is not trusted with the size.
    let mut data = Vec::new();
    read_up_to(expected.saturating_add(1), &mut data)?;
    if data.len() != expected {
        let (kind, have) = if data.len() < expected {
            ("truncated", format!("{}", data.len()))
        } else {
            ("has trailing bytes", "more".to_string())
        };
        return Err(Error::file(
            path,
            format!("{kind}: dimensions {dims:?} need {expected} data bytes, the file has {have}"),
        ));
    }
    Ok(IdxArray { dims, data })
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

    #[test]
    fn a_gzip_bomb_is_refused_without_being_inflated_whole() {
        // A header of 10 images of 28 x 28, then 256 MiB of zeros: about 250 KiB
        // gzipped.
        let header = encode(&[10, 28, 28], &[]);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&header).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        let mut rest = &bomb[..];
        let err = read_from(
            p(),
            flate2::read::GzDecoder::new(&mut rest),
            "broken gzip data",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("t.idx") && err.contains("trailing"), "{err}");
        let read = bomb.len() - rest.len();
        assert!(
            read < bomb.len() / 4,
            "{read} of the {} gzipped bytes were read",
            bomb.len()
        );
        // From a file, named in the error.
        let dir = crate::files::test_dir("idx-bomb");
        let path = dir.join("bomb-idx3-ubyte.gz");
        std::fs::write(&path, &bomb).unwrap();
        let err = super::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("bomb-idx3-ubyte.gz") && err.contains("trailing"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        // Endless raw input stops there too.
        let endless = Read::chain(&header[..], std::io::repeat(0));
        let err = read_from(p(), endless, "cannot read")
            .unwrap_err()
            .to_string();
        assert!(err.contains("trailing"), "{err}");
    }
}

/// The deterministic fuzz smoke test (the short, seeded version of `fuzz/`'s `idx`
/// target that runs with the test suite).
#[cfg(test)]
mod fuzz_smoke {
    use super::*;
    use crate::mutate::no_panics;

    /// Seeds: synthetic 28 x 28 images (rings) and labels in the MNIST layout, raw and gzipped
    /// (`fuzz/seeds/idx`).
    const SEEDS: [&[u8]; 4] = [
        include_bytes!("../../fuzz/seeds/idx/images-10-idx3-ubyte"),
        include_bytes!("../../fuzz/seeds/idx/images-3-idx3-ubyte.gz"),
        include_bytes!("../../fuzz/seeds/idx/labels-100-idx1-ubyte"),
        include_bytes!("../../fuzz/seeds/idx/labels-100-idx1-ubyte.gz"),
    ];

    #[test]
    fn mutated_idx_files_are_read_or_refused_without_panicking() {
        let name = Path::new("<fuzz>");
        let ok = no_panics("idx", &SEEDS, 28, 5000, |b| {
            let buffered = read_buffered(name, b).is_ok();
            parse(name, b).is_ok() || buffered
        });
        assert!(ok > 100, "{ok} inputs read");
    }
}
