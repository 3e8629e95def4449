//! Writing files so that nothing a user made is lost on a crash.

use crate::error::{Error, Result};
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory (unique to
/// this process and call, so concurrent writers never share one), fsynced before a
/// rename: a reader, a crash or a power loss never sees a half-written file, only the
/// old one or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    let file_error = |what: &str, e: std::io::Error| Error::File {
        path: path.to_path_buf(),
        problem: format!("{what}: {e}"),
    };
    let name = path
        .file_name()
        .ok_or_else(|| file_error("not a file name", std::io::ErrorKind::InvalidInput.into()))?;
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.{unique}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);

    let written = std::fs::File::create(&temp)
        .map_err(|e| file_error("cannot create a temporary file", e))
        .and_then(|mut file| {
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| file_error("cannot write", e))
        })
        .and_then(|()| {
            std::fs::rename(&temp, path).map_err(|e| file_error("cannot rename into place", e))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
        return written;
    }
    // The rename itself on disk too.
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary_behind() {
        let dir = std::env::temp_dir().join(format!("rankcode-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let missing = dir.join("no-such-folder").join("b.json");
        let err = write_atomic(&missing, b"x").unwrap_err().to_string();
        assert!(err.contains("b.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
