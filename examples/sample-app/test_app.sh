#!/bin/sh
# Unit test of the sample app: the greeting names the app.
set -e
out=$(APP_VERSION=1.2.3 sh ./app.sh)
case "$out" in
  "hello from sample-app 1.2.3") echo "ok - greeting"; exit 0 ;;
  *) echo "not ok - greeting: got '$out'"; exit 1 ;;
esac
