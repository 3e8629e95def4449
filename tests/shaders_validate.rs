//! Every shader parses and validates with naga (no GPU needed).

use rankcode::gpu::shaders;

#[test]
fn every_shader_parses_and_validates() {
    for (name, source) in shaders::all() {
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        assert!(
            module
                .entry_points
                .iter()
                .any(|e| e.stage == naga::ShaderStage::Compute),
            "{name}"
        );
    }
}

/// The host mirrors in `gpu::structs` have the size naga computes for each WGSL struct.
#[test]
fn parameter_structs_match_their_wgsl_layout() {
    use rankcode::gpu::structs::*;
    use std::mem::size_of;
    let expected = [
        ("Step", size_of::<Step>()),
        ("Source", size_of::<Source>()),
        ("Weight", size_of::<Weight>()),
        ("GemmParams", size_of::<GemmParams>()),
        ("DenseGemmParams", size_of::<DenseGemmParams>()),
        ("CellParams", size_of::<CellParams>()),
        ("ReadoutParams", size_of::<ReadoutParams>()),
        ("AdamParams", size_of::<AdamParams>()),
        ("SparseParams", size_of::<SparseParams>()),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (name, source) in shaders::all() {
        let module = naga::front::wgsl::parse_str(&source).unwrap();
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        for (handle, ty) in module.types.iter() {
            if let Some((_, size)) = expected
                .iter()
                .find(|(n, _)| ty.name.as_deref() == Some(*n))
            {
                assert_eq!(
                    layouter[handle].size as usize, *size,
                    "{name}: struct {:?}",
                    ty.name
                );
                seen.insert(ty.name.clone().unwrap_or_default());
            }
        }
    }
    let missing: Vec<&str> = expected
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !seen.contains(*n))
        .collect();
    assert!(missing.is_empty(), "structs in no shader: {missing:?}");
}
