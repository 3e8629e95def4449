"""results.jsonl -> markdown table: per-fold test accuracy (mean over seeds), mean, worst."""
import json, collections, os, numpy as np, sys
rows = [json.loads(l) for l in open(os.environ.get("RESULTS", "results.jsonl"))]
g = collections.OrderedDict()
for r in rows:
    g.setdefault((r["tag"], r["variant"]), []).append(r)
print("| config | variant | seeds | george | jackson | lucas | nicolas | yweweler | mean | worst | last-epoch mean/worst | half (29 fr) mean/worst | RC (--rc) mean/worst at frames | wall s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (tag, var), rs in g.items():
    spk = ["george", "jackson", "lucas", "nicolas", "yweweler"]
    per = {s: [r["test"] for r in rs if r["test_spk"] == s] for s in spk}
    if any(len(v) == 0 for v in per.values()):
        pf = {s: (np.mean(v) if v else float('nan')) for s, v in per.items()}
    else:
        pf = {s: np.mean(v) for s, v in per.items()}
    seeds = len(set(r["seed"] for r in rs))
    vals = np.array([pf[s] for s in spk])
    # mean/worst per seed, then averaged (worst of the seed-averaged folds given too)
    half = ""
    if "test_half_at_best" in rs[0]:
        hp = np.array([np.mean([r["test_half_at_best"] for r in rs if r["test_spk"] == s] or [np.nan]) for s in spk])
        half = f"{100*np.nanmean(hp):.1f} / {100*np.nanmin(hp):.1f}"
    last = ""
    if "test_last_ep" in rs[0]:
        lp = np.array([np.mean([r["test_last_ep"] for r in rs if r["test_spk"] == s] or [np.nan]) for s in spk])
        last = f"{100*np.nanmean(lp):.1f} / {100*np.nanmin(lp):.1f}"
    rc = ""
    if "rc_test" in rs[0]:
        rp = np.array([np.mean([r["rc_test"] for r in rs if r["test_spk"] == s] or [np.nan]) for s in spk])
        frames = np.mean([r.get("rc_test_dec", np.nan) for r in rs])
        rc = f"{100*np.nanmean(rp):.1f} / {100*np.nanmin(rp):.1f} at {frames:.1f}"
    sd = ""
    if seeds > 1:
        ms = [np.mean([r["test"] for r in rs if r["seed"] == sd_]) for sd_ in set(r["seed"] for r in rs)]
        sd = f" (±{100*np.std(ms):.1f})"
    print(f"| {tag} | {var} | {seeds} | " + " | ".join(f"{100*v:.1f}" for v in vals) +
          f" | **{100*np.nanmean(vals):.1f}**{sd} | {100*np.nanmin(vals):.1f} | {last} | {half} | {rc} | {sum(r['wall_s'] for r in rs):.0f} |")
