#!/usr/bin/env bash
# `gitops history` on a deploy repo with a long history, against `git log -G` (the shell's way to find the
# commits that touched an image; it lists commits, not values, and reads no trailers), side by side.
#
# The repo: bench/pipeline/deep_history.py (10,000 commits, each bumping one of 200 services) on top of
# examples/deploy-repo.  One service's image changes every 200 commits, so 20 entries reach ~4,000
# commits back.  Cases: a local checkout (read in place) and the bare repo over file:// (a blobless,
# shallow clone deepened on demand; uploadpack.allowFilter as real git servers have).
#
# Usage: RUNS=5 [OLD="env PYTHONPATH=/tmp/old /abs/.venv/bin/python -m gitops_cli"] bench/history/run.sh
# OLD: another gitops tree timed alongside (e.g. `git archive REV gitops_cli | tar -x -C /tmp/old`), on the
# local checkout; from file:// once, with /usr/bin/time (the tree before batching took minutes there).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${RUNS:-5}
COMMITS=${COMMITS:-10000}
GITOPS=${GITOPS:-$ROOT/.venv/bin/gitops}
OUT=${OUT:-$ROOT/bench/out/history}
IMAGE=registry.example.com/team/svc-007
work=$(mktemp -d "${TMPDIR:-/tmp}/gitops-bench-history.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

git init -q --bare -b main "$work/deep.git"
git -C "$work/deep.git" config uploadpack.allowFilter true
python3 "$ROOT/bench/pipeline/deep_history.py" "$ROOT/examples/deploy-repo" "$COMMITS" \
    | git -C "$work/deep.git" fast-import --quiet
git clone -q "$work/deep.git" "$work/checkout"

cd "$work"  # not the project's directory: `python -m gitops_cli` there would import its tree, not OLD's
args=(--image "$IMAGE" --limit 20)
cmds=(-n "git log -G (local)" "git -C $work/checkout log --first-parent -n 20 -G '$IMAGE:' --format='%H %cI %an' -- '*.yaml'"
      -n "gitops history (local)" "$GITOPS history --deploy-repo $work/checkout ${args[*]}"
      -n "gitops history (file://)" "$GITOPS history --deploy-repo file://$work/deep.git ${args[*]}")
if [ -n "${OLD:-}" ]; then
    cmds+=(-n "old gitops history (local)" "$OLD history --deploy-repo $work/checkout ${args[*]}")
fi
hyperfine --warmup 1 --runs "$RUNS" --export-markdown "$OUT/history.md" --export-json "$OUT/history.json" "${cmds[@]}"
for where in "$work/checkout" "file://$work/deep.git"; do
    echo "== /usr/bin/time -v gitops history --deploy-repo $where" >&2
    /usr/bin/time -v "$GITOPS" history --deploy-repo "$where" "${args[@]}" 2>&1 >/dev/null \
        | grep -E "Elapsed|Maximum resident" >&2
done
if [ -n "${OLD:-}" ]; then  # once: the tree before batching ran minutes here (several git processes a commit)
    echo "== /usr/bin/time -v OLD history --deploy-repo file://$work/deep.git" >&2
    /usr/bin/time -v $OLD history --deploy-repo "file://$work/deep.git" "${args[@]}" 2>&1 >/dev/null \
        | grep -E "Elapsed|Maximum resident" >&2
fi
