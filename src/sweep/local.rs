//! The local executor: a sweep's points run on this machine, a few at a time.

use super::{Attempt, Point, Sweep, run_point};
use crate::error::Result;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What the local executor reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    Started(&'a Point),
    Finished(&'a Point, &'a Result<Attempt>),
}

/// Runs `todo` (points of `sweep`) with `jobs` attempts at a time, each one
/// [`run_point`], calling `on_event` as each starts and ends; returns each point's
/// outcome, in the order of `todo`.
pub fn run_local(
    sweep: &Sweep,
    todo: &[Point],
    jobs: usize,
    exe: &Path,
    on_event: &(dyn Fn(Event) + Sync),
) -> Vec<Result<Attempt>> {
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Result<Attempt>>>> =
        Mutex::new((0..todo.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, todo.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(point) = todo.get(i) else { break };
                    on_event(Event::Started(point));
                    let outcome = run_point(sweep, point, exe, Duration::ZERO);
                    on_event(Event::Finished(point, &outcome));
                    outcomes.lock().expect("no thread panicked")[i] = Some(outcome);
                }
            });
        }
    });
    outcomes
        .into_inner()
        .expect("no thread panicked")
        .into_iter()
        .map(|o| o.expect("every point ran"))
        .collect()
}
