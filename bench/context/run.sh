#!/usr/bin/env bash
# "build context at scale" (bench/RESULTS.md): gitops tag/build against git status / docker build on the
# scratch repos of setup.sh. Usage: W=/tmp/ctx-bench bench/context/setup.sh; W=/tmp/ctx-bench bench/context/run.sh
# Needs the base image gitops-demo/busybox:1.36 (make demo); nothing is pushed. Delete $W afterwards (2+ GB).
set -uo pipefail
W=${W:-/tmp/ctx-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
G=${GITOPS:-$HERE/../../.venv/bin/gitops}
export GITOPS=$G
M=$HERE/measure.sh
RUNS=${RUNS:-5}
cd "$W"
echo "# one run each: wall, peak RSS, git commands (GIT_TRACE)"
for r in big-committed big-dockerign big-gitign ignored submods mono/sub/app; do $M "tag $r" "$r" tag; done
$M "tag big-untracked --allow-dirty" big-untracked tag --allow-dirty
for r in big-committed big-dockerign big-gitign ignored submods; do
  $M "build $r" "$r" build --image "127.0.0.1:5999/ctx/$r"
  /usr/bin/time -f "docker build $r	%e s	%M KB" docker build -q -t "127.0.0.1:5999/ctx/base-$r" "$r" 2>&1 >/dev/null | tail -1
done
$M "build mono/sub/app" mono/sub/app build
echo "# side by side (hyperfine, $RUNS runs)"
hyperfine -N -w1 -r "$RUNS" "git -C submods status" "$G tag --repo submods" \
  "git -C mono status" "git -C mono describe --always" "$G tag --repo mono/sub/app"
hyperfine -N -w1 -r "$RUNS" \
  "$G build --repo ignored --image 127.0.0.1:5999/ctx/i" "docker build -q -t ctx/b-i ignored" \
  "$G build --repo submods --image 127.0.0.1:5999/ctx/s" "docker build -q -t ctx/b-s submods" \
  "$G build --repo mono/sub/app" "docker build -q -t ctx/b-m mono/sub/app"
hyperfine -N -w0 -r 2 \
  "$G build --repo big-gitign --image 127.0.0.1:5999/ctx/g" \
  "env DOCKER_BUILDKIT=0 $G build --repo big-gitign --image 127.0.0.1:5999/ctx/g" \
  "docker build -q -t ctx/b-g big-gitign"
