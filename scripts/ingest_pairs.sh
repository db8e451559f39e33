#!/bin/bash
# Alternating whole imports under two environments, to compare settings or builds on a machine whose speed
# drifts: each round imports DIR into a fresh data directory once with A's variables, once with B's.
# Prints each side's wall times and its mean CPU (user + system) seconds.
#   scripts/ingest_pairs.sh DIR ROUNDS "IMAGEHUB_EMBEDDING_STREAMS=1" "IMAGEHUB_EMBEDDING_STREAMS=2"
# IMAGEHUB (the binary, default .build/release/imagehub) and a side's own variables are passed through env.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 DIR ROUNDS 'VAR=VALUE …' 'VAR=VALUE …'" >&2; exit 64; }
dir=$1 rounds=$2 a=$3 b=$4
binary=${IMAGEHUB:-.build/release/imagehub}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for round in $(seq "$rounds"); do
  for side in A B; do
    vars=$a; [ $side = B ] && vars=$b
    rm -rf "$scratch/hub"; sync
    # shellcheck disable=SC2086
    /usr/bin/time -f "$side %e %U %S" -o "$scratch/time" env $vars "$binary" ingest "$dir" --labels-from-folders \
      --create-labels --data "$scratch/hub" > /dev/null 2> "$scratch/err" || { cat "$scratch/err" >&2; exit 1; }
    cat "$scratch/time"
  done
done | awk -v a="$a" -v b="$b" '{ w[$1] = w[$1] " " $2; cpu[$1] += $3 + $4; n[$1]++ }
  END { printf "A (%s): wall%s s, mean CPU %.2f s\nB (%s): wall%s s, mean CPU %.2f s\n", a, w["A"], cpu["A"] / n["A"], b, w["B"], cpu["B"] / n["B"] }'
