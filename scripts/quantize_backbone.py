"""Writes the int8 copy of the backbone that OpenVINO runs by default (`embedding.precision = auto`):

  embedder-int8.onnx   embedder.onnx with its convolutions' and classifier's weights quantised to int8 per
                       output channel and their inputs to uint8 per tensor (QDQ: QuantizeLinear /
                       DequantizeLinear pairs that OpenVINO turns into int8 kernels); the stem and the head
                       convolution stay in float, which keeps the descriptor closest to f32's
  embedder-int8.json   its sha256 (part of the backbone id: nodes whose int8 files differ never compare
                       vectors), the source's sha256, the calibration, and the self-check's results

Post-training static quantisation by onnxruntime's quantiser (min-max ranges), calibrated on 160 crops of
the photos python3-skimage ships (never on the user's photos: set-up never reads them): random crops of
35–100% of a side, some mirrored, each made the model input as the hub makes it (short side to 274, the
centre 240, (x/255 − 0.498)/0.502). Measured on five look-alike flower classes (docs/benchmarks.md,
*int8*): the label check catches as many wrong labels as with f32, the backbone runs in 0.7× bf16's CPU
time, and its descriptor is within a cosine of 0.99 of f32's on average.

Checks itself, in onnxruntime: the cat photo lands in the cat classes, the coffee photo at espresso, and
every skimage photo's descriptor within a cosine of 0.95 of embedder.onnx's; else it exits non-zero and
writes nothing. Idempotent: does nothing when embedder-int8.json names the same source hash and version.

usage: quantize_backbone.py MODEL_DIR SKIMAGE_DATA_DIR
Run with a Python that has onnxruntime, onnx, numpy and Pillow (scripts/setup.sh makes one in models/venv).
"""
import json
import logging
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_backbone import CAT_CLASSES, ESPRESSO, model_array, sha256  # noqa: E402

# Bumped whenever what the quantiser writes changes (a new version gives a new file hash, so a new backbone
# id: the hub embeds what the earlier file embedded again).
VERSION = "1"
CROPS = 160
SEED = 0
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
          "retina.jpg", "ihc.png", "grass.png", "gravel.png", "color.png", "camera.png", "moon.png", "brick.png"]
MIN_COSINE = 0.95


def load_photos(data_dir):
    """The skimage photos, decoded once, as RGB Pillow images by name."""
    from PIL import Image
    return {name: Image.open(os.path.join(data_dir, name)).convert("RGB") for name in PHOTOS}


def calibration_inputs(photos):
    from PIL import Image
    rng = random.Random(SEED)
    inputs = []
    for i in range(CROPS):
        image = photos[PHOTOS[i % len(PHOTOS)]]
        w, h = image.size
        f = rng.uniform(0.35, 1.0)
        cw, ch = int(w * f), min(h, int(h * f * rng.uniform(0.8, 1.25)))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        image = image.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        inputs.append(model_array(image))
    return inputs


def self_check(ort, source, quantised, photos):
    import numpy as np
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    f32 = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(quantised, options, providers=["CPUExecutionProvider"])
    results, worst = {}, 1.0
    for name, photo in photos.items():
        x = model_array(photo)
        (a, _), (b, logits) = f32.run(None, {"image": x}), int8.run(None, {"image": x})
        cosine = float((a[0] * b[0]).sum() / np.linalg.norm(a[0]) / np.linalg.norm(b[0]))
        worst = min(worst, cosine)
        results[name] = {"cosine_to_f32": round(cosine, 4), "top1": int(np.argmax(logits[0]))}
    problems = []
    if results["chelsea.png"]["top1"] not in CAT_CLASSES:
        problems.append(f"chelsea.png is class {results['chelsea.png']['top1']}, not a cat")
    if results["coffee.png"]["top1"] != ESPRESSO:
        problems.append(f"coffee.png is class {results['coffee.png']['top1']}, not espresso")
    if worst < MIN_COSINE:
        problems.append(f"a descriptor {worst:.4f} from f32's (at least {MIN_COSINE} wanted)")
    return results, worst, problems


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-2])
    model_dir, data_dir = sys.argv[1], sys.argv[2]
    source = os.path.join(model_dir, "embedder.onnx")
    out, meta = os.path.join(model_dir, "embedder-int8.onnx"), os.path.join(model_dir, "embedder-int8.json")
    source_hash = sha256(source)
    try:
        with open(meta) as f:
            known = json.load(f)
        if known.get("source_sha256") == source_hash and known.get("version") == VERSION and os.path.exists(out) \
                and sha256(out) == known.get("sha256"):
            return
    except (OSError, ValueError):
        pass

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    ort.set_default_logger_severity(3)  # not its notes on unused constants
    logging.getLogger().setLevel(logging.ERROR)  # nor the quantiser's advice to run its pre-processing first
    photos = load_photos(data_dir)
    inputs = calibration_inputs(photos)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(inputs)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {"image": x}

    convolutions = [node.name for node in onnx.load(source).graph.node if node.op_type == "Conv"]
    keep_float = [convolutions[0], convolutions[-1]]  # the stem and the head convolution
    scratch = out + ".partial"
    quantize_static(source, scratch, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep_float)
    results, worst, problems = self_check(ort, source, scratch, photos)
    if problems:
        os.remove(scratch)
        sys.exit("quantize_backbone: the int8 model fails its self-check: " + "; ".join(problems))
    os.replace(scratch, out)
    with open(meta + ".partial", "w") as f:
        json.dump({"version": VERSION, "sha256": sha256(out), "source_sha256": source_hash,
                   "quantiser": f"onnxruntime {ort.__version__}, QDQ, per-channel int8 weights, uint8 activations, min-max",
                   "calibration": f"{CROPS} crops of {len(PHOTOS)} skimage photos, seed {SEED}",
                   "float_nodes": keep_float, "min_cosine_to_f32": round(worst, 4), "self_check": results}, f, indent=2)
    os.replace(meta + ".partial", meta)
    print(f"quantize_backbone: wrote {out} (descriptors within {worst:.4f} of f32's on the skimage photos)")


if __name__ == "__main__":
    main()
