//! The library's error type: every failure a user can cause or meet, with a message
//! that names the problem (and the file, where there is one).

use std::path::PathBuf;

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
    /// A file could not be read or written, or its contents are malformed.
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },
    /// Training diverged.
    #[error("non-finite loss at {0}")]
    NonFinite(String),
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
