#!/bin/sh
# gitops bump --no-commit versus the classic `kubectl patch --local -o yaml ... > tmp && mv tmp FILE` loop.
#
#   bench/bump/run.sh [WORKDIR]        (default: /tmp/gitops-bench-bump; needs hyperfine, kubectl, git)
#
# Generates deploy repos (bench/bump/generate.py), then for each: hyperfine (every run starts from the
# pristine commit: --prepare 'git reset --hard') and /usr/bin/time -v for peak memory (max RSS).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
gitops=${GITOPS:-$root/.venv/bin/gitops}
python=${PYTHON:-$root/.venv/bin/python}
work=${1:-/tmp/gitops-bench-bump}
image=registry.example.com/shop/checkout
runs=${RUNS:-5}

rm -rf "$work"
mkdir -p "$work"
peak() {  # peak RSS (KB) of a command run once from the pristine tree
  git -C "$1" reset -q --hard
  shift
  /usr/bin/time -v "$@" >/dev/null 2>"$work/time.txt"
  sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt"
}
for spec in 2000:20 2000:200 20000:200 20000:2000; do
  files=${spec%%:*} matches=${spec##*:}
  dir=$work/repo-$files-$matches
  "$python" "$here/generate.py" "$dir" --files "$files" --matches "$matches"
  bump="$gitops bump --deploy-repo $dir --no-commit --image $image:2.0.0"
  loop="$here/kubectl_loop.sh $dir $image 2.0.0 checkout"
  if [ "$matches" -le 200 ]; then
    hyperfine --warmup 1 --runs "$runs" --prepare "git -C $dir reset -q --hard" \
      --export-markdown "$work/$files-$matches.md" \
      -n "gitops bump --no-commit ($files files, $matches matches)" "$bump" \
      -n "kubectl patch loop ($files files, $matches matches)" "$loop"
    echo "peak RSS KB: gitops $(peak "$dir" $bump) / kubectl loop $(peak "$dir" $loop)"
  else  # scaling point for gitops only (the kubectl loop would take minutes per run)
    hyperfine --warmup 1 --runs "$runs" --prepare "git -C $dir reset -q --hard" \
      --export-markdown "$work/$files-$matches.md" \
      -n "gitops bump --no-commit ($files files, $matches matches)" "$bump"
    echo "peak RSS KB: gitops $(peak "$dir" $bump)"
  fi
  # Same result check: both tools change the same files (kubectl rewrites them whole).
  git -C "$dir" reset -q --hard
  $bump >/dev/null 2>&1
  echo "gitops changed: $(git -C "$dir" diff --shortstat)"
  git -C "$dir" reset -q --hard
done
