# Sourced by run.sh, ab.sh and without_deps.sh: start_registry DIR starts `docker-registry serve` on a free
# 127.0.0.1 port, storing under DIR, and waits until it answers; sets registry_pid (the caller stops it) and
# host (127.0.0.1:PORT).  copy and checkout (below) make the sample app and deploy repo from examples/.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_registry() {
    local dir=$1 port
    port=$(free_port)
    mkdir -p "$dir"
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$dir/storage" "$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    registry_pid=$!
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; do sleep 0.1; done
    host=127.0.0.1:$port
}

export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost

# copy SRC DEST: an example tree without build outputs, its image names pointing at this registry ($host)
copy() { cp -R "$1" "$2"; rm -rf "$2/build"; grep -rlF 127.0.0.1:5000 "$2" | xargs -r sed -i "s/127\.0\.0\.1:5000/$host/g"; }

# checkout SRC DEST MESSAGE: copy SRC to DEST, a git repository with all of it in one commit on main
checkout() { copy "$1" "$2"; git -C "$2" init -q -b main && git -C "$2" add -A && git -C "$2" commit -q -m "$3"; }

# remove_images REPOSITORY...: the run's images of these repositories, from the engine (clean-up)
remove_images() {
    local repo
    for repo in "$@"; do
        docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo" | xargs -r docker image rm >/dev/null 2>&1 || true
    done
}
