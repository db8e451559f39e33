"""A trained model's accuracy on photos it never saw, through the hub as a user would reach it.

usage: train_holdout.py PHOTOS [--train 35] [--holdout 25] [--splits 5] [--seed 1] [--imagehub .build/release/imagehub]

PHOTOS holds one folder of photos per class. For each split (seeded), every class's photos are shuffled:
--holdout of them are held out and --train of the rest go into a fresh hub (`imagehub ingest`, one folder a
label, embeddings on); the hub trains on every label (POST /v1/training-jobs) and the model predicts each
held-out photo (POST /v1/models/{id}/predict). Prints each split's accuracy and the mean, min and max.
The backbone is the one the hub would load (IMAGEHUB_EMBEDDING_MODELS chooses another).
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

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
    a = p.parse_args()
    hub = os.path.abspath(a.imagehub)
    classes = sorted(d for d in os.listdir(a.photos) if os.path.isdir(os.path.join(a.photos, d)))
    if len(classes) < 2:
        sys.exit(f"train_holdout: {a.photos} needs a folder per class, at least two")
    accuracies = []
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
                _, tree = call(base, key, "GET", "/v1/labels")
                accepted = sum(n["counts"].get("accepted", 0) for n in tree["labels"] if n["name"] in classes)
                hits = total = 0
                for c, files in holdout.items():
                    for f in files:
                        hits += predict(base, key, model, f) == c
                        total += 1
            finally:
                stop_hub(server)
            accuracies.append(hits / total)
            print(f"split {split + 1}: trained on {accepted} accepted photos, {hits}/{total} held-out photos right, "
                  f"accuracy {hits / total:.3f}", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"train_holdout on {a.photos}: {len(classes)} classes, {a.train} photos each to train, {a.holdout} held out, "
          f"{a.splits} splits: accuracy {sum(accuracies) / len(accuracies):.3f} "
          f"({min(accuracies):.3f}–{max(accuracies):.3f})")


if __name__ == "__main__":
    sys.exit(main())
