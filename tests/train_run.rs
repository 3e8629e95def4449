//! Training runs end to end on the GPU: checkpoints, resume, refusal to overwrite.

mod common;

use common::ctx;
use rankcode::checkpoint;
use rankcode::data::task::Split;
use rankcode::data::task::Task;
use rankcode::epoch;
use rankcode::model::{
    AdamConfig, LrSchedule, ModelConfig, RcConfig, Readout, ThetaWarmup, TrainMode,
};
use rankcode::run::directory;
use rankcode::run::inference::load_for_inference;
use rankcode::run::{EpochRecord, Quiet, RunConfig, RunObserver, StepBudget, train_run};
use std::ops::ControlFlow;
use std::path::PathBuf;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rankcode-run-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tiny_run() -> RunConfig {
    RunConfig {
        task: Task::SeqSpotting,
        model: ModelConfig {
            input_size: 1,
            hidden_size: 9,
            layers: 1,
            classes: 2,
            readout: Readout::Sigmoid,
        },
        rc: RcConfig {
            theta: 0.8,
            beta: 0.1,
            mode: TrainMode::Rc,
            loss_from_step: None,
        },
        adam: AdamConfig {
            lr: 1e-2,
            max_grad_norm: Some(0.5),
            ..AdamConfig::default()
        },
        lr_schedule: LrSchedule::Cosine,
        lr_cycles: None,
        theta_warmup: Some(ThetaWarmup {
            start: 0.3,
            epochs: 2,
        }),
        batch: 50,
        epochs: 3,
        seed: 5,
        readback_every: 2,
        data_dir: None,
        train_limit: Some(300),
        augment_shift: None,
        augment_drop: None,
        augment_rotate: None,
        augment_scale: None,
        augment_elastic: None,
        augment_sampling: None,
        select_within_budget: None,
        ensemble_of: None,
        frontend: Default::default(),
        speaker_split: None,
        augment_audio: None,
    }
}

/// The records with their wall times (which vary from run to run) zeroed.
fn without_wall_times(records: &[EpochRecord]) -> Vec<EpochRecord> {
    records
        .iter()
        .map(|e| EpochRecord {
            wall_s: 0.0,
            ..e.clone()
        })
        .collect()
}

/// Stops the run after `n` epochs, as a kill would.
struct StopAfter(usize);
impl RunObserver for StopAfter {
    fn on_epoch(&mut self, record: &EpochRecord) -> ControlFlow<()> {
        if record.epoch >= self.0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

#[test]
fn a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one() {
    let cfg = tiny_run();
    let straight = out_dir("straight");
    let full = train_run(ctx(), &cfg, &straight, false, &mut Quiet).unwrap();
    assert_eq!(full.epochs.len(), 3);
    let lrs: Vec<f64> = full.epochs.iter().map(|e| e.lr.unwrap()).collect();
    assert!(
        lrs[0] == cfg.adam.lr as f64 && lrs[2] < lrs[1] && lrs[1] < lrs[0],
        "cosine schedule: {lrs:?}"
    );
    let thetas: Vec<f32> = full.epochs.iter().map(|e| e.train_theta.unwrap()).collect();
    assert!(
        thetas[0] == 0.3 && (thetas[1] - 0.55).abs() < 1e-6 && thetas[2] == 0.8,
        "theta warm-up over two epochs: {thetas:?}"
    );
    let test = full
        .test
        .expect("a finished run evaluates the test split")
        .report;
    assert!(test.eos_accuracy.is_some() && test.sequences == 4096);

    // The warm-up's first epoch trains exactly as a run at its starting threshold.
    let at_start = out_dir("at-start");
    let start = train_run(
        ctx(),
        &RunConfig {
            rc: RcConfig {
                theta: 0.3,
                ..cfg.rc
            },
            theta_warmup: None,
            ..cfg.clone()
        },
        &at_start,
        false,
        &mut StopAfter(1),
    )
    .unwrap();
    let training = |e: &EpochRecord| (e.train_loss, e.train_accuracy, e.steps_processed);
    assert_eq!(training(&start.epochs[0]), training(&full.epochs[0]));
    assert_eq!(start.epochs[0].train_theta, None);
    // Same weights, but validation runs at the run's theta, not the training one.
    assert_ne!(
        start.epochs[0].val_mean_decision_step,
        full.epochs[0].val_mean_decision_step
    );

    let interrupted = out_dir("interrupted");
    let part = train_run(ctx(), &cfg, &interrupted, false, &mut StopAfter(2)).unwrap();
    assert_eq!(part.epochs.len(), 2);
    assert!(part.test.is_none());
    assert!(!interrupted.join(directory::TEST_FILE).exists());
    let resumed = train_run(ctx(), &cfg, &interrupted, true, &mut Quiet).unwrap();
    assert_eq!(resumed.epochs.len(), 3);

    let model = |dir: &PathBuf| std::fs::read(dir.join(directory::MODEL_FILE)).unwrap();
    assert!(
        model(&straight) == model(&interrupted),
        "same best weights, bit for bit"
    );
    let last = |dir: &PathBuf| checkpoint::load_checkpoint(dir, &cfg.model).unwrap();
    assert!(
        last(&straight) == last(&interrupted),
        "same last weights and optimizer state, bit for bit"
    );
    assert_eq!(
        without_wall_times(&full.epochs),
        without_wall_times(&resumed.epochs)
    );
    let lines = std::fs::read_to_string(interrupted.join(directory::METRICS_FILE)).unwrap();
    assert_eq!(lines.lines().count(), 3);
    assert!(interrupted.join(directory::TEST_FILE).exists());
    assert_eq!(RunConfig::load(&interrupted).unwrap(), cfg);

    // model.safetensors holds the epoch with the best validation accuracy (the first
    // of equals): the weights a run stopped after that epoch ends with (stopped, not
    // shortened, so that its learning-rate schedule is the same).
    let best = full.model_epoch.unwrap();
    let top = full
        .epochs
        .iter()
        .map(|e| e.val_accuracy)
        .fold(0.0, f64::max);
    let first_top = full.epochs.iter().find(|e| e.val_accuracy == top).unwrap();
    assert_eq!(best, first_top.epoch);
    let shorter = out_dir("best-epoch");
    train_run(ctx(), &cfg, &shorter, false, &mut StopAfter(best)).unwrap();
    let last_of_shorter = checkpoint::load_checkpoint(&shorter, &cfg.model).unwrap();
    assert!(
        checkpoint::load_model(&straight, &cfg.model).unwrap() == last_of_shorter.params,
        "model.safetensors is epoch {best}'s"
    );
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&interrupted);
    let _ = std::fs::remove_dir_all(&shorter);
    let _ = std::fs::remove_dir_all(&at_start);
}

#[test]
fn lr_cycles_restart_the_rate_and_keep_each_cycles_last_model_as_a_run() {
    let cfg = RunConfig {
        epochs: 4,
        lr_cycles: Some(2),
        select_within_budget: Some(StepBudget {
            max_decision_step: 8.0,
            theta_sweep: "0.3:0.95:14".into(),
        }),
        ..tiny_run()
    };
    let straight = out_dir("cycles");
    let full = train_run(ctx(), &cfg, &straight, false, &mut Quiet).unwrap();
    let lrs: Vec<f64> = full.epochs.iter().map(|e| e.lr.unwrap()).collect();
    assert!(
        lrs[0] == cfg.adam.lr as f64 && lrs[2] == lrs[0] && lrs[1] < lrs[0] && lrs[3] == lrs[1],
        "two cosine cycles of two epochs: {lrs:?}"
    );
    let snapshots = straight.join(directory::SNAPSHOTS_DIR);
    let mut kept: Vec<String> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, ["epoch-2", "epoch-4"]);

    // The last snapshot holds the run's last weights; each records its epoch's line.
    let last = checkpoint::load_checkpoint(&straight, &cfg.model).unwrap();
    let epoch4 = snapshots.join("epoch-4");
    assert!(checkpoint::load_model(&epoch4, &cfg.model).unwrap() == last.params);
    let line: EpochRecord = serde_json::from_str(
        &std::fs::read_to_string(snapshots.join("epoch-2").join(directory::SNAPSHOT_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(line, full.epochs[1]);

    // A snapshot is a run that loads for inference, by default at the threshold its
    // epoch chose within the step budget.
    let (_, _, theta) = load_for_inference(ctx(), &epoch4, None).unwrap();
    let chosen = full.epochs[3]
        .val_within_budget
        .map_or(cfg.rc.theta, |p| p.theta);
    assert_eq!(theta, chosen);
    let (_, mut engine, _) = load_for_inference(ctx(), &epoch4, Some(cfg.rc.theta)).unwrap();
    let val = cfg.open_data(None).unwrap().load(Split::Val).unwrap();
    let report = epoch::evaluate(&mut engine, &val, cfg.batch, false).unwrap();
    assert_eq!(report.accuracy, full.epochs[3].val_accuracy);

    // A run stopped in its second cycle and resumed keeps the same snapshots, bit for
    // bit, and replaces the part of one that a crash left.
    let interrupted = out_dir("cycles-resumed");
    train_run(ctx(), &cfg, &interrupted, false, &mut StopAfter(3)).unwrap();
    let kept = interrupted.join(directory::SNAPSHOTS_DIR);
    assert!(!kept.join("epoch-4").exists());
    std::fs::create_dir_all(kept.join("epoch-4")).unwrap();
    std::fs::write(kept.join("epoch-4").join(directory::CONFIG_FILE), "{").unwrap();
    // A snapshot cannot be trained: that would overwrite its model.
    let err = train_run(ctx(), &cfg, &kept.join("epoch-2"), true, &mut Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("snapshot") && err.contains("cannot be trained"),
        "{err}"
    );
    train_run(ctx(), &cfg, &interrupted, true, &mut Quiet).unwrap();
    for epoch in ["epoch-2", "epoch-4"] {
        let model = |run: &PathBuf| {
            std::fs::read(
                run.join(directory::SNAPSHOTS_DIR)
                    .join(epoch)
                    .join(directory::MODEL_FILE),
            )
            .unwrap()
        };
        assert!(model(&straight) == model(&interrupted), "{epoch}");
    }

    // A finished run takes another cycle of the same length, and ends with the weights
    // of a run started with three cycles.
    let three = RunConfig {
        epochs: 6,
        lr_cycles: Some(3),
        ..cfg.clone()
    };
    let extended = train_run(ctx(), &three, &straight, true, &mut Quiet).unwrap();
    let started_so = out_dir("three-cycles");
    let reference = train_run(ctx(), &three, &started_so, false, &mut Quiet).unwrap();
    assert_eq!(
        without_wall_times(&extended.epochs),
        without_wall_times(&reference.epochs)
    );
    assert!(
        checkpoint::load_checkpoint(&straight, &three.model)
            .unwrap()
            .params
            == checkpoint::load_checkpoint(&started_so, &three.model)
                .unwrap()
                .params
    );
    assert!(
        straight
            .join(directory::SNAPSHOTS_DIR)
            .join("epoch-6")
            .exists()
    );
    assert_eq!(RunConfig::load(&straight).unwrap(), three);
    let _ = std::fs::remove_dir_all(&straight);
    let _ = std::fs::remove_dir_all(&interrupted);
    let _ = std::fs::remove_dir_all(&started_so);
}

#[test]
fn a_step_budget_selects_the_epoch_and_threshold_most_accurate_within_it() {
    let budget = StepBudget {
        max_decision_step: 8.0,
        theta_sweep: "0.3:0.95:14".into(),
    };
    let cfg = RunConfig {
        select_within_budget: Some(budget.clone()),
        ensemble_of: None,
        ..tiny_run()
    };
    let dir = out_dir("budget");
    let run = train_run(ctx(), &cfg, &dir, false, &mut Quiet).unwrap();
    let thetas = budget.thetas().unwrap();
    let within: Vec<_> = run
        .epochs
        .iter()
        .map(|e| {
            e.val_within_budget
                .expect("some threshold decides within 8 steps")
        })
        .collect();
    for p in &within {
        assert!(
            p.mean_decision_step <= 8.0 && thetas.contains(&p.theta),
            "{p:?}"
        );
    }
    let top = within.iter().map(|p| p.accuracy).fold(0.0, f64::max);
    let chosen = run.epochs[within.iter().position(|p| p.accuracy == top).unwrap()].clone();
    assert_eq!(run.model_epoch, Some(chosen.epoch), "{:?}", run.epochs);
    let point = chosen.val_within_budget.unwrap();

    // The saved model is that epoch's: its sweep on validation has thresholds over the
    // budget, and the recorded point is the best of those within it; the rank-coded
    // pass at that threshold reproduces it, and the test split was evaluated there.
    let (_, mut engine, theta) = load_for_inference(ctx(), &dir, Some(point.theta)).unwrap();
    let data = cfg.open_data(None).unwrap();
    let val_data = data.load(Split::Val).unwrap();
    let sweep = epoch::theta_sweep(&mut engine, &val_data, cfg.batch, &thetas).unwrap();
    assert!(
        sweep.iter().any(|p| p.mean_decision_step > 8.0),
        "the budget binds: {sweep:?}"
    );
    assert_eq!(epoch::best_within(&sweep, 8.0), Some(point));
    let val = epoch::evaluate(&mut engine, &val_data, cfg.batch, false).unwrap();
    assert_eq!(
        (val.accuracy, val.mean_decision_step),
        (point.accuracy, point.mean_decision_step)
    );
    let test = run.test.unwrap();
    assert_eq!(
        (test.model_epoch, test.val_within_budget, test.report.theta),
        (Some(chosen.epoch), Some(point), theta)
    );
    let again = epoch::evaluate(
        &mut engine,
        &data.load(Split::Test).unwrap(),
        cfg.batch,
        true,
    )
    .unwrap();
    assert_eq!(
        (test.report.accuracy, test.report.mean_decision_step),
        (again.accuracy, again.mean_decision_step)
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(directory::TEST_FILE)).unwrap()).unwrap();
    assert_eq!(saved["theta"].as_f64().unwrap() as f32, point.theta);
    assert_eq!(saved["model_epoch"].as_u64(), Some(chosen.epoch as u64));
    assert_eq!(
        saved["max_decision_step"].as_f64(),
        Some(budget.max_decision_step)
    );
    // Inference defaults to the chosen threshold once the run has finished.
    let (_, _, default_theta) = load_for_inference(ctx(), &dir, None).unwrap();
    assert_eq!(default_theta, point.theta);
    assert_ne!(
        point.theta, cfg.rc.theta,
        "the fixture chooses another threshold"
    );
    assert_eq!(
        saved["val_within_budget"]["accuracy"].as_f64(),
        Some(point.accuracy)
    );

    // Resumed after epoch 1, the run selects and tests the same.
    let interrupted = out_dir("budget-resumed");
    train_run(ctx(), &cfg, &interrupted, false, &mut StopAfter(1)).unwrap();
    let resumed = train_run(ctx(), &cfg, &interrupted, true, &mut Quiet).unwrap();
    assert_eq!(
        without_wall_times(&resumed.epochs),
        without_wall_times(&run.epochs)
    );
    let resumed_test = resumed.test.unwrap();
    assert_eq!(
        (resumed_test.model_epoch, resumed_test.val_within_budget),
        (test.model_epoch, test.val_within_budget)
    );
    assert_eq!(resumed_test.report.accuracy, test.report.accuracy);
    let model = |d: &PathBuf| std::fs::read(d.join(directory::MODEL_FILE)).unwrap();
    assert!(model(&dir) == model(&interrupted));
    std::fs::write(dir.join(directory::TEST_FILE), "{ truncated").unwrap();
    let err = load_for_inference(ctx(), &dir, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("test.json") && err.contains("not valid JSON"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&interrupted);
}

#[test]
fn an_existing_run_is_never_overwritten() {
    let cfg = RunConfig {
        epochs: 1,
        ..tiny_run()
    };
    let dir = out_dir("existing");
    train_run(ctx(), &cfg, &dir, false, &mut Quiet).unwrap();
    let before = std::fs::read(dir.join(directory::MODEL_FILE)).unwrap();
    let err = train_run(ctx(), &cfg, &dir, false, &mut Quiet)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already holds a run") && err.contains(&*dir.to_string_lossy()),
        "{err}"
    );
    // Refused before any data is read: a run whose data folder is gone gets the same error.
    let mnist = Task::Mnist.shape(&Default::default());
    let unreadable = RunConfig {
        task: Task::Mnist,
        model: ModelConfig {
            input_size: mnist.input,
            classes: mnist.classes,
            ..cfg.model
        },
        data_dir: Some(PathBuf::from("/no/such/mnist")),
        ..cfg.clone()
    };
    let err = train_run(ctx(), &unreadable, &dir, false, &mut Quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already holds a run"), "{err}");
    let resume_error = |c: &RunConfig| {
        train_run(ctx(), c, &dir, true, &mut Quiet)
            .unwrap_err()
            .to_string()
    };
    let err = resume_error(&RunConfig {
        seed: 6,
        rc: RcConfig {
            theta: 0.5,
            ..cfg.rc
        },
        ..cfg.clone()
    });
    let named = format!(
        "other settings (rc.theta: {} in the run, 0.5 now; seed: {} in the run, 6 now)",
        cfg.rc.theta, cfg.seed
    );
    assert!(err.contains(&named), "{err}");
    let err = resume_error(&RunConfig {
        epochs: 2,
        ..cfg.clone()
    });
    assert!(
        err.contains("anneals") && err.contains("--epochs 1"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join(directory::MODEL_FILE)).unwrap(),
        before
    );
    // A moved data folder is no other setting: the run resumes (with nothing left to
    // train) and keeps the new folder.
    let moved = RunConfig {
        data_dir: Some(PathBuf::from("/moved/data")),
        ..cfg.clone()
    };
    let resumed = train_run(ctx(), &moved, &dir, true, &mut Quiet).unwrap();
    assert_eq!(resumed.trained_now, 0);
    assert_eq!(RunConfig::load(&dir).unwrap().data_dir, moved.data_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_output_directory_is_a_clear_error() {
    let file = out_dir("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = train_run(ctx(), &tiny_run(), &file.join("run"), false, &mut Quiet)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot create"), "{err}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn an_ensemble_is_refused_before_its_data_is_read() {
    // An MNIST ensemble whose data folder is gone: the refusal is the ensemble's, not
    // a missing file's.
    let cfg = RunConfig {
        task: Task::Mnist,
        data_dir: Some(PathBuf::from("/no/such/mnist")),
        ensemble_of: Some(vec![rankcode::run::EnsembleMember {
            run: PathBuf::from("/no/such/run"),
            hidden_size: 9,
        }]),
        ..tiny_run()
    };
    let dir = out_dir("ensemble");
    for resume in [false, true] {
        let err = train_run(ctx(), &cfg, &dir, resume, &mut Quiet)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be trained"), "{err}");
    }
    assert!(!dir.exists());
}
