#!/bin/sh
# The sample app: prints a greeting with the version baked in at build time.
echo "hello from sample-app ${APP_VERSION:-dev}"
