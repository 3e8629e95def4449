//! The model: configuration, parameters, the host's decision rule and the CPU
//! reference (the oracle).

pub mod config;
pub mod decision;
pub mod ensemble;
pub mod params;
pub mod reference;

pub use config::{AdamConfig, LrSchedule, ModelConfig, RcConfig, Readout, ThetaWarmup, TrainMode};
pub use params::{ParamLayout, init_params};
