#!/usr/bin/env bash
# What leaving out the docker SDK and GitPython would buy, measured rather than estimated (issue #4's deep
# target; bench/RESULTS.md, "Twelfth session").  Interleaved rounds on the trivial sample app, each
# contender on a fresh app commit and its own copy of the deploy repo, in this order:
#   classic   bench/pipeline/classic.sh (the script of issue #4)
#   gitops    this tree, as installed in .venv
#   no-gitpy  this tree with git.run starting git through subprocess.Popen: GitPython is never imported
#   no-deps   no-gitpy, plus a stand-in `docker` package: the few Engine API calls this run makes
#             (version, build, push, image and network inspect) with http.client over the unix socket,
#             and the requests/urllib3 exception names engine.py imports
# The stand-ins are measurement prototypes, not a design: no TLS, no tcp:// or ssh:// DOCKER_HOST, no
# error mapping beyond this run's.  They are written to a temp dir, used through PYTHONPATH, and removed.
#
# Usage: N=10 CASE=deep|small bench/pipeline/without_deps.sh
# Needs: docker-registry, kubectl, a Docker Engine on /var/run/docker.sock, the base image
# gitops-demo/busybox:1.36 (`make demo`).  Prints per contender the mean and median wall time (s) and the
# mean's ratio to the script's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${N:-10}
CASE=${CASE:-deep}
PY=$ROOT/.venv/bin/python
work=$(mktemp -d "${TMPDIR:-/tmp}/gitops-bench-deps.XXXXXX")
registry_pid=""
cleanup() {
    if [ -n "$registry_pid" ]; then kill -TERM "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
    if [ -n "${host:-}" ]; then remove_images "$host/demo/sample-app" "$host/bench/classic-trivial"; fi
    rm -rf "$work"
}
trap cleanup EXIT

docker image inspect gitops-demo/busybox:1.36 >/dev/null 2>&1 || { echo "run make demo first (base image)" >&2; exit 1; }
"$PY" -m compileall -q "$ROOT/gitops_cli"

# --- the two prototype trees ----------------------------------------------------------------------------
mkdir -p "$work/no-gitpy" "$work/shim/docker" "$work/shim/requests" "$work/shim/urllib3"
git -C "$ROOT" archive HEAD gitops_cli | tar -x -C "$work/no-gitpy"
"$PY" - "$work/no-gitpy/gitops_cli/git.py" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
swaps = [
    ("    Git, GitCommandNotFound = _gitpython()\n", ""),
    ("""            handles.append(Git(str(cwd) if cwd else None).execute(
                ["git", *options, *args], as_process=True, env=base_env(env), start_new_session=True))
        except GitCommandNotFound:""",
     """            handles.append(subprocess.Popen(["git", *options, *args], cwd=str(cwd) if cwd else None,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=base_env(env), start_new_session=True))
        except FileNotFoundError:"""),
    ("        return handles[0].proc  # type: ignore[no-any-return]", "        return handles[0]"),
]
for old, new in swaps:
    if text.count(old) != 1:
        sys.exit(f"without_deps.sh: git.run no longer reads as this prototype expects ({old.strip()[:60]!r})")
    text = text.replace(old, new)
open(path, "w").write(text)
PY
"$PY" -m compileall -q "$work/no-gitpy"

cat >"$work/shim/docker/errors.py" <<'PY'
class DockerException(Exception): pass
class APIError(DockerException):
    def __init__(self, message, response=None, explanation=None):
        super().__init__(message)
        self.response, self.explanation = response, explanation
class NotFound(APIError): pass
class ImageNotFound(NotFound): pass
class TLSParameterError(DockerException): pass
PY
cat >"$work/shim/docker/utils.py" <<'PY'
def kwargs_from_env(environment=None):
    host = (environment or {}).get("DOCKER_HOST")
    return {"base_url": host} if host else {}
def parse_host(address, tls=False):
    return address or "http+unix:///var/run/docker.sock"
def version_lt(a, b):
    return tuple(map(int, a.split("."))) < tuple(map(int, b.split(".")))
PY
cat >"$work/shim/docker/__init__.py" <<'PY'
import base64, http.client, json, socket, urllib.parse
from docker.errors import APIError, DockerException, ImageNotFound

class _Connection(http.client.HTTPConnection):
    def __init__(self, timeout):
        super().__init__("localhost", timeout=timeout)
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.timeout:
            self.sock.settimeout(self.timeout)
        self.sock.connect("/var/run/docker.sock")

class APIClient:
    def __init__(self, version="auto", timeout=None, **kwargs):
        self.timeout = timeout
        try:
            self.api_version = self._json("GET", "/version")["ApiVersion"]
        except OSError as exc:
            raise DockerException(str(exc)) from None
    def _url(self, path):
        return f"/v{self.api_version}{path}"
    def _request(self, method, url, params=None, data=None, headers=None):
        if params:
            url += "?" + urllib.parse.urlencode({k: str(v).lower() if isinstance(v, bool) else v
                                                 for k, v in params.items() if v is not None})
        connection = _Connection(self.timeout)
        connection.request(method, url, body=data.read() if hasattr(data, "read") else data, headers=headers or {})
        return connection.getresponse()
    def _json(self, method, path):
        response = self._request(method, self._url(path) if hasattr(self, "api_version") else path)
        body = response.read().decode()
        if response.status >= 400:
            raise (ImageNotFound if response.status == 404 else APIError)(body, response, body)
        return json.loads(body)
    def _post(self, url, data=None, params=None, stream=False, timeout=None, headers=None):
        return self._request("POST", url, params=params, data=data, headers=headers)
    def _raise_for_status(self, response):
        if response.status >= 400:
            body = response.read().decode()
            raise APIError(body, response, body)
    def _stream_helper(self, response, decode=True):
        decoder, buffer = json.JSONDecoder(), ""
        while chunk := response.read1(65536):
            buffer += chunk.decode()
            while buffer := buffer.lstrip():
                try:
                    event, end = decoder.raw_decode(buffer)
                except ValueError:
                    break
                yield event
                buffer = buffer[end:]
    def inspect_image(self, name):
        return self._json("GET", f"/images/{name}/json")
    def inspect_network(self, name):
        return self._json("GET", f"/networks/{name}")
    def push(self, repository, tag=None, stream=True, decode=True, auth_config=None):
        auth = base64.urlsafe_b64encode(json.dumps(auth_config or {}).encode()).decode()
        response = self._request("POST", self._url(f"/images/{repository}/push"), params={"tag": tag},
                                 headers={"X-Registry-Auth": auth})
        self._raise_for_status(response)
        return self._stream_helper(response)
    def close(self):
        pass
PY
: >"$work/shim/requests/__init__.py"
printf 'class RequestException(OSError): pass\nclass Timeout(RequestException): pass\n' >"$work/shim/requests/exceptions.py"
: >"$work/shim/urllib3/__init__.py"
printf 'class HTTPError(Exception): pass\nclass TimeoutError(HTTPError): pass\n' >"$work/shim/urllib3/exceptions.py"

# --- registry, app, deploy repos -----------------------------------------------------------------------
# shellcheck source=registry.sh
. "$HERE/registry.sh"
start_registry "$work/registry"
checkout "$ROOT/examples/sample-app" "$work/app" app
checkout "$ROOT/examples/deploy-repo" "$work/seed" seed
git init -q --bare -b main "$work/origin.git"
if [ "$CASE" = deep ]; then
    python3 "$HERE/deep_history.py" "$work/seed" 10000 | git -C "$work/origin.git" fast-import --quiet
    git -C "$work/origin.git" gc -q
else
    git -C "$work/seed" push -q "$work/origin.git" HEAD:main
fi
sides=(classic gitops no-gitpy no-deps)
for side in "${sides[@]}"; do cp -a "$work/origin.git" "$work/$side.git"; done

command_of() {  # the command line of a contender
    case $1 in
        classic) echo "$HERE/classic.sh $work/app $host/bench/classic-trivial file://$work/classic.git $work" ;;
        gitops) echo "$ROOT/.venv/bin/gitops build-and-bump --deploy-repo file://$work/gitops.git" ;;
        no-gitpy) echo "env PYTHONPATH=$work/no-gitpy $PY -m gitops_cli build-and-bump --deploy-repo file://$work/no-gitpy.git" ;;
        no-deps) echo "env PYTHONPATH=$work/no-gitpy:$work/shim $PY -m gitops_cli build-and-bump --deploy-repo file://$work/no-deps.git" ;;
    esac
}
run() {  # run SIDE: one timed run on a fresh app commit, "SIDE START END" to times.txt
    local t0 t1
    "$HERE/new_commit.sh" "$work/app"
    t0=$(date +%s.%N)
    (cd "$work/app" && $(command_of "$1") >/dev/null 2>"$work/err") || { echo "$1 failed:" >&2; cat "$work/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$1 $t0 $t1" >>"$work/times.txt"
}

for side in "${sides[@]}"; do run "$side"; done; : >"$work/times.txt"  # a warm-up round, not counted
for _ in $(seq "$N"); do for side in "${sides[@]}"; do run "$side"; done; done

python3 - "$work/times.txt" "$CASE" "$N" "${sides[@]}" <<'PY'
import statistics, sys
path, case, rounds, sides = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
times = {side: [] for side in sides}
for line in open(path):
    side, start, end = line.split()
    times[side].append(float(end) - float(start))
base = statistics.mean(times["classic"])
print(f"trivial app, {case} deploy repo, {rounds} interleaved rounds: mean / median (s), mean / script's mean")
for side in sides:
    values = times[side]
    print(f"{side:9} {statistics.mean(values):.3f} / {statistics.median(values):.3f}  {statistics.mean(values) / base:.2f}x")
PY
