//! A compute pipeline with its explicit bind-group layout, and the helpers to bind
//! buffers to it and dispatch it.

use super::bindings::{Slot, Table};
use super::context::GpuContext;
use std::num::NonZeroU64;

/// Size in bytes of the `Step` struct of `common.wgsl.inc`.
pub const STEP_BYTES: u64 = std::mem::size_of::<super::structs::Step>() as u64;

/// What a binding slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The kernel's parameter struct, fixed for the bind group.
    Params,
    /// The per-step `Step` struct, selected with a dynamic offset at dispatch.
    Step,
    /// A read-only storage buffer.
    Read,
    /// A read-write storage buffer.
    ReadWrite,
}

/// One entry point of a shader module with the layout it is bound through.
pub struct Kernel {
    pub name: &'static str,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    slots: &'static [Slot],
}

impl Kernel {
    /// Builds the pipeline for `entry` of `module`, bound as `table` says (one of
    /// `gpu::bindings`, which lists `entry`).
    pub fn new(
        ctx: &GpuContext,
        module: &wgpu::ShaderModule,
        entry: &'static str,
        table: &Table,
    ) -> Self {
        Self::with_constants(ctx, module, entry, table, &[])
    }

    /// [`Kernel::new`] with pipeline-overridable `constants`.
    pub fn with_constants(
        ctx: &GpuContext,
        module: &wgpu::ShaderModule,
        entry: &'static str,
        table: &Table,
        constants: &[(&str, f64)],
    ) -> Self {
        assert!(
            table.entries.contains(&entry),
            "{entry} is not an entry point of its binding table"
        );
        let entries: Vec<wgpu::BindGroupLayoutEntry> = table
            .slots
            .iter()
            .map(|&Slot { binding, kind, .. }| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                // Parameters live in read-only storage buffers, not uniform buffers:
                // some drivers (Mesa lavapipe 22.x) inline uniform values used in
                // branch and loop conditions and recompile the shader at every
                // dispatch whose values differ, which costs milliseconds each time.
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage {
                        read_only: kind != Binding::ReadWrite,
                    },
                    has_dynamic_offset: kind == Binding::Step,
                    min_binding_size: (kind == Binding::Step)
                        .then(|| NonZeroU64::new(STEP_BYTES).unwrap()),
                },
                count: None,
            })
            .collect();
        let layout = ctx
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(entry),
                entries: &entries,
            });
        Self::with_layout(ctx, module, entry, layout, table.slots, constants)
    }

    /// The same entry point (or another with the same bindings) compiled with
    /// pipeline-overridable `constants`; bind groups of `self` work with it.
    pub fn variant(
        &self,
        ctx: &GpuContext,
        module: &wgpu::ShaderModule,
        entry: &'static str,
        constants: &[(&str, f64)],
    ) -> Self {
        Self::with_layout(
            ctx,
            module,
            entry,
            self.layout.clone(),
            self.slots,
            constants,
        )
    }

    fn with_layout(
        ctx: &GpuContext,
        module: &wgpu::ShaderModule,
        entry: &'static str,
        layout: wgpu::BindGroupLayout,
        slots: &'static [Slot],
        constants: &[(&str, f64)],
    ) -> Self {
        let pipeline_layout = ctx
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = ctx
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            });
        Kernel {
            name: entry,
            pipeline,
            layout,
            slots,
        }
    }

    /// A bind group giving one buffer to each slot of the kernel's table, each named
    /// by its WGSL variable, in the table's order. Panics if the names differ from the
    /// table's: that is a programming error, not bad input.
    pub fn bind(&self, ctx: &GpuContext, buffers: &[(&str, &wgpu::Buffer)]) -> wgpu::BindGroup {
        let given: Vec<&str> = buffers.iter().map(|&(name, _)| name).collect();
        let slots: Vec<&str> = self.slots.iter().map(|s| s.name).collect();
        assert_eq!(
            given, slots,
            "{}: the buffers of its binding table",
            self.name
        );
        let entries: Vec<wgpu::BindGroupEntry> = self
            .slots
            .iter()
            .zip(buffers)
            .map(
                |(&Slot { binding, kind, .. }, &(_, buffer))| wgpu::BindGroupEntry {
                    binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: 0,
                        size: (kind == Binding::Step).then(|| NonZeroU64::new(STEP_BYTES).unwrap()),
                    }),
                },
            )
            .collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.name),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Records one dispatch of `groups` workgroups; `step_offset` selects the `Step`
    /// slot for kernels that have one. Returns false, recording nothing, when there
    /// are no workgroups.
    pub fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass,
        bind_group: &wgpu::BindGroup,
        step_offset: Option<u32>,
        groups: [u32; 3],
    ) -> bool {
        if groups.contains(&0) {
            return false;
        }
        pass.set_pipeline(&self.pipeline);
        let offsets: Vec<u32> = step_offset.into_iter().collect();
        pass.set_bind_group(0, bind_group, &offsets);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        true
    }

    /// Records one dispatch whose workgroup counts the GPU reads from `grids` at byte
    /// `offset` (three u32s, written there by an earlier dispatch).
    pub fn dispatch_indirect(
        &self,
        pass: &mut wgpu::ComputePass,
        bind_group: &wgpu::BindGroup,
        step_offset: Option<u32>,
        grids: &wgpu::Buffer,
        offset: u64,
    ) {
        pass.set_pipeline(&self.pipeline);
        let offsets: Vec<u32> = step_offset.into_iter().collect();
        pass.set_bind_group(0, bind_group, &offsets);
        pass.dispatch_workgroups_indirect(grids, offset);
    }
}

/// Workgroups needed to cover `n` items with groups of `size`.
pub fn groups_for(n: usize, size: usize) -> u32 {
    n.div_ceil(size) as u32
}

/// Creates a shader module from a source body (the common definitions are prepended).
pub fn module(ctx: &GpuContext, name: &str, body: &str) -> wgpu::ShaderModule {
    ctx.device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(super::shaders::with_common(body).into()),
        })
}
