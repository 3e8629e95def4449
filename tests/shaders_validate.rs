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

/// The entry points of a module (sorted).
fn entry_points(body: &str) -> Vec<String> {
    let module = naga::front::wgsl::parse_str(&shaders::with_common(body)).unwrap();
    let mut names: Vec<String> = module.entry_points.iter().map(|e| e.name.clone()).collect();
    names.sort_unstable();
    names
}

/// The gathered GEMMs' module, joined from `shaders/matmul/`, has its eight entry
/// points; the module of the step GEMMs with the cell in their epilogue has those of
/// the direct form and its own two.
#[test]
fn the_matmul_modules_have_every_entry_point_of_both_forms() {
    assert_eq!(
        entry_points(shaders::MATMUL),
        [
            "dense_gemm",
            "dense_gemm_direct",
            "grad_gemm",
            "grad_gemm_direct",
            "grad_gemm_narrow",
            "grad_gemm_quads",
            "step_gemm",
            "step_gemm_direct",
        ]
    );
    assert_eq!(
        entry_points(shaders::MATMUL_CELL),
        [
            "dense_gemm_direct",
            "grad_gemm_direct",
            "grad_gemm_narrow",
            "grad_gemm_quads",
            "step_cell_backward",
            "step_cell_forward",
            "step_gemm_direct",
        ]
    );
}

/// The WGSL type a host mirror's field stands for, as [`wgsl_type`] names naga's.
trait WgslType {
    fn wgsl() -> String;
}

macro_rules! wgsl_types {
    ($($host:ty => $wgsl:expr),* $(,)?) => {
        $(impl WgslType for $host {
            fn wgsl() -> String {
                $wgsl.to_string()
            }
        })*
    };
}

impl<T: WgslType, const N: usize> WgslType for [T; N] {
    fn wgsl() -> String {
        format!("array<{}, {N}>", T::wgsl())
    }
}

use rankcode::gpu::structs::{
    AdamParams, CellParams, CopyParams, DenseGemmParams, GemmParams, GridRule, PlanParams,
    ReadoutParams, Source, SparseParams, Step, Weight,
};

wgsl_types! {
    u32 => "u32",
    i32 => "i32",
    f32 => "f32",
    Source => "Source",
    Weight => "Weight",
}

/// One member of a struct: its name, byte offset, size and type.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    name: String,
    offset: usize,
    size: usize,
    ty: String,
}

/// A host mirror's layout as the compiler laid it out.
struct HostStruct {
    name: &'static str,
    size: usize,
    members: Vec<Member>,
}

fn member<T, F: WgslType>(name: &str, offset: usize, _field: fn(&T) -> &F) -> Member {
    Member {
        name: name.to_string(),
        offset,
        size: std::mem::size_of::<F>(),
        ty: F::wgsl(),
    }
}

/// The layout of host struct `$ty` with fields `$field`, in any order. The fields must
/// be all of them: the pattern below does not compile otherwise.
macro_rules! host_struct {
    ($ty:ident { $($field:ident),* $(,)? }) => {{
        let $ty { $($field: _),* } = $ty::default();
        HostStruct {
            name: stringify!($ty),
            size: std::mem::size_of::<$ty>(),
            members: vec![$(member(
                stringify!($field),
                std::mem::offset_of!($ty, $field),
                |s: &$ty| &s.$field,
            )),*],
        }
    }};
}

/// The host mirrors in `gpu::structs`, every field named.
fn host_structs() -> Vec<HostStruct> {
    vec![
        host_struct!(Step {
            t,
            n_rows,
            rows_offset,
            steps
        }),
        host_struct!(Source {
            base,
            step_stride,
            row_stride,
            width,
            step_offset,
            validity,
            _pad
        }),
        host_struct!(Weight {
            base,
            k_stride,
            j_stride,
            _pad
        }),
        host_struct!(GemmParams {
            a1,
            a2,
            w1,
            w2,
            n_out,
            has_bias,
            bias1,
            bias2,
            out_base,
            out_stride,
            accumulate,
            a2_block
        }),
        host_struct!(DenseGemmParams {
            m,
            n,
            k,
            lda,
            ldb,
            ldc,
            _pad
        }),
        host_struct!(CellParams {
            hidden,
            batch_stride,
            state_base,
            gates_base,
            carry_base,
            _pad
        }),
        host_struct!(ReadoutParams {
            hidden,
            classes,
            batch_stride,
            readout,
            w_base,
            b_base,
            h_base,
            retire,
            theta,
            theta_logit,
            beta,
            batch,
            want_grad,
            loss_from,
            _pad
        }),
        host_struct!(AdamParams {
            count,
            lr,
            beta1,
            beta2,
            eps,
            c1,
            c2,
            max_norm,
            weight_decay
        }),
        host_struct!(SparseParams {
            cols,
            input,
            w_base,
            batch_stride
        }),
        host_struct!(CopyParams {
            src_base,
            src_k,
            src_j,
            n,
            k_len,
            dst_base,
            dst_row,
            gate_units
        }),
        host_struct!(GridRule {
            fixed,
            rows_per_group,
            rows_axis,
            min_rows,
            max_rows,
            _pad
        }),
        host_struct!(PlanParams {
            region_a,
            region_b,
            rules,
            _pad
        }),
    ]
}

/// The WGSL name of naga type `ty`: a scalar, a struct by name, or a sized array.
fn wgsl_type(module: &naga::Module, ty: naga::Handle<naga::Type>) -> String {
    use naga::{ArraySize, ScalarKind, TypeInner};
    let t = &module.types[ty];
    match &t.inner {
        TypeInner::Scalar(s) => {
            let kind = match s.kind {
                ScalarKind::Uint => "u",
                ScalarKind::Sint => "i",
                ScalarKind::Float => "f",
                other => return format!("{other:?}"),
            };
            format!("{kind}{}", s.width as u32 * 8)
        }
        TypeInner::Struct { .. } => t.name.clone().unwrap_or_default(),
        TypeInner::Array {
            base,
            size: ArraySize::Constant(n),
            ..
        } => format!("array<{}, {n}>", wgsl_type(module, *base)),
        other => format!("{other:?}"),
    }
}

/// Padding: a member whose name starts with `_` (`_pad` on the host, `_pad0`, `_pad1`
/// ... in WGSL).
fn is_padding(m: &Member) -> bool {
    m.name.starts_with('_')
}

/// The bytes the padding members of `members` cover.
fn padding_bytes(members: &[Member]) -> std::collections::BTreeSet<usize> {
    members
        .iter()
        .filter(|m| is_padding(m))
        .flat_map(|m| m.offset..m.offset + m.size)
        .collect()
}

/// Compares a host mirror with the WGSL struct of the same name in `shader`: the same
/// size; every member the same name, offset, size and type, in either direction; and
/// the padding over the same bytes.
fn compare(shader: &str, host: &HostStruct, size: usize, wgsl: &[Member]) -> Vec<String> {
    let mut errors = Vec::new();
    let name = host.name;
    if host.size != size {
        errors.push(format!(
            "{shader}: {name} is {} bytes on the host, {size} in WGSL",
            host.size
        ));
    }
    for h in host.members.iter().filter(|m| !is_padding(m)) {
        match wgsl.iter().find(|w| w.name == h.name) {
            None => errors.push(format!("{shader}: {name}.{} is not in WGSL", h.name)),
            Some(w) if w != h => errors.push(format!(
                "{shader}: {name}.{}: host {h:?}, WGSL {w:?}",
                h.name
            )),
            Some(_) => {}
        }
    }
    for w in wgsl.iter().filter(|m| !is_padding(m)) {
        if !host.members.iter().any(|h| h.name == w.name) {
            errors.push(format!("{shader}: {name}.{} is not on the host", w.name));
        }
    }
    if padding_bytes(&host.members) != padding_bytes(wgsl) {
        errors.push(format!(
            "{shader}: {name}'s padding covers bytes {:?} on the host, {:?} in WGSL",
            padding_bytes(&host.members),
            padding_bytes(wgsl)
        ));
    }
    errors
}

/// Every host mirror in `gpu::structs` matches naga's layout of the WGSL struct of the
/// same name in every shader that declares it, member by member: names, offsets, sizes
/// and types. Swapping two fields of one type on either side fails, and so does a
/// mirror that no shader declares.
#[test]
fn parameter_structs_match_their_wgsl_layout_member_by_member() {
    let hosts = host_structs();
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    let mut errors = Vec::new();
    for (shader, source) in shaders::all() {
        let module = naga::front::wgsl::parse_str(&source).unwrap();
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        for (handle, ty) in module.types.iter() {
            let Some(host) = hosts.iter().find(|h| ty.name.as_deref() == Some(h.name)) else {
                continue;
            };
            let naga::TypeInner::Struct { members, .. } = &ty.inner else {
                errors.push(format!("{shader}: {} is not a struct", host.name));
                continue;
            };
            let wgsl: Vec<Member> = members
                .iter()
                .map(|m| Member {
                    name: m.name.clone().unwrap_or_default(),
                    offset: m.offset as usize,
                    size: layouter[m.ty].size as usize,
                    ty: wgsl_type(&module, m.ty),
                })
                .collect();
            errors.extend(compare(shader, host, layouter[handle].size as usize, &wgsl));
            *seen.entry(host.name).or_default() += 1;
        }
    }
    for host in &hosts {
        if !seen.contains_key(host.name) {
            errors.push(format!("{} is declared in no shader", host.name));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The comparison itself can fail: two fields of one type swapped, a renamed field and
/// moved padding are each reported.
#[test]
fn the_member_comparison_reports_swaps_renames_and_moved_padding() {
    let m = |name: &str, offset: usize| Member {
        name: name.into(),
        offset,
        size: 4,
        ty: "u32".into(),
    };
    let host = HostStruct {
        name: "S",
        size: 16,
        members: vec![m("a", 0), m("b", 4), m("c", 8), m("_pad", 12)],
    };
    let same = [m("a", 0), m("b", 4), m("c", 8), m("_pad0", 12)];
    assert!(compare("s.wgsl", &host, 16, &same).is_empty());
    let swapped = [m("b", 0), m("a", 4), m("c", 8), m("_pad0", 12)];
    assert_eq!(compare("s.wgsl", &host, 16, &swapped).len(), 2);
    let renamed = [m("a", 0), m("b", 4), m("d", 8), m("_pad0", 12)];
    assert_eq!(compare("s.wgsl", &host, 16, &renamed).len(), 2);
    let padding = [m("a", 0), m("_pad0", 4), m("b", 8), m("c", 12)];
    assert!(!compare("s.wgsl", &host, 16, &padding).is_empty());
    let float = [
        Member {
            ty: "f32".into(),
            ..m("a", 0)
        },
        m("b", 4),
        m("c", 8),
        m("_pad0", 12),
    ];
    assert_eq!(compare("s.wgsl", &host, 16, &float).len(), 1);
}

/// What is wrong with binding table `table` against its shader: a slot whose binding
/// number holds no variable, or one of another name or access (read-write slots
/// writable storage, the others read-only); an entry point missing, or using a bound
/// variable that no slot of the table names.
fn table_problems(table: &rankcode::gpu::bindings::Table) -> Vec<String> {
    use naga::{AddressSpace, StorageAccess};
    use rankcode::gpu::Binding;
    let (_, source) = shaders::all()
        .into_iter()
        .find(|(name, _)| *name == table.shader)
        .unwrap_or_else(|| panic!("no shader {}", table.shader));
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .unwrap();
    let mut problems = vec![];
    let shader = table.shader;
    for slot in table.slots {
        let var = module.global_variables.iter().find(|(_, v)| {
            v.binding
                .as_ref()
                .is_some_and(|b| b.group == 0 && b.binding == slot.binding)
                && v.name.as_deref() == Some(slot.name)
        });
        let Some((_, var)) = var else {
            problems.push(format!(
                "{shader}: no variable {} at @binding({})",
                slot.name, slot.binding
            ));
            continue;
        };
        let writable = matches!(var.space, AddressSpace::Storage { access } if access.contains(StorageAccess::STORE));
        if writable != (slot.kind == Binding::ReadWrite) {
            problems.push(format!(
                "{shader}: {} is {:?} in the table, {:?} in the shader",
                slot.name, slot.kind, var.space
            ));
        }
    }
    for entry in table.entries {
        let Some(index) = module.entry_points.iter().position(|e| e.name == *entry) else {
            problems.push(format!("{shader}: no entry point {entry}"));
            continue;
        };
        let uses = info.get_entry_point(index);
        for (handle, var) in module.global_variables.iter() {
            let Some(binding) = &var.binding else {
                continue;
            };
            let name = var.name.as_deref().unwrap_or("");
            let listed = table
                .slots
                .iter()
                .any(|s| s.name == name && s.binding == binding.binding);
            if !uses[handle].is_empty() && !listed {
                problems.push(format!(
                    "{shader}: {entry} uses {name} (@binding({})), which its table lacks",
                    binding.binding
                ));
            }
        }
    }
    problems
}

/// Every kernel's binding table (`gpu::bindings`) matches its shader, by name, number
/// and access; and the check finds a swap of two names, a wrong number, a wrong access
/// and a variable used but not bound.
#[test]
fn every_binding_table_matches_its_shader_by_name() {
    use rankcode::gpu::Binding;
    use rankcode::gpu::bindings::{ALL, CELL_FORWARD, MATMUL, Slot, Table};
    for table in ALL {
        let problems = table_problems(&table);
        assert!(problems.is_empty(), "{problems:#?}");
    }
    let check = |slots: Vec<Slot>, entries: &'static [&'static str], base: Table, wanted: &str| {
        let slots: &'static [Slot] = Box::leak(slots.into_boxed_slice());
        let table = Table {
            slots,
            entries,
            ..base
        };
        let problems = table_problems(&table);
        assert!(
            problems.iter().any(|p| p.contains(wanted)),
            "{wanted}: {problems:#?}"
        );
    };
    let mut swapped = MATMUL.slots.to_vec();
    (swapped[2].name, swapped[3].name) = (swapped[3].name, swapped[2].name);
    check(
        swapped,
        MATMUL.entries,
        MATMUL,
        "no variable src2 at @binding(2)",
    );
    let mut renumbered = MATMUL.slots.to_vec();
    renumbered[7].binding = 9;
    check(
        renumbered,
        MATMUL.entries,
        MATMUL,
        "no variable out at @binding(9)",
    );
    let mut read_only = CELL_FORWARD.slots.to_vec();
    read_only[5].kind = Binding::Read;
    check(
        read_only,
        CELL_FORWARD.entries,
        CELL_FORWARD,
        "gates_all is Read",
    );
    let without_weights: Vec<Slot> = MATMUL
        .slots
        .iter()
        .copied()
        .filter(|s| s.name != "weights")
        .collect();
    check(
        without_weights,
        &["step_gemm"],
        MATMUL,
        "step_gemm uses weights",
    );
    check(
        MATMUL.slots.to_vec(),
        &["no_such_entry"],
        MATMUL,
        "no entry point",
    );
}
