#!/bin/sh
# The classic pipeline step: for every manifest that mentions the image, kubectl patch --local rewrites
# the whole file (to stdout) and mv puts it back.  Usage: kubectl_loop.sh DIR IMAGE NEW_TAG CONTAINER
set -eu
dir=$1 image=$2 tag=$3 container=$4
patch="{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"$container\",\"image\":\"$image:$tag\"}]}}}}"
grep -rlF --include='*.yaml' "$image:" "$dir" | while read -r f; do
  kubectl patch --local -o yaml -f "$f" -p "$patch" > "$f.tmp"
  mv "$f.tmp" "$f"
done
