//! The sweep spec: a small TOML file naming the task, the fixed flags of `train` and a
//! grid of flag values, expanded into one grid point (one run) per combination.
//!
//! ```toml
//! task = "noise-vs-signal"
//! [fixed]
//! hidden = 32
//! [grid]
//! theta = [0.85, 0.9]
//! seed = [1, 2]
//! ```
//!
//! Keys are `train`'s long flag names (`lr-schedule`, `train-size`). Every error names
//! the file, the line and the key.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Flags of `train` that a spec may not set: the sweep chooses them.
const RESERVED: [&str; 5] = ["out", "resume", "json", "help", "version"];

/// What the spec's keys are checked against: `train`'s own flags (the binary holds
/// them; the library does not).
pub trait FlagCheck {
    /// Whether `train` has the long flag `name`, and if so whether it takes a value
    /// (`Some(false)`: a switch such as `--profile`).
    fn takes_value(&self, name: &str) -> Option<bool>;
    /// The long flags of `train`, for suggestions.
    fn flags(&self) -> Vec<String>;
    /// Checks a whole argument list of `train` (`--task T --flag value ...`, no
    /// `--out`), as `train` would before it trains; the error says what is wrong.
    fn check(&self, args: &[String]) -> std::result::Result<(), String>;
}

/// One value of a flag, as the spec spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    /// A number or a string: passed as `--flag VALUE`.
    Text(String),
    /// A switch: `true` passes `--flag`, `false` nothing.
    Switch(bool),
}

impl FlagValue {
    /// The value as the table shows it.
    pub fn show(&self) -> String {
        match self {
            FlagValue::Text(t) => t.clone(),
            FlagValue::Switch(b) => b.to_string(),
        }
    }
}

/// A flag with its value and the line it was given on.
#[derive(Debug, Clone)]
pub struct Setting {
    pub flag: String,
    pub value: FlagValue,
    pub line: usize,
}

/// A grid axis: a flag and its values, in the order written.
#[derive(Debug, Clone)]
pub struct Axis {
    pub flag: String,
    pub values: Vec<Setting>,
}

/// A parsed sweep spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The file it was read from.
    pub path: PathBuf,
    pub task: String,
    /// The line of `task`.
    pub task_line: usize,
    pub fixed: Vec<Setting>,
    /// The grid's axes, in the order written: the first varies slowest.
    pub grid: Vec<Axis>,
}

/// One grid point: one run of `train`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Its place in the expansion (the Slurm array index).
    pub index: usize,
    /// Its run directory's name, e.g. `theta-0.9_beta-0_seed-1`.
    pub name: String,
    /// The grid's flags and this point's values, in grid order.
    pub settings: Vec<(String, FlagValue)>,
}

impl Spec {
    /// Reads and parses the spec in `path`, and checks every key and value against
    /// `train`'s flags.
    pub fn load(path: &Path, flags: &dyn FlagCheck) -> Result<Spec> {
        let spec = Spec::load_saved(path, flags)?;
        spec.check(flags)?;
        Ok(spec)
    }

    /// Reads the spec a sweep folder saved, checked when the sweep was made: its keys
    /// must still be flags of `train`, but the values are not checked again (that can
    /// need the data, which a login node or a laptop reading a report may not have).
    pub fn load_saved(path: &Path, flags: &dyn FlagCheck) -> Result<Spec> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::file(path, format!("cannot read the sweep spec: {e}")))?;
        Spec::read(path, &text, flags)
    }

    /// Parses `text`, the contents of `path` (which errors name), and checks it as
    /// [`Spec::load`] does.
    pub fn parse(path: &Path, text: &str, flags: &dyn FlagCheck) -> Result<Spec> {
        let spec = Spec::read(path, text, flags)?;
        spec.check(flags)?;
        Ok(spec)
    }

    /// The structure of the file: keys known, values of the right kinds.
    fn read(path: &Path, text: &str, flags: &dyn FlagCheck) -> Result<Spec> {
        let err = |span: std::ops::Range<usize>, key: &str, problem: String| {
            Error::file(
                path,
                format!("line {}, key `{key}`: {problem}", line_of(text, span.start)),
            )
        };
        let root = DeTable::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            Error::file(
                path,
                format!("line {line}: not valid TOML: {}", e.message()),
            )
        })?;
        let mut task = None;
        let mut fixed = Vec::new();
        let mut grid = Vec::new();
        for (key, value) in root.get_ref().iter() {
            let span = key.span();
            match (key.get_ref().as_ref(), value.get_ref()) {
                ("task", DeValue::String(t)) => {
                    task = Some((t.to_string(), line_of(text, span.start)))
                }
                ("task", _) => {
                    return Err(err(span, "task", "is the task's name, a string".into()));
                }
                ("fixed", DeValue::Table(table)) => {
                    for (flag, v) in table.iter() {
                        let name = format!("fixed.{}", flag.get_ref());
                        let setting =
                            setting(flag, v, flags).map_err(|why| err(flag.span(), &name, why))?;
                        fixed.push(setting);
                    }
                }
                ("grid", DeValue::Table(table)) => {
                    for (flag, v) in table.iter() {
                        let name = format!("grid.{}", flag.get_ref());
                        let DeValue::Array(values) = v.get_ref() else {
                            return Err(err(
                                flag.span(),
                                &name,
                                format!(
                                    "a grid axis is a list of values, e.g. {} = [1, 2]",
                                    flag.get_ref()
                                ),
                            ));
                        };
                        if values.is_empty() {
                            return Err(err(flag.span(), &name, "has no values".into()));
                        }
                        let values = values
                            .iter()
                            .map(|v| {
                                setting(flag, v, flags).map_err(|why| err(v.span(), &name, why))
                            })
                            .collect::<Result<Vec<_>>>()?;
                        if let Some(twice) = values
                            .iter()
                            .enumerate()
                            .find(|(i, s)| values[..*i].iter().any(|o| o.value == s.value))
                        {
                            return Err(Error::file(
                                path,
                                format!(
                                    "line {}, key `{name}`: the value {} is listed twice",
                                    line_of(text, twice.1.line),
                                    twice.1.value.show()
                                ),
                            ));
                        }
                        grid.push(Axis {
                            flag: flag.get_ref().to_string(),
                            values,
                        });
                    }
                }
                (table @ ("fixed" | "grid"), _) => {
                    return Err(err(span, table, "is a table: [fixed] or [grid]".into()));
                }
                (other, _) => {
                    return Err(err(
                        span,
                        other,
                        "unknown key: a spec holds `task`, [fixed] and [grid]".into(),
                    ));
                }
            }
        }
        let (task, task_line) = task.ok_or_else(|| {
            Error::file(path, "names no task: add e.g. task = \"noise-vs-signal\"")
        })?;
        let line = |offset: usize| line_of(text, offset);
        let relines = |mut s: Setting| {
            s.line = line(s.line);
            s
        };
        let fixed: Vec<Setting> = fixed.into_iter().map(relines).collect();
        let grid: Vec<Axis> = grid
            .into_iter()
            .map(|a| Axis {
                flag: a.flag,
                values: a.values.into_iter().map(relines).collect(),
            })
            .collect();
        for axis in &grid {
            if let Some(f) = fixed.iter().find(|f| f.flag == axis.flag) {
                return Err(Error::file(
                    path,
                    format!(
                        "line {}, key `fixed.{}`: is also a grid axis (line {})",
                        f.line, f.flag, axis.values[0].line
                    ),
                ));
            }
        }
        Ok(Spec {
            path: path.into(),
            task,
            task_line,
            fixed,
            grid,
        })
    }

    /// Checks the values with `train`'s own parser and checks: the task alone, each
    /// fixed flag with the task, every grid value with the fixed flags (errors name
    /// the line), and each point whole.
    fn check(&self, flags: &dyn FlagCheck) -> Result<()> {
        let err = |line: usize, key: &str, problem: String| {
            Error::file(
                self.path.clone(),
                format!("line {line}, key `{key}`: {problem}"),
            )
        };
        let task = ["--task".to_string(), self.task.clone()];
        flags
            .check(&task)
            .map_err(|why| err(self.task_line, "task", why))?;
        for f in &self.fixed {
            let mut args = task.to_vec();
            push_flag(&mut args, &f.flag, &f.value);
            flags
                .check(&args)
                .map_err(|why| err(f.line, &format!("fixed.{}", f.flag), why))?;
        }
        let base = self.base_args();
        flags.check(&base).map_err(|why| {
            Error::file(
                self.path.clone(),
                format!("the [fixed] flags together: {why}"),
            )
        })?;
        for axis in &self.grid {
            for v in &axis.values {
                let mut args = base.clone();
                push_flag(&mut args, &axis.flag, &v.value);
                flags
                    .check(&args)
                    .map_err(|why| err(v.line, &format!("grid.{}", axis.flag), why))?;
            }
        }
        let points = self.points()?;
        for p in &points {
            flags.check(&self.args(p)).map_err(|why| {
                Error::file(self.path.clone(), format!("grid point {}: {why}", p.name))
            })?;
        }
        Ok(())
    }

    /// `--task T` and the fixed flags.
    fn base_args(&self) -> Vec<String> {
        let mut args = vec!["--task".to_string(), self.task.clone()];
        for f in &self.fixed {
            push_flag(&mut args, &f.flag, &f.value);
        }
        args
    }

    /// The arguments of `train` for `point`, without `--out`.
    pub fn args(&self, point: &Point) -> Vec<String> {
        let mut args = self.base_args();
        for (flag, value) in &point.settings {
            push_flag(&mut args, flag, value);
        }
        args
    }

    /// Every grid point, the first axis varying slowest; their names are unique.
    pub fn points(&self) -> Result<Vec<Point>> {
        let mut points: Vec<Vec<(String, FlagValue)>> = vec![Vec::new()];
        for axis in &self.grid {
            points = points
                .into_iter()
                .flat_map(|p| {
                    axis.values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push((axis.flag.clone(), v.value.clone()));
                        p
                    })
                })
                .collect();
        }
        let points: Vec<Point> = points
            .into_iter()
            .enumerate()
            .map(|(index, settings)| Point {
                index,
                name: point_name(&settings),
                settings,
            })
            .collect();
        for (i, p) in points.iter().enumerate() {
            if let Some(other) = points[..i].iter().find(|o| o.name == p.name) {
                return Err(Error::file(
                    self.path.clone(),
                    format!(
                        "two grid points would share the run directory {}: {} and {}; \
                         spell the values so that they differ in letters, digits, '.', '+' or '-'",
                        p.name,
                        show_settings(&other.settings),
                        show_settings(&p.settings)
                    ),
                ));
            }
        }
        Ok(points)
    }

    /// How this spec differs from `other` in meaning, in words; `None` if it does not.
    pub fn difference(&self, other: &Spec) -> Option<String> {
        // What makes two specs the same sweep: the task, the fixed flags and the grid
        // in order (not comments, spacing or lines).
        let fixed = |s: &Spec| -> Vec<(String, FlagValue)> {
            s.fixed
                .iter()
                .map(|f| (f.flag.clone(), f.value.clone()))
                .collect()
        };
        let grid = |s: &Spec| -> Vec<(String, Vec<FlagValue>)> {
            s.grid
                .iter()
                .map(|a| {
                    (
                        a.flag.clone(),
                        a.values.iter().map(|v| v.value.clone()).collect(),
                    )
                })
                .collect()
        };
        if self.task != other.task {
            Some(format!("task {} against {}", self.task, other.task))
        } else if fixed(self) != fixed(other) {
            Some("the [fixed] flags differ".into())
        } else if grid(self) != grid(other) {
            Some("the [grid] differs".into())
        } else {
            None
        }
    }
}

/// `flag=value, ...` of a point's settings.
pub fn show_settings(settings: &[(String, FlagValue)]) -> String {
    let shown: Vec<String> = settings
        .iter()
        .map(|(f, v)| format!("{f}={}", v.show()))
        .collect();
    shown.join(", ")
}

/// Appends `--flag value` (or `--flag` for a switch that is on).
fn push_flag(args: &mut Vec<String>, flag: &str, value: &FlagValue) {
    match value {
        FlagValue::Text(v) => {
            args.push(format!("--{flag}"));
            args.push(v.clone());
        }
        FlagValue::Switch(true) => args.push(format!("--{flag}")),
        FlagValue::Switch(false) => {}
    }
}

/// The run directory of a point: `flag-value` joined by `_`, with any character other
/// than letters, digits, `.`, `+` and `-` as `_`; `run` for an empty grid.
fn point_name(settings: &[(String, FlagValue)]) -> String {
    if settings.is_empty() {
        return "run".into();
    }
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let parts: Vec<String> = settings
        .iter()
        .map(|(f, v)| format!("{}-{}", clean(f), clean(&v.show())))
        .collect();
    parts.join("_")
}

/// A fixed flag or one grid value: the flag must be one of `train`'s, and the value a
/// number or string (a boolean for a switch). Its line is the byte offset until
/// [`Spec::read`] turns offsets into lines.
fn setting(
    flag: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    flags: &dyn FlagCheck,
) -> std::result::Result<Setting, String> {
    let name = flag.get_ref().as_ref();
    if RESERVED.contains(&name) || name == "task" {
        return Err(match name {
            "task" => "the task is set at the top of the spec (task = \"...\")".into(),
            _ => format!("--{name} is set by the sweep itself, not by its spec"),
        });
    }
    let Some(takes_value) = flags.takes_value(name) else {
        return Err(unknown_flag(name, &flags.flags()));
    };
    let text = match value.get_ref() {
        DeValue::String(s) => FlagValue::Text(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            FlagValue::Text(match i.radix() {
                10 => digits,
                radix => i64::from_str_radix(&digits, radix)
                    .map_err(|e| format!("{}: {e}", i.as_str()))?
                    .to_string(),
            })
        }
        DeValue::Float(f) => FlagValue::Text(f.as_str().replace('_', "")),
        DeValue::Boolean(b) => FlagValue::Switch(*b),
        DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => {
            return Err("a value is a number, a string or (for a switch) true or false".into());
        }
    };
    match (&text, takes_value) {
        (FlagValue::Switch(_), true) => {
            return Err(format!(
                "--{name} takes a value, not true or false (a string: \"true\")"
            ));
        }
        (FlagValue::Text(_), false) => {
            return Err(format!("--{name} is a switch: true or false"));
        }
        _ => {}
    }
    Ok(Setting {
        flag: name.to_string(),
        value: text,
        line: value.span().start,
    })
}

/// The message for a key that is no flag of `train`, with the nearest one.
fn unknown_flag(name: &str, known: &[String]) -> String {
    let dashed = name.replace('_', "-");
    let nearest = known
        .iter()
        .filter(|k| !RESERVED.contains(&k.as_str()) && k.as_str() != "task")
        .map(|k| (edit_distance(&dashed, k), k))
        .min()
        .filter(|(d, _)| *d <= 2 || dashed.len() > 3 && *d <= dashed.len() / 3);
    match nearest {
        Some((_, k)) => format!("`rankcode train` has no flag --{name} (did you mean --{k}?)"),
        None => {
            format!("`rankcode train` has no flag --{name} (`rankcode train --help` lists them)")
        }
    }
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `train`'s flags, in part: enough to check specs without the binary.
    pub(crate) struct FakeTrain;

    impl FlagCheck for FakeTrain {
        fn takes_value(&self, name: &str) -> Option<bool> {
            match name {
                "theta" | "beta" | "seed" | "hidden" | "epochs" | "lr-schedule" | "task"
                | "train-size" | "out" => Some(true),
                "profile" | "resume" | "json" => Some(false),
                _ => None,
            }
        }
        fn flags(&self) -> Vec<String> {
            [
                "theta",
                "beta",
                "seed",
                "hidden",
                "epochs",
                "lr-schedule",
                "profile",
            ]
            .map(String::from)
            .to_vec()
        }
        fn check(&self, args: &[String]) -> std::result::Result<(), String> {
            for pair in args.windows(2) {
                if pair[0] == "--theta" {
                    let t: f32 = pair[1].parse().map_err(|_| "not a number".to_string())?;
                    if !(t > 0.0 && t < 1.0) {
                        return Err(format!("--theta must be in (0, 1); got {t}"));
                    }
                }
                if pair[0] == "--task" && pair[1] != "noise-vs-signal" {
                    return Err(format!("invalid value '{}' for '--task'", pair[1]));
                }
            }
            Ok(())
        }
    }

    fn parse(text: &str) -> Result<Spec> {
        Spec::parse(Path::new("spec.toml"), text, &FakeTrain)
    }

    fn refused(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const EXAMPLE: &str = r#"
task = "noise-vs-signal"
[fixed]
hidden = 32
epochs = 2
[grid]
theta = [0.8, 0.85, 0.9]
beta = [0, 0.01]
seed = [1, 2]
"#;

    #[test]
    fn a_spec_expands_into_named_points_in_grid_order() {
        let spec = parse(EXAMPLE).unwrap();
        let points = spec.points().unwrap();
        assert_eq!(points.len(), 12);
        assert_eq!(points[0].name, "theta-0.8_beta-0_seed-1");
        assert_eq!(points[1].name, "theta-0.8_beta-0_seed-2");
        assert_eq!(points[11].name, "theta-0.9_beta-0.01_seed-2");
        assert_eq!(points[5].index, 5);
        assert_eq!(
            spec.args(&points[3]).join(" "),
            "--task noise-vs-signal --hidden 32 --epochs 2 --theta 0.8 --beta 0.01 --seed 2"
        );
    }

    #[test]
    fn an_empty_grid_is_one_run_and_switches_pass_as_flags() {
        let spec = parse("task = \"noise-vs-signal\"\n[fixed]\nprofile = true\n").unwrap();
        let points = spec.points().unwrap();
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].name, "run");
        assert_eq!(
            spec.args(&points[0]),
            ["--task", "noise-vs-signal", "--profile"]
        );
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let err = refused("task = \"noise-vs-signal\"\n[grid]\nhiden = [4, 8]\n");
        assert!(
            err.starts_with("spec.toml: line 3, key `grid.hiden`"),
            "{err}"
        );
        assert!(err.contains("did you mean --hidden?"), "{err}");
        let err = refused("task = \"noise-vs-signal\"\n[grid]\n\ntheta = [0.5, 95]\n");
        assert!(
            err.contains("line 4, key `grid.theta`: --theta must be in (0, 1); got 95"),
            "{err}"
        );
        let err = refused("task = \"noise-vs-signal\"\n[fixed]\nseed = [1]\n");
        assert!(
            err.contains("line 3, key `fixed.seed`: a value is a number"),
            "{err}"
        );
        let err = refused("task = \"noise-vs-signal\"\n[grid]\nseed = 1\n");
        assert!(
            err.contains("line 3, key `grid.seed`: a grid axis is a list"),
            "{err}"
        );
        let err = refused("task = \"noise-vs-signal\"\n[grid]\nseed = []\n");
        assert!(
            err.contains("line 3, key `grid.seed`: has no values"),
            "{err}"
        );
        let err = refused("task = \"noise-vs-signal\"\n[grid]\nseed = [1, 1]\n");
        assert!(
            err.contains("line 3, key `grid.seed`: the value 1 is listed twice"),
            "{err}"
        );
        let err = refused("task = \"noise-vs-signal\"\n[fixed]\nout = \"x\"\n");
        assert!(
            err.contains("line 3, key `fixed.out`: --out is set by the sweep"),
            "{err}"
        );
        let err = refused("task = \"noise-vs-signal\"\n[fixed]\nprofile = 1\n");
        assert!(err.contains("--profile is a switch"), "{err}");
        let err = refused("task = \"noise-vs-signal\"\n[fixed]\nseed = true\n");
        assert!(err.contains("--seed takes a value"), "{err}");
        let err = refused("task = \"noise-vs-signal\"\ngrdi = 3\n");
        assert!(err.contains("line 2, key `grdi`: unknown key"), "{err}");
        let err = refused("task = \"mnist-typo\"\n");
        assert!(err.contains("line 1, key `task`: invalid value"), "{err}");
        let err = refused("[grid]\nseed = [1]\n");
        assert!(err.contains("names no task"), "{err}");
        let err = refused("task = \"noise-vs-signal\"\n[fixed]\nseed = 1\n[grid]\nseed = [2]\n");
        assert!(
            err.contains("line 3, key `fixed.seed`: is also a grid axis (line 5)"),
            "{err}"
        );
        let err = refused("task = \"noise-vs-signal\"\n[grid\n");
        assert!(err.contains("line 2: not valid TOML"), "{err}");
        let err = refused("task = \"noise-vs-signal\"\n[grid]\nlr-schedule = [\"a/b\", \"a_b\"]\n");
        assert!(
            err.contains("share the run directory lr-schedule-a_b"),
            "{err}"
        );
    }

    #[test]
    fn integers_in_other_bases_and_with_underscores_are_plain_decimals() {
        let spec =
            parse("task = \"noise-vs-signal\"\n[grid]\ntrain-size = [0x10, 1_000]\n").unwrap();
        let names: Vec<String> = spec.points().unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["train-size-16", "train-size-1000"]);
    }

    #[test]
    fn the_meaning_ignores_comments_and_layout() {
        let a = parse(EXAMPLE).unwrap();
        let b = parse(&format!("# a comment\n\n{EXAMPLE}")).unwrap();
        assert!(a.difference(&b).is_none());
        let c = parse(&EXAMPLE.replace("seed = [1, 2]", "seed = [1, 2, 3]")).unwrap();
        assert_eq!(a.difference(&c).unwrap(), "the [grid] differs");
    }

    #[test]
    fn near_misses_are_suggested() {
        let known = FakeTrain.flags();
        assert!(unknown_flag("lr_schedule", &known).contains("--lr-schedule?"));
        assert!(unknown_flag("zzz", &known).contains("--help"));
        assert_eq!(edit_distance("hiden", "hidden"), 1);
    }
}
