//! The GPU context, built once: adapter, device, queue, and blocking readback.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// Storage buffers the widest kernels of the staged form (`cell_backward`,
/// `loss_stats`, `sparse_gates`) bind in one shader stage, their parameter and step
/// structs included (their tables in `gpu::bindings`).
pub const STORAGE_BUFFERS_NEEDED: u32 = 9;

/// Storage buffers the direct form's step GEMMs with the cell in their epilogue
/// (`step_cell_forward`) bind in one stage: the direct form is used where the
/// adapter has that many (CPU adapters have far more).
pub const STORAGE_BUFFERS_DIRECT: u32 = 12;

/// An adapter's device and queue, with what we know about them.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The limits the device was created with.
    pub limits: wgpu::Limits,
    /// The GEMMs read their operands straight from the buffers (`*_gemm_direct` in
    /// `matmul/direct.wgsl`) instead of staging them in workgroup memory, and the step
    /// GEMMs run the cell in their epilogue (`matmul/step_cell.wgsl`): true on CPU
    /// adapters such as lavapipe, where that is about 1.5 times as fast
    /// (`docs/performance.md`), that bind [`STORAGE_BUFFERS_DIRECT`] buffers a stage.
    /// The results are bitwise the same; set it before building engines to choose (an
    /// engine refuses the direct form on a device with fewer storage buffers a stage).
    pub direct_gemm: bool,
    /// The first error the device reported outside an error scope, if any.
    device_error: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Picks an adapter (honouring `WGPU_BACKEND` and `WGPU_ADAPTER_NAME`, preferring a
    /// high-performance one), logs it, and creates the device with the limits we need.
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    async fn new_async() -> Result<Self> {
        // Vulkan, Metal and DX12 (not GL), unless WGPU_BACKEND says otherwise.
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        // wgpu checks the workgroup counts of every indirect dispatch with a dispatch
        // of its own, which costs as much as the dispatch on lavapipe (about 60 us).
        // Ours come from `plan_next_step`, from the same rules as the host's direct
        // dispatches: at most one workgroup row a row of a batch, which the engine caps
        // at `schedule::MAX_ROWS` (65,535, WebGPU's least limit). So the check is off,
        // unless WGPU_VALIDATION_INDIRECT_CALL=1 asks for it.
        desc.flags
            .remove(wgpu::InstanceFlags::VALIDATION_INDIRECT_CALL);
        let instance = wgpu::Instance::new(desc.with_env());
        let adapter = pick_adapter(&instance).await?;
        let info = adapter.get_info();
        let limits = needed_limits(&adapter.limits());
        let mut missing = Vec::new();
        limits.check_limits_with_fail_fn(&adapter.limits(), false, |name, want, have| {
            missing.push(format!("{name}: need {want}, adapter has {have}"))
        });
        if !missing.is_empty() {
            return Err(Error::AdapterLimit {
                adapter: info.name.clone(),
                problem: missing.join("; "),
            });
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("rankcode"),
                // Timestamp queries, where the adapter has them, for `--profile`.
                required_features: adapter.features() & super::profile::FEATURES,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Device(format!("{}: {e}", info.name)))?;
        let device_error = Arc::new(Mutex::new(None));
        let sink = device_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("GPU error: {e}");
            sink.lock().unwrap().get_or_insert_with(|| e.to_string());
        }));
        log::info!(
            "adapter: {} ({:?}, {:?}, driver {} {})",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info
        );
        Ok(GpuContext {
            device,
            queue,
            direct_gemm: info.device_type == wgpu::DeviceType::Cpu
                && limits.max_storage_buffers_per_shader_stage >= STORAGE_BUFFERS_DIRECT,
            info,
            limits,
            device_error,
        })
    }

    /// "name (backend, type)": the line every run, test and benchmark reports.
    pub fn adapter_summary(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// True for a CPU (software) adapter such as lavapipe.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Fails with the first error the device reported, if any.
    pub fn check_device(&self) -> Result<()> {
        match self.device_error.lock().unwrap().take() {
            Some(e) => Err(Error::Device(e)),
            None => Ok(()),
        }
    }

    /// Waits for all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(format!("waiting for the GPU: {e}")))?;
        self.check_device()
    }

    /// Waits for all submitted work, maps `staging` (a MAP_READ buffer) and copies its
    /// first `count` elements out.
    pub fn read_staging<T: bytemuck::Pod>(
        &self,
        staging: &wgpu::Buffer,
        count: usize,
    ) -> Result<Vec<T>> {
        self.start_read(staging, count, None).finish(self)
    }

    /// Asks for the first `count` elements of `staging` (a MAP_READ buffer) once
    /// `submission` (None: everything submitted so far) has completed, without
    /// waiting: work submitted meanwhile runs on. [`PendingRead::finish`] waits and
    /// copies them out.
    pub fn start_read<'a, T: bytemuck::Pod>(
        &self,
        staging: &'a wgpu::Buffer,
        count: usize,
        submission: Option<wgpu::SubmissionIndex>,
    ) -> PendingRead<'a, T> {
        let bytes = (count * std::mem::size_of::<T>()) as u64;
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        if bytes > 0 {
            staging
                .slice(..bytes)
                .map_async(wgpu::MapMode::Read, move |r| {
                    let _ = sender.send(r);
                });
        }
        PendingRead {
            staging,
            bytes,
            submission,
            receiver,
            element: std::marker::PhantomData,
        }
    }
}

/// A readback under way: see [`GpuContext::start_read`].
pub struct PendingRead<'a, T> {
    staging: &'a wgpu::Buffer,
    bytes: u64,
    submission: Option<wgpu::SubmissionIndex>,
    receiver: futures_intrusive::channel::shared::OneshotReceiver<
        std::result::Result<(), wgpu::BufferAsyncError>,
    >,
    element: std::marker::PhantomData<T>,
}

impl<T: bytemuck::Pod> PendingRead<'_, T> {
    /// Waits for the submission, then copies the elements out and unmaps the buffer.
    pub fn finish(self, ctx: &GpuContext) -> Result<Vec<T>> {
        if self.bytes == 0 {
            return Ok(Vec::new());
        }
        ctx.device
            .poll(wgpu::PollType::Wait {
                submission_index: self.submission,
                timeout: None,
            })
            .map_err(|e| Error::Device(format!("waiting for the GPU: {e}")))?;
        let mapped = pollster::block_on(self.receiver.receive())
            .ok_or_else(|| Error::Device("buffer mapping was cancelled".into()))?;
        mapped.map_err(|e| Error::Device(format!("mapping a readback buffer: {e}")))?;
        let slice = self.staging.slice(..self.bytes);
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Device(format!("reading a mapped buffer: {e}")))?;
            bytemuck::cast_slice::<u8, T>(&view).to_vec()
        };
        self.staging.unmap();
        ctx.check_device()?;
        Ok(out)
    }
}

/// The default limits raised where our buffers need more: up to the adapter's own
/// maximum buffer sizes, and enough storage buffers per stage for our widest kernel
/// (those of the direct form where the adapter has them).
fn needed_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    let storage_buffers = adapter
        .max_storage_buffers_per_shader_stage
        .clamp(STORAGE_BUFFERS_NEEDED, STORAGE_BUFFERS_DIRECT);
    wgpu::Limits {
        max_storage_buffers_per_shader_stage: storage_buffers,
        max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
        max_buffer_size: adapter.max_buffer_size,
        ..wgpu::Limits::downlevel_defaults()
    }
}

/// The adapter named by `WGPU_ADAPTER_NAME` (a case-insensitive substring), or else the
/// high-performance adapter the instance recommends.
async fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
    let names: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?})", i.name, i.backend)
        })
        .collect();
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted_lower = wanted.to_lowercase();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted_lower))
            .ok_or_else(|| {
                Error::NoAdapter(format!(
                    "WGPU_ADAPTER_NAME={wanted} matches none of the adapters found: [{}]",
                    names.join(", ")
                ))
            });
    }
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            Error::NoAdapter(format!(
                "{e}. Adapters found: [{}]. On Debian, install the software Vulkan driver: \
                 apt-get install -y mesa-vulkan-drivers libvulkan1",
                names.join(", ")
            ))
        })
}
