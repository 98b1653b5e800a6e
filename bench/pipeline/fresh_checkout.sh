#!/usr/bin/env bash
# hyperfine --prepare for the re-run: the same commit on a fresh checkout (no build/ left over).
set -euo pipefail
rm -rf "$1/build"
