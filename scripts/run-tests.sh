#!/usr/bin/env bash
# Runs the test command under a time limit, so that a test that hangs fails CI quickly and says where:
#  - the command's output is line-buffered (a log shows the test that was running, not a buffer's worth
#    before it);
#  - past IMAGEHUB_TEST_TIME_LIMIT seconds (default 1500) every thread of every test process and of the
#    hub processes they started is printed with gdb (when installed), then the whole process group is
#    killed and the script exits 124.
#
# usage: scripts/run-tests.sh COMMAND...
set -uo pipefail
limit=${IMAGEHUB_TEST_TIME_LIMIT:-1500}
stdbuf=()
command -v stdbuf >/dev/null 2>&1 && stdbuf=(stdbuf -oL -eL)

# A group of its own, so that everything the tests start can be found and stopped.
setsid "${stdbuf[@]}" "$@" &
child=$!
trap 'kill -TERM -- -$child 2>/dev/null; wait $child; exit 130' INT TERM

waited=0
while kill -0 "$child" 2>/dev/null; do
  if ((waited >= limit)); then
    echo
    echo "run-tests: still running after $limit s; every thread of the test processes, then stop" >&2
    for pid in $(pgrep -g "$child"); do
      exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
      case "$exe" in
        *.xctest|*/imagehub|*/swiftpm-testing-helper)
          echo "=== $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-200)" >&2
          if command -v gdb >/dev/null 2>&1; then
            timeout 120 gdb -p "$pid" -batch -nx -ex "set pagination off" -ex "thread apply all bt 30" 2>&1 \
              | grep -E '^(Thread|#)' >&2
          fi
          ;;
      esac
    done
    kill -KILL -- "-$child" 2>/dev/null
    wait "$child" 2>/dev/null
    exit 124
  fi
  sleep 5
  waited=$((waited + 5))
done
wait "$child"
