"""Runs an exported hub model in onnxruntime (an independent engine) and compares it with the hub.

usage: onnx_check.py MODEL.onnx INPUTS.f32 EXPECTED.f32 N
INPUTS.f32: N×224×224×3 float32 (the hub's model inputs, interleaved RGB); EXPECTED.f32: N×C float32 (the
hub's probabilities). Prints a JSON line: max_abs_diff, top1_agree, labels (from metadata_props).
"""
import json
import sys

import numpy as np
import onnxruntime as ort

model, inputs, expected, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
labels = json.loads(meta["labels"])
x = np.fromfile(inputs, dtype=np.float32).reshape(n, 224, 224, 3).transpose(0, 3, 1, 2).copy()
want = np.fromfile(expected, dtype=np.float32).reshape(n, len(labels))
(got,) = session.run(["probabilities"], {"image": x})
print(json.dumps({
    "max_abs_diff": float(np.abs(got - want).max()),
    "top1_agree": int((got.argmax(1) == want.argmax(1)).sum()),
    "n": n,
    "labels": labels,
    "input_name": session.get_inputs()[0].name,
    "output_shape": list(got.shape),
    "mean": json.loads(meta["mean"]), "std": json.loads(meta["std"]), "input_size": int(meta["input_size"]),
}))
