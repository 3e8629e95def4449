"""1-NN DTW on MFCC13 (rankcode front end), LOSO. Symmetric step pattern (1,0),(0,1),(1,1),
local cost = Euclidean distance, full 58x58 grid (clips padded/trimmed to 0.6 s)."""
import os, sys, json, time
import numpy as np, torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fe
torch.set_num_threads(int(__import__('os').environ.get('NT','2')))
unorm = sys.argv[1] if len(sys.argv) > 1 else "whole"
variants = sys.argv[2].split(",") if len(sys.argv) > 2 else ["3spk", "4spk"]
waves, digit, spk, take = fe.load_all()
X = fe.features(waves, "mfcc", unorm)
X = torch.tensor(X, dtype=torch.float32)
T = X.shape[1]


def dtw_dist(q, R, chunk=100):
    """q: (Q,T,F), R: (M,T,F) -> (Q,M) DTW costs."""
    out = []
    Rf = R.reshape(-1, R.shape[2])
    for c in range(0, len(q), chunk):
        qc = q[c:c + chunk]
        Q, M = len(qc), len(R)
        prev = None
        for i in range(T):
            C = torch.cdist(qc[:, i], Rf).reshape(Q, M, T).permute(2, 0, 1).contiguous()  # (T,Q,M)
            cur = torch.empty_like(C)
            if prev is None:
                cur[0] = C[0]
                for j in range(1, T):
                    cur[j] = C[j] + cur[j - 1]
            else:
                cur[0] = C[0] + prev[0]
                m = torch.minimum(prev[1:], prev[:-1])  # (T-1,Q,M): up, diag for j>=1
                for j in range(1, T):
                    cur[j] = C[j] + torch.minimum(m[j - 1], cur[j - 1])
            prev = cur
        out.append(prev[T - 1])
    return torch.cat(out)


for variant in variants:
    for fold in range(1, 6):
        t0 = time.time()
        te_s, va_s = fold - 1, fold % 5
        tr = np.where((spk != te_s) & (spk != va_s))[0] if variant == "3spk" else np.where(spk != te_s)[0]
        te = np.where(spk == te_s)[0]
        D = dtw_dist(X[te], X[tr])
        pred = digit[tr][D.argmin(1).numpy()]
        acc = float((pred == digit[te]).mean())
        res = {"tag": f"dtw-mfcc13-{unorm}", "model": "dtw1nn", "feat": "mfcc", "unorm": unorm,
               "variant": variant, "fold": fold, "test_spk": fe.SPEAKERS[te_s], "seed": 0,
               "test": acc, "wall_s": time.time() - t0}
        print(json.dumps(res), flush=True)
        with open(os.environ.get("RESULTS", "results.jsonl"), "a") as f:
            f.write(json.dumps(res) + "\n")
