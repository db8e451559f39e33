#!/usr/bin/env bash
# Fuzzes what ingest does with untrusted bytes (sniff → header → limits → strict decode, Sources/ImageFuzz)
# with libFuzzer and AddressSanitizer (LeakSanitizer included), for a bounded time. Not part of `make test`.
#
# usage: scripts/fuzz.sh [SECONDS=300] [JOBS=1]
# The corpus (seeded with small generated JPEG, PNG, WebP, HEIC files and broken variants) grows in
# ./.fuzz/corpus; crashes, leaks, timeouts and out-of-memory inputs land in ./.fuzz/findings. Replay one with
# `.build/debug/ImageFuzz FILE` (the plain build replays files).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
jobs=${2:-1}
export PATH=/opt/swift/usr/bin:$PATH
# libFuzzer's instrumentation and AddressSanitizer; the target's own `main` starts libFuzzer's driver
# (LLVMFuzzerRunDriver), so SwiftPM links the executable as usual.
swift build -c release --product ImageFuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -D -Xswiftc FUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
mkdir -p .fuzz/corpus .fuzz/findings
if [ -z "$(ls -A .fuzz/corpus)" ]; then
  seed=$(mktemp -d)
  vips gaussnoise "$seed/noise.v" 96 64
  vips colourspace "$seed/noise.v" "$seed/rgb.v" srgb
  for ext in jpg png webp heic; do vips copy "$seed/rgb.v" ".fuzz/corpus/seed.$ext" 2>/dev/null || true; done
  vips copy "$seed/rgb.v" ".fuzz/corpus/seed-progressive.jpg[interlace]"
  vips copy "$seed/rgb.v" ".fuzz/corpus/seed-lossless.webp[lossless]"
  vips copy "$seed/noise.v" ".fuzz/corpus/seed-grey.png"
  head -c 300 .fuzz/corpus/seed.jpg > .fuzz/corpus/truncated.jpg
  rm -rf "$seed"
fi
echo "fuzz: ${seconds}s, ${jobs} job(s), corpus $(ls .fuzz/corpus | wc -l) files"
parallel=()
if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi  # each job logs to ./fuzz-N.log
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  .build-fuzz/release/ImageFuzz .fuzz/corpus -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=262144 -artifact_prefix=.fuzz/findings/ -print_final_stats=1 "${parallel[@]}"
echo "fuzz: findings in .fuzz/findings: $(ls .fuzz/findings | wc -l)"
