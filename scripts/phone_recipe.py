"""The phone-side recipe for an exported hub model, rebuilt independently of the hub (Pillow + numpy) from
the model card in the file's metadata: upright by EXIF, RGB, short side resized bilinearly, centre crop,
x/255, (x − mean)/std.

usage: phone_recipe.py MODEL.onnx PHOTO ...   prints a JSON list: each photo's first label
Imported by onnx_check.py (`phone_inputs`). Needs onnxruntime, numpy and Pillow (the tests' .venv has them).
"""
import json
import sys

import numpy as np


def phone_inputs(paths, preprocessing):
    """N×3×S×S float32: the photos at `paths` as the model card's `preprocessing` says a phone prepares them."""
    from PIL import Image, ImageOps

    short, size = preprocessing["short_side"], preprocessing["crop_size"]
    mean, std = np.array(preprocessing["mean"], np.float32), np.array(preprocessing["std"], np.float32)
    batch = []
    for path in paths:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        scale = short / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        a = np.asarray(im.crop((left, top, left + size, top + size)), np.float32) / 255.0
        batch.append(((a - mean) / std).transpose(2, 0, 1))
    return np.stack(batch)


def main():
    import onnxruntime as ort

    if len(sys.argv) < 3:
        sys.exit(__doc__.strip().splitlines()[-2])
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    labels, preprocessing = json.loads(meta["labels"]), json.loads(meta["model_card"])["preprocessing"]
    first = []
    for path in sys.argv[2:]:
        (p,) = session.run(["probabilities"], {"image": phone_inputs([path], preprocessing)})
        first.append(labels[int(p[0].argmax())])
    print(json.dumps(first))


if __name__ == "__main__":
    main()
