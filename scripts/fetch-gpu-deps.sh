#!/usr/bin/env bash
# The lent GPU machines have no package registry and lack a few header-only libraries
# (nlohmann-json, CLI11). This fetches their Debian packages here and unpacks them into .deps/,
# which a GPU round carries along and passes to CMake as CMAKE_PREFIX_PATH=.deps/root/usr.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
cd .deps
if [ ! -d root/usr/include/nlohmann ] || [ ! -d root/usr/include/CLI ]; then
  apt-get download nlohmann-json3-dev libcli11-dev
  for f in *.deb; do dpkg -x "$f" root; done
fi
echo "fetch-gpu-deps: headers in .deps/root/usr/include"
