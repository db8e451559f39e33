#!/usr/bin/env bash
# Runs a command with a private PostgreSQL 15 cluster for the tests, then stops the cluster.
#  - the cluster lives in ./.pg (git-ignored), made anew for each run, listens on 127.0.0.1 only, on a
#    port of its own (IMAGEHUB_TEST_PG_PORT, default 55432), with trust authentication for the role `hub`;
#  - PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user that
#    Debian's package creates;
#  - the command sees IMAGEHUB_TEST_POSTGRES_URL (the server's maintenance database; the tests create a
#    database of their own for each hub they start) and IMAGEHUB_TEST_PG_CTL, a command that stops or
#    starts this server (`$IMAGEHUB_TEST_PG_CTL stop|start`: the multi-node test takes it away for a while);
#  - fsync is off for the tests (nothing here must survive a power cut); IMAGEHUB_TEST_PG_FSYNC=on keeps it
#    on, as a benchmark wants.
#
# usage: scripts/with-postgres.sh COMMAND...     or     scripts/with-postgres.sh --ctl stop|start
set -euo pipefail
cd "$(dirname "$0")/.."
port=${IMAGEHUB_TEST_PG_PORT:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "with-postgres: PostgreSQL is not installed (make setup installs it)" >&2
  exit 1
fi
dir=$PWD/.pg
run=()
if [ "$(id -u)" -eq 0 ]; then
  run=(runuser -u postgres --)
  mkdir -p "$dir"
  chown postgres: "$dir"
  # A checkout under a folder the postgres user cannot enter (root's home, say) keeps its cluster in /tmp.
  if ! runuser -u postgres -- test -w "$dir"; then dir=/tmp/imagehub-test-pg-$port; mkdir -p "$dir"; chown postgres: "$dir"; fi
fi

start() {
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=${IMAGEHUB_TEST_PG_FSYNC:-off} -c max_connections=300" start >/dev/null
}
stop() { "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; }

if [ "${1:-}" = "--ctl" ]; then
  case "${2:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 --ctl stop|start" >&2; exit 2 ;;
  esac
  exit 0
fi

mkdir -p "$dir"
# A server left running by an interrupted run is stopped, and every run starts from an empty cluster.
[ -f "$dir/data/PG_VERSION" ] && "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
rm -rf "$dir/data"
"${run[@]}" "$bin/initdb" -D "$dir/data" -U hub --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
start
trap stop EXIT
export IMAGEHUB_TEST_POSTGRES_URL="postgres://hub@127.0.0.1:$port/postgres"
export IMAGEHUB_TEST_PG_CTL="$PWD/scripts/with-postgres.sh --ctl"
"$@"
