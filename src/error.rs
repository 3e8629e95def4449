//! The library's error type: every failure a user can cause or meet, with a message
//! that names the problem (and the file, where there is one).

use std::path::PathBuf;

/// The error underneath another: an io error, a parser's, or one of this library's.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors at the library boundary. The binary wraps them in `anyhow` for context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is outside its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Input data that cannot be used as it is.
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// Data, model and checkpoint disagree on a shape.
    #[error("shape mismatch: {0}")]
    ShapeMismatch(String),
    /// No GPU adapter could be found (or none matched `WGPU_ADAPTER_NAME`).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter lacks a limit or feature that the requested sizes need.
    #[error("the adapter '{adapter}' cannot run this: {problem}")]
    AdapterLimit { adapter: String, problem: String },
    /// The device refused a request or reported an error.
    #[error("GPU device error: {0}")]
    Device(String),
    /// A file could not be read or written, or its contents are malformed. Made with
    /// [`Error::file`] or [`Error::file_caused`]. The message is `path: problem` (the
    /// path alone when `problem` is empty); the `source` under it, when there is one,
    /// is not part of it: a chain of causes printed in full (`{:#}` of an
    /// `anyhow::Error`, or [`full_message`]) shows its message after a colon.
    #[error("{}", file_message(path, problem))]
    File {
        path: PathBuf,
        problem: String,
        #[source]
        source: Option<Source>,
    },
    /// Training diverged.
    #[error("non-finite loss at {0}")]
    NonFinite(String),
}

impl Error {
    /// A problem with the file or folder at `path`, in words.
    pub fn file(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            problem: problem.into(),
            source: None,
        }
    }

    /// A problem with the file or folder at `path` that `source` caused: the message
    /// says `problem` (empty: nothing more than the source says), and a full chain of
    /// causes adds `source`'s after a colon.
    pub fn file_caused(
        path: impl Into<PathBuf>,
        problem: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error::File {
            path: path.into(),
            problem: problem.into(),
            source: Some(source.into()),
        }
    }
}

/// The message of an [`Error::File`].
fn file_message(path: &std::path::Path, problem: &str) -> String {
    match problem {
        "" => path.display().to_string(),
        _ => format!("{}: {problem}", path.display()),
    }
}

/// The message of `error` followed by those of the errors under it, each after a
/// colon: what the binary prints for an error.
pub fn full_message(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    message
}

/// Shorthand for results of this library.
pub type Result<T> = std::result::Result<T, Error>;

/// Returns `Err(InvalidConfig)` with `msg` unless `ok`.
pub(crate) fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig(msg()))
    }
}
