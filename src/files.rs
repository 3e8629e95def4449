//! Reading files with errors that name them, and writing them so that nothing a user
//! made is lost on a crash.

use crate::error::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// The bytes of the file at `path`, or an error that names it.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file_caused(path, "cannot read", e))
}

/// Writes `bytes` to `path` through a temporary file in the same directory (unique to
/// this process and call, so concurrent writers never share one), fsynced before a
/// rename: a reader, a crash or a power loss never sees a half-written file, only the
/// old one or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    let file_error = |what: &str, e: std::io::Error| Error::file_caused(path, what, e);
    let name = path
        .file_name()
        .ok_or_else(|| file_error("not a file name", std::io::ErrorKind::InvalidInput.into()))?;
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = path.with_file_name(temporary_name(name, std::process::id(), unique));

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

/// The name of [`write_atomic`]'s temporary file for the file `name`, in call
/// `unique` of process `pid`: `.{name}.{pid}.{unique}.tmp`.
fn temporary_name(name: &OsStr, pid: u32, unique: usize) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{pid}.{unique}.tmp"));
    temp
}

/// True when `name` has the form of [`temporary_name`].
fn is_temporary_name(name: &OsStr) -> bool {
    let Some(inner) = name
        .to_str()
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".tmp"))
    else {
        return false;
    };
    let mut parts = inner.rsplitn(3, '.');
    let number = |part: Option<&str>| {
        part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    number(parts.next()) && number(parts.next()) && parts.next().is_some_and(|n| !n.is_empty())
}

/// Removes the temporary files that [`write_atomic`] left in `dir` (not in its
/// subfolders) when a process was killed between creating one and renaming it into
/// place; returns how many it removed. For a folder that no other process writes to
/// at the time: a run directory that the run resumed there owns.
pub fn remove_stale_temporaries(dir: &Path) -> Result<usize> {
    let fail = |path: &Path, what: &str, e: std::io::Error| Error::file_caused(path, what, e);
    let entries = std::fs::read_dir(dir).map_err(|e| fail(dir, "cannot list", e))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| fail(dir, "cannot list", e))?;
        if is_temporary_name(&entry.file_name()) && entry.file_type().is_ok_and(|t| t.is_file()) {
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(|e| fail(&path, "cannot remove this stale temporary file", e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Drops the lines of the JSON-lines log at `path` whose `epoch` field is `epoch` or
/// later, and any line that does not parse as such (a write cut short by a crash), so
/// that a run resumed at `epoch` logs each epoch once. Returns how many lines
/// were dropped; a missing file has none, and a file with none to drop is not rewritten.
pub fn drop_epochs_from(path: &Path, epoch: usize) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct Epoch {
        epoch: usize,
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::file_caused(path, "cannot read", e)),
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| serde_json::from_str::<Epoch>(line).is_ok_and(|l| l.epoch < epoch))
        .collect();
    let dropped = text.lines().count() - kept.len();
    if dropped > 0 {
        let kept: String = kept.iter().map(|line| format!("{line}\n")).collect();
        write_atomic(path, kept.as_bytes())?;
    }
    Ok(dropped)
}

/// A fresh, empty folder under the system's temporary folder for the test `name`.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rankcode-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary_behind() {
        let dir = test_dir("files-atomic");
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

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = test_dir("files-stale");
        // What write_atomic leaves when killed before its rename.
        let stale = [
            temporary_name(OsStr::new("checkpoint.safetensors"), 4021, 0),
            temporary_name(OsStr::new("model.safetensors"), 77, 12),
            OsString::from(".metrics.jsonl.1.2.tmp"),
        ];
        let kept = [
            "checkpoint.safetensors",
            "notes.tmp",
            ".hidden",
            ".model.safetensors.tmp",
            ".model.safetensors.12.tmp",
            ".model.safetensors.x.1.tmp",
            "..1.2.tmp",
            "model.safetensors.1.2.tmp",
        ];
        for name in stale
            .iter()
            .map(OsString::as_os_str)
            .chain(kept.map(OsStr::new))
        {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        // A folder of that name is no temporary file.
        std::fs::create_dir(dir.join(".snapshots.1.2.tmp")).unwrap();
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), 3);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<&str> = kept.to_vec();
        expected.push(".snapshots.1.2.tmp");
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), 0);
        let err = remove_stale_temporaries(&dir.join("none"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("none") && err.contains("cannot list"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drops_the_lines_of_an_epoch_and_later_and_cut_lines() {
        let dir = test_dir("files-drop-epochs");
        let path = dir.join("log.jsonl");
        assert_eq!(drop_epochs_from(&path, 1).unwrap(), 0, "no file, no lines");
        let lines = [
            r#"{"epoch":1,"part":"training"}"#,
            r#"{"epoch":1,"part":"validation"}"#,
            r#"{"epoch":2,"part":"training"}"#,
            r#"{"epoch":3,"part":"training"}"#,
            r#"{"epoch":2,"pa"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        assert_eq!(drop_epochs_from(&path, 2).unwrap(), 3);
        let kept = std::fs::read_to_string(&path).unwrap();
        assert_eq!(kept, format!("{}\n{}\n", lines[0], lines[1]));
        assert_eq!(drop_epochs_from(&path, 2).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), kept);
        assert_eq!(drop_epochs_from(&path, 1).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let err = drop_epochs_from(&dir, 1).unwrap_err().to_string();
        assert!(err.contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
