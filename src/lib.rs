//! rankcode: rank-coded LSTMs trained and run with hand-written WGSL compute shaders.
//!
//! Data flows one way: [`data`] makes batches of host tensors, [`engine`] runs the
//! rank-coded forward pass, truncated backward pass and Adam by driving the kernels
//! of [`gpu`], and [`model::reference`] is the plain f64 CPU oracle for all of it.

pub mod bayes;
pub mod bench;
pub mod checkpoint;
pub mod classify;
pub mod data;
pub mod engine;
pub mod epoch;
pub mod error;
pub mod files;
pub mod gpu;
pub mod learning_check;
pub mod model;
#[cfg(test)]
pub(crate) mod mutate;
pub mod plot;
pub mod recipe;
pub mod rng;
pub mod run;
pub mod sweep;
pub mod words;

pub use error::{Error, Result};
