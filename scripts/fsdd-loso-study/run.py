"""LOSO training of small classifiers on FSDD with rankcode's front end.
Appends one JSON line per (fold, seed) to results.jsonl."""
import argparse, json, os, time, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as Fn
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fe

torch.set_num_threads(int(__import__('os').environ.get('NT','2')))
P = argparse.ArgumentParser()
P.add_argument("--model", default="cnn")  # cnn (causal 1-D, cum-mean pool) | lstm | lstm-mean (cum-mean pool) | bigru | cnn2d
P.add_argument("--feat", default="logmel")  # logmel | mfcc
P.add_argument("--unorm", default="causal")  # none | causal | whole
P.add_argument("--aug", default="")  # comma list: shift,speed,noise,vtlp,specaug,mixup
P.add_argument("--epochs", type=int, default=30)
P.add_argument("--lr", type=float, default=2e-3)
P.add_argument("--wd", type=float, default=1e-2)
P.add_argument("--batch", type=int, default=64)
P.add_argument("--width", type=int, default=64)
P.add_argument("--seeds", default="1")
P.add_argument("--folds", default="1,2,3,4,5")
P.add_argument("--variant", default="3spk")  # 3spk | 4spk
P.add_argument("--prefix_loss", type=int, default=0)  # >0: loss averaged over cum-mean logits at frames >= this
P.add_argument("--rc", type=float, default=0.0)  # >0: rank-coding loss, CE at the first frame whose top softmax >= this
P.add_argument("--dense", type=int, default=0)  # with --rc: CE averaged over frames from this one (1-based) to the decision
P.add_argument("--tag", default="")
P.add_argument("--smoke", type=int, default=0)
A = P.parse_args()
AUG = set(a for a in A.aug.split(",") if a)
WAVE_AUG = AUG & {"shift", "speed", "noise", "vtlp"}
HALF = 29


class CausalCNN(nn.Module):
    def __init__(s, F, C, k=5, dils=(1, 2, 4, 8), drop=0.1):
        super().__init__()
        s.pads, s.convs, s.bns = [], nn.ModuleList(), nn.ModuleList()
        cin = F
        for d in dils:
            s.pads.append((k - 1) * d)
            s.convs.append(nn.Conv1d(cin, C, k, dilation=d))
            s.bns.append(nn.BatchNorm1d(C))
            cin = C
        s.drop = nn.Dropout(drop)
        s.out = nn.Linear(C, 10)

    def forward(s, x):  # (B,T,F) -> logits (B,T,10) from the cumulative mean of features
        h = x.transpose(1, 2)
        for i, (p, c, b) in enumerate(zip(s.pads, s.convs, s.bns)):
            y = s.drop(Fn.relu(b(c(Fn.pad(h, (p, 0))))))
            h = y + h if i > 0 else y
        h = h.transpose(1, 2)
        h = torch.cumsum(h, 1) / torch.arange(1, h.shape[1] + 1, device=h.device)[None, :, None]
        return s.out(h)


class LSTM(nn.Module):
    def __init__(s, F, H, pool=False):
        super().__init__()
        s.rnn = nn.LSTM(F, H, batch_first=True)
        s.out = nn.Linear(H, 10)
        s.pool = pool

    def forward(s, x):  # (B,T,10), causal; pool: the readout reads the running mean of h
        h = s.rnn(x)[0]
        if s.pool:
            h = torch.cumsum(h, 1) / torch.arange(1, h.shape[1] + 1, device=h.device)[None, :, None]
        return s.out(h)


class BiGRU(nn.Module):
    def __init__(s, F, H):
        super().__init__()
        s.rnn = nn.GRU(F, H, batch_first=True, bidirectional=True)
        s.out = nn.Linear(2 * H, 10)

    def forward(s, x):
        return s.out(s.rnn(x)[0].mean(1))[:, None, :]  # (B,1,10) non-causal


class CNN2D(nn.Module):
    def __init__(s, F, C):
        super().__init__()
        c = [1, C // 4, C // 2, C]
        L = []
        for i in range(3):
            L += [nn.Conv2d(c[i], c[i + 1], 3, padding=1), nn.BatchNorm2d(c[i + 1]), nn.ReLU()]
            if i < 2:
                L.append(nn.MaxPool2d(2))
        s.net = nn.Sequential(*L)
        s.drop = nn.Dropout(0.2)
        s.out = nn.Linear(C, 10)

    def forward(s, x):
        h = s.net(x[:, None])  # (B,C,T',F')
        return s.out(s.drop(h.mean((2, 3))))[:, None, :]


def make_model(F):
    return {"cnn": lambda: CausalCNN(F, A.width), "lstm": lambda: LSTM(F, A.width),
            "lstm-mean": lambda: LSTM(F, A.width, pool=True),
            "bigru": lambda: BiGRU(F, A.width), "cnn2d": lambda: CNN2D(F, A.width)}[A.model]()


def specaug(x, g):
    B, T, F = x.shape
    x = x.clone()
    fw = 5 if F >= 40 else 2
    for _ in range(2):
        w = torch.randint(0, 7, (B,), generator=g); t0 = (torch.rand(B, generator=g) * (T - w)).long()
        ar = torch.arange(T)[None]
        x[(ar >= t0[:, None]) & (ar < (t0 + w)[:, None])] = 0.0
        w = torch.randint(0, fw + 1, (B,), generator=g); f0 = (torch.rand(B, generator=g) * (F - w)).long()
        ar = torch.arange(F)[None]
        m = (ar >= f0[:, None]) & (ar < (f0 + w)[:, None])
        x = x.masked_fill(m[:, None, :], 0.0)
    return x


THETAS = [0.3 + 0.7 * (1 - 0.5 ** (i / 4)) for i in range(48)]  # dense near 1


def rc_decisions(out, theta):
    """First frame whose top softmax reaches theta, else the last (rankcode's rule)."""
    fired = Fn.softmax(out, -1).max(-1).values >= theta  # (B,T)
    T = out.shape[1]
    first = torch.where(fired.any(1), fired.float().argmax(1), torch.full((out.shape[0],), T - 1))
    return first


def rc_loss(out, y):
    with torch.no_grad():
        ts = rc_decisions(out, A.rc)
    if not A.dense:
        return Fn.cross_entropy(out[torch.arange(len(y)), ts], y)
    T = out.shape[1]
    s = torch.arange(T)[None]
    lo = torch.minimum(torch.full_like(ts, A.dense - 1), ts)
    m = ((s >= lo[:, None]) & (s <= ts[:, None])).float()
    ce = Fn.cross_entropy(out.reshape(-1, 10), y[:, None].expand(-1, T).reshape(-1), reduction="none").reshape(-1, T)
    return ((ce * m).sum(1) / m.sum(1)).mean()


def rc_sweep(out, y):
    """(accuracy at decision, mean decision frame, 1-based) for each threshold in THETAS."""
    res = []
    for th in THETAS:
        d = rc_decisions(out, th)
        acc = (out[torch.arange(len(y)), d].argmax(1) == y).float().mean().item()
        res.append((acc, (d + 1).float().mean().item()))
    return res


def rc_select(hist):
    """Epoch and threshold: the best validation accuracy within HALF frames on average."""
    best = None
    for e, h in enumerate(hist):
        for i, (acc, dec) in enumerate(h["rc_va"]):
            if dec <= HALF and (best is None or acc >= best[0]):
                best = (acc, e, i)
    if best is None:
        return {"rc_test": 0.0}
    _, e, i = best
    return {"rc_epoch": e, "rc_theta": THETAS[i], "rc_val": hist[e]["rc_va"][i][0],
            "rc_val_dec": hist[e]["rc_va"][i][1], "rc_test": hist[e]["rc_te"][i][0],
            "rc_test_dec": hist[e]["rc_te"][i][1]}


waves, digit, spk, take = fe.load_all()
N = len(waves)
if A.smoke:
    keep = np.arange(N)[take < 6]
    waves = [waves[i] for i in keep]; digit, spk, take = digit[keep], spk[keep], take[keep]
clean = fe.features(waves, A.feat, A.unorm)  # (N,T,F) before global norm
Fdim = clean.shape[2]

for fold in [int(f) for f in A.folds.split(",")]:
    te_s = fold - 1
    va_s = fold % 5
    if A.variant == "3spk":
        tr = np.where((spk != te_s) & (spk != va_s))[0]
        va = np.where(spk == va_s)[0]
    else:
        tr = np.where((spk != te_s) & (take >= 5))[0]
        va = np.where((spk != te_s) & (take < 5))[0]
    te = np.where(spk == te_s)[0]
    mu = clean[tr].reshape(-1, Fdim).mean(0); sd = clean[tr].reshape(-1, Fdim).std(0) + 1e-8
    norm = lambda f: torch.tensor((f - mu) / sd, dtype=torch.float32)
    Xva, Xte = norm(clean[va]), norm(clean[te])
    yva, yte = torch.tensor(digit[va]), torch.tensor(digit[te])
    ytr = torch.tensor(digit[tr])
    tr_waves = [waves[i] for i in tr]
    for seed in [int(s) for s in A.seeds.split(",")]:
        t0 = time.time()
        torch.manual_seed(seed * 1000 + fold); rng = np.random.default_rng(seed * 1000 + fold)
        g = torch.Generator().manual_seed(seed * 7 + fold)
        model = make_model(Fdim)
        opt = torch.optim.AdamW(model.parameters(), lr=A.lr, weight_decay=A.wd)
        steps = A.epochs * ((len(tr) + A.batch - 1) // A.batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, A.lr, total_steps=steps, pct_start=0.1) \
            if not A.model.startswith("lstm") else torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        hist = []
        Xtr_clean = norm(clean[tr])
        for ep in range(A.epochs):
            model.train()
            Xtr = norm(fe.features(tr_waves, A.feat, A.unorm, rng, WAVE_AUG)) if WAVE_AUG else Xtr_clean
            perm = torch.randperm(len(tr), generator=g)
            tl = 0.0
            for b in range(0, len(tr), A.batch):
                idx = perm[b:b + A.batch]
                x, y = Xtr[idx], ytr[idx]
                if "specaug" in AUG:
                    x = specaug(x, g)
                lam, y2 = 1.0, y
                if "mixup" in AUG:
                    lam = float(np.random.default_rng(int(rng.integers(1 << 30))).beta(0.4, 0.4))
                    lam = max(lam, 1 - lam)
                    p2 = torch.randperm(len(idx), generator=g)
                    x = lam * x + (1 - lam) * x[p2]; y2 = y[p2]
                out = model(x)
                if A.rc:
                    lf = lambda yy: rc_loss(out, yy)
                elif A.prefix_loss and out.shape[1] > 1:
                    o = out[:, A.prefix_loss - 1:]
                    lf = lambda yy: Fn.cross_entropy(o.reshape(-1, 10), yy[:, None].expand(-1, o.shape[1]).reshape(-1))
                else:
                    lf = lambda yy: Fn.cross_entropy(out[:, -1], yy)
                loss = lam * lf(y) + (1 - lam) * lf(y2) if lam < 1 else lf(y)
                opt.zero_grad(); loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step(); sched.step()
                tl += loss.item() * len(idx)
            model.eval()
            with torch.no_grad():
                ov, ot = model(Xva), model(Xte)
            r = {"ep": ep, "loss": tl / len(tr),
                 "va": (ov[:, -1].argmax(1) == yva).float().mean().item(),
                 "te": (ot[:, -1].argmax(1) == yte).float().mean().item()}
            if ov.shape[1] > 1:
                r["va_half"] = (ov[:, HALF - 1].argmax(1) == yva).float().mean().item()
                r["te_half"] = (ot[:, HALF - 1].argmax(1) == yte).float().mean().item()
            if A.rc:
                r["rc_va"], r["rc_te"] = rc_sweep(ov, yva), rc_sweep(ot, yte)
            hist.append(r)
        best = max(range(len(hist)), key=lambda e: (hist[e]["va"], e))
        res = {"tag": A.tag, "model": A.model, "feat": A.feat, "unorm": A.unorm, "aug": sorted(AUG),
               "variant": A.variant, "prefix_loss": A.prefix_loss, "rc": A.rc, "dense": A.dense, "epochs": A.epochs, "lr": A.lr,
               "width": A.width, "fold": fold, "test_spk": fe.SPEAKERS[te_s], "seed": seed,
               "best_ep": best, "val": hist[best]["va"], "test": hist[best]["te"],
               "test_last_ep": hist[-1]["te"], "wall_s": time.time() - t0, "smoke": A.smoke}
        if "te_half" in hist[0]:
            bh = max(range(len(hist)), key=lambda e: (hist[e]["va_half"], e))
            res.update(test_half_at_best=hist[best]["te_half"], test_half_sel_half=hist[bh]["te_half"])
        if A.rc:
            res.update(rc_select(hist))
        res["hist"] = [{k: round(v, 4) for k, v in h.items() if not k.startswith("rc_")} for h in hist]
        print(json.dumps({k: v for k, v in res.items() if k != "hist"}), flush=True)
        if not A.smoke:
            with open(os.environ.get("RESULTS", "results.jsonl"), "a") as f:
                f.write(json.dumps(res) + "\n")
