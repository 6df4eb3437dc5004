#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing (Debian 12 packages) and build certbind + apig-sim.
# Usage: scripts/setup.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev
  libyajl-dev libyaml-dev libidn2-dev libssl-dev libsystemd-dev libcmocka-dev
  libmicrohttpd-dev libgnutls28-dev openssl curl clang libclang-rt-14-dev valgrind systemd
  python3 mandoc)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD=${1:-build}
shift || true
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
