"""Runs an exported hub model in onnxruntime (an independent engine) and compares it with the hub.

usage: onnx_check.py MODEL.onnx INPUTS.f32 EXPECTED.f32 N [PHOTO ...]
INPUTS.f32: N×S×S×3 float32, S the metadata's input_size (the hub's model inputs, interleaved RGB); EXPECTED.f32: N×C float32 (the
hub's probabilities). With the N photos themselves, also runs the phone-side recipe (phone_recipe.py)
rebuilt independently (Pillow + numpy) from the model card in the file's metadata. Prints a JSON line: max_abs_diff, top1_agree, labels, the
metadata, and for the recipe recipe_top1_agree and recipe_max_abs_diff.
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from phone_recipe import phone_inputs  # noqa: E402

model, inputs, expected, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
photos = sys.argv[5:]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
labels = json.loads(meta["labels"])
size = int(meta["input_size"])
x = np.fromfile(inputs, dtype=np.float32).reshape(n, size, size, 3).transpose(0, 3, 1, 2).copy()
want = np.fromfile(expected, dtype=np.float32).reshape(n, len(labels))
(got,) = session.run(["probabilities"], {"image": x})
result = {
    "max_abs_diff": float(np.abs(got - want).max()),
    "top1_agree": int((got.argmax(1) == want.argmax(1)).sum()),
    "n": n,
    "labels": labels,
    "input_name": session.get_inputs()[0].name,
    "input_shape": session.get_inputs()[0].shape,
    "output_shape": list(got.shape),
    "mean": json.loads(meta["mean"]), "std": json.loads(meta["std"]), "input_size": int(meta["input_size"]),
}
card = json.loads(meta["model_card"]) if "model_card" in meta else None
result["model_card"] = card
if photos and card:
    (phone,) = session.run(["probabilities"], {"image": phone_inputs(photos, card["preprocessing"])})
    result["recipe_top1_agree"] = int((phone.argmax(1) == want.argmax(1)).sum())
    result["recipe_max_abs_diff"] = float(np.abs(phone - want).max())
    result["recipe_mean_abs_diff"] = float(np.abs(phone - want).mean())
print(json.dumps(result))
