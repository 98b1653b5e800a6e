#!/usr/bin/env bash
# `make demo`: the whole GitOps pipeline on local defaults, then a re-run on the same commit.
#
# 1. starts a registry on 127.0.0.1 (port 5000 when free, else a free port): the `docker-registry`
#    binary when installed, else the `registry:2` image with --network host;
# 2. creates a bare deploy repo from examples/deploy-repo;
# 3. makes sure the base image gitops-demo/busybox:1.36 exists: built offline (`docker import` of a
#    busybox-static rootfs) when busybox is installed, else pulled (busybox:1.36); DEMO_PULL=1 tries
#    the pull first;
# 4. copies examples/sample-app into a fresh git repo and commits it; runs `gitops build-and-bump`;
# 5. shows the deploy-repo commit, the registry's tags and the summary; runs it again (nothing is
#    rebuilt, pushed or committed);
# 6. stops what it started (by PID / container id) and removes its temp dir and the images it built.
#    The base image is kept (its content is fixed; the next run is faster).
#
# Everything lives under one temp dir.  When port 5000 is taken, the COPIES of the examples are
# rewritten to the port in use (the examples themselves are never changed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GITOPS=${GITOPS:-$ROOT/.venv/bin/gitops}
[ -x "$GITOPS" ] || GITOPS=$(command -v gitops || true)
PYTHON=${PYTHON:-python3}
BASE_IMAGE=gitops-demo/busybox:1.36
IMAGE_PATH=demo/sample-app
EXAMPLE_HOST=127.0.0.1:5000

work=$(mktemp -d "${TMPDIR:-/tmp}/gitops-demo.XXXXXX")
registry_pid=""
registry_container=""
port=""
built_images=()

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m'; reset=$'\033[0m'; else bold=""; reset=""; fi
say() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
die() { printf 'demo: error: %s\n' "$1" >&2; [ -n "${2:-}" ] && printf 'demo: hint: %s\n' "$2" >&2; exit "${3:-1}"; }

cleanup() {
    local status=$?
    trap - EXIT
    trap '' INT TERM  # a second Ctrl-C or TERM must not cut the clean-up short
    if [ -n "$registry_pid" ] && kill -0 "$registry_pid" 2>/dev/null; then
        kill -TERM "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
        echo "demo: stopped the registry (pid $registry_pid)"
    fi
    if [ -n "$registry_container" ]; then
        docker rm -f "$registry_container" >/dev/null 2>&1 || true
        echo "demo: removed the registry container ${registry_container:0:12}"
    fi
    for image in "${built_images[@]}"; do
        docker image rm "$image" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
    echo "demo: removed $work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_is_free() {
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the registry does: TIME_WAIT is no obstacle
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_registry() {
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then return 0; fi
        if [ -n "$registry_pid" ] && ! kill -0 "$registry_pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

start_registry() {
    local storage="$work/registry/storage"
    mkdir -p "$storage"
    if command -v docker-registry >/dev/null 2>&1; then
        cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
http:
  addr: 127.0.0.1:$port
EOF
        docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 </dev/null &
        registry_pid=$!
        echo "demo: docker-registry on 127.0.0.1:$port (pid $registry_pid)"
    else
        registry_container=$(docker run -d --network host -e "REGISTRY_HTTP_ADDR=127.0.0.1:$port" \
            -v "$storage:/var/lib/registry" registry:2)
        echo "demo: registry:2 container ${registry_container:0:12} on 127.0.0.1:$port"
    fi
    wait_for_registry
}

ensure_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        echo "demo: base image $BASE_IMAGE is present"
        return
    fi
    local busybox
    busybox=$(command -v busybox || true)
    if [ "${DEMO_PULL:-0}" = 1 ] || [ -z "$busybox" ]; then
        if docker pull busybox:1.36 && docker tag busybox:1.36 "$BASE_IMAGE"; then return; fi
        [ -n "$busybox" ] || die "cannot pull busybox:1.36 and busybox is not installed" \
            "apt-get install busybox-static (the base image is then built offline)"
    fi
    echo "demo: building $BASE_IMAGE offline from $busybox"
    local rootfs="$work/rootfs"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp}
    chmod 1777 "$rootfs/tmp"
    cp "$busybox" "$rootfs/bin/busybox"
    local applet
    for applet in $("$busybox" --list-full); do
        [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$rootfs/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\n' >"$rootfs/etc/group"
    tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
}

# Identity for the demo's own commits (the bump commits as gitops-cli unless configured otherwise).
export GIT_AUTHOR_NAME="gitops demo" GIT_AUTHOR_EMAIL=demo@localhost
export GIT_COMMITTER_NAME="gitops demo" GIT_COMMITTER_EMAIL=demo@localhost

copy_example() {  # copy_example SRC DEST: copy, and point the copy at the registry in use
    cp -R "$1" "$2"
    rm -rf "$2/build"
    if [ "$host" != "$EXAMPLE_HOST" ]; then
        grep -rlF "$EXAMPLE_HOST" "$2" | while read -r f; do sed -i "s/127\.0\.0\.1:5000/$host/g" "$f"; done
    fi
}

# --- preflight ------------------------------------------------------------------------------------
[ -n "$GITOPS" ] || die "the gitops command is not installed" "run \`make demo\` (it creates .venv)" 2
docker version >/dev/null 2>&1 || die "no Docker Engine answers (${DOCKER_HOST:-unix:///var/run/docker.sock})" \
    "start dockerd (see .ci/run)" 7
command -v curl >/dev/null || die "curl is not installed" "apt-get install curl"
echo "demo: work dir $work"

say "Starting a local registry"
port=5000
if ! port_is_free "$port"; then
    port=$(free_port)
    echo "demo: 127.0.0.1:5000 is taken; using 127.0.0.1:$port (the copies of the examples are rewritten)"
fi
if ! start_registry; then
    [ -z "$registry_pid" ] || { kill -TERM "$registry_pid" 2>/dev/null || true; wait "$registry_pid" || true; }
    [ -z "$registry_container" ] || docker rm -f "$registry_container" >/dev/null 2>&1 || true
    registry_pid="" registry_container="" port=$(free_port)
    echo "demo: retrying on 127.0.0.1:$port"
    start_registry || die "the registry did not start: $(tail -n 5 "$work/registry/log" 2>/dev/null)"
fi
host=127.0.0.1:$port
image=$host/$IMAGE_PATH

say "Creating the deploy repo from examples/deploy-repo"
git init --quiet --bare --initial-branch=main "$work/deploy.git"
copy_example "$ROOT/examples/deploy-repo" "$work/deploy-seed"
git -C "$work/deploy-seed" init --quiet --initial-branch=main
git -C "$work/deploy-seed" add -A
git -C "$work/deploy-seed" commit --quiet -m "Initial manifests"
git -C "$work/deploy-seed" push --quiet "$work/deploy.git" HEAD:refs/heads/main
rm -rf "$work/deploy-seed"
echo "demo: file://$work/deploy.git"

say "Making sure the base image $BASE_IMAGE exists"
ensure_base_image

say "Committing a fresh copy of examples/sample-app"
copy_example "$ROOT/examples/sample-app" "$work/app"
git -C "$work/app" init --quiet --initial-branch=main
git -C "$work/app" add -A
git -C "$work/app" commit --quiet -m "sample-app: demo build $(date -u +%Y-%m-%dT%H:%M:%SZ)"
tag=$(cd "$work/app" && "$GITOPS" tag)
built_images+=("$image:$tag")
echo "demo: commit $(git -C "$work/app" rev-parse HEAD) -> tag $tag"

say "gitops build-and-bump (tag -> test -> build -> publish -> bump)"
(cd "$work/app" && "$GITOPS" build-and-bump --deploy-repo "file://$work/deploy.git" --dotenv "$work/gitops.env")

say "The deploy repo's new commit"
git --no-pager -C "$work/deploy.git" log -1 --stat --patch --format='commit %H%nAuthor: %an <%ae>%n%n%B' main

say "The registry's tags for $IMAGE_PATH"
curl -fsS "http://$host/v2/$IMAGE_PATH/tags/list"
echo

say "Step outputs (--dotenv; \$GITHUB_OUTPUT in GitHub Actions)"
cat "$work/gitops.env"

say "Re-running on the same commit: nothing is rebuilt, pushed or committed"
before=$(git -C "$work/deploy.git" rev-list --count main)
(cd "$work/app" && "$GITOPS" build-and-bump --deploy-repo "file://$work/deploy.git")
after=$(git -C "$work/deploy.git" rev-list --count main)
[ "$before" = "$after" ] || die "the re-run made a new deploy commit ($before -> $after commits)"
echo "demo: deploy repo still has $after commits"

say "Done"
