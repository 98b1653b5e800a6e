#!/usr/bin/env bash
# measure.sh NAME DIR [gitops args...]: one run of `gitops ARGS` in DIR: wall time, peak RSS, git commands
# (GIT_TRACE). Prints one tab-separated line: NAME wall_s maxrss_MB git_commands exit_status.
set -uo pipefail
name=$1 dir=$2; shift 2
GITOPS=${GITOPS:-gitops}
t=$(mktemp /tmp/ctx-trace.XXXXXX) v=$(mktemp /tmp/ctx-time.XXXXXX)
( cd "$dir" && GIT_TRACE="$t" /usr/bin/time -v -o "$v" $GITOPS "$@" >/dev/null 2>"$v.err" ); rc=$?
wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$v")
rss=$(awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$v")
gits=$(grep -c 'trace: built-in: git\|trace: exec: git' "$t" || true)
printf '%s\t%s\t%s MB\t%s git\trc=%s\n' "$name" "$wall" "$rss" "$gits" "$rc"
[ "$rc" = 0 ] || tail -3 "$v.err"
rm -f "$t" "$v" "$v.err"
