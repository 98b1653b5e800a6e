#!/usr/bin/env bash
# Interleaved A/B of two gitops trees on the trivial app and the small deploy repo: each round runs A then
# B, each on a fresh app commit (or, CASE=rerun, the same commit on a fresh checkout), so a machine that
# gets slower or faster during the run weighs on both alike (hyperfine times one command's runs in a block,
# then the other's).  Prints, per side, the mean and median of the wall time and of each step's time
# (`--output json`).
#
# Usage: A="env PYTHONPATH=/tmp/old /abs/.venv/bin/python -m gitops_cli" B=/abs/.venv/bin/gitops \
#        N=20 CASE=small|rerun bench/pipeline/ab.sh
# Needs: docker-registry, a Docker Engine, the base image gitops-demo/busybox:1.36 (`make demo`).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
A=${A:?the command of side A}
B=${B:-$ROOT/.venv/bin/gitops}
N=${N:-20}
CASE=${CASE:-small}
work=$(mktemp -d "${TMPDIR:-/tmp}/gitops-bench-ab.XXXXXX")
registry_pid=""
cleanup() {
    if [ -n "$registry_pid" ]; then kill -TERM "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
    if [ -n "${host:-}" ]; then remove_images "$host/demo/sample-app"; fi
    rm -rf "$work"
}
trap cleanup EXIT

docker image inspect gitops-demo/busybox:1.36 >/dev/null 2>&1 || { echo "run make demo first (base image)" >&2; exit 1; }
# shellcheck source=registry.sh
. "$HERE/registry.sh"
start_registry "$work/registry"

checkout "$ROOT/examples/sample-app" "$work/app" app
checkout "$ROOT/examples/deploy-repo" "$work/seed" seed
for side in a b; do
    git init -q --bare -b main "$work/$side.git"
    git -C "$work/seed" push -q "$work/$side.git" HEAD:main
done

run() {  # run SIDE COMMAND: one timed run, a line "SIDE wall tag test build publish bump" to times.tsv
    if [ "$CASE" = rerun ]; then "$HERE/fresh_checkout.sh" "$work/app"; else "$HERE/new_commit.sh" "$work/app"; fi
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$work/app" && $2 build-and-bump --deploy-repo "file://$work/$1.git" --output json >"$work/out.json" 2>"$work/err") \
        || { echo "side $1 failed:" >&2; cat "$work/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    python3 - "$1" "$t0" "$t1" "$work/out.json" >>"$work/times.tsv" <<'PY'
import json, sys
side, t0, t1, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
steps = {s["name"]: s["seconds"] for s in json.load(open(path))["steps"]}
print(side, f"{t1 - t0:.3f}", *(f"{steps.get(k, 0):.3f}" for k in ("tag", "test", "build", "publish", "bump")), sep="\t")
PY
}

run a "$A"; run b "$B"; : >"$work/times.tsv"  # a warm-up round each, not counted
for _ in $(seq "$N"); do run a "$A"; run b "$B"; done

python3 - "$work/times.tsv" "$CASE" "$N" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
print(f"case {sys.argv[2]}, {sys.argv[3]} interleaved rounds; mean / median in seconds")
for side in ("a", "b"):
    runs = [[float(x) for x in row[1:]] for row in rows if row[0] == side]
    cols = zip(("wall", "tag", "test", "build", "publish", "bump"), zip(*runs))
    print(side, "  ".join(f"{name} {statistics.mean(v):.3f}/{statistics.median(v):.3f}" for name, v in cols))
PY
