#!/usr/bin/env bash
# The classic CI script, as issue 4 describes it: make build; make test; docker build; docker push;
# git clone deploy-repo; kubectl patch --local -o yaml; git commit; git push.
# Usage: classic.sh APP_DIR IMAGE DEPLOY_URL WORK_DIR      (run from anywhere)
set -euo pipefail
app=$1 image=$2 deploy=$3 work=$4
cd "$app"
make build >/dev/null
make test >/dev/null
tag=$(git rev-parse --short=7 HEAD)
docker build -q -t "$image:$tag" . >/dev/null
docker push -q "$image:$tag" >/dev/null
rm -rf "$work/clone"
git clone -q "$deploy" "$work/clone"
cd "$work/clone"
f=apps/sample-app/deployment.yaml
patch="{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"$image:$tag\"}]}}}}"
kubectl patch --local -o yaml -f "$f" -p "$patch" >"$f.tmp"
mv "$f.tmp" "$f"
git add "$f"
git -c user.name=classic -c user.email=classic@localhost commit -q -m "Update image to $image:$tag" || true
git push -q origin HEAD:main
