"""Does fine-tuning EfficientNet-Lite0's last block pay on these classes? A PyTorch measurement, outside the hub.

usage: finetune_experiment.py PHOTOS [--splits 5] [--first-split 0] [--views 0] [--epochs 10] [--lr 1e-4]

PHOTOS holds one folder of photos per class. Each split shuffles every class's photos as train_holdout.py
does (seed 1000 + split): 25 held out, the next 35 for training. Two classifiers are scored on the held-out
photos, both on the hub's descriptor (convert_backbone.py: the head's 1280 and the last three stages' pooled
outputs, each unit length, halved):
  linear       a softmax regression (L-BFGS, L2) on the frozen descriptor of each photo's centre crop;
  fine-tuned   the same regression as a start, then the last block (192 -> 320) and the head convolution
               trained with it (AdamW, --lr for the backbone, 1e-3 for the regression; label smoothing 0.1;
               batch norm frozen at ImageNet's statistics), --epochs passes over the photos and, with
               --views N, N random crops of each (scale 0.4-1, flips, brightness and colour +-20%).
The frozen part of the network runs once per photo (and view), so the training pass costs the last block
alone. Prints each split's accuracies and times, then the means.

Run with Debian's /usr/bin/python3 (python3-torch) after `make setup` (the weights in models/pip).
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_backbone as cb  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("photos")
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--first-split", type=int, default=0)
    p.add_argument("--views", type=int, default=0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weights", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "pip"))
    a = p.parse_args()

    import numpy as np
    import torch
    from PIL import Image, ImageEnhance
    F = torch.nn.functional
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    features = cb.imagenet_model(torch, cb.find_weights(a.weights))[0]
    last, conv_head = features._blocks[15], features._conv_head
    tuned = list(last.parameters()) + list(conv_head.parameters())
    start = [t.detach().clone() for t in tuned]

    def pool(x):
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def unit(v):
        return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def frozen(x):
        """The input of the last block, and the 112- and 192-channel stages' pooled outputs."""
        with torch.no_grad():
            x = F.relu6(features._bn0(features._conv_stem(x)))
            pooled = []
            for i in range(15):
                x = features._blocks[i](x)
                if i in cb.STAGE_ENDS[:2]:
                    pooled.append(unit(pool(x)))
            return x, pooled[0], pooled[1]

    def descriptor(x, p112, p192):
        x = last(x)
        head = unit(pool(F.relu6(features._bn1(conv_head(x)))))
        return torch.cat([head, p112, p192, unit(pool(x))], 1) * 0.5

    def views(path, n, rng):
        im = Image.open(path).convert("RGB")
        out = [cb.model_array(im)]
        w, h = im.size
        for _ in range(n):
            s, r = rng.uniform(0.4, 1.0), rng.uniform(3 / 4, 4 / 3)
            cw, ch = min(w, round((s * w * h * r) ** 0.5)), min(h, round((s * w * h / r) ** 0.5))
            left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
            v = im.crop((left, top, left + cw, top + ch))
            if rng.random() < 0.5:
                v = v.transpose(Image.FLIP_LEFT_RIGHT)
            v = ImageEnhance.Color(ImageEnhance.Brightness(v).enhance(rng.uniform(0.8, 1.2))).enhance(rng.uniform(0.8, 1.2))
            out.append(cb.model_array(v))
        return torch.from_numpy(np.concatenate(out))

    def regression(x, y, classes):
        w = torch.zeros(x.shape[1], classes, requires_grad=True)
        b = torch.zeros(classes, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(x @ w * 10 + b, y) + 1e-3 * (w ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        linear = torch.nn.Linear(x.shape[1], classes)
        linear.weight.data, linear.bias.data = (w.detach() * 10).t().contiguous(), b.detach().clone()
        return linear

    def batched(parts):
        return [torch.cat(column) for column in zip(*parts)]

    classes = sorted(d for d in os.listdir(a.photos) if os.path.isdir(os.path.join(a.photos, d)))
    scores = {"linear": [], "fine-tuned": []}
    for split in range(a.first_split, a.first_split + a.splits):
        rng = random.Random(1000 + split)
        train, held = [], []
        for label, c in enumerate(classes):
            files = sorted(os.path.join(a.photos, c, f) for f in os.listdir(os.path.join(a.photos, c)))
            rng.shuffle(files)
            held += [(f, label) for f in files[:25]]
            train += [(f, label) for f in files[25:60]]
        began = time.time()
        view_rng = random.Random(split)
        x, p112, p192 = batched([frozen(views(f, a.views, view_rng)) for f, _ in train])
        hx, h112, h192 = batched([frozen(views(f, 0, view_rng)) for f, _ in held])
        frozen_s = time.time() - began
        y = torch.tensor([label for _, label in train]).repeat_interleave(a.views + 1)
        hy = torch.tensor([label for _, label in held])
        centre = torch.arange(0, len(y), a.views + 1)
        with torch.no_grad():
            linear = regression(descriptor(x[centre], p112[centre], p192[centre]), y[centre], len(classes))
            scores["linear"].append(float((linear(descriptor(hx, h112, h192)).argmax(1) == hy).float().mean()))
        began = time.time()
        opt = torch.optim.AdamW([{"params": tuned, "lr": a.lr}, {"params": linear.parameters(), "lr": 1e-3}], weight_decay=1e-4)
        order = torch.Generator().manual_seed(split)
        for _ in range(a.epochs):
            perm = torch.randperm(len(y), generator=order)
            for i in range(0, len(y), 32):
                batch = perm[i:i + 32]
                loss = F.cross_entropy(linear(descriptor(x[batch], p112[batch], p192[batch])), y[batch], label_smoothing=0.1)
                opt.zero_grad()
                loss.backward()
                opt.step()
        tuning_s = time.time() - began
        with torch.no_grad():
            scores["fine-tuned"].append(float((linear(descriptor(hx, h112, h192)).argmax(1) == hy).float().mean()))
            for t, s in zip(tuned, start):
                t.copy_(s)
        print(f"split {split}: linear {scores['linear'][-1]:.3f}, fine-tuned {scores['fine-tuned'][-1]:.3f} "
              f"(frozen part {frozen_s:.1f} s for {len(train)} photos x {a.views + 1}, training {tuning_s:.1f} s)", flush=True)
    for name, values in scores.items():
        print(f"{name}: mean {np.mean(values):.3f} (min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
