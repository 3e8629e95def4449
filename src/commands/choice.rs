//! The library's settings with named values, as flag values. The library names each
//! value and says what it does ([`Task::name`], [`Task::about`], ...), and its
//! `Default` is the value a setting has unless told otherwise; [`choice`] makes of them
//! a value parser whose values `--help` lists, each with its line of help.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use rankcode::data::augment::Sampling;
use rankcode::data::frontend::UtteranceNorm;
use rankcode::data::task::Task;
use rankcode::model::{LrSchedule, Readout, TrainMode};

/// A setting with a fixed set of named values.
pub trait Choice: Copy + Send + Sync + 'static {
    /// Every value, in the order `--help` lists them.
    const ALL: &'static [Self];
    /// The value's name on the command line (and in `config.json`).
    fn name(self) -> &'static str;
    /// What the value does, in a line of `--help`.
    fn about(self) -> &'static str;
}

/// [`Choice`] for library types that have `ALL`, `name` and `about` of their own.
macro_rules! choices {
    ($($t:ty),*) => {$(
        impl Choice for $t {
            const ALL: &'static [Self] = &<$t>::ALL;
            fn name(self) -> &'static str {
                <$t>::name(self)
            }
            fn about(self) -> &'static str {
                <$t>::about(self)
            }
        }
    )*};
}

choices!(
    Task,
    TrainMode,
    Readout,
    LrSchedule,
    UtteranceNorm,
    Sampling
);

/// A value parser of the names of `T`'s values, which lists them, with their help.
pub fn choice<T: Choice>() -> impl TypedValueParser<Value = T> {
    let values = T::ALL
        .iter()
        .map(|v| PossibleValue::new(v.name()).help(v.about()));
    PossibleValuesParser::new(values).map(|name| {
        *T::ALL
            .iter()
            .find(|v| v.name() == name)
            .expect("the parser passes only the names it lists")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of `T`'s values: distinct, and those of `config.json`.
    fn names_are_those_of_config_files<T: Choice + serde::Serialize>() {
        for (i, v) in T::ALL.iter().enumerate() {
            assert_eq!(
                serde_json::to_value(v).unwrap(),
                serde_json::Value::from(v.name())
            );
            assert!(T::ALL[..i].iter().all(|w| w.name() != v.name()));
        }
    }

    #[test]
    fn flag_values_are_named_as_in_config_files() {
        names_are_those_of_config_files::<Task>();
        names_are_those_of_config_files::<TrainMode>();
        names_are_those_of_config_files::<Readout>();
        names_are_those_of_config_files::<LrSchedule>();
        names_are_those_of_config_files::<UtteranceNorm>();
        names_are_those_of_config_files::<Sampling>();
    }
}
