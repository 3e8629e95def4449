//! One module per command: parse, call the library, print.

pub mod bench;
pub mod choice;
pub mod classify;
pub mod demo;
pub mod ensemble;
pub mod eval;
pub mod info;
pub mod plot;
pub mod report;
pub mod sweep;
pub mod train;
