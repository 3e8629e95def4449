//! Sweeps: a grid of `rankcode train` runs from a small TOML spec ([`spec`]), one run
//! directory per grid point in a sweep folder, run here a few at a time
//! ([`local`]) or as a Slurm job array ([`slurm`]); and reports over any folder of
//! runs ([`report`]).
//!
//! A sweep folder holds the spec it was made from (`sweep.toml`) and one run directory
//! per grid point. Each point's state is read from its files, with no daemon: done
//! when `test.json` exists, running while a process holds its lock file, failed when
//! its last attempt left a non-zero `exit-status`, pending otherwise (a stopped point
//! with a checkpoint resumes where it stopped).

pub mod local;
pub mod point;
pub mod report;
pub mod slurm;
pub mod spec;

use crate::error::{Error, Result};
pub use point::{Attempt, PointState, run_point};
pub use spec::{FlagCheck, FlagValue, Point, Spec};
use std::path::{Path, PathBuf};

/// The spec a sweep folder was made from.
pub const SPEC_FILE: &str = "sweep.toml";

/// A sweep folder and the spec it was made from.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub dir: PathBuf,
    pub spec: Spec,
    pub points: Vec<Point>,
}

impl Sweep {
    /// The sweep of the spec in `spec_path` in folder `dir`: a new folder (created,
    /// with the spec saved in it), an empty one, or one made from the same spec.
    /// Refuses a folder made from another spec, and a folder that holds files but no
    /// spec.
    pub fn create(dir: &Path, spec_path: &Path, flags: &dyn FlagCheck) -> Result<Sweep> {
        let spec = Spec::load(spec_path, flags)?;
        let saved_path = dir.join(SPEC_FILE);
        if saved_path.exists() {
            let saved = Spec::load_saved(&saved_path, flags)?;
            if let Some(how) = spec.difference(&saved) {
                return Err(Error::file(
                    dir,
                    format!(
                        "is a sweep folder made from another spec ({how}: {} against {}); \
                         choose another --out for this spec",
                        spec_path.display(),
                        saved_path.display()
                    ),
                ));
            }
        } else {
            let holds_files = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
            if holds_files {
                return Err(Error::file(
                    dir,
                    format!(
                        "holds files but no {SPEC_FILE}, so it is no sweep folder; choose a \
                         new or empty --out"
                    ),
                ));
            }
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::file(dir, format!("cannot create the sweep folder: {e}")))?;
            let text = std::fs::read(spec_path)
                .map_err(|e| Error::file(spec_path, format!("cannot read: {e}")))?;
            crate::files::write_atomic(&saved_path, &text)?;
        }
        Sweep::open(dir, flags)
    }

    /// The sweep in folder `dir`, from the spec saved there.
    pub fn open(dir: &Path, flags: &dyn FlagCheck) -> Result<Sweep> {
        let spec_path = dir.join(SPEC_FILE);
        if !spec_path.exists() {
            return Err(Error::file(
                dir,
                format!(
                    "is no sweep folder (no {SPEC_FILE}); `rankcode sweep SPEC --out DIR` makes one"
                ),
            ));
        }
        let spec = Spec::load_saved(&spec_path, flags)?;
        let points = spec.points()?;
        Ok(Sweep {
            dir: dir.into(),
            spec,
            points,
        })
    }

    /// Whether `dir` is a sweep folder.
    pub fn is_sweep(dir: &Path) -> bool {
        dir.join(SPEC_FILE).is_file()
    }

    /// The run directory of `point`.
    pub fn point_dir(&self, point: &Point) -> PathBuf {
        self.dir.join(&point.name)
    }

    /// The state of every point, in order.
    pub fn states(&self) -> Vec<PointState> {
        self.points
            .iter()
            .map(|p| PointState::of(&self.point_dir(p)))
            .collect()
    }
}
