//! `rankcode info`: the adapter, its limits and features.

use anyhow::Result;
use rankcode::gpu::GpuContext;

pub fn run() -> Result<()> {
    let ctx = GpuContext::new()?;
    let i = &ctx.info;
    println!("adapter:  {}", i.name);
    println!("backend:  {:?}", i.backend);
    println!("type:     {:?}", i.device_type);
    println!("driver:   {} {}", i.driver, i.driver_info);
    let l = &ctx.limits;
    println!("limits requested by rankcode:");
    println!(
        "  max_buffer_size                      {}",
        l.max_buffer_size
    );
    println!(
        "  max_storage_buffer_binding_size      {}",
        l.max_storage_buffer_binding_size
    );
    println!(
        "  max_storage_buffers_per_shader_stage {}",
        l.max_storage_buffers_per_shader_stage
    );
    println!(
        "  max_compute_workgroups_per_dimension {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  min_storage_buffer_offset_alignment  {}",
        l.min_storage_buffer_offset_alignment
    );
    println!("features: {:?}", ctx.device.features().features_wgpu);
    Ok(())
}
