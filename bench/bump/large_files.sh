#!/bin/sh
# gitops bump and lint of large multi-document files, and of many matches in one file.
#
#   bench/bump/large_files.sh [WORKDIR]     (default: /tmp/gitops-bench-large; needs git, GNU time)
#
# Generates one-file deploy repos (bench/bump/generate.py --one-file: N documents of ~330 bytes in all.yaml,
# M naming the image), then runs each command once from the pristine tree under /usr/bin/time -v: wall
# time, CPU (user + sys) and peak memory (max RSS).  SIZES and MATCHES choose the repos (documents:matches).
# GITOPS=... to measure another installation (an older checkout's .venv/bin/gitops, say).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
gitops=${GITOPS:-$root/.venv/bin/gitops}
python=${PYTHON:-$root/.venv/bin/python}
work=${1:-/tmp/gitops-bench-large}
image=registry.example.com/shop/checkout
specs=${SPECS:-"300:300 1000:1000 3000:3000 10000:10000 1600:10 16000:10"}

mkdir -p "$work"
once() {  # once LABEL DIR CMD...: one run from the pristine tree
  label=$1 dir=$2
  shift 2
  git -C "$dir" reset -q --hard
  /usr/bin/time -v "$@" >/dev/null 2>"$work/time.txt" || true
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")
  user=$(sed -n 's/.*User time (seconds): //p' "$work/time.txt")
  sys=$(sed -n 's/.*System time (seconds): //p' "$work/time.txt")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
  echo "$label: wall $wall, user $user s, sys $sys s, max RSS $rss KB; $(git -C "$dir" diff --shortstat)"
  git -C "$dir" reset -q --hard
}
for spec in $specs; do
  docs=${spec%%:*} matches=${spec##*:}
  dir=$work/one-$docs-$matches
  [ -d "$dir" ] || "$python" "$here/generate.py" "$dir" --files "$docs" --matches "$matches" --one-file >/dev/null
  size=$(wc -c <"$dir/all.yaml")
  once "bump, $docs documents ($size bytes), $matches matches" "$dir" \
    "$gitops" bump --deploy-repo "$dir" --no-commit --image "$image:2.0.0"
  if [ "$matches" -le 10 ]; then
    once "lint, $docs documents ($size bytes)" "$dir" "$gitops" lint "$dir/all.yaml"
  fi
done
