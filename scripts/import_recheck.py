#!/usr/bin/env python3
"""How well an import's own wrong labels are found.

Copies a folder of class folders into a scratch folder with a share of the photos (seeded) filed under
another, random label; runs `imagehub ingest --labels-from-folders --create-labels` into a fresh hub (which
fits the label model once the photos are in and re-checks every image it accepted unverified); then counts,
by SHA-256 in the catalog, the misfiled photos quarantined `label.mismatch` and the honest ones flagged.

  python3 scripts/import_recheck.py ../shared/data/lookalike --seed 1 [--misfiled 0.1] [--imagehub .build/release/imagehub]
"""
import argparse, hashlib, os, random, shutil, sqlite3, subprocess, tempfile


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--misfiled", type=float, default=0.1)
    p.add_argument("--imagehub", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "imagehub"))
    a = p.parse_args()
    rng = random.Random(a.seed)
    classes = sorted(d for d in os.listdir(a.directory) if os.path.isdir(os.path.join(a.directory, d)))
    root = tempfile.mkdtemp(prefix="imagehub-import-recheck-")
    try:
        misfiled = {}
        for c in classes:
            for name in sorted(os.listdir(os.path.join(a.directory, c))):
                if not name.lower().endswith((".jpg", ".jpeg", ".png")):
                    continue
                given = rng.choice([x for x in classes if x != c]) if rng.random() < a.misfiled else c
                os.makedirs(os.path.join(root, "photos", given), exist_ok=True)
                path = os.path.join(root, "photos", given, name)
                shutil.copy(os.path.join(a.directory, c, name), path)
                with open(path, "rb") as f:
                    misfiled[hashlib.sha256(f.read()).hexdigest()] = given != c
        run = subprocess.run([a.imagehub, "ingest", os.path.join(root, "photos"), "--labels-from-folders", "--create-labels",
                              "--data", os.path.join(root, "hub")], capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"imagehub ingest failed ({run.returncode}):\n{run.stderr}")
        fit = [line.split("refitted: ", 1)[1] for line in run.stderr.splitlines() if "refitted: " in line]
        rows = sqlite3.connect(os.path.join(root, "hub", "catalog.sqlite")).execute("SELECT sha256, reasons FROM images").fetchall()
        wrong = sum(misfiled.values())
        caught = sum(1 for sha, reasons in rows if misfiled.get(sha) and "label.mismatch" in reasons)
        honest = sum(1 for sha, _ in rows if not misfiled.get(sha))
        flagged = sum(1 for sha, reasons in rows if not misfiled.get(sha) and "label.mismatch" in reasons)
        print(f"{os.path.basename(os.path.normpath(a.directory))} seed {a.seed}: misfiled {wrong}, caught {caught}, "
              f"honest flagged {flagged}/{honest}; label model: {fit[-1] if fit else 'not fitted'}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
