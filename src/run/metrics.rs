//! `metrics.jsonl`: one [`EpochRecord`] a line, written after every epoch, read back
//! when a run resumes, and checked against the checkpoint then (docs/runs.md,
//! 'Resuming').

use super::directory::{CHECKPOINT_FILE, METRICS_FILE, MODEL_FILE};
use crate::epoch::SweepPoint;
use crate::error::{Error, Result};
use crate::words::count;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val_accuracy: f64,
    pub val_mean_decision_step: f64,
    /// The learning rate of this epoch (see `--lr-schedule`); absent from the lines
    /// of runs made before rates were recorded (they ran at a constant `--lr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// The threshold this epoch trained with, where a theta warm-up set it (validation
    /// always uses the run's theta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_theta: Option<f32>,
    /// With a step budget (`--select-max-decision-step`): the most accurate threshold
    /// of the validation sweep that decides within the budget (absent when none does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_within_budget: Option<SweepPoint>,
    /// Training steps computed this epoch (sum of t* + 1 over sequences).
    pub steps_processed: usize,
    /// Training wall time of this epoch (validation excluded).
    pub wall_s: f64,
}

/// The whole records of `metrics.jsonl`, and the number of its last line when that
/// line was cut short (its JSON ends before it is whole: a write that a crash
/// stopped). Any other line that does not read is an error.
pub(super) fn read_metrics_lines(path: &Path) -> Result<(Vec<EpochRecord>, Option<usize>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(Error::file_caused(path, "cannot read", e)),
    };
    parse_metrics_lines(path, &text)
}

/// [`read_metrics_lines`] of the text of a `metrics.jsonl`; `path` names it in errors.
/// Public for the fuzz targets only.
#[doc(hidden)]
pub fn parse_metrics_lines(path: &Path, text: &str) -> Result<(Vec<EpochRecord>, Option<usize>)> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut records = Vec::with_capacity(lines.len());
    for (k, &(i, line)) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(e) if e.is_eof() && k + 1 == lines.len() => return Ok((records, Some(i + 1))),
            Err(e) => return Err(Error::file_caused(path, format!("line {}", i + 1), e)),
        }
    }
    Ok((records, None))
}

/// The records of `metrics.jsonl` in the run directory `out` that a run resumed after
/// the epoch of its checkpoint (`None`: it has none) keeps: those up to that epoch. A
/// last line cut short holds the record of the epoch after the last whole one: past
/// the checkpoint's epoch, it is dropped (with a warning) like every record there, as
/// the resumed run trains that epoch again; up to it, it is an error. The metrics and
/// the checkpoint must agree ([`check_metrics_agree`]).
pub(super) fn read_metrics(out: &Path, checkpoint: Option<usize>) -> Result<Vec<EpochRecord>> {
    let path = out.join(METRICS_FILE);
    let up_to_epoch = checkpoint.unwrap_or(0);
    let (records, cut) = read_metrics_lines(&path)?;
    if let Some(line) = cut {
        let epoch = records.last().map_or(1, |r| r.epoch + 1);
        if epoch <= up_to_epoch {
            return Err(Error::file(
                path,
                format!(
                    "line {line} is cut short; it holds the record of epoch {epoch}, which the \
                     checkpoint has trained"
                ),
            ));
        }
        log::warn!(
            "{}: line {line} was cut short; it lies past epoch {up_to_epoch}, which the run \
             resumes after, and is dropped",
            path.display()
        );
    }
    check_metrics_agree(out, &records, checkpoint)?;
    Ok(records
        .into_iter()
        .filter(|r| r.epoch <= up_to_epoch)
        .collect())
}

/// Checks that the whole `records` of `metrics.jsonl` in `out` are those of epochs 1,
/// 2, ... and agree with the epoch of its checkpoint (`None`: there is none). Each
/// epoch's record is written before its checkpoint, so the metrics hold the
/// checkpoint's epoch, or one more when a crash came between the two writes (that
/// record is then dropped, with a warning, and its epoch trained again). Fewer records,
/// more, a checkpoint of epoch 0 (one is written only after an epoch), or trained
/// epochs without a checkpoint mean that a file was replaced, deleted or edited:
/// refused, naming both. Public (hidden) for the fuzz targets only.
#[doc(hidden)]
pub fn check_metrics_agree(
    out: &Path,
    records: &[EpochRecord],
    checkpoint: Option<usize>,
) -> Result<()> {
    let metrics = out.join(METRICS_FILE);
    let refuse = |problem: String| Error::file(&metrics, problem);
    if let Some((i, r)) = records.iter().enumerate().find(|(i, r)| r.epoch != i + 1) {
        return Err(refuse(format!(
            "record {} is of epoch {}, where epoch {}'s belongs: its records are not those \
             of epochs 1, 2, ... in order",
            i + 1,
            r.epoch,
            i + 1
        )));
    }
    let recorded = records.len();
    let ck = CHECKPOINT_FILE;
    match checkpoint {
        None if recorded > 1 => Err(refuse(format!(
            "records {} but {ck} is missing; restore it, or start the run anew in another --out",
            count(recorded, "epoch")
        ))),
        None if recorded == 0 && out.join(MODEL_FILE).exists() => Err(Error::file(
            out.join(MODEL_FILE),
            format!(
                "holds trained weights, but {ck} is missing and metrics.jsonl records no \
                     epoch; restore them, or start the run anew in another --out"
            ),
        )),
        Some(0) => Err(Error::file(
            out.join(ck),
            format!(
                "says it was written after epoch 0, but a checkpoint is written only after an \
                 epoch (metrics.jsonl records {}): it was edited",
                count(recorded, "epoch")
            ),
        )),
        Some(epoch) if recorded < epoch => Err(refuse(format!(
            "records {} but {ck} was written after epoch {epoch}: the metrics are older than \
             the checkpoint",
            count(recorded, "epoch")
        ))),
        Some(epoch) if recorded > epoch + 1 => Err(refuse(format!(
            "records {} but {ck} was written after epoch {epoch}: the checkpoint is older than \
             the metrics",
            count(recorded, "epoch")
        ))),
        _ if recorded > checkpoint.unwrap_or(0) => {
            let after = match checkpoint {
                Some(epoch) => format!("{ck} was written after epoch {epoch}"),
                None => format!("there is no {ck}"),
            };
            log::warn!(
                "{}: holds the record of epoch {recorded}, but {after}: a crash came between \
                 the two writes (or the checkpoint was replaced); the record is dropped and \
                 epoch {recorded} trained again",
                metrics.display()
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

pub(super) fn write_metrics(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let text: String = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("record serialises") + "\n")
        .collect();
    crate::files::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn metrics_lines_without_a_learning_rate_read_and_write_back_unchanged() {
        let dir = std::env::temp_dir().join(format!("rankcode-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(METRICS_FILE);
        let old = r#"{"epoch":1,"train_loss":0.5,"train_accuracy":0.75,"val_accuracy":0.7,"val_mean_decision_step":3.5,"steps_processed":100,"wall_s":1.5}"#;
        std::fs::write(&path, format!("{old}\n")).unwrap();
        let records = read_metrics(&dir, Some(1)).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].lr, None);
        write_metrics(&path, &records).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{old}\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cut_last_metrics_line_is_dropped_when_past_the_checkpoint() {
        let dir = crate::files::test_dir("metrics-cut");
        let path = dir.join(METRICS_FILE);
        let line = |epoch: usize| {
            format!(
                r#"{{"epoch":{epoch},"train_loss":0.5,"train_accuracy":0.75,"val_accuracy":0.7,"val_mean_decision_step":3.5,"steps_processed":100,"wall_s":1.5}}"#
            )
        };
        let whole = format!("{}\n{}\n", line(1), line(2));
        let cut = &line(3)[..40];
        std::fs::write(&path, format!("{whole}{cut}")).unwrap();
        // Resumed after epoch 2 (or 1), the run trains epoch 3 again.
        let epochs = |up_to| -> Vec<usize> {
            let records = read_metrics(&dir, Some(up_to)).unwrap();
            records.iter().map(|r| r.epoch).collect()
        };
        assert_eq!(epochs(2), [1, 2]);
        assert_eq!(epochs(1), [1]);
        let (records, cut_line) = read_metrics_lines(&path).unwrap();
        assert_eq!((records.len(), cut_line), (2, Some(3)));
        // Resumed after epoch 3, the record of an epoch it keeps is lost.
        let err = read_metrics(&dir, Some(3)).unwrap_err().to_string();
        assert!(
            err.contains("metrics.jsonl: line 3 is cut short") && err.contains("epoch 3"),
            "{err}"
        );
        // A line cut short that is not the last, or a last line that is whole but
        // not a record, is no crash's doing.
        for text in [
            format!("{}\n{cut}\n{}\n", line(1), line(2)),
            format!("{whole}[3]\n"),
        ] {
            std::fs::write(&path, text).unwrap();
            assert!(read_metrics(&dir, Some(1)).is_err());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn metrics_and_checkpoint_must_agree_on_the_epochs_trained() {
        let dir = crate::files::test_dir("metrics-agree");
        let records =
            |n: usize| -> Vec<EpochRecord> { (1..=n).map(|e| record(e, 0.5, None)).collect() };
        let check = |n: usize, ck: Option<usize>| {
            check_metrics_agree(&dir, &records(n), ck).map_err(|e| e.to_string())
        };
        // The checkpoint's epoch, or one more record: a crash between the two writes.
        for (n, ck) in [(0, None), (1, None), (2, Some(2)), (3, Some(2))] {
            assert!(check(n, ck).is_ok(), "{n} records, checkpoint {ck:?}");
        }
        let refused = |n: usize, ck: Option<usize>, needle: &str| {
            let err = check(n, ck).unwrap_err();
            assert!(
                err.contains(needle),
                "{n} records, checkpoint {ck:?}: {err}"
            );
        };
        refused(
            3,
            None,
            "metrics.jsonl: records 3 epochs but checkpoint.safetensors is missing",
        );
        refused(
            1,
            Some(0),
            "checkpoint.safetensors: says it was written after epoch 0",
        );
        refused(
            4,
            Some(2),
            "metrics.jsonl: records 4 epochs but checkpoint.safetensors was written after \
             epoch 2: the checkpoint is older than the metrics",
        );
        refused(
            1,
            Some(2),
            "metrics.jsonl: records 1 epoch but checkpoint.safetensors was written after \
             epoch 2: the metrics are older",
        );
        let mut skipped = records(3);
        skipped.remove(1);
        let err = check_metrics_agree(&dir, &skipped, Some(3))
            .unwrap_err()
            .to_string();
        assert!(err.contains("record 2 is of epoch 3"), "{err}");
        // Trained weights without a checkpoint or a record.
        std::fs::write(dir.join(MODEL_FILE), b"weights").unwrap();
        refused(0, None, "model.safetensors: holds trained weights");
        let _ = std::fs::remove_dir_all(&dir);
    }

    pub(in crate::run) fn record(
        epoch: usize,
        val_accuracy: f64,
        within: Option<f64>,
    ) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.0,
            train_accuracy: 0.0,
            val_accuracy,
            val_mean_decision_step: 2.0,
            lr: None,
            train_theta: None,
            val_within_budget: within.map(|accuracy| SweepPoint {
                theta: 0.5,
                accuracy,
                mean_decision_step: 1.5,
                not_fired: 0.0,
            }),
            steps_processed: 0,
            wall_s: 0.0,
        }
    }
}

/// The deterministic fuzz smoke test (the short, seeded version of `fuzz/`'s
/// `metrics` target that runs with the test suite).
#[cfg(test)]
mod fuzz_smoke {
    use super::*;
    use crate::mutate::no_panics;
    use crate::run::selection::best_epoch;

    /// Seeds: a byte for the checkpoint's epoch (255: none), then a `metrics.jsonl`
    /// (`fuzz/seeds/metrics`).
    const SEEDS: [&[u8]; 4] = [
        include_bytes!("../../fuzz/seeds/metrics/one-epoch"),
        include_bytes!("../../fuzz/seeds/metrics/crash-between-writes"),
        include_bytes!("../../fuzz/seeds/metrics/cut-last-line"),
        include_bytes!("../../fuzz/seeds/metrics/no-checkpoint"),
    ];

    #[test]
    fn mutated_metrics_are_read_or_refused_without_panicking() {
        let out = Path::new("/nonexistent/run");
        let path = out.join(METRICS_FILE);
        let ok = no_panics("metrics.jsonl", &SEEDS, 28, 5000, |b| {
            let Some((&first, rest)) = b.split_first() else {
                return false;
            };
            let Ok(text) = std::str::from_utf8(rest) else {
                return false;
            };
            let checkpoint = (first != 255).then_some(usize::from(first));
            let Ok((records, _)) = parse_metrics_lines(&path, text) else {
                return false;
            };
            let _ = best_epoch(&records);
            check_metrics_agree(out, &records, checkpoint).is_ok()
        });
        assert!(ok > 50, "{ok} inputs read");
    }
}
