"""The Docker Engine adapter: connect, build with live logs, run a command in an image, push, inspect.

Built on the docker SDK's low-level `APIClient` (imported lazily), because:
- `images.build()` returns the log only at the end; `APIClient.build(decode=True)` streams it;
- a failed push still returns normally: the error is an `errorDetail` object inside the stream, so
  every streamed line is checked (`check_push_stream`);
- a push gets the credentials gitops resolved (`auth_config`, empty for none), so a stale credential
  helper in the docker config cannot win, and the SDK never runs a helper for it; a legacy build gets
  every registry's credentials gitops resolved (`_use_resolved_credentials`), for the same reason.

Two builders of the same engine (`choose_builder`):
- BuildKit (the engine's `/build?version=2`, the context tar in the request body, no client session):
  labels and metadata instructions cost no builder step, independent stages and unused stages are
  handled as `docker buildx build` does.  Used when the engine has it and the build sees the context
  and base images the legacy builder's would (BuildKit's own rules differ in places, as for `docker
  build` since Docker 23.0); `DOCKER_BUILDKIT=1`/`0` decides, as for the docker CLI.
  Its progress is a stream of base64 protobuf `StatusResponse` messages (`buildkit_status`).
- The legacy builder.  Build labels go into the Dockerfile as ONE `LABEL` instruction
  (`with_labels`), not through the build API's `labels` parameter: the legacy builder turns each API
  label into its own `LABEL` step with a container commit (~70 ms each).  The labelled Dockerfile is
  shipped in the context tar under a fixed name (`GENERATED_DOCKERFILE`, listed in the tar's
  `.dockerignore` so `COPY .` never copies it), so a rebuild of the same source is still a cache hit
  with the same image id.

Either way the context tar is gitops' own, made while it is sent as the request body (ContextStream:
nothing is written to disk first, as with `docker build`): it holds what `docker build` sends,
`.dockerignore` applied as the docker CLI applies it (gitops_cli.dockerignore).

The stream parsers (`BuildTracker`, `buildkit_status`, `check_push_stream`) and `with_labels` are pure
and unit-tested without an engine.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops_cli import output
from gitops_cli.errors import BuildError, EngineUnavailableError, GitopsError, InvalidReferenceError, UsageError

if TYPE_CHECKING:
    from docker import APIClient

    from gitops_cli.dockerignore import BuildContext
    from gitops_cli.imageref import ImageRef

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
CONNECT_TIMEOUT = 15
LAST_LINES = 10
# terminal control: CSI sequences (colours, cursor, `?25l`), OSC (window titles), other escapes, C0 controls
_CONTROL_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?"
                         r"|[\x00-\x08\x0b-\x1f\x7f]")
_BUILDER_NOISE = (" ---> ", "Removing intermediate container ")
GENERATED_DOCKERFILE = ".gitops-build.Dockerfile"  # the labelled Dockerfile's name in the context tar


# --- connecting --------------------------------------------------------------------------------------
def engine_address(environ: Mapping[str, str] | None = None) -> str:
    """What we try, for messages: `unix:///var/run/docker.sock (default socket ...)` or `X (DOCKER_HOST)`."""
    from gitops_cli.git import strip_credentials

    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST")
    if host:
        # user-info in a value without a scheme (`user:pw@host:2376`, `tcp://` forgotten) is no URL's:
        # registered as a secret, it is masked here and in the SDK's messages, which echo the value
        authority = host.split("://", 1)[-1].split("/", 1)[0]
        if "@" in authority:
            output.register_secret(authority.rsplit("@", 1)[0])
        return f"{output.redact(strip_credentials(host))} (DOCKER_HOST)"
    return f"{DEFAULT_SOCKET} (default socket; DOCKER_HOST is not set)"


def connect(environ: Mapping[str, str] | None = None) -> APIClient:
    """An APIClient set up like `docker.from_env()`; EngineUnavailableError (exit 7) if it does not answer."""
    from docker import APIClient
    from docker.errors import DockerException, TLSParameterError
    from docker.utils import kwargs_from_env, parse_host

    from gitops_cli.registry import load_docker_config

    env = dict(os.environ if environ is None else environ)
    where = engine_address(env)
    try:
        kwargs = kwargs_from_env(environment=env)
    except TLSParameterError as exc:  # DOCKER_TLS_VERIFY / DOCKER_CERT_PATH: the address is not the problem
        raise EngineUnavailableError(
            f"the container engine's TLS settings are incomplete: {_reason(exc)}",
            hint="DOCKER_CERT_PATH must name a directory with ca.pem, cert.pem and key.pem "
                 "(as the docker CLI reads it with DOCKER_TLS_VERIFY=1)",
        ) from None
    except (DockerException, ValueError) as exc:
        raise EngineUnavailableError(
            f"invalid container engine address {where}: {_reason(exc)}",
            hint="DOCKER_HOST is unix:///path/to/docker.sock or tcp://HOST:PORT",
        ) from None
    try:
        parse_host(kwargs.get("base_url"), tls=bool(kwargs.get("tls")))
    except (DockerException, ValueError) as exc:  # ValueError: "Port could not be cast ...", "Invalid IPv6 URL"
        raise EngineUnavailableError(
            f"invalid container engine address {where}: {_reason(exc)}",
            hint="DOCKER_HOST is unix:///path/to/docker.sock or tcp://HOST:PORT",
        ) from None
    load_docker_config(env)  # the SDK reads the whole docker config here: what it cannot read is exit 2, named
    try:
        client = APIClient(version="auto", timeout=CONNECT_TIMEOUT, **kwargs)
    except DockerException as exc:
        reason = _reason(exc)
        raise EngineUnavailableError(
            f"container engine unreachable at {where}: {reason}",
            hint=_socket_access_hint(kwargs.get("base_url") or DEFAULT_SOCKET) if reason == "permission denied"
            else "start the Docker Engine (dockerd) or point DOCKER_HOST at it",
        ) from None
    client.timeout = None  # builds and pushes may be silent for minutes; connect already checked liveness
    return client


def _socket_access_hint(address: str) -> str:
    """The hint for an engine socket this user may not connect to: the socket's owner, group and mode, and
    how to get access (its group, when the group may write it: `docker` as Docker's packages set it up)."""
    import grp
    import pwd
    import stat

    if not address.startswith(("unix://", "http+unix://")):
        return "check that this user may reach the engine at that address"
    socket = "/" + address.split("://", 1)[1].lstrip("/")
    try:
        info = os.stat(socket)
    except OSError:
        return f"give this user access to {socket} or point DOCKER_HOST at a socket it may use"
    try:
        owner = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        owner = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    shown = f"{socket} is {owner}:{group} {stat.filemode(info.st_mode)}"
    if info.st_gid != 0 and info.st_mode & stat.S_IWGRP:
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = "USER"
        return (f"{shown}: add this user to the group {group} (`usermod -aG {group} {user}`, then log in "
                "again) or point DOCKER_HOST at a socket it may use")
    return f"{shown}: give this user access to it, or point DOCKER_HOST at a socket it may use"


_REASONS = (
    ("FileNotFoundError", "no such socket"),
    ("PermissionError", "permission denied"),
    ("Connection refused", "connection refused"),
    ("ConnectionRefusedError", "connection refused"),
    ("Name or service not known", "unknown host"),
    ("timed out", "timed out"),
    ("Connection broken", "the connection broke"),
    ("Connection aborted", "the connection broke"),
)


def _reason(exc: BaseException) -> str:
    """A short, credential-free reason for a connection error."""
    from gitops_cli.git import strip_credentials

    text = str(exc)
    for marker, reason in _REASONS:
        if marker in text:
            return reason
    return output.redact(strip_credentials(text.splitlines()[0]) if text else type(exc).__name__)


def lost_engine_errors() -> tuple[type[BaseException], ...]:
    """What a request to the engine raises when the engine goes away: the SDK's own errors, and the
    requests/urllib3 ones it lets through (a connection broken in the middle of a streamed answer)."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException
    from urllib3.exceptions import HTTPError

    return DockerException, RequestException, HTTPError


# --- build -------------------------------------------------------------------------------------------
def stream_error(event: Mapping[str, Any], unknown: str) -> str | None:
    """The message of an `error`/`errorDetail` object in a build or push stream; None for other objects."""
    if "errorDetail" not in event and "error" not in event:
        return None
    detail = event.get("errorDetail") or {}
    return str(detail.get("message") or event.get("error") or unknown).strip()


def clean_line(line: str) -> str:
    """A build log line as a terminal would leave it: what follows the last carriage return (a progress
    bar redrawn in place), without escape sequences or other control characters."""
    return _CONTROL_RE.sub("", line.rstrip("\r").rsplit("\r", 1)[-1])


class Heading(str):
    """A step heading among the lines BuildTracker.feed returns (the rest are the build's log lines)."""


@dataclass
class BuildTracker:
    """Follows a decoded build stream: current step, its recent log lines, the final image id."""

    step: str | None = None
    step_lines: list[str] = field(default_factory=list)
    image_id: str | None = None
    error: str | None = None
    inserted_line: int | None = None  # the LABEL line with_labels put before the user's line N (1-based)
    buildkit: bool = False  # BuildKit: steps may run in parallel; failure() names the one that failed
    _partial: str = ""
    # the legacy builder's step container (` ---> Running in ID`) until `Removing intermediate container ID`:
    # what comes between is the step's output, never a heading or the builder's chatter
    _running: str | None = None
    _failed: dict[str, Vertex] = field(default_factory=dict)  # BuildKit vertices with an error, by digest
    _shown: set[str] = field(default_factory=set)  # BuildKit vertices (digests) whose heading was shown
    _logs: dict[str, list[str]] = field(default_factory=dict)  # BuildKit: recent log lines per vertex
    _log_partial: dict[tuple[str, int], str] = field(default_factory=dict)  # (vertex, stream): unended line

    def feed(self, event: Mapping[str, Any]) -> list[str]:
        """Consume one stream object; return the complete lines it carried for live display: step
        headings (Heading) and the build's log lines (the legacy builder's own chatter left out)."""
        error = stream_error(event, "unknown build error")
        if error is not None:
            self.error = error
            return []
        if event.get("id") == "moby.buildkit.trace":
            status = buildkit_status(event.get("aux"))
            return self._trace(status) if status is not None else []
        aux = event.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]
        text = event.get("stream")
        if not isinstance(text, str):
            status = event.get("status")  # e.g. pulling the base image with --pull
            return [str(status)] if status else []
        text = self._partial + text
        *lines, self._partial = text.split("\n")
        out: list[str] = []
        for line in lines:
            line = clean_line(line)
            if self._running is not None:  # the step container's output, whatever it looks like
                end = f"Removing intermediate container {self._running}"
                if line.endswith(end):  # the builder's line, after the output's unended last line if any
                    self._running, line = None, line[:-len(end)]
                if line.strip():
                    self._log_line(line, out)
                continue
            if line.startswith("Step ") and " : " in line:
                self.step, self.step_lines = line, []
                out.append(Heading(line))
            elif line.startswith(" ---> Running in "):
                self._running = line.split()[-1]
            elif line.startswith("Successfully built ") and self.image_id is None:
                self.image_id = line.split()[-1]
                out.append(line)
            elif line.strip() and not line.startswith(_BUILDER_NOISE):
                self._log_line(line, out)
        return out

    def _log_line(self, line: str, out: list[str]) -> None:
        """Show a legacy build's log line; keep it among the step's last lines."""
        self.step_lines.append(line)
        del self.step_lines[:-LAST_LINES]
        out.append(line)

    def _trace(self, status: BuildkitStatus) -> list[str]:
        out: list[str] = []
        for vertex in status.vertexes:
            if vertex.error:
                self._failed.setdefault(vertex.digest, vertex)
            if vertex.digest in self._shown or not (vertex.started or vertex.cached):
                continue
            if vertex.name.startswith("[") and not vertex.name.startswith("[internal]"):  # a Dockerfile step
                self._shown.add(vertex.digest)
                name = clean_line(vertex.name)
                out.append(Heading(f"{name} (cached)" if vertex.cached else name))
        for digest, stream, message in status.logs:
            text = self._log_partial.pop((digest, stream), "") + message.decode("utf-8", "replace")
            *lines, rest = text.split("\n")
            if rest:
                self._log_partial[digest, stream] = rest
            out.extend(self._log(digest, line) for line in lines)
        for vertex in status.vertexes:  # a finished step's last line without a newline ends with it
            if vertex.completed:
                out.extend(self._log(vertex.digest, self._log_partial.pop((vertex.digest, stream)))
                           for stream in (1, 2) if (vertex.digest, stream) in self._log_partial)
        return out

    def _log(self, digest: str, line: str) -> str:
        line = clean_line(line)
        if line.strip():
            recent = self._logs.setdefault(digest, [])
            recent.append(line)
            del recent[:-LAST_LINES]
        return line

    @property
    def failed(self) -> bool:
        """Whether a BuildKit step (vertex) failed."""
        return bool(self._failed)

    def _failed_vertex(self) -> Vertex | None:
        """The step the build failed at: the one whose error is the build's error (when stages fail in
        parallel, the engine reports one of them, and the others as cancelled or failed too)."""
        if not self._failed:
            return None
        error = self.error or ""
        for vertex in self._failed.values():
            if vertex.error and (vertex.error == error or vertex.error in error):
                return vertex
        return next(iter(self._failed.values()))

    def finish(self) -> list[str]:
        pending = [self._log(digest, rest) for (digest, _), rest in self._log_partial.items()]
        self._log_partial.clear()
        rest, self._partial = self._partial, ""
        return pending + (self.feed({"stream": rest + "\n"}) if rest else [])

    def failure(self) -> BuildError:
        if self.buildkit:  # steps may run in parallel: the step is the failed one, if the engine named it
            failed = self._failed_vertex()
            if failed is not None:
                self.step, self.step_lines = clean_line(failed.name), self._logs.get(failed.digest, [])
            where = f" at {self.step}" if self.step else ""
            message = f"image build failed{where}: {self.error or 'no image was produced'}"
        else:
            where = f"at {self.step}" if self.step else "before the first step"
            error = unshift_lines(self.error, self.inserted_line) if self.error else "no image was produced"
            message = f"image build failed {where}: {error}"
        details = ("last log lines:", *(f"  {ln}" for ln in self.step_lines)) if self.step_lines else ()
        return BuildError(message, hint="fix the failing step and build again", details=details)


_LINE_RE = re.compile(r"\b(line )(\d+)\b")


def unshift_lines(message: str, inserted_line: int | None) -> str:
    """An engine message about the labelled Dockerfile with its line numbers mapped back to the user's
    Dockerfile: lines after the inserted LABEL line move up by one."""
    if inserted_line is None:
        return message

    def back(match: re.Match[str]) -> str:
        number = int(match.group(2))
        return match.group(1) + str(number - 1 if number > inserted_line else number)

    return _LINE_RE.sub(back, message)


def inserted_line(original: str, labelled: str) -> int | None:
    """The 1-based line number with_labels inserted into `original`; None when it appended at the end
    (no line of the user's Dockerfile moved)."""
    before, after = original.splitlines(), labelled.splitlines()
    for number, (old, new) in enumerate(zip(before, after, strict=False), start=1):
        if old != new:
            return number
    return None


# --- BuildKit progress --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vertex:
    """One BuildKit vertex (a build step or an internal operation) as a status message reports it."""

    digest: str
    name: str
    cached: bool = False
    started: bool = False
    completed: bool = False
    error: str = ""


@dataclass(frozen=True)
class BuildkitStatus:
    """The parts of a BuildKit `StatusResponse` we show: vertexes (field 1) and logs (field 3)."""

    vertexes: list[Vertex]
    logs: list[tuple[str, int, bytes]]  # (vertex digest, stream: 1 stdout / 2 stderr, output bytes)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _protobuf_fields(data: bytes) -> Iterable[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: an int for varints, bytes for the rest."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, kind = key >> 3, key & 7
        if kind == 0:
            value, i = _varint(data, i)
            yield number, value
            continue
        if kind == 2:
            size, i = _varint(data, i)
        elif kind in (1, 5):
            size = 8 if kind == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {kind}")
        if i + size > len(data):
            raise ValueError("truncated protobuf field")
        yield number, data[i:i + size]
        i += size


def _text(value: int | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def _vertex(data: bytes) -> Vertex:
    found: dict[int, int | bytes] = dict(_protobuf_fields(data))
    return Vertex(digest=_text(found.get(1, b"")), name=_text(found.get(3, b"")), cached=bool(found.get(4)),
                  started=5 in found, completed=6 in found, error=_text(found.get(7, b"")))


def buildkit_status(aux: Any) -> BuildkitStatus | None:
    """Decode the `aux` of a `moby.buildkit.trace` build-stream object (base64 of a protobuf
    moby.buildkit.v1.StatusResponse); None when it is not one."""
    import base64
    import binascii

    if not isinstance(aux, str):
        return None
    try:
        data = base64.b64decode(aux, validate=True)
        vertexes: list[Vertex] = []
        logs: list[tuple[str, int, bytes]] = []
        for number, value in _protobuf_fields(data):
            if number == 1 and isinstance(value, bytes):
                vertexes.append(_vertex(value))
            elif number == 3 and isinstance(value, bytes):
                log: dict[int, int | bytes] = dict(_protobuf_fields(value))
                message, stream = log.get(4, b""), log.get(3, 0)
                logs.append((_text(log.get(1, b"")), stream if isinstance(stream, int) else 0,
                             message if isinstance(message, bytes) else b""))
    except (binascii.Error, ValueError, IndexError):
        return None
    return BuildkitStatus(vertexes, logs)


# --- which builder --------------------------------------------------------------------------------------
BUILDKIT_API = "1.39"  # the first engine API with `/build?version=2`
_TRUE, _FALSE = {"1", "t", "T", "TRUE", "true", "True"}, {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class Builder:
    """The builder a build uses, and why (shown on the build's progress line)."""

    buildkit: bool
    why: str = ""
    forced: bool = False  # DOCKER_BUILDKIT=1

    def describe(self) -> str:
        if self.buildkit:
            return "builder: BuildKit" + (f" ({self.why})" if self.why else "")
        return f"builder: legacy ({self.why})"


def buildkit_setting(environ: Mapping[str, str] | None = None) -> bool | None:
    """DOCKER_BUILDKIT as the docker CLI reads it (Go's ParseBool); None when unset or empty."""
    value = (os.environ if environ is None else environ).get("DOCKER_BUILDKIT", "")
    if value == "":
        return None
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise UsageError(f"DOCKER_BUILDKIT={value!r}: expected a boolean (1 or 0)")


def context_blocker(context: str, dockerfile: str | None, loaded: BuildContext | None = None) -> str | None:
    """Why BuildKit would see another context than the legacy builder, or None.

    Without a client session BuildKit takes the context tar as it is, applying no `.dockerignore`: the
    tar holds what `docker build` sends (dockerignore.BuildContext.selection), and it must hold the
    Dockerfile and the `.dockerignore`, which the legacy builder's engine (like `docker buildx build`)
    removes after reading them when the patterns match them.  DockerignoreError (exit 2) for a
    `.dockerignore` docker cannot build with either."""
    from gitops_cli.dockerignore import BuildContext

    if dockerfile is not None and os.path.isabs(dockerfile):
        return "the Dockerfile is outside the build context"
    build_context = loaded or BuildContext.load(context, dockerfile)
    name = (dockerfile or "Dockerfile").replace(os.sep, "/")
    if len(name) > 100 or not name.isascii():  # plain_context: the tar's first header must be a plain one
        return "the Dockerfile's path is longer than 100 characters or not ASCII"
    path = Path(context, name)
    if path.is_symlink() or build_context.dockerfile != name:
        return "the Dockerfile is a symbolic link (BuildKit reads it from the context, where its target may not be)"
    try:
        if not 0 <= path.lstat().st_mtime < 8 ** 11:  # a tar header's mtime field
            return "the Dockerfile's modification time does not fit a plain tar header"
    except OSError:
        pass  # a missing Dockerfile: the engine reports it
    if build_context.ignore is None:
        return None
    removed = build_context.removal(name)
    if removed or not build_context.walk_keeps(name):
        return f".dockerignore excludes the Dockerfile ({name})"
    if removed is None:
        return f".dockerignore excludes the Dockerfile ({name}) for some engine versions"
    removed = build_context.removal(".dockerignore")
    if removed is not False:
        return ".dockerignore excludes itself" + (" for some engine versions" if removed is None else "")
    return None


def _base_image_blocker(client: APIClient, context: str, dockerfile: str | None, pull: bool,
                        buildargs: Mapping[str, str] | None, environ: Mapping[str, str] | None) -> str | None:
    """Why not BuildKit for the images the Dockerfile starts from: one it would have to pull from a
    registry the docker config has credentials for (BuildKit without a client session pulls without
    them; the legacy builder sends them), or one named through a build argument while there are such
    credentials."""
    from gitops_cli.dockerfile import parse_dockerfile
    from gitops_cli.errors import GitopsError
    from gitops_cli.imageref import parse
    from gitops_cli.registry import has_docker_credentials, registry_host

    if not has_docker_credentials(None, environ):
        return None  # no credentials that BuildKit would go without: no image to look up in the engine
    try:
        text = Path(context, dockerfile or "Dockerfile").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the engine reports a missing or unreadable Dockerfile in its own words
    for image in parse_dockerfile(text).images:
        if image.unresolved or ("$" in image.raw and buildargs):
            return f"the image {image.raw} depends on build arguments, and the docker config has credentials"
        try:
            ref = parse(image.value)
        except GitopsError:
            continue  # the engine names it
        host = registry_host(ref)
        if (pull or not _engine_has(client.inspect_image, image.value)) and has_docker_credentials(host, environ):
            return (f"{image.value} is pulled with the docker config's credentials for {host}, "
                    "which BuildKit without a client session would not send")
    return None


def _engine_has(inspect: Callable[[str], Any], name: str) -> bool:
    """Whether the engine has the image or network `name` (`inspect` is the client's inspect_image or
    inspect_network)."""
    from docker.errors import DockerException

    try:
        inspect(name)
    except DockerException:
        return False
    return True


def choose_builder(client: APIClient, *, context: str, dockerfile: str | None, network: str | None = None,
                   pull: bool = False, cache_from: list[str] | None = None,
                   buildargs: Mapping[str, str] | None = None, environ: Mapping[str, str] | None = None,
                   loaded: BuildContext | None = None, target: str | None = None) -> Builder:
    """BuildKit when DOCKER_BUILDKIT says so, or (unset) when the engine has it and the build sees the
    context and base images the legacy builder's would; otherwise the legacy builder, with the reason
    (UsageError when the stages it would build, up to `target`'s, use syntax only BuildKit builds)."""
    from docker.utils import version_lt

    from gitops_cli.dockerignore import BuildContext

    loaded = loaded or BuildContext.load(context, dockerfile)
    early = _before_the_engine(context, dockerfile, network, cache_from, environ, loaded, target)
    if isinstance(early, Builder):
        return early
    blocker = early
    version = str(getattr(client, "api_version", "") or "0")
    if blocker is None and version_lt(version, BUILDKIT_API):
        blocker = f"the engine's API {version} has no BuildKit"
    blocker = blocker or _base_image_blocker(client, context, dockerfile, pull, buildargs, environ)
    if blocker:
        _refuse_legacy(loaded, target, blocker)
    return Builder(blocker is None, blocker or "")


def check_builder(*, context: str, dockerfile: str | None, network: str | None = None,
                  cache_from: list[str] | None = None, environ: Mapping[str, str] | None = None,
                  target: str | None = None) -> None:
    """The refusals of choose_builder that need no engine (UsageError, exit 2), for a caller to make before
    any work: build-and-bump before the tests, `gitops build` before its build command.  A build only the
    engine's answers send to the legacy builder (its API version, a base image's registry) is refused when
    the build starts."""
    from gitops_cli.dockerignore import BuildContext

    loaded = BuildContext.load(context, dockerfile)
    blocker = _before_the_engine(context, dockerfile, network, cache_from, environ, loaded, target)
    if isinstance(blocker, str):
        _refuse_legacy(loaded, target, blocker)


def _before_the_engine(context: str, dockerfile: str | None, network: str | None, cache_from: list[str] | None,
                       environ: Mapping[str, str] | None, loaded: BuildContext,
                       target: str | None) -> Builder | str | None:
    """What choose_builder decides without the engine: the Builder that DOCKER_BUILDKIT (0 or 1) forces, or why
    an unset one means the legacy builder (None: the engine decides).  UsageError when DOCKER_BUILDKIT=1 and
    BuildKit cannot build the context, or =0 and the Dockerfile uses syntax only BuildKit builds."""
    setting = buildkit_setting(environ)
    if setting is False:
        syntax = _buildkit_syntax(loaded, target)
        if syntax is not None:  # the legacy builder would fail at that line
            raise UsageError(f"{syntax} needs BuildKit, and DOCKER_BUILDKIT=0 asks for the legacy builder",
                             hint="unset DOCKER_BUILDKIT (or set it to 1)")
        return Builder(False, "DOCKER_BUILDKIT=0")
    blocker = context_blocker(context, dockerfile, loaded)
    if setting:
        if blocker:
            syntax = _buildkit_syntax(loaded, target)
            fix = _ignore_fix(loaded)
            hints = [fix] if fix else []
            if syntax is None:
                hints.append("unset DOCKER_BUILDKIT (gitops then uses the legacy builder)")
            raise UsageError(f"DOCKER_BUILDKIT=1, but BuildKit cannot build this context: {blocker}"
                             + (f" (and the legacy builder cannot build {syntax})" if syntax else ""),
                             hint=" or ".join(hints) or None)
        return Builder(True, "DOCKER_BUILDKIT=1", forced=True)
    if blocker is None and network not in (None, "", "default", "host", "none"):
        blocker = f"--network {network}: BuildKit runs steps only on the host network or none"
    if blocker is None and cache_from:
        blocker = "--cache-from (the legacy builder takes local images as its cache)"
    return blocker


def _refuse_legacy(loaded: BuildContext, target: str | None, blocker: str) -> None:
    """UsageError when the legacy builder, chosen for `blocker`, would fail at syntax only BuildKit builds."""
    syntax = _buildkit_syntax(loaded, target)
    if syntax is not None:  # the legacy builder would fail at that line: say why BuildKit is out of reach
        raise UsageError(f"{syntax} needs BuildKit, and gitops can build this only with the legacy builder: "
                         f"{blocker}", hint=_ignore_fix(loaded))


def _buildkit_syntax(loaded: BuildContext, target: str | None) -> str | None:
    """`Dockerfile line 2: RUN --mount` for the first instruction only BuildKit builds, in the stages up to
    `target`'s, else None."""
    from gitops_cli.dockerfile import buildkit_only
    from gitops_cli.output import printable

    try:
        text = Path(loaded.dockerfile_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the engine reports a missing or unreadable Dockerfile in its own words
    found = buildkit_only(text, target)
    if found is None:
        return None
    name = loaded.dockerfile or loaded.dockerfile_path
    return f"{printable(name)} line {found.line}: {printable(found.what)}"


def _ignore_fix(loaded: BuildContext) -> str | None:
    """What to add to `.dockerignore` for the engine to keep the Dockerfile and the `.dockerignore` in the
    context (BuildKit without a client session must find them in the tar), or None: a `!NAME` line at its
    end for each that a line excludes (the last matching line decides, so an allowlist's `*` and the
    other exclusions stay)."""
    from gitops_cli.dockerignore import excluding
    from gitops_cli.output import printable

    if loaded.ignore is None or loaded.dockerfile is None:
        return None
    names = [name for name in (loaded.dockerfile, ".dockerignore") if excluding(name, loaded.lines)]
    if not names:
        return None
    shown = " and ".join(f"`!{printable(name)}`" for name in names)
    return (f"end .dockerignore with {shown}, and gitops builds with BuildKit (`COPY .` then copies "
            f"{'them' if len(names) > 1 else 'it'} into the image too)")


# --- labels in the Dockerfile ------------------------------------------------------------------------
def label_instruction(labels: Mapping[str, str], escape: str = "\\") -> str | None:
    """`LABEL "k"="v" ...` in key order (as the engine orders API labels); None when a key or value
    cannot go on one Dockerfile line (a line break, or `=` in a key).  `escape` is the Dockerfile's
    escape character: inside double quotes it escapes `"`, `$` (no variable expansion) and itself."""
    words = []
    for key in sorted(labels):
        value = str(labels[key])
        if not key or "=" in key or any(ch in "\r\n" for ch in key + value):
            return None
        words.append(f"{_quoted(key, escape)}={_quoted(value, escape)}")
    return "LABEL " + " ".join(words) if words else None


def _quoted(text: str, escape: str) -> str:
    return '"' + "".join(escape + ch if ch in ('"', "$", escape) else ch for ch in text) + '"'


def with_labels(text: str, labels: Mapping[str, str], target: str | None = None) -> str | None:
    """Dockerfile `text` with one LABEL instruction ending the stage that is built: the last stage, or
    the `target` stage (inserted before the next FROM).  None when that cannot be done safely: no
    FROM, an unknown target (the engine names it), a line continuation running into the insertion
    point, or a label that does not fit on one line; the caller then passes the labels to the API."""
    from gitops_cli.dockerfile import escape_char, logical_lines, physical_lines

    physical = physical_lines(text)
    escape = escape_char(physical)
    line = label_instruction(labels, escape)
    if line is None:
        return None
    stages: list[tuple[int, str | None]] = []  # (physical line of the FROM, stage name)
    for logical in logical_lines(text):
        words = logical.text.split()
        if words and words[0].upper() == "FROM":
            name = words[-1].lower() if len(words) > 2 and words[-2].lower() == "as" else None
            stages.append((logical.first_line, name))
    if not stages:
        return None
    end = len(physical)  # insert before this physical line
    if target is not None:
        index = next((i for i, (_, name) in enumerate(stages) if name == target.lower()), None)
        if index is None:
            return None
        if index + 1 < len(stages):
            end = stages[index + 1][0]
    code = [content for content, _ in physical[:end] if content.strip() and not content.lstrip().startswith("#")]
    if code and code[-1].rstrip().endswith(escape):
        return None
    if end < len(physical):
        at = physical[end][1]
        return f"{text[:at]}{line}\n{text[at:]}"
    separator = "" if not text or text.endswith(("\n", "\r")) else "\n"
    return f"{text}{separator}{line}\n"


def labelled_context(context: str, dockerfile: str | None, labels: Mapping[str, str], target: str | None = None,
                     loaded: BuildContext | None = None,
                     triggers: Iterable[str] | None = ()) -> tuple[ContextStream, int | None] | None:
    """The build context as a tar whose Dockerfile ends with the labels.

    The tar holds what `docker build` sends (dockerignore.BuildContext.selection), the labelled
    Dockerfile as GENERATED_DOCKERFILE, and a `.dockerignore` that is the context's plus that name (the
    engine then leaves it out of `COPY .`; without a `.dockerignore` it also lists itself, as docker's
    own for a Dockerfile from outside the context).  The engine removes the Dockerfile it builds after
    reading it when `.dockerignore` matches it: the user's Dockerfile is left out of the tar when every
    engine version would remove it.
    None when that cannot give what `docker build` gives, and the labels then go through the build API
    (api_context): the labels cannot go into the Dockerfile (see with_labels); a `COPY`/`ADD` may copy
    the `.dockerignore` into the image and the engine keeps it (the copy would be the tar's, with the
    extra line); the engine versions differ on removing the Dockerfile, or removing it leaves an empty
    directory behind (its directory is not sent); the Dockerfile is not sent at all (the engine then
    fails as for `docker build`).
    `triggers`: the `ONBUILD` instructions of the images the Dockerfile starts from (base_triggers), which
    run as if they were the Dockerfile's; None when they are not known (counted as a `COPY .`).
    With the tar comes the line the LABEL was inserted at (inserted_line), to map error lines back.
    """
    from gitops_cli.dockerfile import copies_root_file
    from gitops_cli.dockerignore import BuildContext

    build_context = loaded or BuildContext.load(context, dockerfile)
    try:
        text = Path(build_context.dockerfile_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the engine reports a missing or unreadable Dockerfile in its own words
    if (build_context.ignore is not None and build_context.removal(".dockerignore") is not True
            and (triggers is None or copies_root_file("\n".join([text, *triggers]), ".dockerignore"))):
        return None  # the image would get the tar's .dockerignore, which also names the labelled Dockerfile
    labelled = with_labels(text, labels, target)
    if labelled is None:
        return None
    entries = build_context.selection()
    own = build_context.dockerfile
    if own is not None:
        if own not in entries:
            return None
        removed = build_context.removal(own)
        if removed is None or (removed and "/" in own and own.rsplit("/", 1)[0] not in entries):
            return None
        if removed:
            entries = [path for path in entries if path != own]
    listed = build_context.ignore.rstrip(b"\r\n") + b"\n" if build_context.ignore is not None else b".dockerignore\n"
    extra = [(".dockerignore", listed + GENERATED_DOCKERFILE.encode() + b"\n"),
             (GENERATED_DOCKERFILE, labelled.encode())]
    return ContextStream(context, entries, extra), inserted_line(text, labelled)


def base_triggers(client: APIClient, loaded: BuildContext, buildargs: Mapping[str, str] | None) -> list[str] | None:
    """The `ONBUILD` triggers (`COPY . /src/`) of the images the Dockerfile's stages start from, as the
    engine has them; None when that is not known: an image the engine does not have (yet), one named
    through a build argument, a Dockerfile that does not parse."""
    from docker.errors import DockerException

    from gitops_cli.dockerfile import parse_dockerfile

    try:
        text = Path(loaded.dockerfile_path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    parsed = parse_dockerfile(text)
    if parsed.error is not None:
        return None
    triggers: list[str] = []
    for image in parsed.images:
        if image.kind != "from":
            continue
        if image.unresolved or ("$" in image.raw and buildargs):
            return None
        try:
            config = client.inspect_image(image.value).get("Config") or {}
        except DockerException:
            return None
        triggers += [str(trigger) for trigger in config.get("OnBuild") or ()]
    return triggers


def api_context(context: str, dockerfile: str | None, loaded: BuildContext | None = None) -> tuple[ContextStream, str]:
    """The build context as `docker build` sends it, and the Dockerfile's name in it: the user's, or
    (a Dockerfile from outside the context) GENERATED_DOCKERFILE, added with the `.dockerignore` naming
    it, as docker adds it (under a name of its own)."""
    from gitops_cli.dockerignore import BuildContext

    build_context = loaded or BuildContext.load(context, dockerfile)
    entries = build_context.selection()
    if build_context.dockerfile is not None:
        return ContextStream(context, entries, []), build_context.dockerfile
    try:
        content = Path(build_context.dockerfile_path).read_bytes()
    except OSError as exc:
        raise UsageError(f"Dockerfile {build_context.dockerfile_path}: {exc.strerror or exc}") from None
    listed = build_context.ignore if build_context.ignore is not None else b".dockerignore"
    extra = [(".dockerignore", listed + b"\n" + GENERATED_DOCKERFILE.encode() + b"\n"),
             (GENERATED_DOCKERFILE, content)]
    return ContextStream(context, entries, extra), GENERATED_DOCKERFILE


def plain_context(context: str, dockerfile: str | None, loaded: BuildContext | None = None) -> ContextStream:
    """The build context as a tar for BuildKit: what `docker build` sends, the Dockerfile and
    `.dockerignore` included (context_blocker made sure the engine would not remove them).

    The engine tells a tar from a single file by its first 1024 bytes, which must hold a whole plain
    tar header: so the Dockerfile comes first (context_blocker checked that its name fits), every mtime
    is whole seconds (a fractional one makes Python write a PAX header before each entry, and the
    context would be taken for a Dockerfile), and owners are 0:0 with no names, as the docker CLI sends
    them (an owner id over 2097151 needs a PAX header too; COPY makes files root's anyway)."""
    from gitops_cli.dockerignore import BuildContext

    name = (dockerfile or "Dockerfile").replace(os.sep, "/")
    entries = (loaded or BuildContext.load(context, dockerfile)).selection()
    return ContextStream(context, [name] + [path for path in entries if path != name], [])


CHUNK = 1 << 20  # the context tar is sent in pieces of this size (the last one shorter): no file is read whole


def _pieces(pending: bytearray, last: bool = False) -> Iterator[bytes]:
    """Take the whole CHUNK-sized pieces off the front of `pending` (with `last`, what is left after them
    too), in order."""
    while len(pending) >= CHUNK or (last and pending):
        yield bytes(pending[:CHUNK])
        del pending[:CHUNK]


class ContextStream:
    """The build context as a tar, made while it is sent: the request body (requests sends an iterable
    with chunked transfer encoding, to either builder), nothing written anywhere first.

    The context's `entries` (paths as dockerignore names them), in that order, then the `extra` files
    (name, content), which replace context files of the same name.  Headers as the docker CLI writes
    them: owner 0:0 without names, whole-second mtimes; names as bytes; sockets left out; tarfile's own
    headers (`TarInfo.tobuf`, PAX format), each file's data read CHUNK bytes at a time and padded to a
    block, and the two zero blocks that end a tar (not tarfile's padding to 10 KiB: the engine leaves
    that unread, and a connection closed with unread data is reset, which may cut off the end of the
    build's answer).

    A file without read permission is refused before any build request: the walk that selects the
    entries opens every file first, as the docker CLI's (dockerignore.BuildContext.selection, exit 2).
    A file that cannot be read while it is sent (an I/O error, a file gone since the walk), or that
    shrank or grew since its header was made (a tar member must hold exactly the header's size),
    raises UsageError (exit 2, naming it) from inside the request: urllib3 then closes the connection
    without the body's last chunk, so the engine sees a body cut short and builds and tags nothing."""

    def __init__(self, context: str, entries: Iterable[str], extra: list[tuple[str, bytes]]) -> None:
        replaced = {name for name, _ in extra}
        self.context, self.extra = context, extra
        self.entries = [path for path in entries if path not in replaced]
        self._root = os.fsencode(context)
        self._chunks = self._tar()

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()  # closes the file being sent, if any

    def __enter__(self) -> ContextStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unreadable(self, path: str, exc: OSError) -> UsageError:
        from gitops_cli.output import printable

        return UsageError(f"build context {self.context}: cannot read {printable(path)}: {exc.strerror or exc}")

    def _tar(self) -> Generator[bytes, None, None]:
        """The tar in pieces of exactly CHUNK bytes (the last one shorter): a file's data is read into
        what is left of a piece, so the pieces after a file's first are its own reads, sent as they are
        (no copy), and a piece never holds a lone header."""
        import io
        import math
        import tarfile

        from gitops_cli.dockerignore import encode

        # tarfile makes the headers (gettarinfo: file types, hard links as links to the first name); it
        # writes nothing itself
        headers = tarfile.open(mode="w", fileobj=io.BytesIO(), encoding="utf-8", errors="surrogateescape")
        pending = bytearray()  # the piece being filled
        for path in self.entries:
            full = os.path.join(self._root, encode(path))
            try:
                info = headers.gettarinfo(full, arcname=path)  # type: ignore[arg-type]
            except OSError as exc:
                raise self._unreadable(path, exc) from None
            if info is None:  # a socket
                continue
            if isinstance(info.linkname, bytes):  # a symbolic link, read as bytes
                info.linkname = info.linkname.decode("utf-8", "surrogateescape")
            info.mtime, info.uid, info.gid, info.uname, info.gname = math.floor(info.mtime), 0, 0, "", ""
            pending += info.tobuf(headers.format, headers.encoding, headers.errors)
            if info.isfile():
                fd = self._open(full, path)
                try:
                    left = info.size
                    while left:
                        yield from _pieces(pending)
                        piece = self._read(fd, path, min(left, CHUNK - len(pending)))
                        if not piece:
                            raise self._changed(path, f"it shrank: {info.size - left} of {info.size} bytes")
                        left -= len(piece)
                        if pending or len(piece) < CHUNK:
                            pending += piece
                        else:
                            yield piece
                    if self._read(fd, path, 1):
                        raise self._changed(path, f"it grew past {info.size} bytes")
                finally:
                    os.close(fd)
                pending += bytes(-info.size % tarfile.BLOCKSIZE)
            yield from _pieces(pending)
        for name, content in self.extra:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            pending += info.tobuf(headers.format, headers.encoding, headers.errors)
            pending += content + bytes(-len(content) % tarfile.BLOCKSIZE)
        pending += bytes(2 * tarfile.BLOCKSIZE)
        yield from _pieces(pending, last=True)

    def _open(self, full: bytes, path: str) -> int:
        try:
            return os.open(full, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise self._unreadable(path, exc) from None

    def _read(self, fd: int, path: str, size: int) -> bytes:
        try:
            return os.read(fd, size)
        except OSError as exc:
            raise self._unreadable(path, exc) from None

    def _changed(self, path: str, change: str) -> UsageError:
        from gitops_cli.output import printable

        return UsageError(f"build context {self.context}: {printable(path)} changed while it was being sent "
                          f"({change})",
                          hint="build again once nothing writes to it, or leave it out of the context (.dockerignore)")


def _use_resolved_credentials(client: APIClient, environ: Mapping[str, str] | None) -> None:
    """Give the legacy builder the registry credentials gitops resolved (registry.build_credentials: every
    registry of the docker config, as `docker build` sends them), and make the SDK use only those: left
    to itself it runs the docker config's credential helpers with their stderr on gitops' stderr (a
    failing helper's words, escape sequences and all, not through gitops' output) and waits for them
    without a limit.  gitops runs them as for every look-up: output captured, a failure one warning."""
    from docker.auth import AuthConfig

    from gitops_cli.registry import build_credentials

    auths = {key: creds.auth_config(key) for key, creds in build_credentials(environ).items()}
    # an AuthConfig that is not empty (the SDK reloads the docker config when it is) and has no helper
    client._auth_configs = AuthConfig({"auths": auths or {"gitops-cli.invalid": {}}})


def build(
    client: APIClient,
    *,
    context: str,
    dockerfile: str | None,
    tag: str,
    buildargs: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    target: str | None = None,
    network: str | None = None,
    cache_from: list[str] | None = None,
    pull: bool = False,
    nocache: bool = False,
    on_line: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Build `context` into `tag`, streaming the log to `on_line`; return the image id (sha256:...).

    The builder is choose_builder's.  With BuildKit, `labels` are image metadata (no builder step);
    with the legacy builder they go into the Dockerfile as one LABEL instruction (labelled_context)
    when possible, else through the build API (one builder step per label)."""
    from gitops_cli.dockerignore import BuildContext

    loaded = BuildContext.load(context, dockerfile)  # the .dockerignore, read once (exit 2 when docker refuses it)
    builder = choose_builder(client, context=context, dockerfile=dockerfile, network=network, pull=pull,
                             cache_from=cache_from, buildargs=buildargs, environ=environ, loaded=loaded,
                             target=target)
    output.info(builder.describe())
    options: dict[str, Any] = dict(
        tag=tag, buildargs=dict(buildargs or {}) or None, target=target, cache_from=cache_from or None,
        pull=pull, nocache=nocache)
    if builder.buildkit:
        # an engine without its default bridge: no network, which is what the legacy builder's RUN gets there
        # (`--network default` is the engine's default, as without --network: BuildKit's is the bridge)
        steps_network = network if network not in (None, "", "default") else (
            None if _engine_has(client.inspect_network, "bridge") else "none")
        plain = plain_context(context, dockerfile, loaded)
        request = functools.partial(_buildkit_request, client, plain, dockerfile=dockerfile,
                                    labels=dict(labels or {}), network=steps_network, **options)
        try:
            return _stream_build(client, BuildTracker(buildkit=True), request, on_line)
        except _NoBuildKit as exc:
            if builder.forced:
                raise BuildError(f"DOCKER_BUILDKIT=1, but the engine cannot build with BuildKit: {exc}",
                                 hint="unset DOCKER_BUILDKIT to use the legacy builder") from None
            output.warn(f"the engine cannot build with BuildKit ({exc}); using the legacy builder")
        finally:
            plain.close()
    tracker = BuildTracker()
    # gitops makes the tar in both cases, as `docker build` would send it (dockerignore.BuildContext)
    labelled = None
    if labels:
        # with --pull the engine builds from the registry's base images, whose triggers it has not seen yet
        triggers = (None if pull else base_triggers(client, loaded, buildargs)) if loaded.ignore is not None else ()
        labelled = labelled_context(context, dockerfile, labels, target, loaded, triggers)
    if labelled is not None:
        tar, tracker.inserted_line = labelled
        source: dict[str, Any] = {"dockerfile": GENERATED_DOCKERFILE}
    else:
        tar, name = api_context(context, dockerfile, loaded)
        source = {"dockerfile": name, "labels": dict(labels or {}) or None}
    # the SDK hands `fileobj` to requests as the body as it is: an iterable, sent with chunked transfer encoding
    legacy = functools.partial(client.build, fileobj=tar, custom_context=True, network_mode=network, rm=True,
                               forcerm=True, decode=True, **options, **source)
    try:
        _use_resolved_credentials(client, environ)
        return _stream_build(client, tracker, legacy, on_line)
    finally:
        tar.close()


class _NoBuildKit(Exception):
    """The engine refused a BuildKit build before building anything (its message)."""


def _buildkit_request(client: APIClient, tar: ContextStream, *, tag: str, dockerfile: str | None,
                      buildargs: dict[str, str] | None, labels: dict[str, str], target: str | None,
                      network: str | None, cache_from: list[str] | None, pull: bool,
                      nocache: bool) -> Iterable[Mapping[str, Any]]:
    """POST /build?version=2 with the context tar as the body; the decoded stream.  No registry
    credentials are sent: without a client session the engine's BuildKit does not use them."""
    import json

    from docker.errors import APIError

    params: dict[str, Any] = {"t": tag, "version": "2", "dockerfile": dockerfile or "Dockerfile",
                              "pull": pull, "nocache": nocache, "rm": True, "forcerm": True}
    for key, value in (("buildargs", buildargs), ("labels", labels), ("cachefrom", cache_from)):
        if value:
            params[key] = json.dumps(value)
    if target:
        params["target"] = target
    if network:
        params["networkmode"] = network
    response = client._post(client._url("/build"), data=tar, params=params, stream=True, timeout=None,
                            headers={"Content-Type": "application/x-tar"})
    try:
        client._raise_for_status(response)
    except APIError as exc:
        if "buildkit" in _api_message(exc).lower():  # e.g. "buildkit not supported by daemon"
            raise _NoBuildKit(_api_message(exc)) from None
        raise
    return client._stream_helper(response, decode=True)


def _stream_build(client: APIClient, tracker: BuildTracker, request: Callable[[], Iterable[Mapping[str, Any]]],
                  on_line: Callable[[str], None] | None) -> str:
    """Run a build request, showing its log; the image id, or the tracker's BuildError."""
    from docker.errors import APIError

    show = on_line or show_build_line
    try:
        for event in request():
            for line in tracker.feed(event):
                show(line)
        for line in tracker.finish():
            show(line)
    except APIError as exc:
        tracker.error = tracker.error or _api_message(exc)
    except lost_engine_errors() as exc:
        if _REFUSED_REFERENCE in str(exc):  # the docker SDK's own check of the tag (a legacy build)
            raise reference_refused(_built(request), str(exc)) from None
        raise EngineUnavailableError(f"lost the container engine during the build: {_reason(exc)}") from None
    if tracker.error and tracker.error.startswith(_REFUSED_REFERENCE) and not tracker.step and not tracker.failed:
        raise reference_refused(_built(request), tracker.error)  # the engine's check of the tag, before any step
    if tracker.error or not tracker.image_id:
        raise tracker.failure()
    image_id = tracker.image_id
    return image_id if image_id.startswith("sha256:") else inspect_image(client, image_id)["Id"]


def _built(request: Any) -> str:
    """The NAME:TAG a build request makes (build()'s partials carry it)."""
    return str(getattr(request, "keywords", {}).get("tag") or "the image")


def show_build_line(line: str) -> None:
    """Default live display: step headings stand out on a TTY, everything else is a plain log line."""
    if isinstance(line, Heading):
        output.step(line)
    else:
        output.log_line(line)


def _api_message(exc: Any) -> str:
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode() if isinstance(explanation, bytes) else str(explanation or exc)
    return output.redact(text.strip())


# --- run a command in an image -----------------------------------------------------------------------
def run_in_image(
    client: APIClient,
    image: str,
    command: str,
    on_output: Callable[[str], None] | None = None,
) -> int:
    """Run `sh -c COMMAND` in a new container of `image` (network none); stream its output; return status."""
    from docker.errors import APIError, ImageNotFound

    show = on_output or output.log_line
    try:
        container = client.create_container(
            image, command=[command], entrypoint=["/bin/sh", "-c"], detach=True,
            host_config=client.create_host_config(network_mode="none"),
        )
    except ImageNotFound:
        raise _missing_image(image) from None
    except APIError as exc:
        if refuses_reference(exc):
            raise reference_refused(image, _api_message(exc)) from None
        message = f"cannot create a container from {image}: {_api_message(exc)}"
        raise GitopsError(message, exit_code=14) from None
    cid = container["Id"]
    try:
        client.start(cid)
        partial = b""
        for chunk in client.logs(cid, stream=True, follow=True):
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for line in lines:
                show(line.decode("utf-8", "replace"))
        if partial:
            show(partial.decode("utf-8", "replace"))
        return int(client.wait(cid).get("StatusCode", 1))
    except APIError as exc:
        raise GitopsError(f"cannot run {command!r} in {image}: {_api_message(exc)}", exit_code=14) from None
    except lost_engine_errors() as exc:
        raise EngineUnavailableError(f"lost the container engine while running {command!r}: {_reason(exc)}") \
            from None
    finally:
        try:
            client.remove_container(cid, force=True)
        except lost_engine_errors():  # best effort clean-up (the engine may be gone)
            pass


def _missing_image(image: str) -> UsageError:
    return UsageError(f"image {image} not found in the container engine", hint="build it first: gitops build")


# --- inspect -----------------------------------------------------------------------------------------
def inspect_image(client: APIClient, image: str) -> dict[str, Any]:
    """`docker image inspect IMAGE`; UsageError (exit 2) when the engine does not have it, or refuses its
    name (reference_refused)."""
    from docker.errors import APIError, ImageNotFound

    try:
        return dict(client.inspect_image(image))
    except ImageNotFound:
        raise _missing_image(image) from None
    except APIError as exc:
        if refuses_reference(exc):
            raise reference_refused(image, _api_message(exc)) from None
        raise


# --- image references the engine refuses -------------------------------------------------------------
# The grammar (imageref) takes a first component as a registry host when it has a capital (`MyOrg/app`), and
# an IPv6 host (`[::1]:5000/app`).  The engine's own parser may not: Docker Engine 20.10 (Debian 12's)
# refuses both with a 400 "invalid reference format" -- where gitops met it, as an internal error (publish),
# a failed build (exit 5) or a test command that could not start (exit 14), after the work before it.


def check_reference(ref: ImageRef, subject: str, client: APIClient | None = None) -> None:
    """Refuse, before any work, a reference the engine will refuse (InvalidReferenceError, exit 2, `subject`
    naming where it came from: `--image 'MyOrg/app'`).  A first component that is a registry host only for
    its capitals (no `.`, no port, not localhost) is refused without asking: an engine refuses it (repository
    name must be lowercase) or looks for a registry of that name, and it is an organisation's name written
    with capitals.  An IPv6 host is left to the engine, asked once (`client`, else a connection is opened):
    newer engines take it."""
    domain = ref.domain or ""
    if domain and "." not in domain and ":" not in domain and domain != "localhost" and domain.lower() != domain:
        from dataclasses import replace

        raise InvalidReferenceError(
            f"{subject}: the container engine refuses this reference: {domain!r} is read as a registry host only "
            f"for its capitals (repository names must be lowercase)",
            hint=f"{domain!r} is most likely an organisation's or user's name: write it lowercase "
                 f"({replace(ref, domain=domain.lower())}); a registry host has a '.' or a port "
                 f"(registry.example.com/{ref.path})")
    if domain.startswith("["):
        from docker.errors import APIError

        try:
            (client or connect()).inspect_image(ref.name)
        except APIError as exc:
            if refuses_reference(exc):
                raise reference_refused(subject, _api_message(exc)) from None


_REFUSED_REFERENCE = "invalid reference format"  # the engine's words (and the docker SDK's) for a name it refuses


def refuses_reference(exc: Any) -> bool:
    """Whether an APIError is the engine refusing an image reference it cannot parse (400 "invalid reference
    format"), not a failure of the request."""
    return getattr(exc, "status_code", None) == 400 and _REFUSED_REFERENCE in _api_message(exc)


def reference_refused(subject: str, message: str) -> InvalidReferenceError:
    """The engine refused the reference `subject` (its `message` says "invalid reference format"): exit 2, in
    the engine's words, with why where gitops knows it (a capital, an IPv6 host)."""
    reason = message[message.index(_REFUSED_REFERENCE):]
    if "[" in subject:
        hint = "this engine takes no IPv6 registry host: name the registry by a host name or an IPv4 address " \
               "(localhost:5000/..., 127.0.0.1:5000/...)"
    elif "lowercase" in reason or re.search("[A-Z]", subject.rsplit(":", 1)[0]):  # the docker SDK does not say
        hint = "write the image's name lowercase, its registry host too (registry.example.com/team/app)"
    else:
        hint = None
    return InvalidReferenceError(f"{subject}: the container engine refuses this reference ({reason})", hint=hint)


# --- push --------------------------------------------------------------------------------------------
def check_push_stream(
    events: Iterable[Mapping[str, Any]], on_event: Callable[[Mapping[str, Any]], None]
) -> str:
    """Check EVERY line of a decoded push stream; return the pushed manifest digest.

    The engine answers HTTP 200 and reports a failed push as an `error`/`errorDetail` object in the
    stream; this raises PushFailed for it.  The digest comes from the final `aux` object (or the
    `TAG: digest: sha256:... size: N` status line of older engines).
    """
    digest: str | None = None
    for event in events:
        error = stream_error(event, "unknown push error")
        if error is not None:
            raise PushFailed(error)
        aux = event.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
            digest = aux["Digest"]
        status = event.get("status")
        if digest is None and isinstance(status, str) and " digest: " in status:
            digest = status.split(" digest: ", 1)[1].split()[0]
        on_event(event)
    if digest is None:
        raise PushFailed("the engine reported no digest for the pushed image")
    return digest


class PushFailed(Exception):
    """A push stream reported an error (the message is the engine's, credentials never appear in it)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


PUSH_STALL_HINT = ("the engine keeps its upload open until the registry ends it, and a re-run waits on that "
                   "upload again: fix the registry (or what is in front of it), or restart the engine")


PUSH_STALL = 300.0  # seconds without a word from the engine during a push: the push is stuck


def push_stall(environ: Mapping[str, str] | None = None) -> float:
    """GITOPS_PUSH_STALL_TIMEOUT (seconds, > 0), else PUSH_STALL; UsageError (exit 2) for a bad value."""
    value = (os.environ if environ is None else environ).get("GITOPS_PUSH_STALL_TIMEOUT", "").strip()
    if not value:
        return PUSH_STALL
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 86400:
        raise UsageError(f"GITOPS_PUSH_STALL_TIMEOUT={value!r}: expected seconds, more than 0 and at most 86400")
    return seconds


def push(client: APIClient, repository: str, tag: str, auth_config: Mapping[str, str] | None) -> str:
    """Push REPOSITORY:TAG with per-layer progress; return the manifest digest (sha256:...).
    `auth_config`: the credentials for the registry (None: none, an anonymous push).

    Raises PushFailed with the engine's message; callers map it to a registry error.  The engine reports
    progress while it pushes; when it says nothing for push_stall() seconds (a registry that accepts
    the connection and never answers an upload: the engine has no timeout of its own), the push is given
    up: PushFailed (with PUSH_STALL_HINT), and gitops' request to the engine is closed.  That does not
    end the engine's upload (verified with Docker Engine 20.10: the push's context is cancelled, but its
    registry client sends the upload requests without it, and they wait for the registry's answer); a
    push of the same layers to that repository joins it until the registry closes the connection.
    """
    from docker.errors import APIError

    stall = push_stall()
    broken: tuple[type[BaseException], ...] = (*lost_engine_errors(), TimeoutError)
    client.timeout = stall  # requests' read timeout: the longest wait for the next bytes of the answer
    try:
        # the credentials gitops resolved (registry.resolve_credentials), `{}` for none: never None, which
        # would make the SDK read the docker config and run its credential helpers itself (their stderr
        # straight to ours, a second warning in other words)
        stream = client.push(repository, tag=tag, stream=True, decode=True, auth_config=dict(auth_config or {}))
        with PushProgress() as progress:
            return check_push_stream(stream, progress.update)
    except APIError as exc:
        raise PushFailed(_api_message(exc)) from None
    except broken as exc:
        if _timed_out(exc):
            client.close()  # our request to the engine (urllib3 drops a connection whose read timed out anyway)
            raise PushFailed(f"no word from the engine for {stall:g} s: the push is stuck (a registry that stopped "
                             "answering, or answers too slowly: GITOPS_PUSH_STALL_TIMEOUT)",
                             hint=PUSH_STALL_HINT) from None
        raise EngineUnavailableError(f"lost the container engine during the push: {_reason(exc)}") from None
    finally:
        client.timeout = None


def _timed_out(exc: BaseException) -> bool:
    """A read that timed out, however requests/urllib3 wrap it (ConnectionError(ReadTimeoutError(...)))."""
    from requests.exceptions import Timeout
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, Timeout | Urllib3Timeout | TimeoutError) or "timed out" in str(seen):
            return True
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = nested or seen.__context__
    return False


_DIGITS = re.compile(r"[0-9]+")
# a count and the word it counts, plural or singular: `5 seconds` and `1 second` are one kind of status
_COUNTED = re.compile(r"[0-9]+(\s+[A-Za-z]+?)s?\b")


class PushProgress:
    """Per-layer progress: rich bars on a TTY; otherwise one plain line per layer for each kind of status
    it reaches (`Preparing`, `Pushing`, `Retrying in N seconds`, `Pushed`, ...), the first time only: the
    engine counts a retry down once a second, and repeats `Pushing` after each retry."""

    def __init__(self) -> None:
        self._live = output.live_progress()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, int] = {}
        self._shown: dict[str, set[str]] = {}  # layer -> the kinds of status shown for it

    def __enter__(self) -> PushProgress:
        if self._live:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      console=output.err_console(), transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, event: Mapping[str, Any]) -> None:
        layer, status = event.get("id"), event.get("status")
        if not isinstance(status, str):
            return
        if not isinstance(layer, str) or " digest: " in status:
            self._plain(status)
            return
        if self._progress is not None:
            detail = event.get("progressDetail") or {}
            task = self._tasks.get(layer)
            if task is None:
                task = self._tasks[layer] = self._progress.add_task(f"{layer}: {status}", total=None)
            done = status in {"Pushed", "Layer already exists"} or status.startswith("Mounted from")
            current, total = detail.get("current") or 0, detail.get("total") or None
            if done:  # the engine sends no sizes with the final status: fill the bar
                current = total = self._totals.get(layer) or 1
            elif total is not None:
                total = self._totals[layer] = max(total, current)  # total may undercount what is sent
            self._progress.update(task, description=f"{layer}: {status}", total=total, completed=current)
        else:
            # `Retrying in 5 seconds`, `... in 4 seconds`, ..., `... in 1 second` are one kind
            kind = _DIGITS.sub("N", _COUNTED.sub(r"N\1", status))
            shown = self._shown.setdefault(layer, set())
            if kind not in shown:
                shown.add(kind)
                output.log_line(f"{layer}: {status}")

    def _plain(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(output.redact(text), markup=False, highlight=False)
        else:
            output.log_line(text)
