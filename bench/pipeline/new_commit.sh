#!/usr/bin/env bash
# hyperfine --prepare: a fresh app commit that changes what goes into the image (a new layer to push).
set -euo pipefail
cd "$1"
printf '#!/bin/sh\n# build %s\necho "hello from sample-app ${APP_VERSION:-dev}"\n' "$(date +%s%N)" >app.sh
git add app.sh
git -c user.name=bench -c user.email=bench@localhost commit -q -m "bench change"
