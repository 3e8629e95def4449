"""Data loading and rankcode's front end (numpy, f64), plus waveform augmentations."""
import glob, os, wave
import numpy as np

SR, WIN, HOP, NFFT, NMEL, CLIP = 8000, 200, 80, 256, 40, 4800
T = (CLIP - WIN) // HOP + 1  # 58
SPEAKERS = ["george", "jackson", "lucas", "nicolas", "yweweler"]
DATA = os.environ.get("FSDD", "../shared/datasets/fsdd/recordings")


def hz2mel(f):
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel2hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def melbank(warp=1.0, fmin=20.0, fmax=4000.0):
    """(129, 40) weights. warp != 1: VTLP, bin frequency f is read as w(f) (piecewise
    linear, w(f)=warp*f up to a knee, then linear to Nyquist->Nyquist)."""
    pts = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), NMEL + 2))
    f = np.arange(NFFT // 2 + 1) * SR / NFFT
    if warp != 1.0:
        nyq = SR / 2
        knee = 0.8 * nyq * min(1.0, 1.0 / warp)
        f = np.where(f <= knee, f * warp, warp * knee + (nyq - warp * knee) * (f - knee) / (nyq - knee))
    W = np.zeros((f.size, NMEL))
    for m in range(NMEL):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        up = (f - lo) / (c - lo)
        dn = (hi - f) / (hi - c)
        w = np.where(f <= c, up, dn)
        w[(f <= lo) | (f >= hi)] = 0.0
        W[:, m] = w
    return W


HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)
MEL = melbank()
_idx = np.arange(T)[:, None] * HOP + np.arange(WIN)[None, :]


def power_spec(x):
    """x: (N, 4800) f64 -> (N, T, 129) power."""
    fr = x[:, _idx] * HANN
    X = np.fft.rfft(fr, n=NFFT, axis=-1)
    return X.real ** 2 + X.imag ** 2


def logmel(x, bank=None):
    P = power_spec(x)
    if bank is None:
        E = P @ MEL
    else:  # per-clip banks (N,129,40)
        E = np.einsum("ntk,nkm->ntm", P, bank)
    return np.log(E + 1e-6)


def dct_matrix(M=NMEL, n=13):
    k = np.arange(n)[:, None]
    m = np.arange(M)[None, :]
    D = np.cos(np.pi * k * (m + 0.5) / M) * np.sqrt(2.0 / M)
    D[0] *= np.sqrt(0.5)
    return D.T  # (M, n)


DCT13 = dct_matrix()


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == SR and w.getsampwidth() == 2
        ch = w.getnchannels()
        a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        if ch > 1:
            a = a.reshape(-1, ch).mean(1)
    return a


def load_all(cache=None):
    """Returns list of raw waveforms, digit, speaker index, take."""
    if cache and os.path.exists(cache):
        z = np.load(cache, allow_pickle=True)
        return list(z["waves"]), z["digit"], z["spk"], z["take"]
    waves, digit, spk, take = [], [], [], []
    for p in sorted(glob.glob(DATA + "/*.wav")):
        d, s, t = os.path.basename(p)[:-4].split("_")
        waves.append(read_wav(p))
        digit.append(int(d)); spk.append(SPEAKERS.index(s)); take.append(int(t))
    if cache:
        wa = np.empty(len(waves), dtype=object); wa[:] = waves
        np.savez(cache, waves=wa, digit=np.array(digit), spk=np.array(spk), take=np.array(take))
    return waves, np.array(digit), np.array(spk), np.array(take)


def pad_trim(waves, shifts=None):
    """-> (N, 4800) array and number of audio frames per clip (for whole-utterance CMVN)."""
    out = np.zeros((len(waves), CLIP))
    nfr = np.zeros(len(waves), dtype=int)
    for i, w in enumerate(waves):
        if shifts is not None and shifts[i] != 0:
            s = shifts[i]
            w = np.concatenate([np.zeros(s), w]) if s > 0 else w[-s:]
        n = min(len(w), CLIP)
        out[i, :n] = w[:n]
        nfr[i] = max(1, min(T, (n - WIN) // HOP + 1 if n >= WIN else 1))
    return out, nfr


# ---------- waveform augmentations ----------
def speed(w, r):
    """Resample so the clip plays r times faster (pitch and tempo change together)."""
    n = max(2, int(round(len(w) / r)))
    return np.interp(np.arange(n) * r, np.arange(len(w)), w)


def add_noise(w, snr_db, rng):
    p = np.mean(w ** 2) + 1e-12
    return w + rng.standard_normal(len(w)) * np.sqrt(p / 10 ** (snr_db / 10))


VTLP_ALPHAS = np.linspace(0.9, 1.1, 21)
VTLP_BANKS = np.stack([melbank(a) for a in VTLP_ALPHAS])


def features(waves, kind="logmel", unorm="causal", rng=None, aug=()):
    """Raw waves -> (N, T, F) f64 features before global normalisation.
    unorm in none|causal|whole, applied per clip (as rankcode's front end does)."""
    waves = list(waves)
    shifts = None
    if rng is not None and aug:
        if "speed" in aug:
            waves = [speed(w, r) for w, r in zip(waves, rng.uniform(0.9, 1.1, len(waves)))]
        if "noise" in aug:
            waves = [add_noise(w, s, rng) for w, s in zip(waves, rng.uniform(10, 30, len(waves)))]
        if "shift" in aug:
            shifts = rng.integers(-400, 801, len(waves))
    x, nfr = pad_trim(waves, shifts)
    if rng is not None and "vtlp" in aug:
        F = logmel(x, VTLP_BANKS[rng.integers(0, len(VTLP_ALPHAS), len(waves))])
    else:
        F = logmel(x)
    if kind == "mfcc":
        F = F @ DCT13
    if unorm == "causal":
        F = F - np.cumsum(F, axis=1) / np.arange(1, T + 1)[None, :, None]
    elif unorm == "whole":
        for i in range(len(F)):
            a = F[i, : nfr[i]]
            F[i] = (F[i] - a.mean(0)) / np.maximum(a.std(0), 1e-12)
    return F
