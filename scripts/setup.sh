#!/usr/bin/env bash
# Installs what the hub needs and is missing; quiet when nothing is.
set -euo pipefail

packages=(libvips-dev libvips-tools pkg-config libsqlite3-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "setup: swift is not on PATH (expected Swift 6.1 or newer, e.g. /opt/swift/usr/bin)" >&2
  exit 1
fi
