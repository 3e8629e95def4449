//! GPU time per dispatch, from timestamp queries: one timestamp where a compute pass
//! begins and one after each dispatch, so that a dispatch's time is the difference
//! from the timestamp before it. Times are summed per (what, kernel) pair, where
//! "what" is the caller's name for the dispatch (the same kernel serves several
//! purposes: `step_gemm` computes the forward gates and the backward dh).

use super::GpuContext;
use crate::error::{Error, Result};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The device features the profiler needs; `GpuContext` requests them where the
/// adapter has them.
pub const FEATURES: wgpu::Features =
    wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES);

/// Timestamps held between two `collect` calls: 512 KiB of results.
const CAPACITY: u32 = 1 << 16;

/// Queries per `QUERY_RESOLVE_BUFFER_ALIGNMENT`: each pass's timestamps are resolved
/// to a multiple of it.
const RESOLVE_ALIGN: u32 = (wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT / wgpu::QUERY_SIZE as u64) as u32;

const _: () = assert!(CAPACITY.is_multiple_of(RESOLVE_ALIGN));

/// The GPU time of one kind of dispatch, summed over its calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchTime {
    /// What the dispatch computes, as its caller names it.
    pub what: &'static str,
    /// The kernel's entry point.
    pub kernel: &'static str,
    pub calls: u64,
    pub seconds: f64,
}

/// GPU time per kind of dispatch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KernelProfile {
    /// Longest total first.
    pub dispatches: Vec<DispatchTime>,
    /// Dispatches recorded without a time: past the profiler's capacity between two
    /// collections, past the 4096 queries of one pass, or timed as ending before they
    /// began.
    pub untimed: u64,
}

/// A profile with the wall time of the work it covers: the shape `--profile` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfiledWork {
    pub wall_s: f64,
    /// Seconds of all timed dispatches.
    pub gpu_s: f64,
    #[serde(flatten)]
    pub profile: KernelProfile,
}

impl ProfiledWork {
    pub fn new(profile: KernelProfile, wall_s: f64) -> Self {
        ProfiledWork {
            wall_s,
            gpu_s: profile.total_seconds(),
            profile,
        }
    }

    /// [`KernelProfile::table`] against the wall time.
    pub fn table(&self) -> String {
        self.profile.table(self.wall_s)
    }
}

impl KernelProfile {
    /// Seconds of all timed dispatches.
    pub fn total_seconds(&self) -> f64 {
        self.dispatches.iter().map(|d| d.seconds).sum()
    }

    /// A table of the dispatches, longest first, with their share of the GPU time; the
    /// first line compares that time with `wall_s`, the wall time of the work profiled.
    pub fn table(&self, wall_s: f64) -> String {
        let gpu = self.total_seconds();
        let mut out = format!(
            "GPU time {gpu:.3} s of {wall_s:.3} s wall ({:.0}%){}\n",
            100.0 * gpu / wall_s.max(1e-12),
            match self.untimed {
                0 => String::new(),
                n => format!("; {n} dispatches untimed"),
            }
        );
        let width = |f: fn(&DispatchTime) -> usize| self.dispatches.iter().map(f).max();
        let what = width(|d| d.what.len()).unwrap_or(0).max(4);
        let kernel = width(|d| d.kernel.len()).unwrap_or(0).max(6);
        out += &format!(
            "  {:what$}  {:kernel$}  {:>8}  {:>10}  {:>6}  {:>9}\n",
            "what", "kernel", "calls", "total ms", "share", "us/call"
        );
        for d in &self.dispatches {
            out += &format!(
                "  {:what$}  {:kernel$}  {:>8}  {:>10.1}  {:>5.1}%  {:>9.1}\n",
                d.what,
                d.kernel,
                d.calls,
                d.seconds * 1e3,
                100.0 * d.seconds / gpu.max(1e-12),
                d.seconds * 1e6 / d.calls.max(1) as f64
            );
        }
        out
    }
}

#[derive(Default)]
struct Recording {
    /// Timestamps written in the open pass: query-set indices 0..in_pass.
    in_pass: u32,
    /// Results slots in use: where the open pass's timestamps will be resolved to.
    used: u32,
    /// (what, kernel, results slot of the timestamp after the dispatch) of every timed
    /// dispatch since the last collection; the timestamp before it is the slot before.
    pending: Vec<(&'static str, &'static str, u32)>,
    totals: BTreeMap<(&'static str, &'static str), (u64, f64)>,
    untimed: u64,
}

/// Records timestamps around the dispatches of compute passes and sums them per kind.
/// Use: [`begin_pass`](Self::begin_pass) right after beginning a pass,
/// [`after_dispatch`](Self::after_dispatch) after each dispatch,
/// [`end_pass`](Self::end_pass) on the encoder once the pass has ended, and
/// [`collect`](Self::collect) after submitting, before the results slots run out.
pub struct KernelProfiler {
    query_set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
    recording: RefCell<Recording>,
}

impl KernelProfiler {
    /// Fails if the device was created without [`FEATURES`].
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        let missing = FEATURES - ctx.device.features();
        if !missing.is_empty() {
            return Err(Error::AdapterLimit {
                adapter: ctx.info.name.clone(),
                problem: format!("timing kernels needs the features {missing:?}"),
            });
        }
        let query_set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("kernel profile"),
            ty: wgpu::QueryType::Timestamp,
            count: wgpu::QUERY_SET_MAX_QUERIES,
        });
        let bytes = CAPACITY as u64 * wgpu::QUERY_SIZE as u64;
        let buffer = |label, usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        Ok(KernelProfiler {
            query_set,
            resolved: buffer(
                "kernel profile results",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            staging: buffer(
                "kernel profile readback",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            period_ns: ctx.queue.get_timestamp_period() as f64,
            recording: RefCell::default(),
        })
    }

    /// Writes a timestamp if there is room for it; returns its results slot.
    fn stamp(&self, pass: &mut wgpu::ComputePass) -> Option<u32> {
        let mut r = self.recording.borrow_mut();
        if r.in_pass >= wgpu::QUERY_SET_MAX_QUERIES || r.used + r.in_pass >= CAPACITY {
            return None;
        }
        pass.write_timestamp(&self.query_set, r.in_pass);
        r.in_pass += 1;
        Some(r.used + r.in_pass - 1)
    }

    /// Writes the timestamp the pass's first dispatch is timed from.
    pub fn begin_pass(&self, pass: &mut wgpu::ComputePass) {
        let r = self.recording.borrow();
        assert_eq!(r.in_pass, 0, "a profiled pass began before end_pass");
        drop(r);
        self.stamp(pass);
    }

    /// Times the dispatch just recorded in `pass`.
    pub fn after_dispatch(
        &self,
        pass: &mut wgpu::ComputePass,
        what: &'static str,
        kernel: &'static str,
    ) {
        let slot = self.stamp(pass);
        let mut r = self.recording.borrow_mut();
        match slot {
            // The timestamp before this one is in the same pass.
            Some(slot) if slot > r.used => r.pending.push((what, kernel, slot)),
            _ => r.untimed += 1,
        }
    }

    /// Resolves the timestamps of the pass that just ended into the results.
    pub fn end_pass(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut r = self.recording.borrow_mut();
        if r.in_pass == 0 {
            return;
        }
        let offset = r.used as u64 * wgpu::QUERY_SIZE as u64;
        encoder.resolve_query_set(&self.query_set, 0..r.in_pass, &self.resolved, offset);
        r.used = (r.used + r.in_pass).next_multiple_of(RESOLVE_ALIGN);
        r.in_pass = 0;
    }

    /// Whether half the results slots are in use: time to `collect` where a wait costs
    /// little (after a readback), before dispatches go untimed.
    pub fn half_full(&self) -> bool {
        self.recording.borrow().used >= CAPACITY / 2
    }

    /// Reads the results back (waiting for submitted work) and adds them to the totals.
    /// Every profiled pass must have ended and been submitted.
    pub fn collect(&self, ctx: &GpuContext) -> Result<()> {
        let used = {
            let r = self.recording.borrow();
            assert_eq!(r.in_pass, 0, "collect with a profiled pass open");
            r.used
        };
        if used == 0 {
            return Ok(());
        }
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let bytes = used as u64 * wgpu::QUERY_SIZE as u64;
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, bytes);
        ctx.queue.submit([encoder.finish()]);
        let ticks: Vec<u64> = ctx.read_staging(&self.staging, used as usize)?;
        let mut r = self.recording.borrow_mut();
        let pending = std::mem::take(&mut r.pending);
        for (what, kernel, slot) in pending {
            let slot = slot as usize;
            let Some(elapsed) = ticks[slot].checked_sub(ticks[slot - 1]) else {
                r.untimed += 1;
                continue;
            };
            let total = r.totals.entry((what, kernel)).or_default();
            total.0 += 1;
            total.1 += elapsed as f64 * self.period_ns * 1e-9;
        }
        r.used = 0;
        Ok(())
    }

    /// The totals collected so far; starts afresh.
    pub fn take(&self) -> KernelProfile {
        let mut r = self.recording.borrow_mut();
        let mut dispatches: Vec<DispatchTime> = std::mem::take(&mut r.totals)
            .into_iter()
            .map(|((what, kernel), (calls, seconds))| DispatchTime {
                what,
                kernel,
                calls,
                seconds,
            })
            .collect();
        dispatches.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        KernelProfile {
            dispatches,
            untimed: std::mem::take(&mut r.untimed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_each_dispatch_its_share_of_the_gpu_time() {
        let time = |what, kernel, calls, seconds| DispatchTime {
            what,
            kernel,
            calls,
            seconds,
        };
        let profile = KernelProfile {
            dispatches: vec![
                time("gates GEMM", "step_gemm", 4, 0.3),
                time("Adam", "adam_step", 1, 0.1),
            ],
            untimed: 2,
        };
        assert!((profile.total_seconds() - 0.4).abs() < 1e-12);
        let table = profile.table(0.5);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "GPU time 0.400 s of 0.500 s wall (80%); 2 dispatches untimed"
        );
        let cells = |line: &str| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cells(lines[1]),
            ["what", "kernel", "calls", "total", "ms", "share", "us/call"]
        );
        assert_eq!(
            cells(lines[2]),
            [
                "gates",
                "GEMM",
                "step_gemm",
                "4",
                "300.0",
                "75.0%",
                "75000.0"
            ]
        );
        assert_eq!(
            cells(lines[3]),
            ["Adam", "adam_step", "1", "100.0", "25.0%", "100000.0"]
        );
        assert_eq!(lines.len(), 4);
    }
}
