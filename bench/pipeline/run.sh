#!/usr/bin/env bash
# gitops build-and-bump vs the classic CI script (classic.sh), side by side on the same engine, registry
# and bare remotes (file://): a small deploy repo (examples/deploy-repo), one with 10,000 commits of
# history (deep_history.py | git fast-import), and a re-run on the same commit.
#
# Usage: bench/pipeline/run.sh            RUNS=10 bench/pipeline/run.sh
# Needs: hyperfine, docker-registry, kubectl, a Docker Engine, the base image gitops-demo/busybox:1.36
# (`make demo` builds it offline).  Results: bench/out/pipeline/*.json|md, ratios on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GITOPS=${GITOPS:-$ROOT/.venv/bin/gitops}
RUNS=${RUNS:-10}
DEPTH=${DEPTH:-10000}
OUT=$ROOT/bench/out/pipeline
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/gitops-bench-pipeline.XXXXXX")
registry_pid=""

cleanup() {
    if [ -n "$registry_pid" ]; then kill -TERM "$registry_pid" 2>/dev/null || true; wait "$registry_pid" || true; fi
    if [ -n "${host:-}" ]; then
        for repo in "$host/demo/sample-app" "$host/bench/classic-app"; do
            docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo" | xargs -r docker image rm >/dev/null 2>&1 || true
        done
    fi
    rm -rf "$work"
}
trap cleanup EXIT

docker image inspect gitops-demo/busybox:1.36 >/dev/null 2>&1 || { echo "run make demo first (base image)" >&2; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$work/registry/storage" "$port" >"$work/registry/config.yml"
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
registry_pid=$!
until curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; do sleep 0.1; done
host=127.0.0.1:$port

copy() { cp -R "$1" "$2"; rm -rf "$2/build"; grep -rlF 127.0.0.1:5000 "$2" | xargs -r sed -i "s/127\.0\.0\.1:5000/$host/g"; }
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost

copy "$ROOT/examples/sample-app" "$work/app"
git -C "$work/app" init -q -b main && git -C "$work/app" add -A && git -C "$work/app" commit -q -m app

# Each contender gets its own image repository and its own (identical) deploy repos, so that neither
# finds the other's tag or commits; same engine, same registry, same kind of remote.
copy "$ROOT/examples/deploy-repo" "$work/seed"
git -C "$work/seed" init -q -b main && git -C "$work/seed" add -A && git -C "$work/seed" commit -q -m seed
git init -q --bare -b main "$work/small.git"
git -C "$work/seed" push -q "$work/small.git" HEAD:main
git init -q --bare -b main "$work/deep.git"
python3 "$HERE/deep_history.py" "$work/seed" "$DEPTH" | git -C "$work/deep.git" fast-import --quiet
git -C "$work/deep.git" gc -q
echo "deep deploy repo: $(git -C "$work/deep.git" rev-list --count main) commits," \
     "$(du -sh "$work/deep.git" | cut -f1) on disk" | tee "$OUT/deep-repo.txt"
for repo in small deep; do
    cp -a "$work/$repo.git" "$work/classic-$repo.git"
    mv "$work/$repo.git" "$work/gitops-$repo.git"
done

classic() { echo "$HERE/classic.sh $work/app $host/bench/classic-app file://$work/classic-$1.git $work"; }
ours() { echo "cd $work/app && $GITOPS build-and-bump --deploy-repo file://$work/gitops-$1.git"; }
prepare="$HERE/new_commit.sh $work/app"

for repo in small deep; do
    hyperfine --runs "$RUNS" --warmup 1 --prepare "$prepare" \
        -n "classic script ($repo)" "$(classic "$repo")" \
        -n "gitops build-and-bump ($repo)" "$(ours "$repo")" \
        --export-json "$OUT/$repo.json" --export-markdown "$OUT/$repo.md"
done
# re-run on the same commit (the warm-up run makes the first, real one)
hyperfine --runs "$RUNS" --warmup 1 \
    -n "classic script (re-run)" "$(classic small)" \
    -n "gitops build-and-bump (re-run)" "$(ours small)" \
    --export-json "$OUT/rerun.json" --export-markdown "$OUT/rerun.md"

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
targets = {"small": 1.2, "deep": 0.5, "rerun": 0.2}
failed = False
for name, target in targets.items():
    results = json.load(open(f"{out}/{name}.json"))["results"]
    classic, ours = results[0]["mean"], results[1]["mean"]
    ratio = ours / classic
    ok = ratio <= target
    failed |= not ok
    print(f"{name:6} classic {classic:6.3f}s  gitops {ours:6.3f}s  ratio {ratio:5.2f} (target <= {target})"
          f"  {'ok' if ok else 'MISSED'}")
sys.exit(1 if failed else 0)
PY
