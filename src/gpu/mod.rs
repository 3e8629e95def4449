//! The GPU layer: context, buffers and one typed wrapper per pipeline.
//! Knows nothing of tasks, files or the command line.

pub mod bindings;
pub mod context;
pub mod kernel;
pub mod matmul;
pub mod profile;
pub mod shaders;
pub mod structs;

pub use context::GpuContext;
pub use kernel::{Binding, Kernel};
