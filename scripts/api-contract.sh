#!/usr/bin/env bash
# The API contract, checked from outside: starts a hub with real labels, images, a trained model and its
# dataset version, and runs schemathesis (PyPI, in ./.venv) against the OpenAPI document it serves, with
# every check, the stateful phase included, a fixed seed and a bounded number of examples. Any failure
# fails the run. Exceptions no schema can express are listed, with their reasons, in scripts/schemathesis.toml.
#
# usage: scripts/api-contract.sh [extra schemathesis options]   (IMAGEHUB_BIN: the binary, default the debug build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${IMAGEHUB_BIN:-.build/debug/imagehub}
photos=${IMAGEHUB_TEST_DATA:-../shared/data}/photos
if [ ! -d "$photos/airplanes" ] || [ ! -d "$photos/flowers" ]; then
  if [ "${IMAGEHUB_REQUIRE_SHARED_DATA:-}" = 1 ]; then echo "api-contract: no real photos in $photos" >&2; exit 1; fi
  echo "api-contract: skipped: the real photos ($photos) are not here"; exit 0
fi
work=$(mktemp -d /tmp/imagehub-contract-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/photos"
cp -r "$photos/airplanes" "$photos/flowers" "$work/photos/"
"$bin" ingest "$work/photos" --labels-from-folders --create-labels --data "$work/hub" > "$work/ingest.log" 2>&1 || true
"$bin" train --labels airplanes,flowers --min-images 5 --wait --data "$work/hub" > "$work/train.log" 2>&1
key=$("$bin" keys create --role admin --data "$work/hub" | tail -1)
"$bin" serve --data "$work/hub" --port 0 > "$work/serve.log" 2>&1 &
pid=$!
base=
for _ in $(seq 600); do
  base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1 || true)
  [ -n "$base" ] && curl -sf "$base/healthz" > /dev/null && break
  sleep 0.1
done
[ -n "$base" ] || { echo "api-contract: the hub did not start" >&2; cat "$work/serve.log" >&2; exit 1; }
curl -sf -H "Authorization: Bearer $key" "$base/openapi.yaml" > "$work/openapi.yaml"
echo "api-contract: schemathesis against $base"
PYTHONPATH=scripts SCHEMATHESIS_HOOKS=schemathesis_hooks .venv/bin/st --config-file scripts/schemathesis.toml run "$work/openapi.yaml" --url "$base" \
  -H "Authorization: Bearer $key" --checks all --seed 1 --max-examples "${CONTRACT_EXAMPLES:-10}" --no-color "$@"
