"""Registry queries (Registry HTTP API v2) and registry credentials, with the standard library only.

- `resolve_digest(ref, creds)`: the manifest digest a tag points at (HEAD, `Docker-Content-Digest`).
- `get_manifest` / `get_blob_json`: the manifest (docker v2 or OCI, image or index) and the config blob,
  used by `gitops publish` to tell "same image already there" from "different image under that tag".
  What is read by digest (a blob, a manifest by digest) is verified against it (verify_content), as docker
  and containerd verify what they pull: wrong content is DigestMismatchError (exit 8).
- Authentication: anonymous first; on 401 follow the `WWW-Authenticate` challenge (Bearer token from
  the realm, or Basic).  A 401/403 that persists is RegistryAuthError (exit 9); a network failure is
  RegistryError (exit 8) naming the URL: "unreachable" when no connection was made, "the connection broke
  while reading the answer" when it was.
- HTTP as Go's client does it for docker: up to MAX_REDIRECTS redirects, the Authorization to the
  registry's host only (an error of another host is that host's, never a login failure); a GET or HEAD
  answered 429/502/503/504 is retried, the token endpoint's GET too (Retry-After honoured, RETRY_WAIT_LIMIT
  seconds in all).
- Credentials (`resolve_credentials`, the one resolution of every verb): the `registry_username` setting
  (--username, GITOPS_REGISTRY_USERNAME or the config file) with --password-stdin or
  GITOPS_REGISTRY_PASSWORD, else the docker config (DOCKER_CONFIG or ~/.docker/config.json:
  `credHelpers`, `credsStore`, `auths`).  Every password is registered with output.register_secret and
  never printed.
- The scheme as dockerd chooses it (`endpoint`): HTTPS verified with the system's CAs and dockerd's
  /etc/docker/certs.d/HOST[:PORT]/ (and a rootless dockerd's ~/.config/docker/certs.d/HOST[:PORT]/); for an
  insecure registry (`insecure_registries`, 127.0.0.0/8, localhost, [::1]) HTTPS without verification, then
  plain HTTP; remembered for the process.

No docker import here: `gitops bump` resolves digests without the docker SDK.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import hashlib
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_cli import output
from gitops_cli.errors import (
    ConfigError,
    InvalidReferenceError,
    RegistryAuthError,
    RegistryError,
    UsageError,
    VerificationError,
)
from gitops_cli.imageref import DEFAULT_DOMAIN, ImageRef, validate_digest
from gitops_cli.settings import home_directory

if TYPE_CHECKING:
    from gitops_cli.settings import Names

DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
TIMEOUT = 30  # seconds for a whole request and its whole answer (_fetch), not for each read

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = frozenset(MANIFEST_TYPES[:2])
IMAGE_TYPES = frozenset(MANIFEST_TYPES[2:])
SCHEMA1_TYPES = frozenset({"application/vnd.docker.distribution.manifest.v1+json",
                           "application/vnd.docker.distribution.manifest.v1+prettyjws"})


# --- credentials -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = "flags"  # for messages: "--username and --password-stdin", "docker config PATH", ...

    def __post_init__(self) -> None:
        output.register_secret(self.password)
        # base64 of user:password: the Basic Authorization value and the docker config's `auth` field, which
        # decode to the password; masked too, where an answer or a proxy's error echoes the header
        output.register_secret(self.basic)

    @property
    def basic(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    @property
    def is_identity_token(self) -> bool:
        return self.username == "<token>"

    def auth_config(self, host: str) -> dict[str, str]:
        """The docker SDK's auth_config for a push to `host`."""
        if self.is_identity_token:
            return {"identitytoken": self.password, "serveraddress": host}
        return {"username": self.username, "password": self.password, "serveraddress": host}


def registry_host(ref: ImageRef) -> str:
    """The registry a reference lives in, as written in docker config keys (`docker.io` for Hub images)."""
    return ref.normalized_domain


def resolve_credentials(
    host: str,
    username: str | None = None,
    password: str | None = None,
    environ: Mapping[str, str] | None = None,
    names: Names | None = None,
    flags: bool = True,
) -> Credentials | None:
    """Credentials for `host`, the one resolution of every verb that talks to a registry (publish,
    build-and-bump, bump's and rollback's look-ups): the registry username (the `registry_username`
    setting: --username, GITOPS_REGISTRY_USERNAME or the config file) with its password (`password`,
    from --password-stdin, else GITOPS_REGISTRY_PASSWORD); without a username, the docker config; else None.

    `names`: settings.names, how messages name where the username came from.  `flags`: the verb has
    --username/--password-stdin (messages name only what the verb offers)."""
    env = os.environ if environ is None else environ
    names = names or _flag_names()
    if password is not None:
        output.register_secret(password)
    env_pass = _set(env, "GITOPS_REGISTRY_PASSWORD")
    if env_pass is not None:
        output.register_secret(env_pass)
    if username:
        user_source = _username_source(names)
        if password is not None:
            return Credentials(username, password, f"{user_source} and --password-stdin")
        if env_pass is not None:
            return Credentials(username, env_pass, f"{user_source} and GITOPS_REGISTRY_PASSWORD")
        raise UsageError(
            f"{names('registry_username', username)}: a registry username without a password",
            hint="pipe it to --password-stdin or set GITOPS_REGISTRY_PASSWORD" if flags
            else "set GITOPS_REGISTRY_PASSWORD",
        )
    where = "--username, GITOPS_REGISTRY_USERNAME or registry_username in the config file" if flags \
        else "GITOPS_REGISTRY_USERNAME or registry_username in the config file"
    if password is not None:
        raise UsageError("--password-stdin needs --username (or GITOPS_REGISTRY_USERNAME, or registry_username "
                         "in the config file)")
    if env_pass is not None:
        raise UsageError("GITOPS_REGISTRY_PASSWORD is set without a registry username",
                         hint=f"name the user with {where}, or unset GITOPS_REGISTRY_PASSWORD")
    return docker_config_credentials(host, env)


def _flag_names() -> Names:
    from gitops_cli.settings import FLAGS

    return FLAGS


def _username_source(names: Names) -> str:
    """Where the registry username came from, for messages: `--username`, `GITOPS_REGISTRY_USERNAME` or
    `/app/gitops.toml: registry_username`."""
    source = names.sources.get("registry_username", "flag")
    if source == "flag":
        return names.flag("registry_username")
    if source.startswith("env "):
        return source.removeprefix("env ")
    return f"{source}: registry_username"


def login_hint(flags: bool) -> str:
    """How to give registry credentials, naming only what the verb offers (`flags`: --username and
    --password-stdin)."""
    if flags:
        return "docker login, --username with --password-stdin, or GITOPS_REGISTRY_USERNAME/_PASSWORD"
    return ("docker login, GITOPS_REGISTRY_USERNAME/_PASSWORD, or registry_username in the config file "
            "with GITOPS_REGISTRY_PASSWORD")


def _set(env: Mapping[str, str], name: str) -> str | None:
    """A variable's value, None when it is unset or blank (CI systems export an unset secret as an empty
    variable: a fork's pull request gets no secrets), as for every GITOPS_* setting."""
    value = env.get(name)
    return value if value is not None and value.strip() else None


def read_password(stream: Any) -> str:
    """The password given on stdin (`--password-stdin`), trailing newline removed like `docker login`."""
    if stream is None:  # Python's sys.stdin when descriptor 0 is closed (`<&-`)
        raise UsageError("--password-stdin: standard input is closed", hint="pipe the password to it")
    try:
        password = stream.read().rstrip("\r\n")
    except UnicodeDecodeError:
        raise UsageError("--password-stdin: what was read is not UTF-8 text") from None
    if not password:
        raise UsageError("--password-stdin: nothing was read from standard input")
    output.register_secret(password)
    return password


def docker_config_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """$DOCKER_CONFIG/config.json, else ~/.docker/config.json; None without a home directory (no HOME and
    no passwd entry): there is no docker config then."""
    env = os.environ if environ is None else environ
    base = env.get("DOCKER_CONFIG")
    if base:
        return Path(base) / "config.json"
    home = home_directory(env)
    return None if home is None else home / ".docker" / "config.json"


def _config_key(key: str) -> str:
    """`https://host:5000/v1/` -> `host:5000`; Hub's historical spellings -> `docker.io`."""
    host = key.split("://", 1)[-1].split("/", 1)[0].lower()
    return DEFAULT_DOMAIN if host in {"index.docker.io", DOCKER_HUB_API, "docker.io"} else host


_config_warned: set[str] = set()


def load_docker_config(environ: Mapping[str, str] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The docker config (path, data), None when there is none.

    A file that is not JSON is ignored with a warning, as docker does.  ConfigError (exit 2) naming the
    file and the entry for what the docker SDK (which gitops builds and pushes with) cannot read, where
    the docker CLI would skip it: not an object, `auths`/`credHelpers` not objects, an `auths` entry not
    an object, or an `auth` value (even empty) that is not base64 of `user:password`.  The whole file is
    checked: the SDK reads every entry when it connects."""
    path = docker_config_path(environ)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if str(path) not in _config_warned:
            _config_warned.add(str(path))
            output.warn(f"{path}: cannot read the docker config ({exc}); ignoring it, as docker does")
        return None
    hint = "fix or remove the entry (docker login rewrites it)"
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the docker config is not a JSON object", hint=hint)
    for section in ("auths", "credHelpers"):
        if config.get(section) and not isinstance(config[section], dict):
            raise ConfigError(f"{path}: {section!r} in the docker config is not a JSON object", hint=hint)
    for key, helper in (config.get("credHelpers") or {}).items():
        if not isinstance(helper, str):
            raise ConfigError(f"{path}: credHelpers[{key!r}] in the docker config is not a string", hint=hint)
    if config.get("credsStore") and not isinstance(config["credsStore"], str):
        raise ConfigError(f"{path}: 'credsStore' in the docker config is not a string", hint=hint)
    for key, entry in (config.get("auths") or {}).items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: auths[{key!r}] in the docker config is not a JSON object", hint=hint)
        if "auth" in entry and "identitytoken" not in entry and _decode_auth(entry["auth"]) is None:
            raise ConfigError(f"{path}: auths[{key!r}]: malformed 'auth' (expected base64 of user:password)",
                              hint=hint)
    return path, config


def _decode_auth(value: Any) -> tuple[str, str] | None:
    """base64 `user:password` -> (user, password); None when malformed (docker refuses it too)."""
    try:
        user, sep, password = base64.b64decode(str(value), validate=False).decode("utf-8").partition(":")
    except ValueError:
        return None
    return (user, password) if sep else None


def docker_config_credentials(host: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for `host` from the docker config: credHelpers[host], credsStore, then auths."""
    found = load_docker_config(environ)
    if found is None:
        return None
    path, config = found
    want = _config_key(host)
    helpers = config.get("credHelpers") or {}
    helper = next((h for k, h in helpers.items() if _config_key(k) == want), None) or config.get("credsStore")
    if helper:
        creds = helper_credentials(str(helper), host, path)
        if creds is not None:
            return creds
    for key, entry in (config.get("auths") or {}).items():
        if _config_key(key) == want:
            return _auth_entry(entry, f"docker config {path}")
    return None


def has_docker_credentials(host: str | None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the docker config sets up credentials that may apply to `host` (any registry for None):
    a credsStore, a credential helper for it, or an auths entry with credentials.  Asks no helper."""
    found = load_docker_config(environ)
    if found is None:
        return False
    config = found[1]
    want = None if host is None else _config_key(host)
    if config.get("credsStore") or any(want in (None, _config_key(k)) for k in config.get("credHelpers") or {}):
        return True
    return any(want in (None, _config_key(key)) and _auth_entry(entry, "") is not None
               for key, entry in (config.get("auths") or {}).items())


def _auth_entry(entry: Mapping[str, Any], source: str) -> Credentials | None:
    if entry.get("identitytoken"):
        return Credentials("<token>", str(entry["identitytoken"]), source)
    if entry.get("auth"):
        decoded = _decode_auth(entry["auth"])
        assert decoded is not None  # load_docker_config checked it
        return Credentials(*decoded, source)
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]), source)
    return None


def build_credentials(environ: Mapping[str, str] | None = None) -> dict[str, Credentials]:
    """Every registry's credentials in the docker config, keyed as `docker build` sends them to the legacy
    builder (X-Registry-Config: it pulls any FROM image with them): the `auths` entries, then every
    server the `credsStore` lists, then each `credHelpers` registry, a later one winning (as the docker
    CLI and SDK gather them; Docker Hub's key is https://index.docker.io/v1/).  The helpers run as for
    every look-up (helper_credentials): a failing one is skipped with its one warning."""
    found = load_docker_config(environ)
    if found is None:
        return {}
    path, config = found
    gathered: dict[str, Credentials] = {}

    def add(key: str, creds: Credentials | None) -> None:
        if creds is not None:
            gathered[DOCKER_HUB_CONFIG_KEY if _config_key(key) == DEFAULT_DOMAIN else key] = creds

    for key, entry in (config.get("auths") or {}).items():
        add(key, _auth_entry(entry, f"docker config {path}"))
    store = config.get("credsStore")
    if store:
        for server in _helper_servers(str(store), path):
            add(server, helper_credentials(str(store), server, path))
    for key, helper in (config.get("credHelpers") or {}).items():
        add(key, helper_credentials(str(helper), key, path))
    return gathered


def helper_credentials(helper: str, host: str, config_path: Path) -> Credentials | None:
    """Ask `docker-credential-HELPER get`; None when it has nothing for `host`, or is not installed or
    fails (named in warn_helper_failed's one warning; its output never reaches stderr as it is)."""
    server = DOCKER_HUB_CONFIG_KEY if _config_key(host) == DEFAULT_DOMAIN else host
    program = f"docker-credential-{helper}"
    answer = _ask_helper(program, "get", server, config_path)
    if answer is None:
        return None
    try:
        data = json.loads(answer)
        user, secret = str(data["Username"]), str(data["Secret"])
    except (ValueError, KeyError, TypeError):
        warn_helper_failed(program, "its answer is not the credential helpers' JSON", config_path)
        return None
    if not user and not secret:  # docker-credential-pass answers an unknown server so
        return None
    return Credentials(user, secret, f"credential helper {program}")


def _helper_servers(helper: str, config_path: Path) -> list[str]:
    """The servers `docker-credential-HELPER list` has credentials for (none when it fails: its warning)."""
    program = f"docker-credential-{helper}"
    answer = _ask_helper(program, "list", "unused", config_path)  # the input docker's helper client sends
    if answer is None:
        return []
    try:
        servers = json.loads(answer)
    except ValueError:
        servers = None
    if not isinstance(servers, dict):
        warn_helper_failed(program, "its list is not a JSON object", config_path)
        return []
    return [str(server) for server in servers]


HELPER_TIMEOUT = 60  # seconds a credential helper has to answer (a `pass` waiting for its GPG passphrase...)
HELPER_OUTPUT_LIMIT = 1 << 20  # bytes a credential helper may write to stdout or stderr: credentials are small
_helpers_given_up: set[str] = set()  # helpers that hung or flooded: not run again in this process


class _HelperFailed(Exception):
    """A credential helper that did not answer in time, or wrote too much (the reason)."""


def _ask_helper(program: str, action: str, data: str, config_path: Path) -> str | None:
    """Run `program ACTION` with `data` on its stdin, its output captured: its stdout; None when it has
    no credentials for the server ("credentials not found"), or is not installed, fails, does not answer
    within HELPER_TIMEOUT or writes more than HELPER_OUTPUT_LIMIT (warn_helper_failed's one warning, with
    its own words; one that hung or flooded is not run again)."""
    if program in _helpers_given_up:
        return None
    try:
        status, out, err = _run_helper([program, action], data)
    except FileNotFoundError:
        warn_helper_failed(program, "not installed", config_path)
        return None
    except OSError as exc:  # not executable, ...
        warn_helper_failed(program, exc.strerror or str(exc), config_path)
        return None
    except _HelperFailed as exc:
        _helpers_given_up.add(program)
        warn_helper_failed(program, str(exc), config_path)
        return None
    if status != 0:
        if "credentials not found" in out + err:  # the helpers' "... in native keychain"
            return None
        warn_helper_failed(program, _helper_reason(out, err, status), config_path)
        return None
    return out


# a credential-looking field in a helper's words: `"Secret": "..."`, `Username=...`, `password: ...`
_CREDENTIAL_FIELD = re.compile(r"""(?i)(["']?\b(?:secret|password|passwd|token|username)["']?\s*[:=]\s*)"""
                               r"""("(?:[^"\\]|\\.)*"|'[^']*'|[^\s,;}]+)""")


def _helper_reason(out: str, err: str, status: int) -> str:
    """Why a helper failed, in its own words, for warn_helper_failed: the first line of its stderr, else of
    its stdout (where the helpers' protocol puts errors), else its exit status.  Never its credentials: a
    Secret it printed (its answer, then a non-zero exit) is registered as a secret, a stdout that is the
    helpers' JSON is not shown, and any credential-looking value in the line shown is masked."""
    for text in (out, err):
        for secret in _helper_secrets(text):
            output.register_secret(secret)
    hidden = _is_helper_json(out) or bool(_CREDENTIAL_FIELD.search(out))  # its answer, not its words
    for text in (err, "" if hidden else out):
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if lines:
            return _CREDENTIAL_FIELD.sub(lambda m: m.group(1) + "***", lines[0])
    return f"exit status {status}" + ("; it printed credentials, not shown" if hidden else "")


def _is_helper_json(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and bool({"Secret", "Username", "ServerURL"} & set(data))


def _helper_secrets(text: str) -> list[str]:
    """The Secret values in a helper's output: its JSON's, and any `"Secret": "..."` in its words."""
    found: list[str] = []
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("Secret"), str):
        found.append(data["Secret"])
    for match in re.finditer(r'"Secret"\s*:\s*"((?:[^"\\]|\\.)*)"', text):
        try:
            found.append(json.loads(f'"{match.group(1)}"'))
        except ValueError:
            found.append(match.group(1))
    return found


def _run_helper(argv: list[str], data: str) -> tuple[int, str, str]:
    """Run a credential helper with `data` on its stdin: (exit status, stdout, stderr).  _HelperFailed
    when it has not answered (exited, its output read) within HELPER_TIMEOUT, or writes more than
    HELPER_OUTPUT_LIMIT to either stream; it is killed then (and on any other way out, Ctrl-C included)."""
    import selectors

    deadline = time.monotonic() + HELPER_TIMEOUT
    # a session of its own: when it is given up, its whole process group is killed, what it started too
    # and no secret variable: a helper reads its own store (settings.child_environment)
    from gitops_cli.settings import child_environment

    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=child_environment())
    answered = False
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    read = {out_fd: bytearray(), err_fd: bytearray()}
    try:
        try:
            proc.stdin.write(data.encode())  # a server's name: far less than a pipe holds, never blocks
            proc.stdin.close()
        except BrokenPipeError:  # it did not read its input: its answer will tell
            pass
        with selectors.DefaultSelector() as selector:
            for fd in read:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _HelperFailed(f"no answer within {HELPER_TIMEOUT} s")
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fd)
                    elif len(read[key.fd]) + len(chunk) > HELPER_OUTPUT_LIMIT:
                        raise _HelperFailed(f"it wrote more than {HELPER_OUTPUT_LIMIT >> 20} MiB")
                    else:
                        read[key.fd] += chunk
        try:
            status = proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # its output closed, but it goes on
            raise _HelperFailed(f"no answer within {HELPER_TIMEOUT} s") from None
        answered = True
    finally:
        if not answered:  # given up (or interrupted): not reaped yet, so its group id is still its own
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except BrokenPipeError:
                pass
    return status, read[out_fd].decode("utf-8", "replace"), read[err_fd].decode("utf-8", "replace")


_helper_warned: set[str] = set()


def warn_helper_failed(program: str, reason: str, config_path: Path | str | None = None) -> None:
    """The one warning, in one wording, for a docker credential helper that is not installed or fails
    (gitops' look-ups, and the credentials of a legacy build: build_credentials), once per helper: the
    request goes on without the docker config's credentials, as docker does."""
    if program in _helper_warned:
        return
    _helper_warned.add(program)
    where = f"{config_path}: " if config_path else ""
    reason = output.redact(reason)[:200]  # cut after masking: never a secret's first characters
    output.warn(f"{where}credential helper {program} failed ({reason}); going on without the docker config's "
                "credentials, as docker does")


# --- endpoints ---------------------------------------------------------------------------------------
CERTS_DIR = Path("/etc/docker/certs.d")  # dockerd's per-registry CAs and client certificates (HOST[:PORT]/)
TLS_HANDSHAKE_TIMEOUT = 10  # seconds, as dockerd's: how long the HTTPS attempt of an insecure registry may take
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")  # dockerd's default insecure registries


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(host: str) -> str:
    """`[::1]:5000` -> `::1`, `Reg.example.com:5000` -> `reg.example.com`."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


@functools.cache
def _addresses(name: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """The addresses of a host name (an address: itself); none when it does not resolve."""
    try:
        return (ipaddress.ip_address(name),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    return tuple(ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos)


def is_insecure(host: str, insecure: Iterable[str] = ()) -> bool:
    """Whether dockerd treats `host` as an insecure registry (moby's isSecureIndex): it is an entry of
    `insecure` (HOST[:PORT], in any letter case), or an address of it is in 127.0.0.0/8 or in a CIDR entry
    of `insecure` (`10.0.0.0/8`).  `localhost` and `[::1]` count too (loopback, as gitops always had it)."""
    if host == DEFAULT_DOMAIN:
        return False
    entries = {entry.strip().lower() for entry in insecure}
    if host.lower() in entries or _is_loopback(host):
        return True
    networks = [LOOPBACK]
    for entry in entries:
        if "/" in entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))  # type: ignore[arg-type]
            except ValueError:
                pass
    return any(address in network for address in _addresses(_host_name(host)) for network in networks
               if address.version == network.version)


@dataclass(frozen=True)
class Endpoint:
    url: str  # https://HOST or http://HOST
    context: ssl.SSLContext  # for https URLs (the registry's, its token service's)
    tls_failure: str | None = None  # an insecure registry answered over plain HTTP: why HTTPS failed


_endpoints: dict[tuple[str, frozenset[str]], Endpoint] = {}


def endpoint(host: str, insecure: Iterable[str] = ()) -> Endpoint:
    """How to reach `host`, as dockerd does (moby's lookupV2Endpoints): HTTPS, verified with the system's
    CAs plus HOST[:PORT]/*.crt of certs_dirs (and the client certificate *.cert with its *.key there); for an
    insecure registry (is_insecure), HTTPS without verification, and plain HTTP when that fails.  The
    answer is remembered for the process: a bump resolving many digests asks once."""
    key = (host, frozenset(entry.strip().lower() for entry in insecure))
    found = _endpoints.get(key)
    if found is None:
        found = _endpoints[key] = _find_endpoint(host, is_insecure(host, insecure))
    return found


def _find_endpoint(host: str, insecure: bool) -> Endpoint:
    api = DOCKER_HUB_API if host == DEFAULT_DOMAIN else host
    if not insecure:
        return Endpoint(f"https://{api}", _verified_context(None if host == DEFAULT_DOMAIN else host))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"https://{api}/v2/", method="GET")
    try:  # any answer over TLS will do: 200, 401, 404 ...
        _fetch(_opener(host, context), request, TLS_HANDSHAKE_TIMEOUT)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # no TLS there, refused, ...
        return Endpoint(f"http://{api}", context, output.redact(str(getattr(exc, "reason", exc))))
    return Endpoint(f"https://{api}", context)


def user_certs_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """A rootless dockerd's certs.d (moby's CertsDir under RootlessKit): $XDG_CONFIG_HOME/docker/certs.d,
    ~/.config/docker/certs.d when XDG_CONFIG_HOME is unset (or not absolute, which the XDG rules ignore);
    None without a home directory."""
    env = os.environ if environ is None else environ
    config_home = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(config_home):
        home = home_directory(env)
        if home is None:
            return None
        config_home = str(home / ".config")
    return Path(config_home) / "docker" / "certs.d"


def rootless_engine(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the engine gitops talks to is a rootless dockerd, as far as the environment tells without
    asking it: DOCKER_HOST is the socket a rootless dockerd listens on, unix://$XDG_RUNTIME_DIR/docker.sock
    (/run/user/UID/docker.sock when XDG_RUNTIME_DIR is unset)."""
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        return False
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return os.path.normpath(host.removeprefix("unix://")) == os.path.normpath(os.path.join(runtime_dir, "docker.sock"))


def certs_dirs(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Where gitops reads a registry's CAs and client certificates (HOST[:PORT]/ in each): dockerd's
    CERTS_DIR and a rootless dockerd's user_certs_dir, the engine's own first (rootless_engine): a client
    certificate is taken from the first that has one."""
    user = user_certs_dir(environ)
    if user is None or user == CERTS_DIR:
        return (CERTS_DIR,)
    return (user, CERTS_DIR) if rootless_engine(environ) else (CERTS_DIR, user)


def _verified_context(host: str | None) -> ssl.SSLContext:
    """The system's CAs (SSL_CERT_FILE / SSL_CERT_DIR name others), plus what dockerd reads for `host` in
    HOST[:PORT]/ of each of certs_dirs: each `*.crt` a CA, each `*.cert` a client certificate with its
    `*.key` (from the first directory that has one)."""
    context = ssl.create_default_context()
    if host is None:
        return context
    client_cert = False
    for base in certs_dirs():
        client_cert = _load_certs_dir(context, base / host, client_cert) or client_cert
    return context


def _load_certs_dir(context: ssl.SSLContext, directory: Path, have_client_cert: bool) -> bool:
    """Load `directory`'s CAs into `context`, and its client certificate unless `have_client_cert`;
    whether it had one.  A `.cert` without its `.key`, or the reverse, is ConfigError (as for dockerd)."""
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        output.warn(f"{directory}: cannot read ({exc.strerror}); its certificates are not used")
        return False
    found = False
    for name in names:
        path = directory / name
        try:
            if name.endswith(".crt"):
                context.load_verify_locations(cafile=str(path))
            elif name.endswith(".cert"):
                key = name[:-5] + ".key"
                if key not in names:
                    raise ConfigError(f"{path}: a client certificate without its key {key}",
                                      hint="CA certificates take the extension .crt (as for dockerd)")
                if not have_client_cert:
                    context.load_cert_chain(str(path), str(directory / key))
                    found = True
            elif name.endswith(".key") and name[:-4] + ".cert" not in names:
                raise ConfigError(f"{path}: a client key without its certificate {name[:-4]}.cert")
        except ssl.SSLError as exc:
            raise ConfigError(f"{path}: not a usable certificate or key ({exc.reason or exc})") from None
        except PermissionError as exc:
            output.warn(f"{path}: cannot read ({exc.strerror}); going on without it")
    return found


def _opener(host: str, context: ssl.SSLContext) -> urllib.request.OpenerDirector:
    """urllib's opener for a registry: no redirects followed by urllib, `context` for HTTPS, no proxy for a
    loopback registry, and connections whose sockets a request's deadline can cut (_fetch)."""
    return urllib.request.build_opener(
        _NoRedirect(), _TimedHTTPHandler(), _TimedHTTPSHandler(context=context),
        *([urllib.request.ProxyHandler({})] if _is_loopback(host) else []),
    )


# --- HTTP --------------------------------------------------------------------------------------------
class _Deadline:
    """The deadline of one request: when it passes, the request's sockets are shut down, which ends any
    read waiting on them (a socket timeout bounds each read only: a registry answering one byte every
    few seconds would hold gitops for as long as it likes)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shut(sock: socket.socket) -> None:
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # a TLS socket's too, its TLS state left alone
    except OSError:
        pass


_requests = threading.local()  # .deadline: the _Deadline of the request this thread is sending


def _watched_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    sock = socket.create_connection(address, *args, **kwargs)
    deadline = getattr(_requests, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)
    return sock


class _TimedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _watched_connection


class _TimedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _watched_connection  # the TCP socket: the tunnel and the TLS handshake

    def connect(self) -> None:
        super().connect()
        # the TLS socket took the TCP socket's descriptor over (the TCP socket object let go of it, and
        # shutting that down does nothing): the answer is read from this one
        deadline = getattr(_requests, "deadline", None)
        if deadline is not None:
            deadline.watch(self.sock)


class _TimedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_TimedHTTPConnection, req)


class _TimedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_TimedHTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


def _fetch(opener: urllib.request.OpenerDirector, request: urllib.request.Request, seconds: float) -> Response:
    """Send `request` and read its whole answer (any status) within `seconds`, connecting included;
    TimeoutError when that does not happen."""
    deadline = _requests.deadline = _Deadline(seconds)
    try:
        try:
            with opener.open(request, timeout=seconds) as resp:
                answer = Response(resp.status, _headers(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as exc:
            answer = Response(exc.code, _headers(exc.headers.items()), exc.read())
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        if deadline.expired:
            raise TimeoutError(f"no complete answer within {seconds:g} s") from None
        raise
    finally:
        deadline.cancel()
        _requests.deadline = None
    if deadline.expired:  # an answer without a length, cut short at the deadline
        raise TimeoutError(f"no complete answer within {seconds:g} s")
    return answer


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]  # names lowercased
    body: bytes
    attempts: int = 1  # how many times the request was sent (Client.request's retries)


def _headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10  # redirects followed for one request, as Go's http client (docker, containerd)
IDEMPOTENT = frozenset({"GET", "HEAD"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # too many requests; a gateway or the registry briefly down
RETRIES = 3  # times a GET or HEAD answered so is sent again
RETRY_WAIT_LIMIT = 10.0  # seconds waited in all between the attempts of one request (Retry-After included)
RETRY_BACKOFF = 0.5  # seconds before the first retry without a Retry-After; doubled for each next one
CERT_NAME_MISMATCH = frozenset({62, 64})  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH


def _retry_pause(retry_after: str | None, attempt: int) -> float:
    """Seconds to wait before retry number `attempt` + 1: the answer's Retry-After (seconds, or an HTTP
    date), else RETRY_BACKOFF doubled for each earlier retry."""
    if retry_after:
        value = retry_after.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return max(0.0, when.timestamp() - time.time())
    return RETRY_BACKOFF * 2 ** attempt


def _netloc(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc.lower()


def _shown(url: str) -> str:
    """A URL for messages: without its query (a presigned storage link's signature), masked."""
    parts = urllib.parse.urlsplit(url)
    shown = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return output.printable(output.redact(shown + ("?..." if parts.query else "")))


_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {k.lower(): v for k, v in _CHALLENGE_RE.findall(rest)}


def _basic_auth(creds: Credentials) -> str:
    """The `Authorization: Basic ...` value for a username and password (a secret: see Credentials)."""
    return "Basic " + creds.basic


class Client:
    """A tiny Registry v2 client for one registry host; remembers the Authorization that worked."""

    def __init__(self, host: str, creds: Credentials | None = None, insecure: Iterable[str] = (),
                 flags: bool = False) -> None:
        self.host = host
        self.endpoint = endpoint(host, insecure)
        self.url = self.endpoint.url
        self.creds = creds
        self.flags = flags  # the verb has --username/--password-stdin: the hint names them
        self._auth: str | None = None
        self._opener = _opener(host, self.endpoint.context)

    def _send(self, method: str, url: str, headers: Mapping[str, str], auth: str | None,
              data: bytes | None = None) -> Response:
        request = urllib.request.Request(url, method=method, headers=dict(headers), data=data)
        if auth:
            request.add_unredirected_header("Authorization", auth)
        try:
            return _fetch(self._opener, request, TIMEOUT)
        except TimeoutError as exc:  # _fetch's deadline: no complete answer in time
            raise RegistryError(f"registry unreachable: {method} {_shown(url)}: {output.redact(str(exc))}",
                                hint=self._unreachable_hint(exc)) from None
        except urllib.error.URLError as exc:  # no connection: refused, no route, no such name, TLS handshake
            reason = exc.reason
            # plain HTTP failed to connect too: why HTTPS did is worth knowing (a registry that is down, or
            # speaks only TLS that gitops could not use); a plain-HTTP registry that answers has no use for it
            tls = self.endpoint.tls_failure if url.startswith("http:") else None
            raise RegistryError(f"registry unreachable: {method} {_shown(url)}: {output.redact(str(reason))}"
                                + (f" (HTTPS, tried first: {tls})" if tls else ""),
                                hint=self._unreachable_hint(reason)) from None
        except (OSError, http.client.HTTPException) as exc:  # connected: the answer broke off (reset, cut short)
            what = str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}"
            raise RegistryError(
                f"registry error: {method} {_shown(url)}: the connection broke while reading the answer "
                f"({output.printable(output.redact(what))[:200]})",
                hint="the registry (or a proxy or load balancer in front of it) closed the connection before its "
                     "answer was complete: re-run; if it persists, check that proxy's logs and limits") from None

    def _unreachable_hint(self, reason: object) -> str:
        text = str(reason)
        if (getattr(reason, "verify_code", None) in CERT_NAME_MISMATCH or "Hostname mismatch" in text
                or "IP address mismatch" in text):
            name = _host_name(self.host)
            return (f"the registry's certificate is not issued for {name}: reach the registry by a name its "
                    f"certificate names (its subjectAltName), or reissue the certificate for {name}")
        if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
            where = " or ".join(f"{base / self.host}/ ({'dockerd' if base == CERTS_DIR else 'a rootless dockerd'}'s)"
                                for base in certs_dirs())
            return (f"give gitops the registry's CA: ca.crt in {where}, the system's CAs, or a bundle named by "
                    "SSL_CERT_FILE; or list it in insecure_registries")
        if isinstance(reason, ssl.SSLError) or "SSL" in text:
            return (f"{self.host} does not speak TLS as expected (a plain-HTTP registry?): list it in "
                    "insecure_registries, as in dockerd's insecure-registries")
        if isinstance(reason, TimeoutError) or "timed out" in text:
            return ("the registry (or a proxy in front of it) stopped answering, or answers too slowly: every "
                    f"request must be answered in full within {TIMEOUT} s")
        return "is the registry running and the host:port right?"

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None,
                scope: str | None = None) -> Response:
        """Send a request to `/v2/...`, authenticating on a 401 challenge and following up to MAX_REDIRECTS
        redirects (a blob's storage), the Authorization only to the registry's own host, as Go's client
        does.  A GET or HEAD answered 429, 502, 503 or 504 is sent again, up to RETRIES times, after the
        answer's Retry-After or a short backoff (RETRY_WAIT_LIMIT seconds in all).  RegistryError for a
        redirect left unfollowed, and for an error answer of the host redirected to (not the registry's:
        no login hint)."""
        url = self.url + path
        resp, where = self._retried(method, lambda: self._exchange(method, url, dict(headers or {}), scope))
        if _netloc(where) != _netloc(url):
            if resp.status >= 300:
                raise RegistryError(
                    f"registry error: {method} {_shown(url)} was redirected to {_shown(where)}, which answered "
                    f"{resp.status}{_said(resp)}",
                    hint=f"{_netloc(where)} is where the registry sends this download (its storage: a presigned "
                         "link that expired, a storage that refuses the registry's link): its answer is not the "
                         "registry's; re-run, or check the registry's storage settings")
            return resp
        if 300 <= resp.status < 400:
            left = "without a Location" if not resp.headers.get("location") else f"after {MAX_REDIRECTS} redirects"
            raise RegistryError(f"registry error: {method} {_shown(where)} answered {resp.status} {left}")
        if resp.status in {401, 403}:
            raise self._auth_error(resp, url)
        if resp.status == 400 and url.startswith("http:"):
            # a TLS registry answering plain HTTP (a HEAD's answer has no body to say so: GET it)
            said = resp if method != "HEAD" else self._send("GET", url, headers or {}, self._auth)
            if b"HTTP request to an HTTPS server" in said.body:
                why = f" (HTTPS failed: {self.endpoint.tls_failure})" if self.endpoint.tls_failure else ""
                raise RegistryError(f"registry error: {method} {url} answered 400: {_first_line(said.body)}",
                                    hint=f"{self.host} speaks TLS, but gitops could not use it{why}")
        return resp

    @staticmethod
    def _retried(method: str, attempt: Callable[[], tuple[Response, str]]) -> tuple[Response, str]:
        """`attempt()` (an answer and the URL that gave it), sent again while a GET or HEAD is answered 429,
        502, 503 or 504: up to RETRIES times, after the answer's Retry-After or a short backoff
        (RETRY_WAIT_LIMIT seconds in all).  The answer records how many times it was sent."""
        waited = 0.0
        for n in range(RETRIES + 1):
            resp, where = attempt()
            if method not in IDEMPOTENT or resp.status not in RETRY_STATUSES or n == RETRIES:
                break
            pause = _retry_pause(resp.headers.get("retry-after"), n)
            if waited + pause > RETRY_WAIT_LIMIT:  # asked to come back later than gitops waits: its answer
                break
            time.sleep(pause)
            waited += pause
        resp.attempts = n + 1
        return resp, where

    def _exchange(self, method: str, url: str, headers: Mapping[str, str], scope: str | None) -> tuple[Response, str]:
        """One attempt of `request`: the answer, and the URL that gave it (after the redirects followed)."""
        resp = self._send(method, url, headers, self._auth)
        if resp.status == 401:
            self._auth = self._authenticate(resp.headers.get("www-authenticate", ""), scope, url)
            resp = self._send(method, url, headers, self._auth)
        where = url
        for _ in range(MAX_REDIRECTS):
            if resp.status not in REDIRECTS or not resp.headers.get("location"):
                break
            where = urllib.parse.urljoin(where, resp.headers["location"])
            # the registry's credentials go to the registry's host only (Go's client: the first request's host)
            resp = self._send(method, where, headers, self._auth if _netloc(where) == _netloc(url) else None)
        return resp, where

    def _authenticate(self, challenge: str, scope: str | None, url: str) -> str:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self.creds is None or self.creds.is_identity_token:
                raise self._auth_error(Response(401, {}, b""), url)
            return _basic_auth(self.creds)
        if scheme == "bearer" and params.get("realm"):
            return "Bearer " + self._token(params, scope)
        raise RegistryError(f"{url}: unsupported authentication challenge {challenge[:60]!r}")

    def _token(self, params: Mapping[str, str], scope: str | None) -> str:
        pairs = (("service", params.get("service")), ("scope", scope or params.get("scope")))
        query = {k: v for k, v in pairs if v}
        if self.creds is not None and self.creds.is_identity_token:
            # An identity token (`docker login` to ACR and others) is an OAuth2 refresh token: exchange
            # it at the realm with a POST, as docker and distribution's client do.
            form = {"grant_type": "refresh_token", "refresh_token": self.creds.password,
                    "client_id": "gitops", **query}
            resp = self._send("POST", params["realm"], {"Content-Type": "application/x-www-form-urlencoded"},
                              None, urllib.parse.urlencode(form).encode())
        else:
            url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
            auth = _basic_auth(self.creds) if self.creds is not None else None
            resp, _ = self._retried("GET", lambda: (self._send("GET", url, {}, auth), url))  # as the registry's
        if resp.status in {401, 403}:
            raise self._auth_error(resp, params["realm"])
        try:
            data = json.loads(resp.body)
            token = str(data.get("token") or data["access_token"])
        except (ValueError, KeyError, TypeError, AttributeError):
            tries = f" (sent {resp.attempts} times)" if resp.attempts > 1 else ""
            message = f"token endpoint {_shown(params['realm'])} answered {resp.status}{tries} without a token"
            raise RegistryError(message) from None
        output.register_secret(token)  # a bearer token grants what the password does, for a while
        return token

    def _auth_error(self, resp: Response, url: str) -> RegistryAuthError:
        what = "access denied" if resp.status == 403 else "authentication failed"
        if self.creds is None:
            return RegistryAuthError(
                f"registry {self.host}: {what} (no credentials found) for {url}",
                hint=login_hint(self.flags),
            )
        return RegistryAuthError(
            f"registry {self.host}: {what} for user {self.creds.username!r} "
            f"(credentials from {self.creds.source}) at {url}",
            hint="check the username and password and the account's access to this repository",
        )


# --- queries -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    data: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.data

    @property
    def config_digest(self) -> str | None:
        config = self.data.get("config")
        return str(config["digest"]) if isinstance(config, dict) and "digest" in config else None

    @property
    def kind(self) -> str:
        """What the manifest is, for messages: `multi-platform index`, `image manifest`, `schema1 manifest`
        (docker's old format, pushed by docker before 1.10 or a registry converting to it), `manifest of
        unknown media type '...'` (an artifact, ...)."""
        if self.is_index:
            return "multi-platform index"
        if self.media_type in SCHEMA1_TYPES or self.data.get("schemaVersion") == 1:
            return "schema1 manifest"
        if self.media_type in IMAGE_TYPES:
            return "image manifest" if self.config_digest else "image manifest without a config"
        return f"manifest of unknown media type {output.printable(self.media_type)[:100]!r}"


def _manifest_path(ref: ImageRef, reference: str) -> str:
    return f"/v2/{ref.normalized_path}/manifests/{reference}"


def _scope(ref: ImageRef, actions: str = "pull") -> str:
    return f"repository:{ref.normalized_path}:{actions}"


def _reference(ref: ImageRef) -> str:
    reference = ref.digest or ref.tag
    if reference is None:
        raise UsageError(f"image {ref}: a tag or digest is required")
    return reference


def _first_line(body: bytes) -> str:
    """The first line of an answer that is no JSON, printable, at most 200 characters (cut after masking:
    never a secret's first characters)."""
    text = body.decode("utf-8", "replace").strip()
    return output.printable(output.redact(text.splitlines()[0])[:200]) if text else ""


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")


def _detail(body: bytes) -> str:
    """What an error answer says: the registry's `errors` messages, a storage's XML `<Code>: <Message>`
    (S3, GCS, Azure), else its first line (see _first_line)."""
    try:
        errors = json.loads(body).get("errors") or []
        return output.printable(output.redact("; ".join(str(e.get("message") or e.get("code")) for e in errors)))[:200]
    except (ValueError, AttributeError):
        pass
    text = body.decode("utf-8", "replace")
    fields = dict(_XML_FIELD.findall(text)) if text.lstrip().startswith("<") else {}
    if fields:
        said = ": ".join(fields[k].strip() for k in ("Code", "Message") if fields.get(k, "").strip())
        return output.printable(output.redact(said)[:200])
    return _first_line(body)


def _said(resp: Response) -> str:
    detail = _detail(resp.body)
    return f": {detail}" if detail else ""


def _check(resp: Response, method: str, url: str) -> None:
    if resp.status >= 400 or resp.status < 200:
        tries = f" (sent {resp.attempts} times)" if resp.attempts > 1 else ""
        raise RegistryError(f"registry error: {method} {url} answered {resp.status}{tries}{_said(resp)}")


class DigestMismatchError(RegistryError):
    """Content read by digest whose digest is another: a broken cache, proxy or storage (exit 8)."""


_HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def _checkable_digest(value: str) -> bool:
    """A digest as the reference grammar writes it (imageref.validate_digest), of an algorithm gitops checks."""
    try:
        validate_digest(value)
    except InvalidReferenceError:
        return False
    return value.partition(":")[0] in _HASHES


def verify_content(body: bytes, digest: str, url: str, what: str) -> None:
    """Check that `body`, read from `url` by `digest`, is that content (its hash by the digest's algorithm:
    sha256, sha384 or sha512), as docker and containerd check what they pull; DigestMismatchError (exit 8)
    naming the URL and both digests when it is not, RegistryError for an algorithm gitops cannot check."""
    algorithm, _, _ = digest.partition(":")
    hasher = _HASHES.get(algorithm.lower())
    if hasher is None:
        raise RegistryError(f"registry error: cannot verify the {what} read from {_shown(url)}: unsupported digest "
                            f"algorithm {algorithm!r} (gitops checks sha256, sha384 and sha512, as docker does)")
    found = f"{algorithm.lower()}:{hasher(body).hexdigest()}"
    if found != digest.lower():
        raise DigestMismatchError(
            f"registry error: {_shown(url)} answered a {what} whose digest is {found}, not {digest} as asked",
            hint="a broken cache, proxy or CDN in front of the registry (or its storage) serves wrong content: "
                 "fix it or bypass it, then re-run",
        )


def head_digest(ref: ImageRef, creds: Credentials | None = None, insecure: Iterable[str] = (),
                client: Client | None = None) -> str | None:
    """The digest the registry has for ref's tag (or digest), or None when the tag does not exist.  A
    Docker-Content-Digest that is no valid digest is a RegistryError (exit 8), as containerd refuses it
    ("not a valid digest"); without one, the manifest is fetched and hashed, as containerd does."""
    client = client or Client(registry_host(ref), creds, insecure)
    path = _manifest_path(ref, _reference(ref))
    resp = client.request("HEAD", path, {"Accept": ", ".join(MANIFEST_TYPES)}, scope=_scope(ref))
    if resp.status == 404:
        return None
    _check(resp, "HEAD", client.url + path)
    digest = resp.headers.get("docker-content-digest", "").strip()
    if not digest:  # some registries omit it on HEAD: fetch and hash the manifest
        manifest = get_manifest(ref, client=client)
        return manifest.digest if manifest else None
    if not _checkable_digest(digest):
        shown = output.printable(output.redact(digest))[:100]
        raise RegistryError(f"registry error: HEAD {client.url + path} answered a Docker-Content-Digest that is no "
                            f"valid digest: '{shown}'",
                            hint="the registry, or a proxy in front of it, is broken (docker and containerd refuse "
                                 "this answer too)")
    return digest


def get_manifest(ref: ImageRef, creds: Credentials | None = None, insecure: Iterable[str] = (),
                 client: Client | None = None) -> Manifest | None:
    """The manifest for ref's tag (or digest), or None when it does not exist.  Read by digest, its content
    is verified against it (verify_content); read by tag, its digest is its sha256."""
    client = client or Client(registry_host(ref), creds, insecure)
    path = _manifest_path(ref, _reference(ref))
    resp = client.request("GET", path, {"Accept": ", ".join(MANIFEST_TYPES)}, scope=_scope(ref))
    if resp.status == 404:
        return None
    _check(resp, "GET", client.url + path)
    if ref.digest:
        verify_content(resp.body, ref.digest, client.url + path, "manifest")
    try:
        data = json.loads(resp.body)
    except ValueError:
        message = f"registry error: {client.url + path} returned a manifest that is not JSON"
        raise RegistryError(message) from None
    if not isinstance(data, dict):
        raise RegistryError(f"registry error: {client.url + path} returned a manifest that is not a JSON object")
    digest = ref.digest.lower() if ref.digest else "sha256:" + hashlib.sha256(resp.body).hexdigest()
    media_type = str(data.get("mediaType") or resp.headers.get("content-type", "")).split(";")[0].strip()
    return Manifest(digest=digest, media_type=media_type, data=data)


def get_blob_json(ref: ImageRef, digest: str, creds: Credentials | None = None, insecure: Iterable[str] = (),
                  client: Client | None = None) -> dict[str, Any]:
    """A JSON blob (an image config) of ref's repository, verified against its digest (verify_content)."""
    client = client or Client(registry_host(ref), creds, insecure)
    path = f"/v2/{ref.normalized_path}/blobs/{digest}"
    resp = client.request("GET", path, scope=_scope(ref))
    _check(resp, "GET", client.url + path)
    verify_content(resp.body, digest, client.url + path, "blob")
    try:
        return dict(json.loads(resp.body))
    except (ValueError, TypeError):
        raise RegistryError(f"registry error: blob {digest} of {ref.name} is not JSON") from None


def resolve_digest(ref: ImageRef, creds: Credentials | None = None, insecure: Iterable[str] = ()) -> str:
    """The manifest digest (sha256:...) ref's tag points at; VerificationError (exit 13) when it is absent."""
    digest = head_digest(ref, creds, insecure)
    if digest is None:
        raise VerificationError(
            f"cannot resolve the digest of {ref}: the registry {registry_host(ref)} has no such tag",
            hint="publish the image first (gitops publish)",
        )
    return digest


def digest_resolver(insecure: Iterable[str] = (), username: str | None = None,
                    names: Names | None = None) -> Callable[[ImageRef, Any], str]:
    """The resolve_digest callback for bumps: the tag's digest from the registry, with the credentials
    resolve_credentials gives (the settings' registry_username, named by `names`), asked once per registry."""
    found: dict[str, Credentials | None] = {}

    def resolve(target: ImageRef, reference: Any) -> str:
        host = registry_host(target)
        if host not in found:
            found[host] = resolve_credentials(host, username, names=names, flags=False)
        return resolve_digest(target.with_digest(None), found[host], insecure)

    return resolve
