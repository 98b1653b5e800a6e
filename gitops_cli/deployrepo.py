"""The deploy repo: where it is, how to reach it (credentials), clone, commit, push, fetch-and-reset.

Every git call goes through gitops_cli.git.run.  Credentials live only in the environment of the git
processes (an `http.<url>.extraHeader` at the end of GIT_CONFIG_PARAMETERS, the only Authorization header
sent there, see git.authorization_config; or GIT_SSH_COMMAND with a key): never in a URL or on a command
line, never in the clone's .git/config, never printed (they are registered as secrets).

A rejected push is read from `git push --porcelain` status lines (flag `!`), not from message wording;
callers (gitops_cli.bump) integrate the new remote head and push again.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gitops_cli import git, interrupts, output
from gitops_cli.errors import DirtyTreeError, GitAuthError, GitError, GitopsError, UsageError
from gitops_cli.output import redact, register_secret
from gitops_cli.settings import FLAGS, Names, expand_user

DEFAULT_IDENTITY = ("gitops-cli", "gitops-cli@localhost")
_SCHEMES = ("file", "http", "https", "ssh", "git", "git+ssh", "ssh+git")
_SCP_RE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^/:]+):(?P<path>(?!//).*)$")
_IDENTITY_RE = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<(?P<email>[^<>\s]+)>\s*$")
_SYMREF_RE = re.compile(r"^ref: refs/heads/(?P<branch>\S+)\tHEAD$", re.MULTILINE)
# `[remote rejected]` reasons that mean "the ref moved under us" (two receive-packs raced): retryable.
_RACE_REASONS = (
    "cannot lock ref", "failed to lock", "failed to update ref", "incorrect old value", "stale info",
)


@dataclass(frozen=True)
class Remote:
    """A deploy repo: `url` is what git is given (no credentials), `display` what may be printed."""

    url: str
    display: str
    env: dict[str, str] = field(default_factory=dict, repr=False)  # auth/ssh config for every git call
    local: Path | None = None  # set when --deploy-repo is an existing local checkout
    auth: str | None = None  # "token (GITOPS_GIT_TOKEN)", "ssh key ...": what is used, never the secret
    name: str = "origin"  # its name in the repo fetched into: tracking refs are refs/remotes/<name>/<branch>


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class PushOutcome:
    ok: bool
    rejected: bool  # the remote moved (non-fast-forward, fetch first, lost a ref-update race): retry
    reason: str = ""
    stopped: bool = False  # interrupted: the push was stopped before it finished (see push)
    unknown: bool = False  # stopped, and whether the remote took the commit could not be told
    pending: bool = False  # stopped, not on the remote when read, but its server may still apply it (unknown too)
    said: str = ""  # rejected: the server's own lines (remote_says), for when it turns out to be no race


PUSH_GRACE = 4.0  # seconds an interrupted push has to finish: only git push knows whether the remote took it
VERIFY_TIMEOUT = 30.0  # seconds for reading the remote branch after a push git reported as failed
CHECK_TIMEOUT = 3.0  # seconds for reading the remote branch after a push was stopped (GitHub Actions sends
# SIGTERM 7.5 s after its SIGINT: both fit before it)


# --- where the repo is and how to reach it ------------------------------------------------------------


def is_url(spec: str) -> bool:
    """True for `scheme://...` with a git transport scheme and for scp-like `user@host:path`."""
    if "://" in spec:
        return spec.split("://", 1)[0].lower() in _SCHEMES
    if Path(spec).exists():
        return False
    return bool(_SCP_RE.match(spec)) and not spec.startswith(("/", "./", "../"))


def open_remote(
    spec: str, *, ssh_key: Path | None = None, environ: Mapping[str, str] | None = None,
    names: Names = FLAGS, repo: Path | None = None,
) -> Remote:
    """Classify --deploy-repo (the `deploy_repo` setting, named in messages as `names` does: `remote NAME`
    for a checkout's remote) and build the environment that authenticates git.

    UsageError (exit 2), with any credentials stripped from the spec it names, for what cannot work: an
    unknown scheme, a malformed `scheme:/...` (read by git as scp-like `host:path`), a missing directory
    (a path or a file:// URL).  `repo`: the checkout whose `origin` this is (its core.sshCommand counts)."""
    env = os.environ if environ is None else environ
    if not spec.strip():
        raise UsageError(f"{names('deploy_repo', spec)}: empty value")
    userinfo = git.split_userinfo(spec)[0]
    shown = git.url_shown(spec)
    what = names("deploy_repo", shown)
    if git.blank_in_userinfo(spec):  # never on git's command line (strip_credentials ends a URL at a blank)
        for password in (userinfo or "").partition(":")[2], unquote((userinfo or "").partition(":")[2]):
            register_secret(password)
        raise UsageError(f"{what}: its user-info (user:password@) holds a blank or a control character, which "
                         "a URL cannot hold unencoded (git refuses it)",
                         hint="percent-encode them in the URL (a space as %20, a tab as %09), or give the token "
                              "in GITOPS_GIT_TOKEN")
    if git.malformed_userinfo(spec):
        raise UsageError(f"{what}: its user-info (user:password@) holds a `/`, `?` or `#`, which git would read "
                         "as part of the host or the path",
                         hint="percent-encode them in the URL (/ as %2F, ? as %3F, # as %23), or give the token "
                              "in GITOPS_GIT_TOKEN")
    if "://" in spec:  # schemes are case-insensitive: git is given the lowercase one
        scheme, rest = spec.split("://", 1)
        spec = f"{scheme.lower()}://{rest}"
    if not is_url(spec):
        path = expand_user(spec)
        if not path.is_dir():
            raise UsageError(f"{what}: not a URL and no such directory",
                             hint="give file://, https://, ssh:// or git@host:path, or a local checkout")
        if _is_bare(path):  # a bare repo on disk is a remote, not a checkout
            return _with_ssh(Remote(url=path.resolve().as_uri(), display=path.resolve().as_uri()), ssh_key,
                             env, transport=False)
        return Remote(url=str(path.resolve()), display=str(path.resolve()), local=path.resolve())
    scheme = spec.split("://", 1)[0] if "://" in spec else "ssh"
    if scheme == "ssh" and "://" not in spec:
        _refuse_scp_password(spec, names)
        _check_scp_like(spec, what)
    if scheme in ("http", "https"):
        return _https_remote(spec, env, repo)
    if scheme == "file":
        spec = _local_file_url(spec, what)
        where = Path(unquote(spec[len("file://"):]))  # `#` and `?` are path characters here
        if not where.is_dir():
            raise UsageError(f"{what}: no such directory",
                             hint="give the path of an existing (bare) repository")
        return _with_ssh(Remote(url=spec, display=shown), ssh_key, env, transport=False)
    if scheme in ("ssh", "git+ssh", "ssh+git"):
        parts = urlsplit(spec)
        if parts.password:  # ssh://user:password@ is never used; keep the user, drop the password
            register_secret(unquote(parts.password))
            spec = spec.replace(f":{parts.password}@", "@", 1)
    return _with_ssh(Remote(url=spec, display=git.strip_credentials(spec)), ssh_key, env,
                     transport=scheme != "git", repo=repo)


def _local_file_url(spec: str, what: str) -> str:
    """A file:// URL as `file:///path`: its authority must be empty or `localhost` (RFC 8089), any other
    host is exit 2 (git would read it as part of a relative path)."""
    rest = spec[len("file://"):]
    authority = rest.split("/", 1)[0]
    if not authority:
        return spec
    if authority.lower() == "localhost":
        if not rest[len(authority):]:
            raise UsageError(f"{what}: no path", hint="give file:///path or file://localhost/path")
        return "file://" + rest[len(authority):]
    userinfo, at, host = authority.rpartition("@")
    if at:  # never printed: user-info may hold a password or token
        output.register_secret(userinfo.partition(":")[2] or userinfo)
    raise UsageError(f"{what}: a file:// URL names a local path; host {host!r} is not this machine",
                     hint="give file:///path (or file://localhost/path), or a URL git can reach that host by")


_MALFORMED_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/(?!/)")


def _check_scp_like(spec: str, what: str) -> None:
    """UsageError for a `host:path` spec that is a URL with a slash missing (`http:/user:token@h/x`): git
    would ssh to a host named after the scheme, with the credentials in the path."""
    m = _SCP_RE.match(spec)
    if m is None or m.group("user") is not None or not _MALFORMED_SCHEME_RE.match(spec):
        return
    host = m.group("host")
    first = m.group("path")[1:].split("/", 1)[0]
    if host.lower() in _SCHEMES or "@" in first:
        raise UsageError(f"{what}: malformed URL (\"{host}:/\" is missing a slash)",
                         hint="give scheme://host/path, or scp-like user@host:path")


def _refuse_scp_password(spec: str, names: Names) -> None:
    """UsageError (exit 2) for `user:password@host:path`: scp-like syntax has no password (git would ssh to
    a host named `user`), and the password is never shown (git.scp_password)."""
    found = git.scp_password(spec)
    if found is None:
        return
    password, shown = found
    if password:
        register_secret(password)
    raise UsageError(f"{names('deploy_repo', shown)}: scp-like user@host:path "
                     "has no password part (it was dropped from this message)",
                     hint="use --ssh-key for ssh, or https:// with GITOPS_GIT_TOKEN")


def _is_bare(path: Path) -> bool:
    """Is `path` a bare repository (a remote, cloned from)?  One git refuses as another user's is told by
    its layout (HEAD, objects/, refs/ and no .git): the clone then names the setting that trusts it as a
    remote -- the GIT_CONFIG_* form that trusts it here would not (see git.ownership_error)."""
    res = git.run(["rev-parse", "--is-bare-repository"], cwd=path, check=False)
    if res.status != 0 and git.ownership_error(res.stderr, cwd=None) is not None:
        return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir() \
            and not (path / ".git").exists()
    return res.status == 0 and res.stdout.strip() == "true"


def _with_ssh(remote: Remote, ssh_key: Path | None, environ: Mapping[str, str] | None = None,
              transport: bool = True, repo: Path | None = None) -> Remote:
    """The remote with the GIT_SSH_COMMAND git reaches it with (`transport`: over ssh).  --ssh-key makes
    the whole command.  Without it, the user's own command is kept (GIT_SSH_COMMAND, else core.sshCommand
    -- of `repo` when given, else the global one --, else GIT_SSH, else ssh): its -i, ProxyJump etc. stay,
    and git.ssh_command_with adds BatchMode and the pin to it (one composition for both).
    GITOPS_SSH_KNOWN_HOSTS pins host keys: only the hosts in that file are accepted
    (StrictHostKeyChecking=yes; it must exist and is never written); a user's command that sets a trust
    option itself contradicts the pin: exit 2.  Without it, ~/.ssh/known_hosts with accept-new (a new
    host is trusted once, a changed key is refused) for --ssh-key, the user's own settings otherwise."""
    env_in = os.environ if environ is None else environ
    if not transport and ssh_key is None:
        return remote
    known_hosts = env_in.get("GITOPS_SSH_KNOWN_HOSTS", "").strip() if transport else ""
    pin: list[str] = []
    if known_hosts:  # pinned host keys (CI): only the hosts of this file, which is never written
        pinned = expand_user(known_hosts)
        if not pinned.is_file():
            raise UsageError(f"GITOPS_SSH_KNOWN_HOSTS {known_hosts}: no such file",
                             hint="point it at a known_hosts file holding the deploy host's key "
                                  "(ssh-keyscan HOST, checked out of band)")
        pin += ["-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={_ssh_option_path(pinned, 'GITOPS_SSH_KNOWN_HOSTS')}",
                "-o", "GlobalKnownHostsFile=/dev/null"]
    auth = remote.auth
    if ssh_key is not None:
        key = expand_user(ssh_key)
        check_ssh_key(key, str(ssh_key))
        # as an option, not -i: ssh expands `%` tokens in both (`%d`: the home directory), and a doubled
        # `%` is taken only here (-i first checks that the unexpanded path exists)
        args = ["ssh", "-o", f"IdentityFile={_ssh_option_path(key, '--ssh-key')}", "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes"]
        args += pin or ["-o", "StrictHostKeyChecking=accept-new"]
        command = " ".join(shlex.quote(a) for a in args)
        auth = f"ssh key {key}"
    else:
        user_command, source = _user_ssh_command(env_in, repo)
        # ssh takes an option's first value and the pin goes right after the program: it wins there; a
        # wrapper gets the pin at its end, where the wrapper's own options would win
        overrides = git.ssh_trust_options(user_command) if pin and not git.runs_ssh(user_command) else []
        if overrides:
            raise UsageError(f"GITOPS_SSH_KNOWN_HOSTS pins host keys, but the ssh command of {source} sets "
                             f"{', '.join(overrides)} itself: the two contradict each other",
                             hint="drop those options from that command, or unset GITOPS_SSH_KNOWN_HOSTS")
        command = git.ssh_command_with(user_command, pin)
        if command == user_command and source != "GIT_SSH_COMMAND":
            return remote  # nothing to add (a wrapper, or BatchMode set there): git finds it as it would
    env = dict(remote.env, GIT_SSH_COMMAND=command)
    env.pop("GIT_SSH", None)
    return Remote(url=remote.url, display=remote.display, env=env, local=remote.local, auth=auth, name=remote.name)


# the first word of a public key's line (`ssh-ed25519 AAAA... comment`, as a .pub file holds it)
_PUBLIC_KEY_RE = re.compile(rb"\s*(?:ssh-|ecdsa-|sk-)[a-z0-9@.-]+ AAAA")


def check_ssh_key(key: Path, given: str) -> None:
    """UsageError (exit 2) for an --ssh-key file ssh would not load, before any connection: ssh only says
    `Load key "...": bad permissions` / `invalid format` on stderr and then fails with "Permission denied
    (publickey)", which reads as a key the server refused.  Missing or unreadable; empty; a public key
    (the .pub) or anything without a `-----BEGIN ... PRIVATE KEY-----` block; or, as ssh judges it, a file
    of the user's that others may read (any group/other bit: ssh ignores it).  The key's bytes never
    appear in a message."""
    import stat

    what = f"--ssh-key {given!r}"
    try:
        with open(key, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UsageError(f"{what}: not a file")
            head = f.read(1 << 16)
    except FileNotFoundError:
        raise UsageError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{what}: not a file") from None
    except OSError as exc:
        raise UsageError(f"{what}: cannot be read ({exc.strerror})") from None
    if not head.strip():
        raise UsageError(f"{what}: the file is empty, not a private key")
    if b"PRIVATE KEY-----" not in head:
        if _PUBLIC_KEY_RE.match(head):
            private = key.with_suffix("") if key.suffix == ".pub" else None
            raise UsageError(f"{what}: a public key; ssh needs the private key",
                             hint=f"--ssh-key {str(private)!r}" if private is not None and private.is_file()
                             else "give the private key's file (the one without .pub)")
        raise UsageError(f"{what}: not a private key (no -----BEGIN ... PRIVATE KEY----- line)",
                         hint="give the private key's file, as ssh-keygen wrote it")
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        raise UsageError(f"{what}: permissions {stat.S_IMODE(info.st_mode):04o} are too open: ssh ignores a "
                         "private key that others can read", hint=f"chmod 600 {shlex.quote(str(key))}")


def _ssh_option_path(path: Path, what: str) -> str:
    """A file path as an ssh `-o` value: ssh splits it on blanks (quotes group) and expands `%` tokens, so
    it is quoted and `%` doubled; a path with `"`, `\\` or a control character cannot be written (exit 2,
    naming `what`: the flag or variable that gave it)."""
    text = str(path.resolve())
    if any(c in text for c in '"\\') or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise UsageError(f"{what} {text!r}: ssh cannot be given a path with a quote, a "
                         "backslash or a control character", hint="copy the file to a plain path")
    return '"' + text.replace("%", "%%") + '"'


def _user_ssh_command(environ: Mapping[str, str], repo: Path | None) -> tuple[str, str]:
    """(the ssh command git would run, where it comes from): GIT_SSH_COMMAND, core.sshCommand, GIT_SSH,
    else `ssh`."""
    command = environ.get("GIT_SSH_COMMAND", "").strip()
    if command:
        return command, "GIT_SSH_COMMAND"
    # as git would read it: the repo's config when there is one, else (from outside any repository) the
    # global and system files with their includes, and GIT_CONFIG_COUNT's entries
    read = ["config", "--includes", "--get", "core.sshCommand"]
    res = git.run(read, cwd=repo, check=False) if repo is not None else git.run_outside(read, env=environ, check=False)
    if res.status == 0 and res.stdout.strip():
        return res.stdout.strip(), "core.sshCommand"
    program = environ.get("GIT_SSH", "").strip()
    return (shlex.quote(program), "GIT_SSH") if program else ("ssh", "ssh")


def select_token(url: str, user: str | None, environ: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(username, token, source) for an HTTP(S) URL git talks to, or None.

    GITOPS_GIT_TOKEN applies to any host (username GITOPS_GIT_USERNAME, else the URL's user, else
    x-access-token).  A CI token goes only to its CI server's own origin -- scheme, host and port (a scheme's
    default port when none is written), as git reaches it: GITHUB_TOKEN to https://github.com or
    GITHUB_SERVER_URL's (x-access-token), CI_JOB_TOKEN to CI_SERVER_URL's (else https://CI_SERVER_HOST, with
    CI_SERVER_PROTOCOL and CI_SERVER_PORT when set; gitlab-ci-token).  Never to another host, to another
    port of that host, nor over plain http to a server that speaks https."""
    token = environ.get("GITOPS_GIT_TOKEN", "").strip()
    if token:
        username = environ.get("GITOPS_GIT_USERNAME", "").strip() or user or "x-access-token"
        return username, token, "GITOPS_GIT_TOKEN"
    target = _origin(url)
    token = environ.get("GITHUB_TOKEN", "").strip()
    if token and target is not None:
        server = environ.get("GITHUB_SERVER_URL", "").strip()
        if target in {_origin("https://github.com"), _origin(server) if server else None}:
            return "x-access-token", token, "GITHUB_TOKEN"
    token = environ.get("CI_JOB_TOKEN", "").strip()
    if token and target is not None and target == _gitlab_origin(environ):
        return "gitlab-ci-token", token, "CI_JOB_TOKEN"
    return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL: lowercase, a host's brackets dropped, the scheme's default
    port when none is written; None for another scheme or a URL without a host or with a bad port."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    return scheme, host.rstrip("."), port if port is not None else _DEFAULT_PORTS[scheme]


def _gitlab_origin(environ: Mapping[str, str]) -> tuple[str, str, int] | None:
    """GitLab's own origin: CI_SERVER_URL's, else CI_SERVER_PROTOCOL://CI_SERVER_HOST:CI_SERVER_PORT
    (https and its default port when those two are not set)."""
    server = environ.get("CI_SERVER_URL", "").strip()
    if server:
        return _origin(server)
    host = environ.get("CI_SERVER_HOST", "").strip()
    if not host:
        return None
    scheme = environ.get("CI_SERVER_PROTOCOL", "").strip() or "https"
    port = environ.get("CI_SERVER_PORT", "").strip()
    return _origin(f"{scheme}://{host}" + (f":{port}" if port and ":" not in host else ""))


def _cleartext(url: str) -> bool:
    """Does a credential sent to `url` cross the network unencrypted: plain http to a host that is not this
    machine (localhost, 127.0.0.0/8, ::1)?"""
    import ipaddress

    target = _origin(url)
    if target is None or target[0] != "http":
        return False
    host = target[1]
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


_WARNED_CLEARTEXT: set[str] = set()


def _warn_cleartext(url: str, source: str) -> None:
    """Once a run for each URL: the credential gitops sends there goes over plain HTTP."""
    shown = git.strip_credentials(url)
    if shown in _WARNED_CLEARTEXT:
        return
    _WARNED_CLEARTEXT.add(shown)
    output.warn(f"the credential from {source} is sent to {shown} over plain HTTP, unencrypted: anyone on the "
                "network path can read it; use https://")


_TOKEN_VARIABLES = ("GITOPS_GIT_TOKEN", "GITHUB_TOKEN", "CI_JOB_TOKEN")


def _https_remote(spec: str, environ: Mapping[str, str], repo: Path | None = None) -> Remote:
    """The remote with the credential gitops has for it, if any: the one Authorization header sent to the
    URL git really talks to (after the user's url.<base>.insteadOf, see rewritten_url; the user's own
    Authorization headers are not sent there, their other extra headers are: git.authorization_config),
    with the user's credential helpers and askpass program turned off (git.NO_CREDENTIAL_HELPERS): the one
    credential gitops gives is the only one tried, and nothing of the user's is stored or erased.  A CI
    token (GITHUB_TOKEN, CI_JOB_TOKEN) goes only to its own server's scheme, host and port, as git really
    reaches it (select_token).  A credential sent over plain http to another machine gets a warning.  `repo`: the
    checkout whose `origin` this is (its config counts, as for its fetches and pushes)."""
    parts = urlsplit(spec)
    clean = git.strip_credentials(spec)
    url_user = unquote(parts.username) if parts.username else None
    url_password = unquote(parts.password) if parts.password else None
    if url_password:
        register_secret(url_password)
    if not url_password and not any(environ.get(name, "").strip() for name in _TOKEN_VARIABLES):
        return Remote(url=clean, display=clean)  # nothing of gitops': git asks the user's helpers, as it would
    real = rewritten_url(clean, environ, repo)
    pushed = pushed_url(clean, environ, repo)

    def credential(url: str) -> tuple[str, str, str] | None:
        """(username, token, source) for a URL git talks to: none for one that is not HTTP(S) (rewritten to
        ssh://, say); else the same rule for the fetch URL and the push URL."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            return None
        if url_password:  # credentials in the URL: never keep them there, use them as the credential
            return url_user or "x-access-token", url_password, "the URL"
        return select_token(url, url_user, environ)

    chosen = {url: credential(url) for url in dict.fromkeys([real, pushed])}
    entries: list[tuple[str, str]] = []
    for url, found in chosen.items():
        if found is not None:
            username, token, source = found
            if _cleartext(url):
                _warn_cleartext(url, source)
            basic = base64.b64encode(f"{username}:{token}".encode()).decode("ascii")
            register_secret(token)
            register_secret(basic)
            entries += git.authorization_config(url, f"Authorization: Basic {basic}", repo, environ)
    if not entries:
        return Remote(url=clean, display=clean)
    env = git.command_config(git.NO_CREDENTIAL_HELPERS, git.env_config(entries))
    env["GIT_ASKPASS"] = ""  # an empty value: git asks no askpass program (not core.askPass either)
    return Remote(url=clean, display=clean, env=env, auth=_auth_line(clean, real, pushed, chosen))


def _auth_line(clean: str, real: str, pushed: str, chosen: Mapping[str, tuple[str, str, str] | None]) -> str:
    """What the remote's progress line says of gitops' credential (never the secret): its source, and where
    it goes when the user's url.<base>.insteadOf or pushInsteadOf rules send git elsewhere."""
    said: list[str] = []
    fetch = chosen[real]
    if fetch is not None:
        said.append(f"token from {fetch[2]}" + (f", sent to {git.strip_credentials(real)}, where url.<base>.insteadOf "
                                                "rewrites the URL" if real != clean else ""))
    if pushed != real:
        where = f"{git.strip_credentials(pushed)}, where url.<base>.pushInsteadOf sends the push"
        push = chosen[pushed]
        if push is None:
            why = "not HTTP(S)" if urlsplit(pushed).scheme.lower() not in ("http", "https") else \
                f"{fetch[2] if fetch else 'the token'} is not for that server"
            said.append(f"no token sent to {where} ({why})")
        elif fetch is not None and push[2] == fetch[2]:
            said.append(f"also sent to {where}")
        else:
            said.append(f"token from {push[2]} sent to {where}")
    return "; ".join(said)


def rewritten_url(url: str, environ: Mapping[str, str] | None = None, repo: Path | None = None) -> str:
    """The URL git really talks to for `url`, after the user's url.<base>.insteadOf rules (`git ls-remote
    --get-url`: no network), read in the checkout `repo`, else outside any repository (the user's global
    and system config)."""
    env = dict(os.environ if environ is None else environ)
    args = ["ls-remote", "--get-url", url]
    res = git.run(args, cwd=repo, env=env, check=False, strip=False) if repo is not None else \
        git.run_outside(args, env=env, check=False, strip=False)
    return res.path() if res.status == 0 and res.path().strip() else url


def pushed_url(url: str, environ: Mapping[str, str] | None = None, repo: Path | None = None) -> str:
    """The URL `git push URL` really pushes to: after the user's url.<base>.pushInsteadOf rules (applied to
    `url` as given, the longest matching prefix winning, the first of equal ones: remote.c alias_url), else
    where url.<base>.insteadOf sends it (rewritten_url).  Read as rewritten_url reads the config."""
    env = dict(os.environ if environ is None else environ)
    rules: dict[str, list[str]] = {}  # base -> its prefixes, bases in the order git first reads them
    for key, value in git.config_entries(r"^url\..*\.pushinsteadof$", repo, env):
        if value is not None:
            rules.setdefault(key[len("url."):-len(".pushinsteadof")], []).append(value)
    best: tuple[str, str] | None = None
    for base, prefixes in rules.items():
        for prefix in prefixes:
            if url.startswith(prefix) and (best is None or len(prefix) > len(best[1])):
                best = (base, prefix)
    return best[0] + url[len(best[1]):] if best is not None else rewritten_url(url, environ, repo)


# --- git operations -------------------------------------------------------------------------------


def default_branch(remote: Remote, cancel: threading.Event | None = None) -> str:
    """The remote's default branch (`git ls-remote --symref URL HEAD`)."""
    res = git.run_outside(["ls-remote", "--symref", remote.url, "HEAD"], env=remote.env,
                          what=f"reading {remote.display}", cancel=cancel)
    m = _SYMREF_RE.search(res.stdout)
    if m:
        return m.group("branch")
    # HEAD names no existing branch (e.g. a bare repo whose HEAD is master while only main was pushed).
    heads = git.run_outside(["ls-remote", "--heads", remote.url], env=remote.env,
                            what=f"reading {remote.display}", cancel=cancel)
    branches = [ln.split("\trefs/heads/", 1)[1] for ln in heads.stdout.splitlines() if "\trefs/heads/" in ln]
    if len(branches) == 1:
        return branches[0]
    if not branches:
        raise GitError(f"{remote.display}: the remote has no branch (empty repository?)")
    raise GitError(f"{remote.display}: the remote's HEAD names no branch, and it has {_some(branches)}",
                   hint=f"pass --branch ({' or '.join(usual)}?)" if (usual := [b for b in ("main", "master")
                                                                        if b in branches]) else "pass --branch")


def _some(branches: Sequence[str], shown: int = 5) -> str:
    """`3 branches: a, b, c` / `10001 branches: main, master, a, b, c and 9996 more` (main and master first
    when there, else `neither main nor master`)."""
    usual = [b for b in ("main", "master") if b in branches]
    first = (usual + [b for b in branches if b not in usual])[:shown]
    more = len(branches) - len(first)
    text = f"{len(branches)} branches: {', '.join(first)}" + (f" and {more} more" if more else "")
    return text if usual else text + " (neither main nor master)"


def clone(remote: Remote, dest: Path, branch: str | None, cancel: threading.Event | None = None, *,
          depth: int = 1, checkout: bool = True) -> str:
    """Shallow (`depth` commits), single-branch clone into dest; blobless when the server allows (else a
    plain shallow one).  `checkout=False` leaves the work tree empty: history reads need no files, and a
    bump checks out only the files that can mention its images (`check_out_matching`).  Every file is
    checked out, and committed, as it is stored (AS_STORED).
    `branch=None`: the remote's default branch, as the clone itself finds it (the remote's HEAD), which
    spares the ls-remote round trip of default_branch(); only when that HEAD names no branch (an empty
    repository, a bare repo whose HEAD is a branch never pushed) does default_branch() decide.
    Returns the branch cloned."""
    import shutil

    # the remote is `origin` whatever clone.defaultRemoteName says; no template, no hook (git.NO_HOOKS)
    base = ["clone", "--quiet", "--depth", str(depth), "--single-branch", "--no-tags", "--origin", "origin",
            "--template=", *(a for key, value in git.NO_HOOKS for a in ("--config", f"{key}={value}")),
            "--no-checkout"]  # checked out below, once AS_STORED is in place
    if branch is not None:
        base += ["--branch", branch]
    where = os.path.abspath(dest)
    env = git.command_config(git.NO_HOOKS, remote.env)  # for the clone command; own_repository for the others
    res = git.run_outside([*base, "--filter=blob:none", "--", remote.url, where], env=env, check=False,
                          cancel=cancel)
    if res.status != 0 and "filter" in res.stderr.lower() and not _is_auth_failure(res.stderr):
        if dest.exists():
            shutil.rmtree(dest)
        res = git.run_outside([*base, "--", remote.url, where], env=env, check=False, cancel=cancel)
    if res.status != 0:
        where = f"{remote.display} ({branch})" if branch is not None else remote.display
        raise git.error_for(["clone"], res.status, res.stderr, what=f"cloning {where}", cwd=None)
    git.own_repository(dest)
    if branch is None:
        born = git.run(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd=dest, check=False).status == 0
        branch = current_branch(dest) if born else None  # one with a commit
    if branch is not None:
        attributes = dest / ".git" / "info" / "attributes"  # a clone's git dir (--template=: no info/ yet)
        attributes.parent.mkdir(parents=True, exist_ok=True)
        attributes.write_text(AS_STORED)
        if checkout:
            git.run(["read-tree", "-mu", "HEAD"], cwd=dest, env=remote.env, cancel=cancel)
        return branch
    shutil.rmtree(dest)
    return clone(remote, dest, default_branch(remote, cancel=cancel), cancel, depth=depth, checkout=checkout)


def sparse_pattern(path: str) -> str:
    """The sparse-checkout (gitignore-style) pattern matching exactly this repo-relative path: anchored,
    with wildcards, backslashes and spaces (trailing ones would be dropped) escaped."""
    return "/" + "".join("\\" + c if c in "\\*?[ " else c for c in path)


# gitops' own clones hold every file as it is stored: `$GIT_DIR/info/attributes`, which outranks the
# repository's .gitattributes, turns off filters (Git LFS, git-crypt, git-annex), end-of-line conversion
# (core.autocrlf too), `ident` and working-tree-encoding, for the checkout and for `git add` alike.  A bump
# then changes the stored bytes of its tags and nothing else: a file stored in Git LFS is its pointer (named,
# never bumped), a file a .gitattributes sends to LFS but stored as plain YAML stays plain YAML (git-lfs'
# clean filter would commit a pointer to an object that gitops' push, which runs no pre-push hook, never
# uploads), a CRLF file marked `text` keeps its CRLFs; and no filter program of the user's runs there.
AS_STORED = "* -text -filter -ident -working-tree-encoding\n"

# The first line of a Git LFS pointer file (what git stores for a file kept in LFS): such a file is skipped,
# with a warning, and never bumped (its content is on the LFS server).
LFS_POINTER = "version https://git-lfs.github.com/spec/v1"

_NO_FILE_SELECTED = "/.git/no-file-is-selected"  # the pattern of an empty selection: it names no file of a tree


def check_out_matching(repo: Path, needles: Sequence[str] | None, suffixes: Sequence[str],
                       env: Mapping[str, str] | None = None, cancel: threading.Event | None = None,
                       paths: Sequence[str] = ()) -> None:
    """Fill the work tree of a `--no-checkout` clone with only the files (of these suffixes) whose HEAD
    content holds one of `needles` -- `git grep -F` over the clone, then a sparse checkout of exactly those
    paths -- so a bump in a deploy repo of thousands of files writes, scans and removes a handful.
    In a blobless clone the blobs of HEAD's files of these suffixes are fetched first, in one request
    (`git grep` would fetch them one at a time; other files' blobs are never fetched).
    `paths`: repo-relative paths (`/`-separated, normalized; `.` is all of it) to which the selection is
    limited: only the files below them are fetched, searched and checked out, and each is laid out on disk
    as a full checkout lays it out, for the checks that read it there (yamledit.discover's): a directory
    exists, even with no file in it selected, and a file, or a symlink the path goes through, is checked out.
    `needles=None`: every file.  Call again after the HEAD moves (fetch + reset): the selection is redone.
    `env`: the remote's (credentials for those fetches).  `cancel`: as for clone (a background thread).
    """
    full = needles is None
    paths = [] if "." in paths else list(paths)
    selected: list[str] = []
    directories: list[str] = []
    if not full:
        assert needles is not None
        frame, directories = _path_frame(repo, paths, cancel)
        if not paths or frame or directories:
            fetch_missing_blobs(repo, suffixes, env, cancel, paths=[*directories, *frame])
        # below each directory of `paths`, else anywhere (a pathspec `*` matches `/` too)
        specs = [_glob_pathspec(d, f"/**/*{s}") for d in directories for s in suffixes] if paths else \
            [f"*{s}" for s in suffixes]
        if specs:
            # and Git LFS pointers (checked out as stored: AS_STORED), for the bump to name them (never bumped)
            grep = ["grep", "-l", "-z", "-F", "--no-textconv",
                    *(a for n in [*needles, LFS_POINTER] for a in ("-e", n)), "HEAD", "--", *specs]
            res = git.run(grep, cwd=repo, check=False, strip=False, cancel=cancel)
            if res.status not in (0, 1):
                raise git.error_for(["grep"], res.status, res.stderr, what="selecting the files to check out",
                                    cwd=repo)
            selected = [p.removeprefix("HEAD:") for p in res.paths()]
        selected += [p for p in frame if p not in selected]
        full = any(c in p for p in selected for c in "\n\r")  # not expressible as a pattern line
    index, sparse = git.git_paths(repo, "index", "info/sparse-checkout")
    if full:
        if sparse.exists():  # selected before: back to every file
            git.run(["sparse-checkout", "disable"], cwd=repo, env=env, cancel=cancel)
        else:
            git.run(["read-tree", "-mu", "HEAD"], cwd=repo, env=env, cancel=cancel)
        return
    if selected or index.exists():  # else nothing to check out, and nothing checked out yet
        sparse.parent.mkdir(parents=True, exist_ok=True)
        # an empty selection still needs a pattern: one that names no file of the tree
        lines = [sparse_pattern(p) for p in selected] or [_NO_FILE_SELECTED]
        # paths as git wrote them (git.decode_path): written back as the same bytes
        sparse.write_bytes(os.fsencode("".join(f"{line}\n" for line in lines)))
        git.run(["config", "core.sparseCheckout", "true"], cwd=repo)
        git.run(["config", "core.sparseCheckoutCone", "false"], cwd=repo)  # exact paths, whatever the user's default
        git.run(["read-tree", "-mu", "HEAD"], cwd=repo, env=env, cancel=cancel)
    for directory in directories:  # git makes those of the files it checks out only
        (repo / directory).mkdir(parents=True, exist_ok=True)


def _path_frame(repo: Path, paths: Sequence[str], cancel: threading.Event | None) -> tuple[list[str], list[str]]:
    """For check_out_matching's `paths`, from HEAD's tree: (the entries to check out: each path that is a file
    or a symlink, or the first such entry it goes through; the paths that are directories).  A path HEAD does
    not have, or that is or lies in a submodule, gives neither."""
    entries: list[str] = []
    directories: list[str] = []
    for path in paths:
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            prefix = "/".join(parts[:n])
            listing = git.run(["ls-tree", "-z", "HEAD", "--", f":(literal){prefix}"], cwd=repo, strip=False,
                              cancel=cancel).paths()
            mode = listing[0].split(" ", 1)[0] if listing else None
            if mode == "040000":
                if n == len(parts):
                    directories.append(path)
                continue
            if mode is not None and mode != "160000":  # a file or a symlink
                entries.append(prefix)
            break
    return entries, directories


def _glob_pathspec(path: str, tail: str) -> str:
    """A `:(glob)` pathspec for `path` taken literally (its wildcards escaped), followed by the glob `tail`."""
    return ":(glob)" + "".join("\\" + c if c in "\\*?[" else c for c in path) + tail


def add_to_checkout(repo: Path, paths: Sequence[str], env: Mapping[str, str] | None = None,
                    cancel: threading.Event | None = None) -> None:
    """Add HEAD's `paths` (repo-relative files) to the sparse checkout check_out_matching made; nothing to
    do when it checked out every file.  A path with a line break cannot be a pattern line: left out."""
    wanted = [p for p in paths if not any(c in p for c in "\n\r")]
    if not wanted or git.run(["config", "--get", "core.sparseCheckout"], cwd=repo, check=False).stdout != "true":
        return
    (sparse,) = git.git_paths(repo, "info/sparse-checkout")
    lines = git.decode_path(sparse.read_bytes()).splitlines()
    added = [line for line in map(sparse_pattern, wanted) if line not in lines]
    if not added:
        return
    lines = [line for line in lines if line != _NO_FILE_SELECTED] + added
    sparse.write_bytes(os.fsencode("".join(f"{line}\n" for line in lines)))
    git.run(["read-tree", "-mu", "HEAD"], cwd=repo, env=env, cancel=cancel)


_FETCH_BATCH = 10_000  # object ids per fetch command line (41 bytes each: far below the kernel's limit)


def fetch_missing_blobs(repo: Path, suffixes: Sequence[str], env: Mapping[str, str] | None,
                        cancel: threading.Event | None = None, commit: str = "HEAD",
                        paths: Sequence[str] = ()) -> None:
    """Fetch the missing blobs of `commit`'s files with these suffixes from the promisor remote, in one
    request (as git's own lazy fetch does it, but batched; `git grep` or `show` would fetch each alone);
    nothing to do in a clone with every blob.  Only that commit's tree is listed, not its history, and
    only its files under `paths` (repo-relative files or directories, taken literally) when given."""
    missing = missing_objects(repo, [commit])
    if not missing:
        return
    wanted: list[str] = []
    listing = git.run(["ls-tree", "-r", "-z", commit, "--", *(f":(literal){p}" for p in paths)], cwd=repo,
                      strip=False)
    for entry in listing.paths():
        meta, _, path = entry.partition("\t")
        fields = meta.split()  # mode, type, object id
        if len(fields) == 3 and fields[1] == "blob" and fields[2] in missing and path.endswith(tuple(suffixes)):
            wanted.append(fields[2])
    fetch_blobs(repo, wanted, env, cancel)


def missing_objects(repo: Path, revs: Sequence[str]) -> set[str]:
    """The objects of these revisions' trees that a blobless clone lacks (never fetched by asking)."""
    objects = git.run(["rev-list", "--objects", "--missing=print", *(f"{r}^{{tree}}" for r in revs)],
                      cwd=repo).stdout
    return {line[1:] for line in objects.splitlines() if line.startswith("?")}


def fetch_blobs(repo: Path, blobs: Sequence[str], env: Mapping[str, str] | None,
                cancel: threading.Event | None = None) -> None:
    """Fetch these (missing) blobs from the promisor remote in as few requests as the command line allows."""
    for start in range(0, len(blobs), _FETCH_BATCH):
        git.run(["-c", "fetch.negotiationAlgorithm=noop", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
                 "--recurse-submodules=no", "--filter=blob:none", "origin", *blobs[start:start + _FETCH_BATCH]],
                cwd=repo, env=env, what="fetching the deploy repo's YAML files", cancel=cancel)


def remote_head(remote: Remote, branch: str, timeout: float | None = None, repo: Path | None = None,
                cancel: threading.Event | None = None) -> str | None:
    """The commit the remote's `branch` points at (`git ls-remote URL refs/heads/BRANCH`), None if absent.
    `timeout`: GitError after that many seconds.  `repo`: the checkout or clone it is the remote of, whose
    config counts as for its fetches and pushes; else git runs outside any repository (git.run_outside).
    `cancel`: once set, git is stopped and git.Cancelled raised."""
    args = ["ls-remote", remote.url, f"refs/heads/{branch}"]
    what = f"reading {remote.display}"
    res = (git.run(args, cwd=repo, env=remote.env, what=what, timeout=timeout, cancel=cancel) if repo is not None
           else git.run_outside(args, env=remote.env, what=what, timeout=timeout, cancel=cancel))
    ref = f"refs/heads/{branch}"
    return next((ln.split("\t", 1)[0] for ln in res.stdout.splitlines() if ln.endswith(f"\t{ref}")), None)


def _is_auth_failure(stderr: str) -> bool:
    return isinstance(git.error_for(["x"], 1, stderr, cwd=None), GitAuthError)


def submodule_of(repo: Path, path: str, rev: str = "HEAD") -> str | None:
    """The submodule (a gitlink of `rev`'s tree) that the repo-relative `path` is or lies in, None when
    there is none: one `git ls-tree` of the path and each of its leading directories."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    res = git.run(["ls-tree", "-z", rev, "--", *prefixes], cwd=repo, check=False, strip=False)
    gitlinks = [entry.partition("\t")[2] for entry in res.paths() if entry.startswith("160000 ")]
    return next((p for p in prefixes if p in gitlinks), None)


_ATTR_BATCH = 2000  # paths per check-attr command line


def filtered_files(repo: Path, paths: Sequence[str]) -> dict[str, str]:
    """{path: filter driver} for those of `paths` (repo-relative files of the checkout `repo`) that `git add`
    passes through a filter program: their `filter` attribute names a driver the config sets up
    (filter.<driver>.clean or .process).  One `git config` when no driver is set up, else a check-attr too."""
    res = git.run(["config", "-z", "--get-regexp", r"^filter\..*\.(clean|process)$"], cwd=repo, check=False,
                  strip=False)
    drivers = set()
    for entry in res.stdout.split("\0"):
        key, _, command = entry.partition("\n")
        if command.strip():  # an empty command runs nothing
            drivers.add(key[len("filter."):key.rfind(".")])
    out: dict[str, str] = {}
    for start in range(0, len(paths) if drivers else 0, _ATTR_BATCH):
        listed = git.run(["check-attr", "-z", "filter", "--", *paths[start:start + _ATTR_BATCH]], cwd=repo,
                         strip=False).paths()
        out.update((path, value) for path, value in zip(listed[0::3], listed[2::3], strict=False) if value in drivers)
    return out


def head(repo: Path) -> str:
    return git.run(["rev-parse", "HEAD"], cwd=repo).stdout.strip()


def tracked_files(repo: Path) -> set[str]:
    """The paths git tracks in the checkout `repo` (relative to it, `/`-separated)."""
    return set(git.run(["ls-files", "-z", "--", "."], cwd=repo, strip=False).paths())


def current_branch(repo: Path) -> str | None:
    """The branch checked out in `repo` (whether or not it has a commit yet), None on a detached HEAD.
    Read from the full ref, not `--short`/`--abbrev-ref`: those give `heads/X` when a tag (or another ref)
    is also named X."""
    res = git.run(["symbolic-ref", "--quiet", "HEAD"], cwd=repo, check=False)
    ref = res.stdout.strip()
    if not ref.startswith("refs/heads/"):
        return None
    return ref[len("refs/heads/"):] or None


def ensure_clean(repo: Path) -> None:
    """DirtyTreeError (exit 4) unless the checkout has no uncommitted changes to tracked files."""
    res = git.run(["status", "--porcelain=v1", "--untracked-files=no"], cwd=repo)
    if res.stdout.strip():
        files = ", ".join(ln[3:] for ln in res.stdout.splitlines()[:5])
        raise DirtyTreeError(f"{repo}: uncommitted changes ({files}); a bump commit holds only the bump",
                             hint="commit or stash them, or use --no-commit")


# what a git command stopped half-way leaves in the git dir, and how to name it (`git status` says so too)
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge"), ("CHERRY_PICK_HEAD", "a cherry-pick"), ("REVERT_HEAD", "a revert"),
    ("rebase-merge", "a rebase"), ("rebase-apply", "a rebase (or `git am`)"),
    ("sequencer", "a cherry-pick or revert of several commits"),
)


def refuse_operation_in_progress(repo: Path) -> None:
    """DirtyTreeError (exit 4), touching nothing, when a merge, cherry-pick, revert or rebase is in progress
    in the checkout (its tree may be clean: `git merge --no-commit -s ours`): the bump's commit would fail
    (`cannot do a partial commit during a merge`) or take the operation's place, and the reset after a
    failure would abort it (MERGE_HEAD gone)."""
    found = git.git_paths(repo, *(name for name, _ in _IN_PROGRESS))
    what = next((said for (_, said), path in zip(_IN_PROGRESS, found, strict=True) if os.path.lexists(path)), None)
    if what is not None:
        raise DirtyTreeError(f"{repo}: {what} is in progress there; nothing was changed",
                             hint="finish it or abort it (`git status` says how), then re-run")


def parse_identity(text: str, names: Names = FLAGS) -> Identity:
    """`Name <email>` (the `author` setting, named in messages as `names` does)."""
    m = _IDENTITY_RE.match(text)
    if not m or not m.group("name") or "@" not in m.group("email"):
        raise UsageError(f"{names('author', text)}: expected \"Name <email@example.com>\"")
    return Identity(m.group("name"), m.group("email"))


def resolve_identity(explicit: str | None, repo: Path | None,
                     environ: Mapping[str, str] | None = None) -> Identity:
    """--author / GITOPS_AUTHOR (passed as `explicit`), else GIT_AUTHOR_NAME + GIT_AUTHOR_EMAIL (as git takes
    them, both set), else git config user.*, else gitops-cli."""
    if explicit:
        return parse_identity(explicit)
    variables = _identity_variables("AUTHOR", environ)
    if variables is not None:
        return variables
    if repo is not None:
        name = git.run(["config", "--get", "user.name"], cwd=repo, check=False).stdout.strip()
        email = git.run(["config", "--get", "user.email"], cwd=repo, check=False).stdout.strip()
        if name and email:
            return Identity(name, email)
    return Identity(*DEFAULT_IDENTITY)


def _identity_variables(role: str, environ: Mapping[str, str] | None) -> Identity | None:
    """GIT_<role>_NAME and GIT_<role>_EMAIL of the environment when both are set (a CI script's way to give
    git an identity without a config file), else None."""
    env = os.environ if environ is None else environ
    name, email = env.get(f"GIT_{role}_NAME", "").strip(), env.get(f"GIT_{role}_EMAIL", "").strip()
    return Identity(name, email) if name and email else None


def commit(repo: Path, paths: Sequence[str], message: str, author: Identity,
           environ: Mapping[str, str] | None = None) -> str:
    """Commit exactly `paths` (relative to repo) as `author`, committed by GIT_COMMITTER_NAME +
    GIT_COMMITTER_EMAIL when the environment sets both, else by the author; return the new sha."""
    committer = _identity_variables("COMMITTER", environ) or author
    ident = {
        "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email,
    }
    git.run(["add", "--", *paths], cwd=repo)
    git.run(["commit", "--quiet", "--no-verify", "--no-gpg-sign", "--cleanup=whitespace", "-m", message,
             "--", *paths], cwd=repo, env=ident, what="git commit")
    return head(repo)


def push(repo: Path, remote: Remote, branch: str, stopping: threading.Event | None = None) -> PushOutcome:
    """`git push --porcelain` HEAD to refs/heads/<branch>; never forced.  A moved remote is `rejected`.
    A push that went through moves refs/remotes/<remote.name>/<branch> too, as `git push origin` does (a
    local checkout is pushed by URL: it would otherwise look ahead of its remote as last fetched).  A failure with no
    ref refused (a broken connection, a proxy's error) is checked on the remote (_landed_anyway): a push
    that went through is never reported as failed.

    `stopping` (set when gitops is interrupted, see interrupts.held): the push gets PUSH_GRACE more
    seconds to finish -- its own report is the only sure word on whether the remote took the commit, and a
    server may still apply a push whose client was killed --, then it is stopped (with what it started:
    a local receive-pack and its hooks) and the remote branch is read, CHECK_TIMEOUT seconds at most, as
    every other git call here (credentials in the environment): at HEAD, the push went through; at HEAD's
    parent, or absent, it did not -- for a path or file:// remote, whose receive-pack was stopped with git
    push; a server's (`served`) may still apply it: `unknown` and `pending` --; anything else, or no
    answer: `unknown`."""
    expect = tracking_head(repo, branch, remote.name)
    try:
        # --no-signed: a global push.gpgSign would fail on a server without signed pushes (commits are not
        # signed either: see commit); and no push option (an empty push.pushOption resets the list): one of
        # the user's would fail on a server without push options
        res = git.run(["-c", "push.pushOption=", "push", "--porcelain", "--no-verify", "--no-signed",
                       *_lease(repo, branch, expect), remote.url, f"HEAD:refs/heads/{branch}"], cwd=repo,
                      env=remote.env, check=False, cancel=stopping, settle=PUSH_GRACE)
    except git.Cancelled:
        return _after_stopped_push(repo, remote, branch)
    statuses = parse_push_status(res.stdout)
    if res.status == 0 and all(flag != "!" for flag, _ in statuses):  # no status line: not expected, but ok
        _track(repo, branch, remote.name)
        return PushOutcome(ok=True, rejected=False)
    for flag, summary in statuses:
        if flag == "!":
            if expect is not None and any(r in summary for r in _LEASE_REASONS):
                _refuse_if_deleted(repo, remote, branch, expect)
            if is_retryable_rejection(summary):
                return PushOutcome(ok=False, rejected=True, reason=summary, said=remote_says(res.stderr))
            said = remote_says(res.stderr)  # a hook's or a protected branch's reason: what to fix
            raise GitError(f"push to {remote.display} ({branch}) refused: {summary}",
                           hint=f"the remote says: {said}" if said else
                           "the remote refused the update (protected branch or hook?)")
    failure = git.error_for(["push"], res.status, res.stderr, what=f"pushing to {remote.display} ({branch})",
                            cwd=repo)
    return _landed_anyway(repo, remote, branch, failure, stopping)


_LEASE_REASONS = ("stale info", "incorrect old value")  # the branch is not where the lease expected it


def _lease(repo: Path, branch: str, expect: str | None) -> list[str]:
    """The push's precondition: the remote's branch where it was last fetched (`expect`, a commit HEAD
    descends from: the push is a fast-forward from there, never a forced update), or absent when it was
    not fetched (a new --push-branch).  A branch deleted on the remote since is then not re-created:
    the push is rejected (`stale info`), and _refuse_if_deleted says why."""
    if expect is not None and not git.is_ancestor(repo, expect, "HEAD"):
        return []  # not expected: HEAD always descends from what was fetched; a plain push then
    return [f"--force-with-lease=refs/heads/{branch}:{expect or ''}"]


def _refuse_if_deleted(repo: Path, remote: Remote, branch: str, expect: str) -> None:
    """GitError (exit 10) when the remote's `branch`, at `expect` when fetched, is gone: deleted while the
    bump ran.  A push must not re-create it (on the old base, where nothing deploys from it any more)."""
    if remote_head(remote, branch, timeout=VERIFY_TIMEOUT, repo=repo) is None:
        raise GitError(f"push to {remote.display} ({branch}) refused: the branch {branch} was deleted on the remote "
                       f"while the bump ran (it was at {expect[:12]}); it was not re-created",
                       hint=f"re-create {branch} there, or bump the branch deployed from now (--branch), then re-run")


def _landed_anyway(repo: Path, remote: Remote, branch: str, failure: GitopsError,
                   stopping: threading.Event | None = None) -> PushOutcome:
    """A push git reports as failed though the remote refused no ref (a connection lost, a proxy's error
    after the server applied it) may have gone through: the remote branch, read once (VERIFY_TIMEOUT
    seconds at most), tells.  At HEAD: the push went through (a warning names the error).  Else, or no
    answer: `failure` is raised.  Interrupted meanwhile (`stopping`): as a stopped push (_after_stopped_push)."""
    where = f"{remote.display} ({branch})"
    try:
        now = remote_head(remote, branch, timeout=VERIFY_TIMEOUT, repo=repo, cancel=stopping)
    except git.Cancelled:
        return _after_stopped_push(repo, remote, branch)
    except GitError:
        raise failure from None
    ours = head(repo)
    if now != ours:
        raise failure
    output.warn(f"git push reported a failure ({failure.message}), but {where} is at {ours[:12]}: "
                "the push went through")
    _track(repo, branch, remote.name)
    return PushOutcome(ok=True, rejected=False)


def remote_says(stderr: str, limit: int = 400) -> str:
    """The server's own lines of git's stderr (`remote: ...`), on one line, credential-free."""
    lines = [ln[len("remote:"):].strip() for ln in git.strip_credentials(stderr).splitlines()
             if ln.startswith("remote:") and ln[len("remote:"):].strip()]
    text = redact(" ".join(lines))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _track(repo: Path, branch: str, name: str = "origin") -> None:
    """After a push that went through: refs/remotes/<name>/<branch> at HEAD (a warning when it cannot be)."""
    moved = git.run(["update-ref", f"refs/remotes/{name}/{branch}", "HEAD"], cwd=repo, check=False)
    if moved.status != 0:  # the push went through: only the bookkeeping failed
        reason = git.error_for(["update-ref"], moved.status, moved.stderr, cwd=repo).message
        output.warn(f"{repo}: pushed, but refs/remotes/{name}/{branch} was not moved ({reason}); "
                    "`git fetch` updates it")


def _after_stopped_push(repo: Path, remote: Remote, branch: str) -> PushOutcome:
    """Whether a push stopped before it finished went through: the remote branch, read once (see push)."""
    where = f"{remote.display} ({branch})"
    ours = head(repo)
    try:
        now = remote_head(remote, branch, timeout=CHECK_TIMEOUT, repo=repo)
    except GitError as exc:
        return PushOutcome(ok=False, rejected=False, stopped=True, unknown=True,
                           reason=f"{where} could not be read: {exc.message}")
    if now == ours:
        _track(repo, branch, remote.name)
        return PushOutcome(ok=True, rejected=False, stopped=True)
    parent = git.run(["rev-parse", "--verify", "--quiet", "HEAD^"], cwd=repo, check=False).stdout.strip()
    if (now is None or now == parent) and served(remote):  # a server's receive-pack may be running still
        return PushOutcome(ok=False, rejected=False, stopped=True, unknown=True, pending=True,
                           reason=f"not applied to {where} as of now; the server may still apply it")
    if now is None or now == parent:
        return PushOutcome(ok=False, rejected=False, stopped=True, reason=f"{where} was not changed")
    return PushOutcome(ok=False, rejected=False, stopped=True, unknown=True,
                       reason=f"{where} moved to {now[:12]} meanwhile")


def served(remote: Remote) -> bool:
    """Is the receiving end of a push to `remote` a server's process (https, ssh, git://), which goes on
    with a push whose client was stopped (applies it once its hooks are done), rather than the
    receive-pack that `git push` starts here for a path or a file:// URL, stopped with it (see push)?"""
    return not remote.url.startswith("file://") and is_url(remote.url)


def parse_push_status(stdout: str) -> list[tuple[str, str]]:
    """(flag, summary) per ref from `git push --porcelain`: `<flag>\\t<from>:<to>\\t<summary>`."""
    out: list[tuple[str, str]] = []
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and len(parts[0]) == 1:
            out.append((parts[0], parts[2].strip()))
    return out


def is_retryable_rejection(summary: str) -> bool:
    """`[rejected] (fetch first|non-fast-forward|...)`, or a ref-update race reported by the remote."""
    if summary.startswith("[rejected]"):
        return True
    return summary.startswith("[remote rejected]") and any(r in summary for r in _RACE_REASONS)


def fetch_only(repo: Path, remote: Remote, branch: str, *, depth1: bool = True) -> str:
    """Fetch the remote's `branch` into refs/remotes/<remote.name>/<branch>; return its commit.

    Shallow (depth 1) only when the repo is already shallow and `depth1`: a user's full checkout stays
    full.  A user's shallow checkout (CI's depth-1 checkout) is fetched with `depth1=False`: git then
    fetches the new commits down to the ones it has, so that whether its HEAD is behind the remote can
    be told (with --depth 1 the link is cut and a checkout behind looked ahead)."""
    tracking = f"refs/remotes/{remote.name}/{branch}"
    shallow = ["--depth", "1"] if depth1 and git.is_shallow(repo) else []
    git.run(["fetch", "--quiet", *shallow, "--no-tags", remote.url, f"+refs/heads/{branch}:{tracking}"],
            cwd=repo, env=remote.env, what=f"fetching {remote.display} ({branch})")
    return git.run(["rev-parse", tracking], cwd=repo).stdout.strip()


def fetch_reset(repo: Path, remote: Remote, branch: str, *, keep: bool = False) -> str:
    """Fetch the remote's `branch` (shallow) and reset the checkout to it; return the new head (see reset_to)."""
    return reset_to(repo, remote, branch, fetch_only(repo, remote, branch, depth1=not keep), keep=keep)


def reset_to(repo: Path, remote: Remote, branch: str, target: str, *, keep: bool = False) -> str:
    """Reset the checkout to `target`, a commit of the remote's `branch` fetched already; return the new head.

    A `--no-checkout` clone with nothing checked out yet (no index) only moves its HEAD: a hard reset
    would check out every file.  `keep` (a user's checkout): refuse_overwriting first, then `git reset
    --keep`, which refuses too (DirtyTreeError, exit 4) rather than overwrite an untracked file."""
    where = f"{remote.display} ({branch})"
    if keep:
        refuse_overwriting(repo, head(repo), target, where)
    [index] = git.git_paths(repo, "index")
    mode = "--keep" if keep else "--hard" if index.exists() else "--soft"
    res = git.run(["reset", "--quiet", mode, target], cwd=repo, env=remote.env, check=False)
    if res.status != 0:
        untracked = _UNTRACKED_RE.findall(res.stderr)
        if keep and untracked:
            raise _in_the_way(repo, where, untracked)
        raise git.error_for(["reset"], res.status, res.stderr, what=f"moving {repo} to {remote.name}/{branch}",
                            cwd=repo)
    return head(repo)


def refuse_overwriting(repo: Path, start: str, target: str, where: str) -> None:
    """DirtyTreeError (exit 4) when moving a user's checkout from `start` to `target` would write over a
    file it has on disk that `start` does not track: untracked or IGNORED (`git reset --keep` overwrites
    ignored files, and a restore after a failure would then delete the new version too).  A file the new
    commits add is in the way when it exists, and so is anything but a real directory (a file, a symlink)
    where one of its leading directories goes: git would replace it with the directory."""
    res = git.run(["diff", "--name-only", "-z", "--no-renames", "--diff-filter=A", start, target], cwd=repo,
                  strip=False)
    in_the_way: list[str] = []
    seen: set[str] = set()
    for added in res.paths():
        parts = added.split("/")
        for n in range(1, len(parts)):
            lead = "/".join(parts[:n])
            if lead not in seen and os.path.lexists(repo / lead) and (
                    os.path.islink(repo / lead) or not os.path.isdir(repo / lead)):
                seen.add(lead)
                in_the_way.append(lead)
            if lead in seen:
                break
        else:
            if os.path.lexists(repo / added):
                in_the_way.append(added)
    if in_the_way:  # a file of `start` that `target` makes a directory is git's to replace
        tracked = git.run(["ls-tree", "-z", "--name-only", start, "--", *in_the_way], cwd=repo, strip=False)
        in_the_way = [p for p in in_the_way if p not in set(tracked.paths())]
    if in_the_way:
        raise _in_the_way(repo, where, in_the_way)


def _in_the_way(repo: Path, where: str, paths: Sequence[str]) -> DirtyTreeError:
    """Exit 4: files of a user's checkout that moving it to `where` would overwrite (nothing was changed)."""
    return DirtyTreeError(f"{repo}: moving to {where} would overwrite untracked files "
                          f"({', '.join(paths[:5])}); nothing was changed",
                          hint="move or remove them (ignored ones too), then re-run")


_UNTRACKED_RE = re.compile(r"Untracked working tree file '(.+?)' would be", re.MULTILINE)


def restore(repo: Path, commit: str) -> None:
    """Put a user's checkout back at `commit` (its state before a failed bump): HEAD, index and the
    tracked files (the tree was clean before the bump; untracked files are not touched).

    When `git reset` fails -- a full file system (it writes a new index first: exit 74), an index.lock
    another git process holds -- the files that differ from `commit` are put back first, in place (their
    content as `git checkout` would write it, over the edited one: no new file, so no more space than the
    edit took, and no lock), and the reset is tried again: the index and HEAD need little space, which the
    edits may have given back.  GitError when it still fails (saying that the files are as in `commit` at
    least)."""
    try:
        git.run(["reset", "--quiet", "--hard", commit], cwd=repo)
        return
    except GitError:
        pass
    # read-only from here to the files' writes: no index refresh (--no-optional-locks), nothing new written
    changed = git.run(["--no-optional-locks", "diff-index", "--name-only", "--no-renames", "-z", commit, "--"],
                      cwd=repo, strip=False).paths()
    for rel in changed:
        content = git.run(["--no-optional-locks", "cat-file", "--filters", f"{commit}:{rel}"], cwd=repo,
                          strip=False, what="git cat-file").raw
        path = repo / rel
        if path.is_symlink() or not path.is_file():
            continue
        with interrupts.held(), open(path, "r+b") as f:  # never cut short half-written
            f.write(content)
            f.truncate()
    try:
        git.run(["reset", "--quiet", "--hard", commit], cwd=repo)
    except GitError as exc:
        raise GitError(f"its files are back as in {commit[:12]}, not its index or HEAD: {exc.message}",
                       exit_code=exc.exit_code) from None


def remote_spec(repo: Path, name: str, push: bool = False) -> str | None:
    """The URL of the checkout's remote `name` as open_remote takes it, or None when it has none: a relative
    path (`../deploy.git`) is resolved against the checkout, as git does, not against the current
    directory; url.<base>.insteadOf applied (`git remote get-url`).  `push`: where `git push NAME` pushes
    (`get-url --push`: its remote.<name>.pushurl when set, else its url with url.<base>.pushInsteadOf);
    DirtyTreeError (exit 4) when that is several URLs (git pushes to each: gitops pushes to one)."""
    res = git.run(["remote", "get-url", "--all", *(["--push"] if push else []), name], cwd=repo, check=False,
                  strip=False)
    urls = [u for u in res.path_lines() if u.strip()] if res.status == 0 else []
    if push and len(urls) > 1:
        key = f"remote.{name}.pushurl" if git.run(["config", "--get-all", f"remote.{name}.pushurl"], cwd=repo,
                                                  check=False).status == 0 else f"remote.{name}.url"
        raise DirtyTreeError(f"{repo}: remote {name} pushes to {len(urls)} URLs ({key}); gitops pushes a bump "
                             "to one, and the others would miss it; nothing was changed",
                             hint=f"keep one (`git config --unset-all {key}`, then `git remote set-url "
                                  f"{'--push ' if key.endswith('pushurl') else ''}{name} URL`), or give the URL "
                                  "to push to as --deploy-repo (gitops clones it)")
    url = urls[0].strip() if urls else ""
    if not url:
        return None
    if "://" in url or (":" in url and "/" not in url.split(":", 1)[0]):  # a URL, or scp-like host:path
        return url
    path = expand_user(url)
    return str(path if path.is_absolute() else (repo / path).resolve())


def checkout_remote(repo: Path, branch: str) -> str | None:
    """The name of the remote a bump of the checkout's `branch` fetches and pushes: the branch's upstream
    remote (branch.<branch>.remote), else the checkout's only remote, else None when it has none.
    DirtyTreeError (exit 4), naming the remotes, when that cannot be told: several remotes and no upstream,
    or an upstream that is no remote of the checkout (`.`: a local branch; a URL); and, naming the setting,
    when `git push` would push the branch elsewhere (refuse_other_push_remote) or to a branch of another name
    (refuse_other_upstream_branch)."""
    remotes = git.run(["remote"], cwd=repo).stdout.split()
    upstream = git.run(["config", "--get", f"branch.{branch}.remote"], cwd=repo, check=False).stdout.strip()
    hint = f"set the branch's upstream: `git branch --set-upstream-to REMOTE/{branch}`"
    listed = f"its remotes: {', '.join(remotes)}" if remotes else "it has no remote"
    if upstream:
        if upstream in remotes:
            refuse_other_push_remote(repo, branch, upstream, f"its upstream, branch.{branch}.remote")
            refuse_other_upstream_branch(repo, branch, upstream)
            return upstream
        raise DirtyTreeError(f"{repo}: the upstream of branch {branch} (branch.{branch}.remote = {upstream!r}) is "
                             f"no remote of the checkout ({listed}); nothing was changed", hint=hint)
    if len(remotes) > 1:
        raise DirtyTreeError(f"{repo}: branch {branch} has no upstream, and the checkout has several remotes "
                             f"({', '.join(remotes)}): which one to push the bump to is not known; nothing was "
                             "changed", hint=hint)
    if not remotes:
        return None
    refuse_other_push_remote(repo, branch, remotes[0], "the checkout's only remote")
    return remotes[0]


def push_remote_setting(repo: Path, branch: str) -> tuple[str, str] | None:
    """The setting that makes `git push` on `branch` push to a remote of its choosing, as git reads them (its
    pushremote_for_branch): (key, value) of branch.<branch>.pushRemote, else of remote.pushDefault (the
    checkout's config, the global one, `-c`); None when neither is set (git pushes to the branch's remote)."""
    for key in (f"branch.{branch}.pushRemote", "remote.pushDefault"):
        res = git.run(["config", "--get", key], cwd=repo, check=False)
        if res.status == 0:
            return key, res.stdout.strip()
    return None


def refuse_other_push_remote(repo: Path, branch: str, name: str, chosen: str) -> None:
    """DirtyTreeError (exit 4) when `git push` would push `branch` to another remote than `name`, the one a bump
    fetches from (`chosen` says why: the upstream, the only remote): a triangular workflow (fetch from
    upstream, push to a fork).  A bump integrates the head of the branch it pushes to and retries a rejected
    push by fetching that head again, from one remote; with two, the base would be upstream's newest commit
    while only the fork's head tells whether the push fast-forwards (a fork with commits upstream has not
    could never take it), so gitops neither pushes where git would not nor guesses: it refuses, naming the
    setting (branch.<branch>.pushRemote, else remote.pushDefault).  One naming `name` itself is fine."""
    found = push_remote_setting(repo, branch)
    if found is None or found[1] == name:
        return
    key, value = found
    raise DirtyTreeError(
        f"{repo}: `git push` pushes branch {branch} to {value!r} ({key}), not to {name} ({chosen}), which a "
        "bump fetches from: gitops fetches, commits and pushes one remote's branch; nothing was changed",
        hint=f"to bump {name}'s {branch}: `git config branch.{branch}.pushRemote {name}`; to bump the branch "
             f"{value} holds, give its URL as --deploy-repo (gitops clones it)")


def refuse_other_upstream_branch(repo: Path, branch: str, name: str) -> None:
    """DirtyTreeError (exit 4) when the checkout's `branch` tracks a branch of another name on its upstream
    remote `name` (branch.<branch>.merge) and `git push` would not push it to the branch of its own name: it
    pushes to the tracked branch (push.default `upstream`, or its old name `tracking`) or refuses (`simple`,
    git's default; `nothing`).  A bump fetches, commits on and pushes `name`'s `branch`, which is neither.
    With push.default `current` or `matching`, `git push` pushes it to the branch of its own name too: fine."""
    merge = git.run(["config", "--get", f"branch.{branch}.merge"], cwd=repo, check=False).stdout.strip()
    if merge in ("", branch, f"refs/heads/{branch}"):
        return
    default = git.run(["config", "--get", "push.default"], cwd=repo, check=False).stdout.strip() or "simple"
    if default in ("current", "matching"):
        return
    tracked = merge.removeprefix("refs/heads/")
    pushes = (f"pushes branch {branch} to {name}'s {tracked}" if default in ("upstream", "tracking") else
              f"refuses to push branch {branch} (push.default {default})")
    raise DirtyTreeError(
        f"{repo}: branch {branch} tracks {name}'s {tracked} (branch.{branch}.merge = {merge}), so `git push` "
        f"{pushes}; a bump fetches, commits and pushes {name}'s {branch}: nothing was changed",
        hint=f"to bump {name}'s {branch}: `git branch --set-upstream-to {name}/{branch}`; to bump {tracked}, "
             f"give the deploy repo's URL as --deploy-repo with --branch {tracked} (gitops clones it)")


def open_checkout_remote(repo: Path, branch: str, *, ssh_key: Path | None = None,
                         environ: Mapping[str, str] | None = None) -> Remote | None:
    """The remote a bump of the local checkout's `branch` is fetched from and pushed to (checkout_remote),
    reached at its push URL (remote_spec): the bump is made on the head of the branch it is pushed to (a
    mirror fetched from may lag behind it), and read back from there; with the credentials and ssh options
    for that URL (open_remote, in the checkout: its config counts).  None when the checkout has no remote."""
    name = checkout_remote(repo, branch)
    if name is None:
        return None
    spec = remote_spec(repo, name, push=True)
    if spec is None:
        raise DirtyTreeError(f"{repo}: remote {name} has no URL; nothing was changed",
                             hint=f"`git remote set-url {name} URL`")
    separate = spec != remote_spec(repo, name)
    names = Names(flags={"deploy_repo": f"remote {name}" + (" (its pushurl)" if separate else "")})
    remote = open_remote(spec, ssh_key=ssh_key, environ=environ, names=names, repo=repo)
    return replace(remote, name=name)


def tracking_head(repo: Path, branch: str, name: str = "origin") -> str | None:
    """refs/remotes/<name>/<branch> as last fetched (no network), or None when there is none."""
    res = git.run(["rev-parse", "--verify", "--quiet", f"refs/remotes/{name}/{branch}^{{commit}}"], cwd=repo,
                  check=False)
    return res.stdout.strip() or None


def has_commit(repo: Path, sha: str) -> bool:
    """True when the commit is in the repo (no lazy fetch from a promisor remote)."""
    res = git.run(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=repo, env={"GIT_NO_LAZY_FETCH": "1"}, check=False)
    return res.status == 0




# --- root on another user's checkout ----------------------------------------------------------------


def other_owner(path: Path) -> tuple[int, int] | None:
    """(uid, gid) of `path` when gitops runs as root and another user owns it (root bumping a checkout of
    the CI runner's user, see safe.directory), else None: what gitops creates there is given back to that
    user (give_back)."""
    if os.geteuid() != 0:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_uid, info.st_gid) if info.st_uid != 0 else None


_GIVE_BACK_MARGIN_NS = 1_000_000_000  # file times come from a coarse clock: what changed a second before counts


@contextmanager
def give_back(root: Path, git_dirs: Sequence[Path]) -> Iterator[None]:
    """Run the block; then, when gitops runs as root on a checkout another user owns (other_owner of its
    top), give back to them what the block created or changed in its work tree and its git dirs (a linked
    worktree's own and the common one, wherever they are): every entry root owns whose ctime is from the
    block (new or rewritten: FETCH_HEAD, refs, logs, objects and their directories, the index, files and
    directories a fast-forward wrote) gets the owner and group of the directory it is in.  Cheap: each
    directory is read, but only the entries of those changed during the block are looked at."""
    owner = other_owner(root)
    since = time.time_ns() - _GIVE_BACK_MARGIN_NS
    try:
        yield
    finally:
        if owner is not None:
            bases: list[Path] = []
            for base in [root, *git_dirs]:
                base = base.resolve()
                if not any(base == b or b in base.parents for b in bases):
                    bases.append(base)
            for base in bases:
                _give_back_under(base, since)


def _give_back_under(base: Path, since: int) -> None:
    """give_back's walk of one tree (symlinks never followed); an entry that cannot be read or changed is
    left as it is (a warning names the first)."""
    failed: list[str] = []
    try:
        stack = [(str(base), os.lstat(base))]
    except OSError:
        return
    while stack:
        directory, info = stack.pop()
        changed = max(info.st_mtime_ns, info.st_ctime_ns) >= since  # an entry added, removed or renamed there
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError:
            continue
        for entry in listed:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if not (is_dir or changed):
                    continue  # a file rewritten in place keeps its owner: only new entries are root's
                st = entry.stat(follow_symlinks=False)
                if st.st_uid == 0 and st.st_ctime_ns >= since and (info.st_uid, info.st_gid) != (0, 0):
                    os.chown(entry.path, info.st_uid, info.st_gid, follow_symlinks=False)
                    st = os.lstat(entry.path)
            except OSError as exc:
                if not failed:
                    failed.append(f"{entry.path} ({exc.strerror})")
                continue
            if is_dir:
                stack.append((entry.path, st))
    if failed:
        output.warn(f"{failed[0]}: could not be given back to the checkout's owner; `chown` it")
