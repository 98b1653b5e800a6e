#!/usr/bin/env bash
# "build context at scale" / "Streaming the context" (bench/RESULTS.md): `gitops build` of a context with a
# 1 GB file, the tree given as OLD (the context tar spooled to TMPDIR) and NEW (streamed) side by side with
# `docker build`, in one hyperfine run; then the peak RSS (/usr/bin/time -v) of each tree on a 300 MB sparse
# file. Both trees run from outside any checkout: `env PYTHONPATH=TREE $PY -m gitops_cli`.
#   git archive main gitops_cli | tar -x -C /tmp/stream-old      # the tree before
#   git archive HEAD gitops_cli | tar -x -C /tmp/stream-new      # the tree after
#   OLD=/tmp/stream-old NEW=/tmp/stream-new W=/tmp/stream-bench bench/context/stream.sh
#   RUNS=0 ROUNDS=5 ... bench/context/stream.sh                   # only the alternating builds
# Needs the base image gitops-demo/busybox:1.36; nothing is pushed. Delete $W and the stream-bench/*
# images afterwards (the script removes its images at the end).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-$HERE/../../.venv/bin/python}
OLD=${OLD:?the tree before (a directory holding gitops_cli)} NEW=${NEW:?the tree after}
W=${W:-/tmp/stream-bench}
RUNS=${RUNS:-3}
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid
mkdir -p "$W"

app() {  # app DIR SIZE MODE: a clean repo whose untracked, gitignored data.bin (sent by docker) is SIZE
  rm -rf "$1"; mkdir -p "$1"; git -C "$1" init -q -b main
  printf 'FROM gitops-demo/busybox:1.36\nCOPY app.sh /app/\n' > "$1/Dockerfile"
  echo 'echo hi' > "$1/app.sh"; echo data.bin > "$1/.gitignore"
  git -C "$1" add -A; git -C "$1" commit -q -m app
  if [ "$3" = sparse ]; then truncate -s "$2" "$1/data.bin"; else head -c "$2" /dev/urandom > "$1/data.bin"; fi
}
[ -f "$W/big/data.bin" ] || app "$W/big" 1G random
[ -f "$W/sparse/data.bin" ] || app "$W/sparse" 300M sparse
cd "$W"  # outside any checkout: the trees come from PYTHONPATH alone
for tree in "$OLD" "$NEW"; do
  env PYTHONPATH="$tree" "$PY" -c 'import gitops_cli, sys; print(gitops_cli.__file__)'
done
G_OLD="env PYTHONPATH=$OLD $PY -m gitops_cli build --repo big --image stream-bench/app --tag old"
G_NEW="env PYTHONPATH=$NEW $PY -m gitops_cli build --repo big --image stream-bench/app --tag new"
[ "$RUNS" = 0 ] || hyperfine -N -w1 -r "$RUNS" \
  "$G_OLD" "$G_NEW" \
  "env DOCKER_BUILDKIT=0 $G_OLD" "env DOCKER_BUILDKIT=0 $G_NEW" \
  "docker build -q -t stream-bench/app:docker big"
[ "$RUNS" = 0 ] || echo "# peak RSS, 300 MB sparse file in the context (and the 1 GB file), BuildKit / legacy"
[ "$RUNS" = 0 ] || for ctx in sparse big; do
  for tree in "$OLD" "$NEW"; do
    for bk in 1 0; do
      v=$(mktemp /tmp/stream-time.XXXXXX)
      DOCKER_BUILDKIT=$bk PYTHONPATH="$tree" /usr/bin/time -v -o "$v" "$PY" -m gitops_cli build --repo "$ctx" \
        --image stream-bench/rss --tag "$ctx" >/dev/null 2>&1 || echo "FAILED: $tree $ctx"
      printf '%s\t%s\tDOCKER_BUILDKIT=%s\t%s\t%s MB\n' "$ctx" "$tree" "$bk" \
        "$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$v")" \
        "$(awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$v")"
      rm -f "$v"
    done
  done
done
docker image rm stream-bench/app:old stream-bench/app:new stream-bench/app:docker \
  stream-bench/rss:sparse stream-bench/rss:big >/dev/null 2>&1 || true
# the same builds alternating old / new (ROUNDS pairs a builder): hyperfine runs each command's runs back to
# back, so a disk or a neighbour that gets busier during the run weighs on one side only
ROUNDS=${ROUNDS:-0}
for bk in 1 0; do
  for i in $(seq 1 "$ROUNDS"); do
    for side in old new; do
      tree=$OLD; [ "$side" = new ] && tree=$NEW
      v=$(mktemp /tmp/stream-time.XXXXXX)
      DOCKER_BUILDKIT=$bk PYTHONPATH="$tree" /usr/bin/time -f '%e %U %S' -o "$v" "$PY" -m gitops_cli build \
        --repo big --image stream-bench/alt --tag "$side" >/dev/null 2>&1 || echo "FAILED: $tree"
      printf 'alternating\tDOCKER_BUILDKIT=%s\tround %s\t%s\t%s (wall user sys, s)\n' "$bk" "$i" "$side" "$(cat "$v")"
      rm -f "$v"
    done
  done
done
docker image rm stream-bench/alt:old stream-bench/alt:new >/dev/null 2>&1 || true
