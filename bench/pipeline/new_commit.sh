#!/usr/bin/env bash
# hyperfine --prepare: a fresh app commit that changes what goes into the image (a new layer to push),
# on a fresh checkout (no build/ left over: a CI runner starts without the previous run's objects).
# The trivial sample app changes app.sh; the realistic app (real_app.py) changes src/version.c.
set -euo pipefail
cd "$1"
stamp=$(date +%s%N)
if [ -f src/version.c ]; then
    printf '#include "app.h"\nconst char *app_version = "%s";\n' "$stamp" >src/version.c
    git add src/version.c
else
    printf '#!/bin/sh\n# build %s\necho "hello from sample-app ${APP_VERSION:-dev}"\n' "$stamp" >app.sh
    git add app.sh
fi
git -c user.name=bench -c user.email=bench@localhost commit -q -m "bench change"
rm -rf build
