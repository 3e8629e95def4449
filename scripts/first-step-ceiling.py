#!/usr/bin/env python3
"""How accurate can a temporal-MNIST decision at the first step be?

Trains, with numpy on the CPU, exactly the function a rankcode LSTM computes at t = 0
(zero state, so h = o * tanh(i * g); the forget gate multiplies c_{-1} = 0), stacked
--layers deep, with a softmax readout, on the input of the first step: the pixels of
bin 0 of the temporal encoding (docs/design.md, 'Tasks'; bytes of 243 and up, values
of 0.95 and up), or with --max-bin K the union of bins 0..K. Training follows
runs/t085 (docs/results.md): random shifts of up to 2
pixels, batch 128, Adam 2e-3 with a cosine schedule, gradients clipped to norm 1,
the last 5,000 training images for validation. Without the regularisers below it is
what `rankcode train --theta 0.1` trains (every decision at t = 0), ten times as fast
as rankcode on lavapipe or more, and prints the best validation epoch and the test
accuracy there. --dropout, --input-dropout, --weight-decay and --augment-drop add
regularisation (none by default).

Needs numpy. Example: scripts/first-step-ceiling.py --hidden 256 --layers 2
"""
import argparse
import gzip
import os
import sys
import time

try:
    import numpy as np
except ImportError:
    sys.exit("error: first-step-ceiling.py needs numpy (pip install numpy)")

ap = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
)
ap.add_argument("--hidden", type=int, default=125)
ap.add_argument("--layers", type=int, default=1)
ap.add_argument("--epochs", type=int, default=25)
ap.add_argument("--max-bin", type=int, default=0, help="input: the pixels of bins 0..K")
ap.add_argument("--shift", type=int, default=2, help="random shift of up to N pixels")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--dropout", type=float, default=0.0, help="dropout on each layer's output")
ap.add_argument("--input-dropout", type=float, default=0.0, help="dropout on the pixels")
ap.add_argument("--weight-decay", type=float, default=0.0, help="decoupled, as rankcode's")
ap.add_argument(
    "--augment-drop", type=float, default=0.0, help="pixels made background, as rankcode's"
)
default_data = os.path.join(os.environ.get("RANKCODE_DATA", "../shared/datasets"), "mnist")
ap.add_argument("--data", default=default_data, help="folder of the four IDX files")
args = ap.parse_args()
for name in ("dropout", "input_dropout", "augment_drop"):
    if not 0 <= getattr(args, name) < 1:
        ap.error(f"--{name.replace('_', '-')} must be in [0, 1)")
if args.weight_decay < 0:
    ap.error("--weight-decay must be at least 0")
H, L = args.hidden, args.layers
rng = np.random.default_rng(args.seed)


def read_idx(name):
    """An unsigned-byte IDX file (gzip); exits with an error naming the file if it is bad."""
    path = os.path.join(args.data, name)
    try:
        raw = gzip.open(path).read()
        if len(raw) < 4 or raw[:3] != b"\0\0\x08":
            raise ValueError("not an unsigned-byte IDX file (bad magic number)")
        dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(raw[3])]
        count = int(np.prod(dims))
        if len(raw) != 4 + 4 * len(dims) + count:
            needed = 4 + 4 * len(dims) + count
            raise ValueError(f"{len(raw)} bytes, but its header {dims} needs {needed}")
        return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)
    except (OSError, EOFError, ValueError) as e:
        sys.exit(f"error: {path}: {e}")


def first_step_input(images):
    """1 where a pixel's bin is at most --max-bin (the tool's exact integer formula)."""
    bins = np.minimum(19, (255 - images.astype(np.int32)) * 20 // 255)
    return (bins <= args.max_bin).reshape(len(images), -1).astype(np.float32)


def shifted(images):
    s = args.shift
    if s == 0:
        return images
    padded = np.pad(images, ((0, 0), (s, s), (s, s)))
    d = rng.integers(-s, s + 1, size=(len(images), 2))
    out = np.empty_like(images)
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            m = (d[:, 0] == dy) & (d[:, 1] == dx)
            out[m] = padded[m, s - dy : s - dy + 28, s - dx : s - dx + 28]
    return out


train_images = read_idx("train-images-idx3-ubyte.gz")
train_labels = read_idx("train-labels-idx1-ubyte.gz")
x_train, y_train = train_images[:55000], train_labels[:55000]
x_val, y_val = first_step_input(train_images[55000:]), train_labels[55000:]
x_test = first_step_input(read_idx("t10k-images-idx3-ubyte.gz"))
y_test = read_idx("t10k-labels-idx1-ubyte.gz")
print(f"pixels on at the first step: {x_val.sum(1).mean():.1f} a digit (validation)")


def uniform(shape, hidden):  # PyTorch's LSTM and Linear initialisation
    k = 1 / np.sqrt(hidden)
    return rng.uniform(-k, k, shape).astype(np.float32)


params, n_in = [], 784
for _ in range(L):  # gates i, g, o; the bias is bias_ih + bias_hh
    params += [uniform((n_in, 3 * H), H), uniform((3 * H,), H) + uniform((3 * H,), H)]
    n_in = H
params += [uniform((H, 10), H), uniform((10,), H)]


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def dropout(x, rate):
    """Inverted dropout: zeroes a `rate` fraction, scales the rest up; (output, mask)."""
    if rate == 0:
        return x, None
    mask = (rng.random(x.shape) >= rate).astype(np.float32) / (1 - rate)
    return x * mask, mask


def forward(x, train=False):
    caches, h = [], dropout(x, args.input_dropout)[0] if train else x
    for k in range(L):
        pre = h @ params[2 * k] + params[2 * k + 1]
        i, g, o = sigmoid(pre[:, :H]), np.tanh(pre[:, H : 2 * H]), sigmoid(pre[:, 2 * H :])
        tanh_c = np.tanh(i * g)
        h_in, h = h, o * tanh_c
        h, mask = dropout(h, args.dropout) if train else (h, None)
        caches.append((h_in, i, g, o, tanh_c, mask))
    return h @ params[-2] + params[-1], h, caches


def gradients(x, y):
    logits, h, caches = forward(x, train=True)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(x)), y] -= 1
    dz = p / len(x)  # mean cross-entropy
    grads = [None] * len(params)
    grads[-2], grads[-1] = h.T @ dz, dz.sum(0)
    dh = dz @ params[-2].T
    for k in reversed(range(L)):
        h_in, i, g, o, tanh_c, mask = caches[k]
        if mask is not None:
            dh = dh * mask
        dc = dh * o * (1 - tanh_c * tanh_c)
        dpre = np.concatenate(
            [dc * g * i * (1 - i), dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)], 1
        )
        grads[2 * k], grads[2 * k + 1] = h_in.T @ dpre, dpre.sum(0)
        dh = dpre @ params[2 * k].T
    return grads


def accuracy(x, y):
    return float((forward(x)[0].argmax(1) == y).mean())


m = [np.zeros_like(q) for q in params]
v = [np.zeros_like(q) for q in params]
step, batch = 0, 128
best_val, best_epoch, test_at_best = 0.0, 0, 0.0
for epoch in range(1, args.epochs + 1):
    start = time.time()
    lr = 2e-3 * (1 + np.cos(np.pi * (epoch - 1) / args.epochs)) / 2
    order = rng.permutation(len(x_train))
    images = shifted(x_train[order])
    if args.augment_drop > 0:  # after the shifts, as rankcode draws them
        images = np.where(rng.random(images.shape) < args.augment_drop, 0, images)
    xs, ys = first_step_input(images.astype(np.uint8)), y_train[order]
    for s in range(0, len(xs), batch):
        grads = gradients(xs[s : s + batch], ys[s : s + batch])
        norm = np.sqrt(sum(float((g * g).sum()) for g in grads))
        scale = min(1.0, 1.0 / (norm + 1e-6))
        step += 1
        for q, g, mq, vq in zip(params, grads, m, v):
            g = g * scale
            mq *= 0.9
            mq += 0.1 * g
            vq *= 0.999
            vq += 0.001 * g * g
            q *= 1 - lr * args.weight_decay
            q -= lr * (mq / (1 - 0.9**step)) / (np.sqrt(vq / (1 - 0.999**step)) + 1e-8)
    val = accuracy(x_val, y_val)
    if val > best_val:
        best_val, best_epoch, test_at_best = val, epoch, accuracy(x_test, y_test)
    print(f"epoch {epoch}: validation {100 * val:.2f}% ({time.time() - start:.0f} s)", flush=True)
print(
    f"hidden {H}, layers {L}, bins 0..{args.max_bin}, shift {args.shift}: best validation "
    f"{100 * best_val:.2f}% at epoch {best_epoch}; test there {100 * test_at_best:.2f}%"
)
