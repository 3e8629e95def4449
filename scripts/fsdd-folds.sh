#!/usr/bin/env bash
# Leave-one-speaker-out on FSDD: trains one run per fold (fold K tests on the K-th
# speaker of the folder in name order, trains on the others and validates on their
# takes 0-4 (or, with --speaker-val next-speaker, on the next speaker, not trained on);
# docs/design.md, "Tasks"), each with the FSDD recipe and any extra flags given, then
# prints one line per fold (the test speaker's accuracy and mean decision time) and
# the mean and the worst speaker; the same table goes to $OUT/summary.tsv. A fold
# whose run is finished is not trained again, and one cut short resumes.
#
#   scripts/fsdd-folds.sh OUT [train flags ...]
#
# Settings from the environment: RANKCODE_BIN (default target/release/rankcode),
# FSDD_DIR (default: the task's data folder), FOLDS (default: "1 2 3 4 5").
set -euo pipefail
out=${1:?usage: scripts/fsdd-folds.sh OUT [train flags ...]}
shift
bin=${RANKCODE_BIN:-target/release/rankcode}
data=()
[ -n "${FSDD_DIR:-}" ] && data=(--data "$FSDD_DIR")
mkdir -p "$out"
for fold in ${FOLDS:-1 2 3 4 5}; do
    run="$out/fold-$fold"
    if [ -f "$run/test.json" ]; then
        echo "fold $fold: finished, kept" >&2
    elif [ -f "$run/checkpoint.safetensors" ]; then
        "$bin" train --resume --out "$run" "${data[@]}" >"$run.log" 2>&1
    else
        "$bin" train --task fsdd --fold "$fold" "${data[@]}" --out "$run" "$@" >"$run.log" 2>&1
    fi
done
python3 - "$out" ${FOLDS:-1 2 3 4 5} <<'PY'
import json, sys
out, folds = sys.argv[1], sys.argv[2:]
rows = []
for k in folds:
    cfg = json.load(open(f"{out}/fold-{k}/config.json"))
    test = json.load(open(f"{out}/fold-{k}/test.json"))
    split = cfg["speaker_split"]
    val = split["val"] or "takes 0-4 of the others"
    rows.append((k, split["test"], val, test["accuracy"], test["mean_decision_step"],
                 test["mean_decision_fraction"], test["not_fired"], test.get("eos_accuracy")))
lines = ["fold\ttest speaker\tval speaker\taccuracy\tmean decision step\tfraction of frames\tnot fired\taccuracy at T-1"]
for r in rows:
    eos = "" if r[7] is None else f"{100 * r[7]:.1f}%"
    lines.append(f"{r[0]}\t{r[1]}\t{r[2]}\t{100 * r[3]:.1f}%\t{r[4]:.2f}\t{100 * r[5]:.0f}%\t{100 * r[6]:.1f}%\t{eos}")
mean = sum(r[3] for r in rows) / len(rows)
worst = min(rows, key=lambda r: r[3])
frac = sum(r[5] for r in rows) / len(rows)
lines.append(f"mean\t\t\t{100 * mean:.1f}%\t\t{100 * frac:.0f}%")
lines.append(f"worst\t{worst[1]}\t\t{100 * worst[3]:.1f}%")
open(f"{out}/summary.tsv", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
