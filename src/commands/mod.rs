//! One module per command: parse nothing, call the library, print.

pub mod demo;
pub mod info;
