// The scheduler's plan of the next step, made on the GPU between two steps of a chunk
// (docs/design.md, "The forward pass and the retirement scheduler"), so that a chunk of
// K steps runs without a host round trip and yet every step computes its live rows
// only.
//
// After step t's readout, `plan_next_step` reads step t's row list and writes step
// t + 1's into the other forward region: the rows still undecided first, in their
// order (the host's `still_live`), then the rows that have decided. Step t + 1's slot
// keeps step t's row count, so the decided rows stay listed past the live ones; every
// forward kernel skips a row decided before its step, and the workgroups written here
// cover the live rows only, so they are never reached but by the padding of the last
// block. It then writes the workgroup counts of step t + 1's dispatches, one rule each
// (`GridRule`), into `grids`, from which they are dispatched indirectly.
//
// One invocation does it all: the lists are of at most a batch of rows, and a single
// dispatch costs less than the host round trip it replaces.

struct PlanParams {
    // The two forward row regions (element offsets in `rows`).
    region_a: u32,
    region_b: u32,
    // Number of rules: 3 workgroup counts each, for steps of even and of odd t.
    rules: u32,
    _pad: u32,
}

struct GridRule {
    fixed: u32,
    rows_per_group: u32,
    rows_axis: u32,
    min_rows: u32,
    max_rows: u32,
    _pad: array<u32, 3>,
}

@group(0) @binding(0) var<storage, read> p: PlanParams;
@group(0) @binding(1) var<storage, read> step: Step;
@group(0) @binding(2) var<storage, read_write> rows: array<u32>;
@group(0) @binding(3) var<storage, read> tstar: array<u32>;
@group(0) @binding(4) var<storage, read> grid_rules: array<GridRule>;
@group(0) @binding(5) var<storage, read_write> grids: array<u32>;

// Workgroups of one dispatch for `live` rows (`GridRule::groups` on the host).
fn grid_of(rule: GridRule, live: u32) -> vec3<u32> {
    if (live == 0u || live < rule.min_rows || live > rule.max_rows) {
        return vec3<u32>(0u, 0u, 0u);
    }
    let count = (live + rule.rows_per_group - 1u) / rule.rows_per_group;
    if (rule.rows_axis == 0u) {
        return vec3<u32>(count, rule.fixed, 1u);
    }
    return vec3<u32>(rule.fixed, count, 1u);
}

@compute @workgroup_size(1)
fn plan_next_step() {
    let src = step.rows_offset;
    let dst = select(p.region_a, p.region_b, src == p.region_a);
    let n = step.n_rows;
    let undecided = step.steps;
    var live = 0u;
    for (var i = 0u; i < n; i++) {
        let entry = rows[src + i];
        if (tstar[row_of(entry)] == undecided) {
            rows[dst + live] = entry;
            live += 1u;
        }
    }
    var decided = live;
    for (var i = 0u; i < n; i++) {
        let entry = rows[src + i];
        if (tstar[row_of(entry)] != undecided) {
            rows[dst + decided] = entry;
            decided += 1u;
        }
    }
    let base = ((step.t + 1u) % 2u) * p.rules * 3u;
    for (var r = 0u; r < p.rules; r++) {
        let g = grid_of(grid_rules[r], live);
        grids[base + 3u * r] = g.x;
        grids[base + 3u * r + 1u] = g.y;
        grids[base + 3u * r + 2u] = g.z;
    }
}
