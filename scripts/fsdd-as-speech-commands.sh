#!/usr/bin/env bash
# A corpus in the Google Speech Commands layout made from FSDD recordings, to check
# the speech-commands tasks where the real data set is not at hand (docs/results.md,
# "Speech Commands"): every FSDD recording is copied into a word folder (digits 0-5
# as yes, no, up, down, left, right; 6-9 as the unknown words six to nine) as
# SPEAKER_nohash_TAKE.wav; lucas's recordings are the test list, nicolas's the
# validation list, the other speakers train; `_background_noise_` holds 60 s of white
# noise (std 0.1, seed 7). The recordings stay 8 kHz; rankcode resamples them.
#
#   scripts/fsdd-as-speech-commands.sh OUT [FSDD_DIR]
#
# FSDD_DIR defaults to ../shared/datasets/fsdd. OUT must not exist.
set -euo pipefail
out=${1:?usage: scripts/fsdd-as-speech-commands.sh OUT [FSDD_DIR]}
fsdd=${2:-../shared/datasets/fsdd}
[ -e "$out" ] && { echo "$out exists; choose a new folder" >&2; exit 1; }
python3 - "$fsdd" "$out" <<'PY'
import os, random, shutil, struct, sys, wave
fsdd, out = sys.argv[1], sys.argv[2]
src = os.path.join(fsdd, "recordings") if os.path.isdir(os.path.join(fsdd, "recordings")) else fsdd
words = ["yes", "no", "up", "down", "left", "right", "six", "seven", "eight", "nine"]
lists = {"lucas": [], "nicolas": []}
for name in sorted(os.listdir(src)):
    if not name.endswith(".wav"):
        continue
    digit, speaker, take = name[:-4].split("_")
    entry = f"{words[int(digit)]}/{speaker}_nohash_{take}.wav"
    os.makedirs(os.path.join(out, words[int(digit)]), exist_ok=True)
    shutil.copy(os.path.join(src, name), os.path.join(out, entry))
    if speaker in lists:
        lists[speaker].append(entry)
for speaker, file in [("lucas", "testing_list.txt"), ("nicolas", "validation_list.txt")]:
    with open(os.path.join(out, file), "w") as f:
        f.write("\n".join(lists[speaker]) + "\n")
random.seed(7)
os.makedirs(os.path.join(out, "_background_noise_"))
w = wave.open(os.path.join(out, "_background_noise_", "white_noise.wav"), "wb")
w.setnchannels(1)
w.setsampwidth(2)
w.setframerate(16000)
clip = lambda v: int(max(-32767, min(32767, v * 32767)))
w.writeframes(b"".join(struct.pack("<h", clip(random.gauss(0, 0.1))) for _ in range(16000 * 60)))
w.close()
print(f"{out}: {sum(len(v) for v in lists.values())} listed recordings of 2 speakers, the rest training")
PY
