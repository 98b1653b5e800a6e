# Sourced by run.sh and ab.sh: start_registry DIR starts `docker-registry serve` on a free 127.0.0.1 port,
# storing under DIR, and waits until it answers; sets registry_pid (the caller stops it) and host
# (127.0.0.1:PORT).
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
