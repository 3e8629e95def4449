//! `rankcode report`: every finished run under a folder in one table and one figure.
//!
//! Runs are read from their files as plain JSON (`config.json`, `test.json`,
//! `metrics.jsonl`). In a sweep folder the settings are the grid's; in any other
//! folder of runs, the flags of `train` whose saved values differ between the runs.

use super::{PointState, Sweep};
use crate::error::{Error, Result};
use crate::plot::{Curve, Draw};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One finished run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Its directory, relative to the folder reported.
    pub run: String,
    /// The settings that tell the runs apart, by flag name, as the flag takes them.
    pub settings: Vec<(String, String)>,
    pub task: String,
    /// Test accuracy at the decision, in [0, 1].
    pub accuracy: f64,
    /// Mean decision step on test, counted from 1.
    pub mean_decision_step: f64,
    /// The task's steps T.
    pub steps: usize,
    /// Share of test sequences with no spike.
    pub not_fired: f64,
    /// Test accuracy of the argmax at the last step (T-1), if measured.
    pub accuracy_at_last_step: Option<f64>,
    /// The threshold the test ran at.
    pub test_theta: f64,
    /// Steps processed in training, summed over epochs and sequences.
    pub train_steps_processed: u64,
    /// Steps processed by the test evaluation.
    pub test_steps_processed: u64,
    /// Training wall time, summed over epochs, in seconds.
    pub train_wall_s: f64,
    pub epochs: usize,
    /// Whether no other run of its task is at least as accurate at an earlier or
    /// equal mean decision step (and better in one of them).
    pub pareto: bool,
}

/// A run with no test result (yet).
#[derive(Debug, Clone, Serialize)]
pub struct Unfinished {
    pub run: String,
    /// `running`, `failed`, `pending`, or what is wrong with its files.
    pub state: String,
}

/// Every run under a folder.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub folder: PathBuf,
    /// The setting columns, by flag name.
    pub settings: Vec<String>,
    pub runs: Vec<RunRow>,
    pub unfinished: Vec<Unfinished>,
}

/// Maps a config.json key (`rc.theta`) to the flag that sets it (`--theta`).
pub type SettingFlags<'a> = &'a [(&'a str, &'a str)];

impl Report {
    /// Gathers the runs of the sweep folder `folder` (its grid's settings), or of any
    /// folder holding run directories at any depth (the flags of `setting_flags` whose
    /// values differ between them). `flags` checks a sweep's saved spec.
    pub fn gather(
        folder: &Path,
        flags: &dyn super::FlagCheck,
        setting_flags: SettingFlags,
    ) -> Result<Report> {
        if !folder.is_dir() {
            return Err(Error::file(folder, "is no folder of runs"));
        }
        let mut report = if Sweep::is_sweep(folder) {
            Report::of_sweep(&Sweep::open(folder, flags)?)
        } else {
            Report::of_folder(folder, setting_flags)?
        };
        mark_pareto(&mut report.runs);
        Ok(report)
    }

    fn of_sweep(sweep: &Sweep) -> Report {
        let mut report = Report {
            folder: sweep.dir.clone(),
            settings: sweep.spec.grid.iter().map(|a| a.flag.clone()).collect(),
            runs: Vec::new(),
            unfinished: Vec::new(),
        };
        for point in &sweep.points {
            let dir = sweep.point_dir(point);
            let settings = point
                .settings
                .iter()
                .map(|(f, v)| (f.clone(), v.show()))
                .collect();
            match PointState::of(&dir) {
                PointState::Done => match read_run(&dir, point.name.clone(), settings) {
                    Ok(row) => report.runs.push(row),
                    Err(e) => report.unfinished.push(Unfinished {
                        run: point.name.clone(),
                        state: e.to_string(),
                    }),
                },
                state => report.unfinished.push(Unfinished {
                    run: point.name.clone(),
                    state: state.name().into(),
                }),
            }
        }
        report
    }

    fn of_folder(folder: &Path, setting_flags: SettingFlags) -> Result<Report> {
        let mut dirs = Vec::new();
        find_runs(folder, &mut dirs)?;
        dirs.sort();
        let mut configs = Vec::new();
        let mut unfinished = Vec::new();
        for dir in dirs {
            let name = relative(folder, &dir);
            match read_json(&dir.join("config.json")) {
                // An ensemble is no run that was trained.
                Ok(c) if c.get("ensemble_of").is_some_and(|e| !e.is_null()) => {}
                Ok(c) => configs.push((dir, name, c)),
                Err(e) => unfinished.push(Unfinished {
                    run: name,
                    state: e.to_string(),
                }),
            }
        }
        // The flags whose values differ between the runs (one column per config key).
        let value = |config: &Value, key: &str| {
            config
                .pointer(&format!("/{}", key.replace('.', "/")))
                .map(show_json)
                .unwrap_or_else(|| "none".into())
        };
        let mut columns: Vec<(&str, String)> = Vec::new();
        for &(key, flag) in setting_flags {
            let varies = configs
                .windows(2)
                .any(|w| value(&w[0].2, key) != value(&w[1].2, key));
            if varies && !columns.iter().any(|(k, _)| *k == key) {
                columns.push((key, flag.trim_start_matches('-').to_string()));
            }
        }
        let mut runs = Vec::new();
        for (dir, name, config) in &configs {
            if !dir.join("test.json").exists() {
                unfinished.push(Unfinished {
                    run: name.clone(),
                    state: PointState::of(dir).name().into(),
                });
                continue;
            }
            let settings = columns
                .iter()
                .map(|(key, flag)| (flag.clone(), value(config, key)))
                .collect();
            match read_run(dir, name.clone(), settings) {
                Ok(row) => runs.push(row),
                Err(e) => unfinished.push(Unfinished {
                    run: name.clone(),
                    state: e.to_string(),
                }),
            }
        }
        Ok(Report {
            folder: folder.into(),
            settings: columns.into_iter().map(|(_, f)| f).collect(),
            runs,
            unfinished,
        })
    }

    /// The table's header and rows, as text cells; Pareto runs marked `*`.
    fn cells(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut header = vec!["run".to_string()];
        header.extend(self.settings.iter().cloned());
        header.extend(
            [
                "accuracy",
                "decision step",
                "not fired",
                "acc at T-1",
                "train steps",
                "wall",
                "front",
            ]
            .map(String::from),
        );
        let rows = self
            .runs
            .iter()
            .map(|r| {
                let mut row = vec![r.run.clone()];
                row.extend(r.settings.iter().map(|(_, v)| v.clone()));
                row.extend([
                    format!("{:.2}%", 100.0 * r.accuracy),
                    format!("{:.2}/{}", r.mean_decision_step, r.steps),
                    format!("{:.1}%", 100.0 * r.not_fired),
                    r.accuracy_at_last_step
                        .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
                    r.train_steps_processed.to_string(),
                    format!("{:.1}s", r.train_wall_s),
                    if r.pareto { "*".into() } else { String::new() },
                ]);
                row
            })
            .collect();
        (header, rows)
    }

    /// The table as aligned text columns.
    pub fn text(&self) -> String {
        let (header, rows) = self.cells();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(&header);
        for row in &rows {
            out.push_str(&line(row));
        }
        out
    }

    /// The table in Markdown.
    pub fn markdown(&self) -> String {
        let (header, rows) = self.cells();
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&header);
        out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
        for row in &rows {
            out.push_str(&line(row));
        }
        out
    }

    /// The table as CSV, with plain numbers (fractions, not percentages).
    pub fn csv(&self) -> String {
        let quote = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut header = vec!["run".to_string()];
        header.extend(self.settings.iter().cloned());
        header.extend(
            [
                "task",
                "accuracy",
                "mean_decision_step",
                "steps",
                "not_fired",
                "accuracy_at_last_step",
                "test_theta",
                "train_steps_processed",
                "test_steps_processed",
                "train_wall_s",
                "epochs",
                "pareto",
            ]
            .map(String::from),
        );
        let mut out = header
            .iter()
            .map(|h| quote(h))
            .collect::<Vec<_>>()
            .join(",")
            + "\n";
        for r in &self.runs {
            let mut row = vec![r.run.clone()];
            row.extend(r.settings.iter().map(|(_, v)| v.clone()));
            row.extend([
                r.task.clone(),
                r.accuracy.to_string(),
                r.mean_decision_step.to_string(),
                r.steps.to_string(),
                r.not_fired.to_string(),
                r.accuracy_at_last_step
                    .map_or(String::new(), |a| a.to_string()),
                r.test_theta.to_string(),
                r.train_steps_processed.to_string(),
                r.test_steps_processed.to_string(),
                r.train_wall_s.to_string(),
                r.epochs.to_string(),
                r.pareto.to_string(),
            ]);
            out.push_str(&(row.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",") + "\n"));
        }
        out
    }

    /// The report as JSON: an object whose `runs` holds one object per finished run
    /// (its settings as an object), and `unfinished` the others.
    pub fn json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("a row serialises");
                let settings: serde_json::Map<String, Value> = r
                    .settings
                    .iter()
                    .map(|(k, s)| (k.clone(), json_of_setting(s)))
                    .collect();
                v["settings"] = Value::Object(settings);
                v
            })
            .collect();
        serde_json::json!({
            "folder": self.folder,
            "settings": self.settings,
            "runs": runs,
            "unfinished": self.unfinished,
        })
    }

    /// The figure's curves: one set of points per value of setting `by` (all runs in
    /// one set without it), then the Pareto front as a line. Refuses a `by` that is no
    /// setting column, and runs of more than one task.
    pub fn curves(&self, by: Option<&str>) -> Result<Vec<Curve>> {
        let column = match by {
            None => None,
            Some(by) => Some(
                self.settings
                    .iter()
                    .position(|s| s == by.trim_start_matches('-'))
                    .ok_or_else(|| {
                        Error::InvalidConfig(format!(
                            "--by {by}: not a setting that differs between these runs (settings: {})",
                            if self.settings.is_empty() {
                                "none".to_string()
                            } else {
                                self.settings.join(", ")
                            }
                        ))
                    })?,
            ),
        };
        if let Some(task) = self.runs.iter().find(|r| r.task != self.runs[0].task) {
            return Err(Error::InvalidConfig(format!(
                "the runs are of more than one task ({} and {}): one figure shows one task",
                self.runs[0].task, task.task
            )));
        }
        let point = |r: &RunRow| (r.mean_decision_step, r.accuracy);
        let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for r in &self.runs {
            let label = match column {
                Some(c) => format!("{} = {}", self.settings[c], r.settings[c].1),
                None => format!("runs ({})", self.runs.len()),
            };
            match groups.iter_mut().find(|(l, _)| *l == label) {
                Some((_, points)) => points.push(point(r)),
                None => groups.push((label, vec![point(r)])),
            }
        }
        // Numeric values in numeric order.
        if column.is_some() {
            let key = |label: &str| {
                let v = label.rsplit(" = ").next().unwrap_or_default();
                (v.parse::<f64>().unwrap_or(f64::INFINITY), v.to_string())
            };
            groups.sort_by(|a, b| {
                let (ka, kb) = (key(&a.0), key(&b.0));
                ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1))
            });
        }
        let mut curves: Vec<Curve> = groups
            .into_iter()
            .map(|(label, points)| Curve::new(label, points).drawn(Draw::Markers))
            .collect();
        let front: Vec<(f64, f64)> = self.runs.iter().filter(|r| r.pareto).map(point).collect();
        if !front.is_empty() {
            curves.push(Curve::new("Pareto front", front).drawn(Draw::Line));
        }
        Ok(curves)
    }

    /// The task's steps, for the figure's x axis.
    pub fn steps(&self) -> usize {
        self.runs.iter().map(|r| r.steps).max().unwrap_or(0)
    }
}

/// A setting's text as JSON: a number where it reads as one.
fn json_of_setting(text: &str) -> Value {
    text.parse::<i64>()
        .map(Value::from)
        .or_else(|_| text.parse::<f64>().map(Value::from))
        .unwrap_or_else(|_| Value::String(text.into()))
}

/// A config value as a flag takes it: strings bare, `none` for null.
fn show_json(value: &Value) -> String {
    match value {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Marks the runs on the Pareto front of accuracy against mean decision step, per task.
fn mark_pareto(runs: &mut [RunRow]) {
    for i in 0..runs.len() {
        let r = &runs[i];
        let dominated = runs.iter().any(|o| {
            o.task == r.task
                && o.accuracy >= r.accuracy
                && o.mean_decision_step <= r.mean_decision_step
                && (o.accuracy > r.accuracy || o.mean_decision_step < r.mean_decision_step)
        });
        let finite = r.accuracy.is_finite() && r.mean_decision_step.is_finite();
        runs[i].pareto = finite && !dominated;
    }
}

/// `dir` relative to `root`, or `.` for the root itself.
fn relative(root: &Path, dir: &Path) -> String {
    match dir.strip_prefix(root) {
        Ok(p) if p.as_os_str().is_empty() => ".".into(),
        Ok(p) => p.display().to_string(),
        Err(_) => dir.display().to_string(),
    }
}

/// The run directories (holding `config.json`) at or under `dir`; not descending into
/// a run (its snapshots).
fn find_runs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join("config.json").is_file() {
        out.push(dir.into());
        return Ok(());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::file(dir, format!("cannot list: {e}")))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_runs(&path, out)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not valid JSON: {e}")))
}

/// A finished run's row from its `test.json` and `metrics.jsonl`.
fn read_run(dir: &Path, run: String, settings: Vec<(String, String)>) -> Result<RunRow> {
    let test_path = dir.join("test.json");
    let test = read_json(&test_path)?;
    let config = read_json(&dir.join("config.json"))?;
    let number = |key: &str| -> Result<f64> {
        test.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| Error::file(test_path.clone(), format!("has no number `{key}`")))
    };
    let metrics_path = dir.join("metrics.jsonl");
    let metrics = std::fs::read_to_string(&metrics_path).unwrap_or_default();
    let (mut train_steps, mut wall, mut epochs) = (0u64, 0.0, 0);
    for line in metrics.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(epoch) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        train_steps += epoch["steps_processed"].as_u64().unwrap_or(0);
        wall += epoch["wall_s"].as_f64().unwrap_or(0.0);
        epochs += 1;
    }
    Ok(RunRow {
        run,
        settings,
        task: config["task"].as_str().unwrap_or("?").to_string(),
        accuracy: number("accuracy")?,
        mean_decision_step: number("mean_decision_step")?,
        steps: number("steps")? as usize,
        not_fired: number("not_fired")?,
        accuracy_at_last_step: test.get("eos_accuracy").and_then(Value::as_f64),
        test_theta: number("theta")?,
        train_steps_processed: train_steps,
        test_steps_processed: number("steps_processed")? as u64,
        train_wall_s: wall,
        epochs,
        pareto: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_dir;

    fn row(run: &str, accuracy: f64, step: f64) -> RunRow {
        RunRow {
            run: run.into(),
            settings: vec![("beta".into(), run[..1].into())],
            task: "t".into(),
            accuracy,
            mean_decision_step: step,
            steps: 40,
            not_fired: 0.0,
            accuracy_at_last_step: None,
            test_theta: 0.9,
            train_steps_processed: 10,
            test_steps_processed: 5,
            train_wall_s: 1.0,
            epochs: 2,
            pareto: false,
        }
    }

    #[test]
    fn the_front_holds_the_runs_no_other_beats_in_both() {
        let mut runs = vec![
            row("0a", 0.90, 10.0),
            row("0b", 0.95, 20.0),
            row("1a", 0.85, 15.0), // beaten by 0a
            row("1b", 0.95, 25.0), // beaten by 0b
            row("1c", 0.80, 5.0),
        ];
        mark_pareto(&mut runs);
        let front: Vec<&str> = runs
            .iter()
            .filter(|r| r.pareto)
            .map(|r| r.run.as_str())
            .collect();
        assert_eq!(front, ["0a", "0b", "1c"]);
        let report = Report {
            folder: "f".into(),
            settings: vec!["beta".into()],
            runs,
            unfinished: vec![],
        };
        let curves = report.curves(Some("beta")).unwrap();
        let labels: Vec<&str> = curves.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["beta = 0", "beta = 1", "Pareto front"]);
        assert_eq!(curves[1].points.len(), 3);
        assert_eq!(curves[2].draw, Draw::Line);
        let err = report.curves(Some("theta")).unwrap_err().to_string();
        assert!(
            err.contains("--by theta: not a setting") && err.contains("beta"),
            "{err}"
        );
        assert_eq!(report.curves(None).unwrap()[0].label, "runs (5)");
    }

    #[test]
    fn tables_show_every_run_in_every_format() {
        let mut runs = vec![row("0a", 0.9, 10.0), row("1b", 0.5, 30.0)];
        mark_pareto(&mut runs);
        let report = Report {
            folder: "f".into(),
            settings: vec!["beta".into()],
            runs,
            unfinished: vec![],
        };
        let text = report.text();
        assert!(text.starts_with("run  beta  accuracy"), "{text}");
        assert!(text.contains("0a   0     90.00%    10.00/40"), "{text}");
        let md = report.markdown();
        assert!(md.contains("|---|---|"), "{md}");
        assert!(md.contains("| 1b | 1 | 50.00% | 30.00/40 |"), "{md}");
        let csv = report.csv();
        assert!(csv.starts_with("run,beta,task,accuracy"), "{csv}");
        assert!(csv.contains("\n0a,0,t,0.9,10,40,"), "{csv}");
        let json = report.json();
        assert_eq!(json["runs"][0]["settings"]["beta"], 0);
        assert_eq!(json["runs"][0]["pareto"], true);
        assert_eq!(json["runs"][1]["pareto"], false);
    }

    #[test]
    fn any_folder_of_runs_reports_the_flags_that_differ() {
        let root = test_dir("report-folder");
        let write_run = |name: &str, theta: f64, seed: u64, finished: bool| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let config = serde_json::json!({"task": "seq-spotting", "rc": {"theta": theta}, "seed": seed, "batch": 64});
            std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
            std::fs::write(
                dir.join("metrics.jsonl"),
                "{\"epoch\":1,\"steps_processed\":100,\"wall_s\":0.5}\n{\"epoch\":2,\"steps_processed\":50,\"wall_s\":0.25}\n",
            )
            .unwrap();
            if finished {
                let test = serde_json::json!({"theta": theta, "accuracy": 0.75, "mean_decision_step": 12.5, "not_fired": 0.1, "eos_accuracy": 0.8, "steps_processed": 1000, "steps": 25});
                std::fs::write(dir.join("test.json"), test.to_string()).unwrap();
            }
        };
        write_run("a", 0.9, 1, true);
        write_run("nested/b", 0.95, 1, true);
        write_run("c", 0.9, 2, false);
        let flags = [
            ("rc.theta", "--theta"),
            ("seed", "--seed"),
            ("batch", "--batch"),
        ];
        let report = Report::gather(&root, &super::super::spec::tests::FakeTrain, &flags).unwrap();
        assert_eq!(report.settings, ["theta", "seed"]);
        assert_eq!(report.runs.len(), 2);
        assert_eq!(report.runs[1].run, "nested/b");
        assert_eq!(
            report.runs[1].settings,
            [("theta".into(), "0.95".into()), ("seed".into(), "1".into())]
        );
        assert_eq!(report.runs[0].train_steps_processed, 150);
        assert_eq!(report.runs[0].train_wall_s, 0.75);
        assert_eq!(report.runs[0].accuracy_at_last_step, Some(0.8));
        assert_eq!(report.unfinished.len(), 1);
        assert_eq!(report.unfinished[0].state, "pending");
        std::fs::write(root.join("a/test.json"), "{\"accuracy\": 1").unwrap();
        let report = Report::gather(&root, &super::super::spec::tests::FakeTrain, &flags).unwrap();
        assert_eq!(report.runs.len(), 1);
        assert!(
            report
                .unfinished
                .iter()
                .any(|u| u.state.contains("a/test.json: not valid JSON"))
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
