"""A trained model's accuracy on photos it never saw, through the hub as a user would reach it.

usage: train_holdout.py PHOTOS [--train 35] [--holdout 25] [--splits 5] [--seed 1] [--imagehub .build/release/imagehub]
                        [--phone .venv/bin/python] [--fine-tune]

PHOTOS holds one folder of photos per class. For each split (seeded), every class's photos are shuffled:
--holdout of them are held out and --train of the rest go into a fresh hub (`imagehub ingest`, one folder a
label, embeddings on); the hub trains on every label (POST /v1/training-jobs) and the model predicts each
held-out photo (POST /v1/models/{id}/predict). Prints each split's accuracy and the mean, min and max.
With --phone (a Python with onnxruntime, numpy and Pillow), the exported model (GET
/v1/models/{id}/download?format=onnx) also predicts each held-out photo in onnxruntime, prepared as a phone
would from the model card (Pillow: upright, short side bilinear, centre crop, normalised): its accuracy,
and on how many photos its first label is the hub's.
With --fine-tune, a second model is trained on the same hub and split with `fine_tune` (the backbone's last
block trained with the head) and scored on the same held-out photos: both accuracies, and the training job's
seconds of each, side by side.
The backbone is the one the hub would load (IMAGEHUB_EMBEDDING_MODELS chooses another).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quest_loop import call, predict, start_hub, stop_hub, train  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("photos")
    p.add_argument("--train", type=int, default=35)
    p.add_argument("--holdout", type=int, default=25)
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--imagehub", default=".build/release/imagehub")
    p.add_argument("--phone", help="a Python with onnxruntime, numpy and Pillow: score the exported ONNX model too")
    p.add_argument("--fine-tune", action="store_true", help="also train with fine_tune on the same split and compare")
    a = p.parse_args()
    hub = os.path.abspath(a.imagehub)
    classes = sorted(d for d in os.listdir(a.photos) if os.path.isdir(os.path.join(a.photos, d)))
    if len(classes) < 2:
        sys.exit(f"train_holdout: {a.photos} needs a folder per class, at least two")
    accuracies, phone_accuracies, agreements, tuned_accuracies = [], [], [], []
    seconds = {"linear": [], "fine-tuned": []}
    for split in range(a.splits):
        rng = random.Random(a.seed * 1000 + split)
        work = tempfile.mkdtemp(prefix="train-holdout-")
        try:
            holdout = {}
            for c in classes:
                files = sorted(os.path.join(os.path.abspath(a.photos), c, f) for f in os.listdir(os.path.join(a.photos, c)))
                rng.shuffle(files)
                if len(files) < a.holdout + 5:
                    sys.exit(f"train_holdout: {c} has {len(files)} photos, too few for {a.holdout} held out")
                holdout[c] = files[:a.holdout]
                os.makedirs(os.path.join(work, "train", c))
                for f in files[a.holdout:a.holdout + a.train]:
                    os.symlink(f, os.path.join(work, "train", c, os.path.basename(f)))
            data = os.path.join(work, "hub")
            # Status 1 says some files were refused (a copy of another, say): the rest are in.
            ingest = subprocess.run([hub, "ingest", os.path.join(work, "train"), "--data", data,
                                     "--labels-from-folders", "--create-labels"], capture_output=True, text=True)
            if ingest.returncode not in (0, 1):
                sys.exit(f"train_holdout: imagehub ingest failed:\n{ingest.stderr}")
            key = subprocess.run([hub, "keys", "create", "--role", "admin", "--data", data],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            server, base = start_hub(hub, data)
            try:
                model = train(base, key, classes, a.seed + split)
                seconds["linear"].append(training_seconds(base, key, model))
                _, tree = call(base, key, "GET", "/v1/labels")
                accepted = sum(n["counts"].get("accepted", 0) for n in tree["labels"] if n["name"] in classes)
                hits = total = 0
                answers = {}
                for c, files in holdout.items():
                    for f in files:
                        answers[f] = predict(base, key, model, f)
                        hits += answers[f] == c
                        total += 1
                if a.phone:
                    request = urllib.request.Request(f"{base}/v1/models/{model}/download?format=onnx",
                                                     headers={"Authorization": "Bearer " + key})
                    onnx_path = os.path.join(work, "model.onnx")
                    with urllib.request.urlopen(request, timeout=120) as answer, open(onnx_path, "wb") as out:
                        out.write(answer.read())
                    files = [f for fs in holdout.values() for f in fs]
                    recipe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "phone_recipe.py")
                    run = subprocess.run([a.phone, recipe, onnx_path] + files, check=True, capture_output=True, text=True)
                    phone = dict(zip(files, json.loads(run.stdout)))
                    phone_hits = sum(phone[f] == c for c, fs in holdout.items() for f in fs)
                    phone_accuracies.append(phone_hits / total)
                    agreements.append(sum(phone[f] == answers[f] for f in files) / total)
                if a.fine_tune:
                    tuned = train(base, key, classes, a.seed + split, fine_tune=True)
                    seconds["fine-tuned"].append(training_seconds(base, key, tuned))
                    tuned_accuracies.append(sum(predict(base, key, tuned, f) == c for c, fs in holdout.items() for f in fs) / total)
            finally:
                stop_hub(server)
            accuracies.append(hits / total)
            print(f"split {split + 1}: trained on {accepted} accepted photos, {hits}/{total} held-out photos right, "
                  f"accuracy {hits / total:.3f}"
                  + (f"; exported model {phone_accuracies[-1]:.3f}, the hub's first label on {agreements[-1]:.3f}" if a.phone else "")
                  + (f"; fine-tuned {tuned_accuracies[-1]:.3f} (training {seconds['fine-tuned'][-1]:.1f} s against "
                     f"{seconds['linear'][-1]:.1f} s)" if a.fine_tune else ""),
                  flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"train_holdout on {a.photos}: {len(classes)} classes, {a.train} photos each to train, {a.holdout} held out, "
          f"{a.splits} splits: accuracy {sum(accuracies) / len(accuracies):.3f} "
          f"({min(accuracies):.3f}–{max(accuracies):.3f})"
          + (f"; the exported model in onnxruntime {sum(phone_accuracies) / len(phone_accuracies):.3f}, "
             f"agreeing with the hub on {sum(agreements) / len(agreements):.3f} of the photos" if a.phone else "")
          + (f"; fine-tuned {sum(tuned_accuracies) / len(tuned_accuracies):.3f} ({min(tuned_accuracies):.3f}–{max(tuned_accuracies):.3f}), "
             f"training {sum(seconds['fine-tuned']) / len(seconds['fine-tuned']):.1f} s against "
             f"{sum(seconds['linear']) / len(seconds['linear']):.1f} s" if a.fine_tune else ""))


def training_seconds(base, key, model):
    """The training job's own figure (the report's `training_seconds`)."""
    _, report = call(base, key, "GET", f"/v1/models/{model}/report")
    return report["training_seconds"]


if __name__ == "__main__":
    sys.exit(main())
