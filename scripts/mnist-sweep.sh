#!/usr/bin/env bash
# Temporal MNIST for several models and seeds, with the protocol of docs/results.md, and
# optionally their ensemble. Each run trains (random 2-pixel shifts, softmax) with
# `--select-max-decision-step`, which after every epoch sweeps theta on the validation
# split and keeps the epoch and theta most accurate with a mean decision step of at most
# BUDGET, then evaluates that theta once on the test split. With ENSEMBLE=1 the runs are
# then joined by `rankcode ensemble`, whose theta is chosen the same way on validation
# (within ENSEMBLE_BUDGET steps) and evaluated once on test. One line per run, and one
# for the ensemble (whose train_s is the time to join and evaluate it), goes to
# $RESULTS/summary.tsv; each run's output to $RESULTS/RUN.log.
#
# Meant for a real GPU, where a 25-epoch run takes minutes; on lavapipe (two cores)
# hidden 125 takes about an hour and hidden 256 about 2.5 h (9,255 s, partly shared).
# Settings, all optional, from the environment:
#   RANKCODE_BIN  the binary                        (default target/release/rankcode)
#   MNIST_DIR     the folder of the four IDX files  (default $RANKCODE_DATA/mnist,
#                 else ../shared/datasets/mnist)
#   RESULTS       where runs and the summary go     (default runs/mnist-sweep; a rerun
#                 continues the runs already there with `train --resume` and skips the
#                 finished ones, so a sweep cut short, by a time limit say, picks up
#                 where it stopped; the ensemble is made anew)
#   MODELS        "HIDDEN[:LAYERS] ..."             (default "256:2 256:1 512:1")
#   SEEDS         "SEED ...", each model at each    (default 1)
#   JOBS          runs trained at once              (default 1; more on a GPU machine)
#   EPOCHS        training epochs                   (default 25)
#   TRAIN_SIZE    use only the first N training images (default: all 55,000)
#   BUDGET        the mean decision step epoch and theta are chosen under (default 1.5)
#   THETA         the training threshold            (default 0.85, as runs/t085)
#   AUGMENT_DROP  train --augment-drop rate          (default: none)
#   CYCLES        train --lr-cycles N: N cosine cycles, each ending in a snapshot of
#                 the model (default: none); the ensemble then joins every snapshot
#                 of every run (a snapshot ensemble) instead of the runs; N must
#                 divide EPOCHS (say CYCLES=3 EPOCHS=24)
#   ENSEMBLE      1: also join all the runs (they must share their number of layers)
#   ENSEMBLE_BUDGET  the ensemble's budget on validation (default 1.45: a margin under
#                 1.5, as docs/results.md, "Ensembles", explains)
# Relative paths are taken from the repository's root.
#
# On a GPU machine without Rust, carry the release binary, the Vulkan loaders and a
# copy of the data, and bound each call with `timeout`: docs/results.md, "Running the
# sweep on a GPU", gives the commands.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${RANKCODE_BIN:-target/release/rankcode}
data=${MNIST_DIR:-${RANKCODE_DATA:-../shared/datasets}/mnist}
results=${RESULTS:-runs/mnist-sweep}
models=${MODELS:-256:2 256:1 512:1}
seeds=${SEEDS:-1}
max_jobs=${JOBS:-1}
epochs=${EPOCHS:-25}
budget=${BUDGET:-1.5}
theta=${THETA:-0.85}
ensemble_budget=${ENSEMBLE_BUDGET:-1.45}
theta_sweep=0.3:0.99:70
extra_flags=()
if [[ -n "${TRAIN_SIZE:-}" ]]; then
    extra_flags+=(--train-size "$TRAIN_SIZE")
fi
if [[ -n "${AUGMENT_DROP:-}" ]]; then
    extra_flags+=(--augment-drop "$AUGMENT_DROP")
fi
cycles=${CYCLES:-1}
if [[ -n "${CYCLES:-}" ]]; then
    extra_flags+=(--lr-cycles "$CYCLES")
fi

[[ -x "$bin" ]] || { echo "error: no rankcode binary at $bin (cargo build --release)" >&2; exit 1; }
(( cycles >= 1 && epochs % cycles == 0 )) || {
    echo "error: CYCLES=$cycles must divide EPOCHS=$epochs into equal cycles" >&2; exit 1; }
(( max_jobs >= 1 )) || { echo "error: JOBS=$max_jobs: at least one run must train at a time" >&2; exit 1; }
if [[ "${ENSEMBLE:-0}" == 1 ]] && (( $(wc -w <<< "$models") * $(wc -w <<< "$seeds") * cycles < 2 )); then
    echo "error: ENSEMBLE=1 joins two models or more; MODELS, SEEDS and CYCLES give one" >&2
    exit 1
fi
mkdir -p "$results"
summary="$results/summary.tsv"
log="$results/sweep.log"
printf 'hidden\tlayers\tseed\tepochs\ttrain_s\tepoch\tval_theta\tval_accuracy\tval_mean_step\ttest_accuracy\ttest_mean_step\ttest_accuracy_at_T-1\n' > "$summary"

# A field of the JSON document on stdin, by a dotted path (python3, which a GPU machine
# without Rust usually has, where jq may be missing); fails when it is missing or null.
json_field() {
    python3 -c 'import json, sys
v = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    v = v.get(key) if isinstance(v, dict) else None
sys.exit(1) if v is None else print(v)' "$1"
}

# Appends a summary row: the six columns that name the model ($1-$6), then the
# validation choice (object $8 of JSON document $7: theta, accuracy, mean step) and the
# test figures (JSON document $9).
add_row() {
    local val_json=$7 choice=$8 test_json=$9 figures=() f
    if json_field "$choice.theta" <<< "$val_json" > /dev/null; then
        for f in theta accuracy mean_decision_step; do
            figures+=("$(json_field "$choice.$f" <<< "$val_json")")
        done
    else
        echo "$1 units, seed $3: no swept theta decides within the budget on validation" \
            | tee -a "$log"
        figures+=(none - -)
    fi
    for f in accuracy mean_decision_step eos_accuracy; do
        figures+=("$(json_field "$f" <<< "$test_json" || echo -)")
    done
    (IFS=$'\t'; echo "${*:1:6}"$'\t'"${figures[*]}" | tee -a "$summary")
}

# Trains one run, unless an earlier call finished it, and adds its row; the training's
# output goes to RUN.log.
train_run() {
    local hidden=$1 layers=$2 seed=$3 run=$4 train_s test resume=()
    [[ -f "$run/config.json" ]] && resume=(--resume)
    if [[ -f "$run/test.json" ]] && (( $(wc -l < "$run/metrics.jsonl") >= epochs )); then
        echo "== $run: finished by an earlier call" | tee -a "$log"
    elif ! "$bin" train "${resume[@]}" --task mnist --data "$data" --mode rc --readout softmax \
        --hidden "$hidden" --layers "$layers" --batch 128 --lr 2e-3 --lr-schedule cosine \
        --clip-grad-norm 1 --theta "$theta" --theta-warmup 0.1:4 --augment-shift 2 \
        --epochs "$epochs" --seed "$seed" --select-max-decision-step "$budget" \
        --select-theta-sweep "$theta_sweep" "${extra_flags[@]}" --out "$run" >> "$run.log" 2>&1; then
        echo "error: training $run failed; see $run.log" | tee -a "$log" >&2
        return 1
    fi
    # The epochs' training time, over every call that trained some of them.
    train_s=$(python3 -c 'import json, sys
print(round(sum(json.loads(l)["wall_s"] for l in open(sys.argv[1]) if l.strip())))' \
        "$run/metrics.jsonl")
    echo "== $run: trained in $train_s s${resume:+ (resumed)}" | tee -a "$log"
    test=$(cat "$run/test.json")
    add_row "$hidden" "$layers" "$seed" "$epochs" "$train_s" \
        "$(json_field model_epoch <<< "$test")" "$test" val_within_budget "$test"
}

# Each failed run leaves its name here (the jobs' exit statuses are not all waited for).
failures="$results/failed-runs"
rm -f "$failures"

"$bin" info 2>&1 | tee -a "$log"
runs=()
total_hidden=0
for model in $models; do
    hidden=${model%%:*}
    layers=1
    [[ "$model" == *:* ]] && layers=${model##*:}
    for seed in $seeds; do
        run="$results/h${hidden}l${layers}s${seed}"
        runs+=("$run")
        total_hidden=$(( total_hidden + hidden ))
        while (( $(jobs -rp | wc -l) >= max_jobs )); do wait -n || true; done
        echo "== hidden $hidden, $layers layer(s), seed $seed, $epochs epochs -> $run" | tee -a "$log"
        { train_run "$hidden" "$layers" "$seed" "$run" || echo "$run" >> "$failures"; } &
    done
done
wait
if [[ -s "$failures" ]]; then
    echo "error: these runs failed (their logs say why): $(tr '\n' ' ' < "$failures")" \
        | tee -a "$log" >&2
    exit 1
fi

if [[ "${ENSEMBLE:-0}" == 1 ]]; then
    ensemble="$results/ensemble"
    # The runs, or with CYCLES every snapshot of every run.
    members=()
    for run in "${runs[@]}"; do
        if [[ -z "${CYCLES:-}" ]]; then
            members+=("$run")
        elif compgen -G "$run/snapshots/epoch-*" > /dev/null; then
            members+=("$run"/snapshots/epoch-*)
        else
            echo "error: $run has no snapshots: it was trained without CYCLES" | tee -a "$log" >&2
            exit 1
        fi
    done
    echo "== the ensemble of ${#members[@]} models -> $ensemble" | tee -a "$log"
    start=$(date +%s)
    # Made anew each time, from the runs of this call.
    rm -rf "$ensemble"
    "$bin" ensemble "${members[@]}" --theta "$theta" --out "$ensemble" 2>&1 | tee -a "$log"
    val=$("$bin" eval --checkpoint "$ensemble" --split val --theta-sweep "$theta_sweep" \
        --max-decision-step "$ensemble_budget" --no-full-pass --json)
    if chosen=$(json_field best_within_budget.theta <<< "$val"); then
        test=$("$bin" eval --checkpoint "$ensemble" --theta "$chosen" --json)
    else
        test='{}'
    fi
    add_row "$total_hidden" "$layers" ensemble - $(( $(date +%s) - start )) - \
        "$val" best_within_budget "$test"
fi
# column(1) aligns the table where it is installed.
{ column -t "$summary" 2> /dev/null || cat "$summary"; } | tee -a "$log"
