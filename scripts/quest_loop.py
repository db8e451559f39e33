"""One collection loop, measured: train, read the quests, collect with simulated phones, train again.

usage: quest_loop.py PHOTOS [--first 12] [--more 40] [--holdout 15] [--seed 1] [--imagehub .build/release/imagehub]

PHOTOS holds one folder of photos per class. Per class, the last --holdout photos (by name) are never
uploaded: they measure each model (through POST /v1/models/{id}/predict). Two arms start from the same
hub state — the first --first photos of every class uploaded and a model trained on them — then send
--more photos from the rest: one arm with `imagehub simulate --follow-quests` (what GET /v1/quests asks
for), the other without (the run's seeded order). Both train again. Prints the quests, and per arm the
held-out recall of the class the first model found weakest, before and after, and the accuracy.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, key, method, path, body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + key, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def start_hub(hub, data):
    """`imagehub serve` on DATA at a free port, once /healthz answers: (the process, its base URL)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([hub, "serve", "--data", data, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return server, base


def stop_hub(server):
    server.terminate()
    server.wait(timeout=60)


def predict(base, key, model, path):
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        payload = f.read()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    status, answer = call(base, key, "POST", f"/v1/models/{model}/predict", body, f"multipart/form-data; boundary={boundary}")
    assert status == 200, answer
    return answer["predictions"][0]["label"]


def train(base, key, labels, seed, **options):
    """Trains a model on `labels` through the API (extra request fields in `options`) and returns its id."""
    body = {"labels": labels, "seed": seed, "min_images_per_label": 5, **options}
    status, job = call(base, key, "POST", "/v1/training-jobs", body)
    assert status == 202, job
    while True:
        _, job = call(base, key, "GET", f"/v1/training-jobs/{job['id']}")
        if job["state"] in ("succeeded", "failed"):
            assert job["state"] == "succeeded", job
            return job["model_id"]
        time.sleep(0.5)


def recall(base, key, model, holdout):
    hits = {label: 0 for label in holdout}
    for label, files in holdout.items():
        hits[label] = sum(predict(base, key, model, f) == label for f in files)
    return {label: hits[label] / len(files) for label, files in holdout.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("photos")
    p.add_argument("--first", type=int, default=12)
    p.add_argument("--more", type=int, default=40)
    p.add_argument("--holdout", type=int, default=15)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--imagehub", default=".build/release/imagehub")
    a = p.parse_args()
    hub = os.path.abspath(a.imagehub)
    work = tempfile.mkdtemp(prefix="quest-loop-")
    classes = sorted(d for d in os.listdir(a.photos) if os.path.isdir(os.path.join(a.photos, d)))
    holdout, sets = {}, {"first": {}, "rest": {}}
    for c in classes:
        files = sorted(os.path.join(os.path.abspath(a.photos), c, f) for f in os.listdir(os.path.join(a.photos, c)))
        holdout[c] = files[-a.holdout:]
        sets["first"][c], sets["rest"][c] = files[:a.first], files[a.first:-a.holdout]
    for name, by_class in sets.items():
        for c, files in by_class.items():
            os.makedirs(os.path.join(work, name, c))
            for f in files:
                os.symlink(f, os.path.join(work, name, c, os.path.basename(f)))

    def simulate(base, key, folder, count, *extra):
        subprocess.run([hub, "simulate", "--target", base, "--key", key, "--images", os.path.join(work, folder),
                        "--create-labels", "--devices", "1", "--count", str(count), "--seed", str(a.seed), *extra],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # The first collection and model, once: both arms start from a copy of this hub.
    first_data = os.path.join(work, "first-hub")
    key = subprocess.run([hub, "keys", "create", "--role", "admin", "--data", first_data],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    server, base = start_hub(hub, first_data)
    try:
        simulate(base, key, "first", a.first * len(classes))
        first = train(base, key, classes, a.seed)
        before = recall(base, key, first, holdout)
        _, quests = call(base, key, "GET", "/v1/quests")
    finally:
        stop_hub(server)
    results = {}
    for arm in ("quests", "plain"):
        data = os.path.join(work, arm + "-hub")
        shutil.copytree(first_data, data, symlinks=True)
        server, base = start_hub(hub, data)
        try:
            simulate(base, key, "rest", a.more, *(["--follow-quests"] if arm == "quests" else []))
            second = train(base, key, classes, a.seed)
            after = recall(base, key, second, holdout)
            _, tree = call(base, key, "GET", "/v1/labels")
            counts = {n["name"]: n["counts"].get("accepted", 0) for n in tree["labels"]}
            results[arm] = (after, counts)
        finally:
            stop_hub(server)
    shutil.rmtree(work, ignore_errors=True)

    weakest = min(classes, key=lambda c: (before[c], c))
    mean_b = sum(before.values()) / len(before)
    print(f"quest loop on {a.photos}: {len(classes)} classes, {a.first} photos each, then {a.more} more; "
          f"{a.holdout} held-out photos per class, seed {a.seed}")
    print("quests after the first model: " + ("; ".join(f"{q['label']} {q['reason']} {q['want']}" for q in quests["quests"]) or "none"))
    print(f"first model on the held-out photos: accuracy {mean_b:.3f}, weakest class {weakest} (recall {before[weakest]:.2f})")
    print(f"{'second collection':<28} {'accepted per class':<56} {'weakest recall':<16} accuracy")
    for arm, title in (("quests", "simulate --follow-quests"), ("plain", "simulate (seeded order)")):
        after, counts = results[arm]
        per_class = ", ".join(f"{c} {counts.get(c, 0)}" for c in classes)
        print(f"{title:<28} {per_class:<56} {before[weakest]:.2f} → {after[weakest]:.2f}   {mean_b:.3f} → {sum(after.values()) / len(after):.3f}")


if __name__ == "__main__":
    sys.exit(main())
