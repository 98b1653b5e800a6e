#!/usr/bin/env bash
# gitops build-and-bump vs the classic CI script (classic.sh), side by side on the same engine, registry
# and bare remotes, for two apps:
#   trivial  examples/sample-app (2 shell files: build and tests take milliseconds)
#   real     real_app.py: a C program, `make build` ~1.5 s of gcc, `make test` ~1 s, static binary
#            copied onto the busybox base image
# and these cases each:
#   small      deploy repo = examples/deploy-repo (1 commit), file://
#   deep       the same files at the tip of 10,000 commits (deep_history.py | git fast-import), file://;
#              a light history: 200 services, 14-line manifests
#   deep-http  the deep repo over git smart HTTP (tests/fixtures/git_http_server.py on 127.0.0.1)
#   heavy      10,000 commits over 2,000 ~60-line manifests (deep_history.py --services 2000 --long, the
#              template of bench/bump/generate.py) plus the same files, file://
#   heavy-http the heavy repo over git smart HTTP
#   rerun      the same commit again (small repo), on a fresh checkout (no build/ left over)
# Every timed run of small/deep/heavy(-http) gets a fresh app commit that changes the image (new_commit.sh).
#
# Usage: bench/pipeline/run.sh                 RUNS=10 APPS="trivial real" CASES="small deep deep-http heavy heavy-http rerun"
#        GITOPS="env PYTHONPATH=/old/tree $PWD/.venv/bin/python -m gitops_cli" bench/pipeline/run.sh   (another version;
#        an absolute path: it runs in the app's directory)
# Needs: hyperfine, docker-registry, kubectl, gcc (static libc), a Docker Engine, the base image
# gitops-demo/busybox:1.36 (`make demo` builds it offline).  Results: bench/out/pipeline/<app>-<case>.json|md
# (OUT=... to change), ratios on stdout; exit 1 when a target is missed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GITOPS=${GITOPS:-$ROOT/.venv/bin/gitops}
RUNS=${RUNS:-10}
DEPTH=${DEPTH:-10000}
APPS=${APPS:-trivial real}
CASES=${CASES:-small deep deep-http heavy heavy-http rerun}
OUT=${OUT:-$ROOT/bench/out/pipeline}
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/gitops-bench-pipeline.XXXXXX")
registry_pid=""
http_pid=""

cleanup() {
    for pid in "$registry_pid" "$http_pid"; do
        if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    done
    if [ -n "${host:-}" ]; then remove_images "$host/demo/sample-app" "$host/bench/classic-trivial" "$host/bench/classic-real"; fi
    rm -rf "$work"
}
trap cleanup EXIT

docker image inspect gitops-demo/busybox:1.36 >/dev/null 2>&1 || { echo "run make demo first (base image)" >&2; exit 1; }
# What installing the wheel does: byte-compile the package.  An editable install run with
# PYTHONDONTWRITEBYTECODE set would otherwise compile every gitops_cli module on every start (~30-60 ms).
"$ROOT/.venv/bin/python" -m compileall -q "$ROOT/gitops_cli"
# shellcheck source=registry.sh
. "$HERE/registry.sh"

# --- registry on 127.0.0.1 ---------------------------------------------------------------------------
start_registry "$work/registry"

# --- git smart HTTP on 127.0.0.1, serving $work/remotes ------------------------------------------------
mkdir -p "$work/remotes"
coproc HTTP { exec python3 "$ROOT/tests/fixtures/git_http_server.py" --root "$work/remotes" 2>"$work/git-http.log"; }
http_pid=$HTTP_PID
read -r word http_port <&"${HTTP[0]}"
[ "$word" = PORT ] || { echo "git http server did not start" >&2; exit 1; }

# --- the apps (the same checkout for both contenders) -----------------------------------------------
checkout "$ROOT/examples/sample-app" "$work/trivial" app
python3 "$HERE/real_app.py" "$work/real" "$host/demo/sample-app"
git -C "$work/real" init -q -b main && git -C "$work/real" add -A && git -C "$work/real" commit -q -m app

# --- deploy repos: each contender and app gets its own copy of each (same content, same remote kind) --
checkout "$ROOT/examples/deploy-repo" "$work/seed" seed
git init -q --bare -b main "$work/small.git"
git -C "$work/seed" push -q "$work/small.git" HEAD:main
git init -q --bare -b main "$work/deep.git"
python3 "$HERE/deep_history.py" "$work/seed" "$DEPTH" | git -C "$work/deep.git" fast-import --quiet
git -C "$work/deep.git" gc -q
git init -q --bare -b main "$work/heavy.git"
python3 "$HERE/deep_history.py" "$work/seed" "$DEPTH" --services 2000 --long | git -C "$work/heavy.git" fast-import --quiet
git -C "$work/heavy.git" gc -q
for repo in deep heavy; do
    echo "$repo deploy repo: $(git -C "$work/$repo.git" rev-list --count main) commits," \
         "$(git -C "$work/$repo.git" ls-tree -r --name-only main | wc -l) files," \
         "$(du -sh "$work/$repo.git" | cut -f1) on disk"
done | tee "$OUT/deep-repo.txt"
for app in trivial real; do
    for side in classic gitops; do
        for repo in small deep heavy; do
            dest="$work/remotes/$app-$side-$repo.git"
            cp -a "$work/$repo.git" "$dest"
            # what a git server allows: pushes over HTTP, partial clone filters
            git -C "$dest" config http.receivepack true
            git -C "$dest" config uploadpack.allowFilter true
        done
    done
done

url() {  # url APP SIDE CASE
    case $3 in
        small|rerun) echo "file://$work/remotes/$1-$2-small.git" ;;
        deep) echo "file://$work/remotes/$1-$2-deep.git" ;;
        deep-http) echo "http://127.0.0.1:$http_port/$1-$2-deep.git" ;;
        heavy) echo "file://$work/remotes/$1-$2-heavy.git" ;;
        heavy-http) echo "http://127.0.0.1:$http_port/$1-$2-heavy.git" ;;
    esac
}
classic() { echo "$HERE/classic.sh $work/$1 $host/bench/classic-$1 $(url "$1" classic "$2") $work"; }
ours() { echo "cd $work/$1 && $GITOPS build-and-bump --deploy-repo $(url "$1" gitops "$2")"; }

for app in $APPS; do
    for case in $CASES; do
        if [ "$case" = rerun ]; then prepare="$HERE/fresh_checkout.sh $work/$app"  # the same commit again
        else prepare="$HERE/new_commit.sh $work/$app"; fi
        hyperfine --runs "$RUNS" --warmup 1 --prepare "$prepare" \
            -n "classic script ($app, $case)" "$(classic "$app" "$case")" \
            -n "gitops build-and-bump ($app, $case)" "$(ours "$app" "$case")" \
            --export-json "$OUT/$app-$case.json" --export-markdown "$OUT/$app-$case.md"
    done
done

python3 - "$OUT" "$APPS" "$CASES" <<'PY'
import json, sys
out, apps, cases = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
targets = {"small": 1.2, "deep": 0.5, "deep-http": 0.5, "heavy": 0.5, "heavy-http": 0.5, "rerun": 0.2}
failed = False
for app in apps:
    for case in cases:
        classic, ours = (r for r in json.load(open(f"{out}/{app}-{case}.json"))["results"])
        ratio = ours["mean"] / classic["mean"]
        ok = ratio <= targets[case]
        failed |= not ok
        print(f"{app:8} {case:10} classic {classic['mean']:6.3f}s ±{classic['stddev'] or 0:.3f}  "
              f"gitops {ours['mean']:6.3f}s ±{ours['stddev'] or 0:.3f}  ratio {ratio:5.2f} "
              f"(target <= {targets[case]})  {'ok' if ok else 'MISSED'}")
sys.exit(1 if failed else 0)
PY
