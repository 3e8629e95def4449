#!/usr/bin/env bash
# Temporal MNIST for several widths and depths, with the protocol of docs/results.md: train
# (random 2-pixel shifts, softmax) with `--select-max-decision-step`, which after every
# epoch sweeps theta on the validation split and keeps the epoch and theta most accurate
# with a mean decision step of at most 1.5, then evaluates that theta once on the test
# split. One line per model goes to $RESULTS/summary.tsv.
#
# Meant for a real GPU, where a 25-epoch run takes minutes; on lavapipe (two cores)
# hidden 125 takes about an hour and hidden 256 about 2.5 h (9,255 s, partly shared).
# Settings, all optional, from the environment:
#   RANKCODE_BIN  the binary                        (default target/release/rankcode)
#   MNIST_DIR     the folder of the four IDX files  (default $RANKCODE_DATA/mnist,
#                 else ../shared/datasets/mnist)
#   RESULTS       where runs and the summary go     (default runs/width-sweep)
#   MODELS        "HIDDEN[:LAYERS] ..."             (default "256:2 256:1 512:1")
#   EPOCHS        training epochs                   (default 25)
#   TRAIN_SIZE    use only the first N training images (default: all 55,000)
#   BUDGET        the mean decision step epoch and theta are chosen under (default 1.5)
#   THETA         the training threshold            (default 0.85, as runs/t085)
#   AUGMENT_DROP  train --augment-drop rate          (default: none)
# Relative paths are taken from the repository's root.
#
# On a GPU machine without Rust (see docs/results.md, "Running the width sweep on a GPU"),
# carry the release binary, the Vulkan loaders and a copy of the data:
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig;
#   MNIST_DIR=.data/mnist RESULTS=/tmp/sweep scripts/mnist-width-sweep.sh
#   tar czf $OUT/sweep.tgz --exclude checkpoint.safetensors -C /tmp sweep
# ($OUT takes back at most 8 files, hence the archive.)
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${RANKCODE_BIN:-target/release/rankcode}
data=${MNIST_DIR:-${RANKCODE_DATA:-../shared/datasets}/mnist}
results=${RESULTS:-runs/width-sweep}
models=${MODELS:-256:2 256:1 512:1}
epochs=${EPOCHS:-25}
budget=${BUDGET:-1.5}
theta=${THETA:-0.85}
extra_flags=()
if [[ -n "${TRAIN_SIZE:-}" ]]; then
    extra_flags+=(--train-size "$TRAIN_SIZE")
fi
if [[ -n "${AUGMENT_DROP:-}" ]]; then
    extra_flags+=(--augment-drop "$AUGMENT_DROP")
fi

[[ -x "$bin" ]] || { echo "error: no rankcode binary at $bin (cargo build --release)" >&2; exit 1; }
mkdir -p "$results"
summary="$results/summary.tsv"
log="$results/sweep.log"
printf 'hidden\tlayers\tepochs\ttrain_s\tepoch\tval_theta\tval_accuracy\tval_mean_step\ttest_accuracy\ttest_mean_step\ttest_accuracy_at_T-1\n' > "$summary"

# A field of the JSON document on stdin, by a dotted path (python3, which a GPU machine
# without Rust usually has, where jq may be missing); fails when it is missing or null.
json_field() {
    python3 -c 'import json, sys
v = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    v = v.get(key) if isinstance(v, dict) else None
sys.exit(1) if v is None else print(v)' "$1"
}

"$bin" info 2>&1 | tee -a "$log"
for model in $models; do
    hidden=${model%%:*}
    layers=1
    [[ "$model" == *:* ]] && layers=${model##*:}
    run="$results/h${hidden}l${layers}"
    echo "== hidden $hidden, $layers layer(s), $epochs epochs -> $run" | tee -a "$log"
    start=$(date +%s)
    "$bin" train --task mnist --data "$data" --mode rc --readout softmax \
        --hidden "$hidden" --layers "$layers" --batch 128 --lr 2e-3 --lr-schedule cosine \
        --clip-grad-norm 1 --theta "$theta" --theta-warmup 0.1:4 --augment-shift 2 \
        --epochs "$epochs" --select-max-decision-step "$budget" --select-theta-sweep 0.3:0.99:70 \
        "${extra_flags[@]}" --out "$run" 2>&1 | tee -a "$log"
    train_s=$(( $(date +%s) - start ))

    # The test evaluation of the selected epoch at the selected theta, and their
    # validation figures.
    test=$(cat "$run/test.json")
    if ! val_theta=$(json_field 'val_within_budget.theta' <<< "$test"); then
        echo "hidden $hidden: no swept theta decides within a mean of $budget steps on validation" \
            | tee -a "$log"
        printf '%s\t%s\t%s\t%s\t%s\tnone\n' "$hidden" "$layers" "$epochs" "$train_s" \
            "$(json_field model_epoch <<< "$test")" >> "$summary"
        continue
    fi
    fields=(model_epoch val_within_budget.accuracy val_within_budget.mean_decision_step
        accuracy mean_decision_step eos_accuracy)
    values=()
    for f in "${fields[@]}"; do values+=("$(json_field "$f" <<< "$test")"); done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$hidden" "$layers" "$epochs" \
        "$train_s" "${values[0]}" "$val_theta" "${values[@]:1}" | tee -a "$summary"
done
column -t "$summary" | tee -a "$log"
