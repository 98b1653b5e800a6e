"""The one git adapter: every git command the tool runs goes through `run`.

Built on GitPython's command runner (imported lazily: `gitops lint` never loads it).  Credentials never
go on a command line or into a URL: callers pass them through the environment (an `http.<url>.extraHeader`
appended to GIT_CONFIG_PARAMETERS, see env_config and authorization_config), and every message this module
raises is scrubbed of URLs' user-info and of registered secrets.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from gitops_cli import interrupts
from gitops_cli.errors import EXIT_WRITE_FAILED, WRITE_FAILURES, DirtyTreeError, GitAuthError, GitError, UsageError
from gitops_cli.output import redact
from gitops_cli.settings import child_environment

# scheme://[userinfo@]rest: the user-info runs to the LAST "@" before the first "/" (a password may hold
# an "@"); a malformed "scheme:/..." (one slash) is scrubbed the same way.
_URL_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*:/{1,3})(?:(?P<userinfo>[^/\s]*)@)?(?P<rest>[^\s'\"]*)")

# Error text (from git itself) that means authentication, not reachability.
_AUTH_PATTERNS = (
    "Authentication failed",
    "could not read Username",
    "could not read Password",
    "Permission denied (publickey",
    "HTTP Basic: Access denied",
    "The requested URL returned error: 401",
    "The requested URL returned error: 403",
    "terminal prompts disabled",
)


# git's catch-all after a transport (ssh) failure: the line before it, from ssh, is the real reason.
_GENERIC_REASONS = ("fatal: Could not read from remote repository.",)
# git asking for a username or password it may not prompt for (GIT_TERMINAL_PROMPT=0)
_PROMPT_RE = re.compile(r"fatal: could not read (?:Username|Password) for '(?P<url>[^']*)': terminal prompts disabled")
_NOT_FOUND = (": not found", ": command not found")  # the shell's words (dash, bash) for a missing program


def strip_credentials(url: str) -> str:
    """`https://user:token@host/x.git?private_token=T#f` -> `https://host/x.git`: the user-info (up to the
    last `@` of the authority), the query and the fragment of every URL in `url` (a URL or a text holding
    URLs) are dropped; scp-like `git@host:x` is kept.  A `file://` URL keeps its `?` and `#`: they are
    characters of a local path there, not a query or a fragment."""
    def scrub(m: re.Match[str]) -> str:
        if m.group("scheme").lower().startswith("file:"):
            return m.group("scheme") + m.group("rest")
        rest = m.group("rest")
        if _spilled_userinfo(rest):  # a password holding `/`, `?` or `#`: what follows its last `@` is the host
            rest = rest.rsplit("@", 1)[1]
        return m.group("scheme") + re.split(r"[?#]", rest, maxsplit=1)[0]

    return _URL_RE.sub(scrub, url)


def url_passwords(text: str) -> list[str]:
    """The password of each URL in `text` (a URL, or a text holding URLs, read as strip_credentials reads
    them): what follows the first `:` of its user-info (`https://user:PASSWORD@host/x`; one holding an
    unencoded `/` too; and, when `text` is one URL whose user-info holds a blank, that one: see
    blank_in_userinfo), as written and percent-decoded (as git sends it).  A user-info without `:` is a
    user name, no password."""
    found: list[str] = []
    if blank_in_userinfo(text):  # one URL given whole (a flag's value): its user-info holds a blank
        password = (split_userinfo(text)[0] or "").partition(":")[2]
        if password:
            found += dict.fromkeys([password, unquote(password)])
    for m in _URL_RE.finditer(text):
        userinfo, rest = m.group("userinfo"), m.group("rest")
        if not m.group("scheme").lower().startswith("file:") and _spilled_userinfo(rest):
            spilled = rest.rsplit("@", 1)[0]
            userinfo = spilled if userinfo is None else f"{userinfo}@{spilled}"
        password = (userinfo or "").partition(":")[2]
        if password:
            found += dict.fromkeys([password, unquote(password)])
    return found


_HOSTPORT_RE = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^:\[\]@]*)(:[0-9]*)?")
# what follows the last `@` of a URL whose user-info spilled past its first `/`: a host (an IP, a bracketed
# IPv6 address, a dotted name or localhost) with its port, then the path
_HOST_AFTER_AT_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|localhost)(:[0-9]+)?/")


def _spilled_userinfo(rest: str) -> bool:
    """Does a URL's text after `scheme://` (and after the user-info up to the first `/`) still hold
    user-info: a user or password with an unencoded `/`, `?` or `#` (`bot:ab/cd@host/x`, `t:p@ss:w/x#y@h/x`,
    `u:2024/pw@host.example/x`) leaves an `@` after the first `/` (or `?`, `#`) with a host after it, or
    something that is no host[:port] before it.  (An `@` in a path followed by no host, `org/x@y.git`,
    is a path's.)"""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    after = rest[len(authority):]
    if "@" not in after:
        return False
    return _HOSTPORT_RE.fullmatch(authority) is None or _HOST_AFTER_AT_RE.match(after.rsplit("@", 1)[1]) is not None


_SCHEME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_BLANK_RE = re.compile(r"[\x00-\x20\x7f]")  # blanks and control characters: no URL holds them unencoded


def split_userinfo(url: str) -> tuple[str | None, str]:
    """(the user-info, the URL without it) of ONE URL -- a flag's or a setting's value, not a text holding
    URLs, where a blank ends a URL (strip_credentials) --: what precedes the last `@` of its authority, or,
    for a user-info holding an unencoded `/`, `?` or `#`, the last `@` followed by a host (see
    _spilled_userinfo); blanks and control characters included.  (None, url) without one, and for file://."""
    m = _SCHEME_RE.match(url)
    if m is None or m.group().lower().startswith("file:"):
        return None, url
    rest = url[m.end():]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo = authority.rpartition("@")[0] if "@" in authority else None
    after = rest[len(userinfo) + 1:] if userinfo is not None else rest
    if _spilled_userinfo(after):
        spilled, _, after = after.rpartition("@")
        userinfo = spilled if userinfo is None else f"{userinfo}@{spilled}"
    return userinfo, m.group() + after


def url_shown(url: str) -> str:
    """ONE URL (see split_userinfo) as it may be shown or recorded (a message, a commit trailer, an image
    label): its user-info (blanks and all), query and fragment dropped (strip_credentials); an scp-like
    `user:password@host:path` without its password (scp_password); a path as it is."""
    if _SCHEME_RE.match(url) is None and (scp := scp_password(url)) is not None:
        return scp[1]
    return strip_credentials(split_userinfo(url)[1])


# scp-like `user:password@host:path`, the password running to the last `@` before a host and its `:`
_SCP_PASSWORD_RE = re.compile(r"(?P<user>[^@/:]+):(?P<password>.*)@(?P<host>[^/:@]+):(?P<path>(?!//).*)", re.DOTALL)


def scp_password(spec: str) -> tuple[str, str] | None:
    """(the password, the spec without it: `user@host:path`) of an scp-like `user:password@host:path`, a
    syntax that has no password (git would ssh to a host named `user`), else None."""
    m = _SCP_PASSWORD_RE.fullmatch(spec)
    if m is None:
        return None
    return m.group("password"), f"{m.group('user')}@{m.group('host')}:{m.group('path')}"


def blank_in_userinfo(url: str) -> bool:
    """ONE URL (see split_userinfo) whose user-info holds a blank or a control character (`bot:S3cret
    Pw@host`): git cannot send it (it refuses the URL), and in a text such a URL ends at the blank, where
    strip_credentials and url_passwords would miss the password; refused before any work
    (deployrepo.open_remote)."""
    userinfo = split_userinfo(url)[0]
    return userinfo is not None and _BLANK_RE.search(userinfo) is not None


def malformed_userinfo(url: str) -> bool:
    """A URL (not file://) whose user-info holds a character it cannot hold unencoded (`/`, `?`, `#`):
    git would read part of the password as the host; refused before any work (deployrepo.open_remote)."""
    if "://" not in url or url.lower().startswith("file:"):
        return False
    rest = url.split("://", 1)[1]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return _spilled_userinfo(rest[authority.rfind("@") + 1:] if "@" in authority else rest)


# What tells git which repository it is in, instead of the directory it runs in (`git rev-parse
# --local-env-vars`, less the config entries, which are the user's settings): git exports them to hooks,
# so gitops run from a hook would have its clone's commands work on the hook's repository.
REPOSITORY_VARIABLES = frozenset({
    "GIT_DIR", "GIT_WORK_TREE", "GIT_IMPLICIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_GRAFT_FILE", "GIT_SHALLOW_FILE", "GIT_PREFIX",
    "GIT_INTERNAL_SUPER_PREFIX", "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_QUARANTINE_PATH",
    "GIT_NAMESPACE",
})


def ignore_repository_variables() -> None:
    """Drop REPOSITORY_VARIABLES from this process's environment (the console script does, at its start):
    every git command then works on the directory it runs in.  It has to be os.environ: GitPython starts
    git's environment from it, whatever `run` passes."""
    for name in REPOSITORY_VARIABLES:
        os.environ.pop(name, None)


# The config gitops' git commands must have, whatever the user's says, goes on git's command line as `-c`
# options (see run): git reads them last -- after its config files, then GIT_CONFIG_COUNT's entries, then
# GIT_CONFIG_PARAMETERS, where a parent git's own `-c` options are (gitops run from a git alias or a hook:
# `git -c credential.helper=store deploybump`) -- and hands them on to the git processes it starts (a lazy
# fetch, a transport helper).  Never a secret: a command line is seen by every user of the machine (ps); a
# credential stays in the environment, at the end of GIT_CONFIG_PARAMETERS (see env_config): after every
# entry of the user's, before the command line's.  The user's own entries keep applying to everything else
# (safe.directory, http.sslCAInfo, url.<base>.insteadOf...).

# Every git command: output gitops parses (`git grep -l`, `ls-remote`, `rev-parse`...) is never coloured,
# whatever color.ui or a command's own color.* key (which overrides color.ui) says.
PLAIN_OUTPUT: tuple[tuple[str, str], ...] = tuple((f"color.{key}", "never") for key in (
    "ui", "advice", "branch", "diff", "grep", "interactive", "push", "remote", "showBranch", "status",
    "transport"))

# Every git command: a commit's --format output is only what the format asks for, as gitops parses it
# (`git show -s --format=%cI` for an image's created label, history's date, author, subject and trailers):
# no signature check printed before it (log.showSignature), the trailers gitops writes (`Image: ...`) read
# as trailers whatever trailer.separators says (`=` alone: they were none), names and messages in UTF-8,
# as gitops decodes them, whatever i18n.logOutputEncoding says (ISO-8859-1: `J\xf6rg`, lone surrogates in
# JSON).  And gitops' commits say what they are: UTF-8 (an i18n.commitEncoding of the user's would label
# them with another encoding, their bytes being UTF-8).
PARSED_OUTPUT: tuple[tuple[str, str], ...] = (
    ("log.showSignature", "false"), ("trailer.separators", ":"), ("i18n.logOutputEncoding", "UTF-8"),
    ("i18n.commitEncoding", "UTF-8"))

# gitops' own repositories (a bump's or history's clone, sync's cache: see own_repository) run none of the
# user's hooks: with no template copied (`--template=`: neither init.templateDir nor GIT_TEMPLATE_DIR) and
# core.hooksPath where no hook can be, git finds none (a core.hooksPath of the user's, or hooks a template
# put in .git/hooks, would otherwise run there: prepare-commit-msg, reference-transaction, post-checkout...).
NO_HOOKS: tuple[tuple[str, str], ...] = (("core.hooksPath", os.devnull),)

# When gitops gives git a credential of its own (an http.extraHeader): the user's credential helpers are
# neither asked (the empty value resets their list) nor told to store or erase anything -- a wrong token
# would have git ask them after the 401, send their credential too, and then tell them to ERASE it.
# Given with command_config, in the remote's environment.
NO_CREDENTIAL_HELPERS: tuple[tuple[str, str], ...] = (("credential.helper", ""),)

# The key, in the environment given to `run`, of the config entries it gives git as `-c` options
# (command_config); never passed on to git.
_COMMAND_CONFIG = "_GITOPS_GIT_COMMAND_CONFIG"
# The key, in the environment given to `run`, of the config entries (secrets) it appends to git's
# GIT_CONFIG_PARAMETERS (env_config), already quoted as git quotes them there; never passed on as itself.
_ENV_CONFIG = "_GITOPS_GIT_ENV_CONFIG"


def command_config(entries: Sequence[tuple[str, str]], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` with `entries` (never a secret) added to the config `run` gives git on its command line, after
    any `env` holds already: for an environment (a remote's) that every command using it must have."""
    out = dict(env or {})
    added = "".join(f"{key}={value}\n" for key, value in entries)
    out[_COMMAND_CONFIG] = out.get(_COMMAND_CONFIG, "") + added
    return out


def env_config(entries: Sequence[tuple[str, str]], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` with `entries` (a secret: never on a command line) added to the config `run` gives git in its
    environment, after any `env` holds already: appended to GIT_CONFIG_PARAMETERS, which git reads after its
    config files, GIT_CONFIG_COUNT's entries and the user's own GIT_CONFIG_PARAMETERS (a parent git's `-c`
    options), so that they come after every entry of the user's.  An empty value is given as one (`'k'=''`:
    it resets a list such as http.extraHeader); `'k'=` alone would be a boolean."""
    out = dict(env or {})
    added = " ".join(f"{sq_quote(key)}={sq_quote(value)}" for key, value in entries)
    out[_ENV_CONFIG] = " ".join(part for part in (out.get(_ENV_CONFIG, ""), added) if part)
    return out


def sq_quote(text: str) -> str:
    """`text` single-quoted as git quotes GIT_CONFIG_PARAMETERS (quote.c sq_quote_buf): `'` and `!` are
    written `'\\''` and `'\\!'`."""
    return "'" + text.replace("'", "'\\''").replace("!", "'\\!'") + "'"


def config_entries(pattern: str, cwd: str | Path | None = None,
                   env: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """The config entries whose (canonical) key matches the regex `pattern`, as git reads them -- its config
    files with their includes, GIT_CONFIG_COUNT's entries, GIT_CONFIG_PARAMETERS --, in the order it reads
    them: in the repository `cwd`, else outside any (run_outside).  A value-less entry (`[x] key` alone,
    a boolean) has None."""
    args = ["config", "-z", "--includes", "--get-regexp", pattern]
    res = run(args, cwd=cwd, env=env, check=False, strip=False) if cwd is not None else \
        run_outside(args, env=env, check=False, strip=False)
    out: list[tuple[str, str | None]] = []
    for entry in res.paths() if res.status == 0 else []:  # keys and values go back to git: read as paths are
        key, newline, value = entry.partition("\n")
        out.append((key, value if newline else None))
    return out


def authorization_config(url: str, header: str, cwd: str | Path | None = None,
                         env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The config entries (for env_config) that make `header` (`Authorization: ...`) the one Authorization
    header git sends to `url` (a URL git talks to, after the user's rewrites): under the key of that exact
    URL -- which no entry of the user's outranks in git's URL matching (urlmatch.c: the longest host, then
    path, then a user name) --, an empty value, which drops every extra header read so far, the user's
    http.extraHeader values that go to `url` (read in `cwd`, as config_entries), less any Authorization
    header, then `header`.  The user's other extra headers (a proxy's, a WAF's) keep going there, once."""
    key = f"http.{_scope(url)}.extraHeader"
    kept = [value for value in extra_headers(url, cwd, env) if not _is_authorization(value)]
    return [(key, ""), *((key, value) for value in kept), (key, header)]


def _scope(url: str) -> str:
    """`url` as a config key's URL: no password, query or fragment (a user name stays: git matches it)."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username is not None else ""
    return f"{parts.scheme}://{user}{parts.netloc.rpartition('@')[2]}{parts.path}"


def _is_authorization(header: str) -> bool:
    """An `Authorization: ...` header (any case; `Authorization;` too: curl's way of sending it empty)."""
    return re.split(r"[:;]", header, maxsplit=1)[0].strip().lower() == "authorization"


def extra_headers(url: str, cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """The user's http.extraHeader values git sends to `url` (a URL git talks to): its entries read in order
    (config_entries), kept as git's http.c keeps them -- each `http.<url>.extraHeader` whose URL matches,
    each plain `http.extraHeader`, none that matches `url` less well than the one kept before it (urlmatch.c
    urlmatch_config_entry), an empty value dropping those kept so far."""
    target = _url_info(url if url.endswith("/") else url + "/")  # as git's transport helper has it (remote-curl.c)
    if target is None:
        return []
    headers: list[str] = []
    kept: tuple[int, int, int] | None = None
    for key, value in config_entries(r"^http\..*extraheader$", cwd, env):
        name, _, rest = key.partition(".")
        scoped, dot, variable = rest.rpartition(".")
        if name != "http" or variable != "extraheader":
            continue
        match = (0, 0, 0)
        if dot:
            pattern = _url_info(scoped, globs=True)
            found = _match_url(target, pattern) if pattern is not None else None
            if found is None:
                continue
            match = found
        if kept is not None and match < kept:
            continue  # matches less well than the entry before it: git ignores it
        kept = match
        if value == "":
            headers.clear()
        elif value is not None:
            headers.append(value)
    return headers


# --- URL matching for `<section>.<url>.<key>` config, as urlmatch.c does it -------------------------------

_URL_SCHEME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")
_URL_HOST_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_[:]")
_URL_UNSAFE_CHARS = frozenset(b' <>"%{}|\\^`')
_URL_RESERVED = frozenset(b":/?#[]@!$&'()*+,;=")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _UrlInfo:
    """A URL normalized as urlmatch.c's url_normalize does (lowercase scheme and host, %-escapes made
    canonical, default port dropped, dot segments resolved); `path` runs to its end (query included)."""

    def __init__(self, scheme: bytes, user: bytes | None, host: bytes, port: bytes, path: bytes) -> None:
        self.scheme, self.user, self.host, self.port, self.path = scheme, user, host, port, path


def _escapes(raw: bytes) -> bytes | None:
    """append_normalized_escapes: a %-escape that need not be one decoded (not a reserved character's), a
    character that must be escaped escaped, escapes in uppercase; None for a malformed escape."""
    out = bytearray()
    i = 0
    while i < len(raw):
        ch, i, was_escaped = raw[i], i + 1, False
        if ch == ord("%"):
            if len(raw) - i < 2 or raw[i] not in _HEX or raw[i + 1] not in _HEX:
                return None
            ch, i, was_escaped = int(raw[i:i + 2], 16), i + 2, True
        if ch <= 0x1F or ch >= 0x7F or ch in _URL_UNSAFE_CHARS or (was_escaped and ch in _URL_RESERVED):
            out += b"%%%02X" % ch
        else:
            out.append(ch)
    return bytes(out)


def _first_of(data: bytes, chars: bytes) -> int:
    return min((i for i in (data.find(bytes([c])) for c in chars) if i >= 0), default=len(data))


def _url_info(url: str, globs: bool = False) -> _UrlInfo | None:
    """url_normalize_1 of urlmatch.c (`globs`: a `*` may stand for a host's component); None when git finds
    the URL invalid (then no config entry for it applies)."""
    raw = os.fsencode(url)
    n = next((i for i, c in enumerate(raw) if c not in _URL_SCHEME_CHARS), len(raw))
    if not n or not raw[:1].isalpha() or raw[n:n + 3] != b"://":
        return None
    scheme, rest = raw[:n].lower(), raw[n + 3:]
    user: bytes | None = None
    at, slash = rest.find(b"@"), _first_of(rest, b"/?#")
    if 0 <= at < slash:
        userinfo = _escapes(rest[:at])
        if userinfo is None:
            return None
        user = userinfo.split(b":", 1)[0]
        rest, slash = rest[at + 1:], slash - at - 1
    if not rest or rest[:1] in (b":", b"/", b"?", b"#"):
        if scheme != b"file":
            return None
    colon = slash - 1
    while colon > 0 and rest[colon:colon + 1] not in (b":", b"]"):
        colon -= 1
    if colon < 0 or rest[colon:colon + 1] != b":":
        colon = slash
    allowed = _URL_HOST_CHARS | {ord("*")} if globs else _URL_HOST_CHARS
    if any(c not in allowed for c in rest[:colon]):
        return None
    host, port = rest[:colon].lower(), b""
    if colon < slash:
        digits = rest[colon + 1:slash].lstrip(b"0") or (b"0" if rest[colon + 1:slash] else b"")
        default = (scheme == b"http" and digits == b"80") or (scheme == b"https" and digits == b"443")
        if digits and not default:
            if not digits.isdigit() or len(digits) > 5 or not 0 < int(digits) <= 65535:
                return None
            port = digits
    path = _normalized_path(rest[slash:])
    return None if path is None else _UrlInfo(scheme, user, host, port, path)


def _normalized_path(rest: bytes) -> bytes | None:
    """The path (dot segments resolved, as url_normalize_1 does) and whatever follows it, escapes normalized."""
    norm = bytearray(b"/")
    if rest.startswith(b"/"):
        rest = rest[1:]
    while True:
        end = _first_of(rest, b"/?#")
        segment = _escapes(rest[:end])
        if segment is None:
            return None
        start = len(norm)
        norm += segment
        skip_slash = False
        if segment == b".":
            if start == 1:
                del norm[-1:]
                skip_slash = True
            else:
                del norm[-2:]
        elif segment == b"..":
            previous = len(norm) - 3
            if previous == 0:
                return None
            previous = norm.rindex(b"/", 0, previous)
            if previous == 0:
                del norm[1:]
                skip_slash = True
            else:
                del norm[previous:]
        rest = rest[end:]
        if not rest.startswith(b"/"):
            break
        rest = rest[1:]
        if not skip_slash:
            norm += b"/"
    tail = _escapes(rest) if rest else b""
    return None if tail is None else bytes(norm) + tail


def _match_host(host: bytes, pattern: bytes) -> bool:
    """match_host of urlmatch.c: component by component, a `*` component matching any one."""
    while host and pattern:
        got, _, rest = host.partition(b".")
        want, _, pattern_rest = pattern.partition(b".")
        if want != b"*" and want != got:
            return False
        host, pattern = rest, pattern_rest
    return not host and not pattern


def _match_url(url: _UrlInfo, pattern: _UrlInfo) -> tuple[int, int, int] | None:
    """match_urls of urlmatch.c: (host length, path length matched, user name matched) -- compared as a
    tuple, as cmp_matches does -- or None when `pattern` does not match `url`."""
    if url.scheme != pattern.scheme or not _match_host(url.host, pattern.host) or url.port != pattern.port:
        return None
    if pattern.user is not None and url.user != pattern.user:
        return None
    prefix = pattern.path
    if not prefix or prefix == b"/":
        length = 1 if not url.path or url.path.startswith(b"/") else 0
    else:
        prefix = prefix.removesuffix(b"/")
        length = len(prefix) + 1 if url.path.startswith(prefix) and url.path[len(prefix):len(prefix) + 1] in (
            b"", b"/") else 0
    return (len(pattern.host), length, int(pattern.user is not None)) if length else None


_OWN_REPOSITORIES: set[str] = set()


def own_repository(path: str | Path) -> None:
    """Mark `path` as one of gitops' own repositories (a clone, sync's cache): every git command `run` runs
    in it (or below it) gets NO_HOOKS on its command line."""
    _OWN_REPOSITORIES.add(os.path.abspath(path))


def _command_line(cwd: str | Path | None, env: dict[str, str]) -> list[str]:
    """The `-c` options of a git command run in `cwd` with `env` (whose command_config entries are taken out)."""
    entries = [*PLAIN_OUTPUT, *PARSED_OUTPUT]
    if cwd is not None:
        where = os.path.abspath(cwd)
        if any(where == own or where.startswith(own + os.sep) for own in _OWN_REPOSITORIES):
            entries += NO_HOOKS
    for line in env.pop(_COMMAND_CONFIG, "").splitlines():
        key, _, value = line.partition("=")
        entries.append((key, value))
    return [arg for key, value in entries for arg in ("-c", f"{key}={value}")]


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for git: never prompt, stable output, plus `extra` (e.g. GIT_CONFIG_* entries), without
    gitops' secret variables (settings.child_environment).

    SSH_ASKPASS is never used: ssh runs with BatchMode, and git's own prompt (for a username or password)
    would fall back to it.  GIT_ASKPASS and core.askPass stay: a non-interactive credential source in CI
    (Jenkins' git credentials binding), asked like a credential helper (deployrepo turns them off too when
    gitops has a credential of its own)."""
    env = dict(os.environ)
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GCM_INTERACTIVE": "never",
            "LC_ALL": "C",
            "LANG": "C",
        }
    )
    # set, not removed: GitPython starts git's environment from os.environ (an empty SSH_ASKPASS is none to git)
    env.update({"SSH_ASKPASS": "", "SSH_ASKPASS_REQUIRE": "never"})
    if env.get("GIT_SSH_COMMAND", "").strip():  # never prompt: BatchMode goes INTO the user's command
        env["GIT_SSH_COMMAND"] = ssh_command_with(env["GIT_SSH_COMMAND"], [])
    # else nothing is set here: GIT_SSH_COMMAND would override core.sshCommand (of the repo, unknown here).
    # A remote reached over ssh gets its command from deployrepo (in `extra`), core.sshCommand included.
    if extra:
        env.update(extra)
    count = env.get("GIT_CONFIG_COUNT", "0").strip() or "0"
    if not count.isdigit():
        raise UsageError(f"GIT_CONFIG_COUNT={count!r}: not a number", hint="unset it, or give the number of "
                         "GIT_CONFIG_KEY_n/GIT_CONFIG_VALUE_n pairs")
    secret = env.pop(_ENV_CONFIG, "")
    if secret:  # after the user's own entries there (a parent git's `-c` options)
        given = env.get("GIT_CONFIG_PARAMETERS", "").strip()
        env["GIT_CONFIG_PARAMETERS"] = f"{given} {secret}" if given else secret
    # gitops' secret variables: git and what it runs (a local checkout's hooks) need none of them, and its
    # credential is in GIT_CONFIG_PARAMETERS.  Empty, not removed: GitPython starts from os.environ
    return child_environment(environ=env, blank=True)


_SSH_BATCH = ("-o", "BatchMode=yes")
# ssh options that decide which host keys are trusted: the pin (GITOPS_SSH_KNOWN_HOSTS) sets them
SSH_TRUST_OPTIONS = ("StrictHostKeyChecking", "UserKnownHostsFile", "GlobalKnownHostsFile", "KnownHostsCommand")


def ssh_program(command: str) -> tuple[str, str]:
    """(the program of a shell command line, as the shell reads it: quotes removed, the raw rest of the
    line after it).  ('', command) when the line cannot be split (unbalanced quotes)."""
    lex = shlex.shlex(command, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        program = lex.get_token() or ""
    except ValueError:
        return "", command
    stream = lex.instream
    return program, command[stream.tell():] if hasattr(stream, "tell") else ""


def runs_ssh(command: str) -> bool:
    """True when a user's ssh command line runs ssh itself (`ssh`, `/usr/bin/ssh`, a quoted path with a
    blank), not a wrapper (sshpass, env, a script)."""
    return _is_ssh(ssh_program(command)[0])


def _is_ssh(program: str) -> bool:
    return posixpath.basename(program) == "ssh"


def ssh_trust_options(command: str) -> list[str]:
    """The host-key trust options (SSH_TRUST_OPTIONS) a user's ssh command line sets itself, anywhere in it
    (a wrapper's own arguments included)."""
    return [o for o in SSH_TRUST_OPTIONS if o.lower() in command.lower()]  # `-oName=v` has no word boundary


def ssh_command_with(command: str, options: Sequence[str]) -> str:
    """The user's ssh command with BatchMode (never prompt) and `options` (e.g. a host-key pin) added -- the
    one place an ssh command is composed.  When its program is ssh (`ssh`, `/usr/bin/ssh`, a quoted path
    with a blank...), they go right after it: ssh takes an option's first value, so they win.  Any other
    program (a wrapper: sshpass, env, a script) gets `options` at its end, passed on, and no BatchMode (it
    may need to prompt, as sshpass does); a wrapper's own trust options would win: see ssh_trust_options."""
    program, rest = ssh_program(command)
    if _is_ssh(program):
        batch = () if "batchmode" in command.lower() else _SSH_BATCH  # set there: the user's choice
        added = [*batch, *options]
        if not added:
            return command
        head = command[:len(command) - len(rest)].rstrip()
        return " ".join([head, *(shlex.quote(o) for o in added), *([rest.strip()] if rest.strip() else [])])
    if not options:
        return command
    return " ".join([command.rstrip(), *(shlex.quote(o) for o in options)])


def decode_path(raw: bytes) -> str:
    """A path (or URL) from git's output, as Python decodes a file name (os.fsdecode: the file system
    encoding, surrogateescape): the one way paths come from git, so that they name the same files as
    the names Python reads from disk (os.walk, os.listdir) and go back to git (its arguments) and to the
    system as the same bytes -- under LC_ALL=C (PYTHONUTF8=0: ASCII) as under a UTF-8 locale.  Text
    for people (messages, author names) stays UTF-8 (GitResult.stdout)."""
    return os.fsdecode(raw)


class GitResult:
    """A git command's status and output: `stdout` as UTF-8 text (invalid bytes surrogate-escaped), and its
    bytes, read as paths by paths(), path_lines() and path()."""

    def __init__(self, status: int, stdout: str, stderr: str, raw: bytes = b"") -> None:
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
        self.raw = raw  # stdout's bytes, as git wrote them

    def paths(self) -> list[str]:
        """The entries of a NUL-separated (`-z`) listing, as decode_path reads them (empty ones left out)."""
        return [decode_path(entry) for entry in self.raw.split(b"\0") if entry]

    def path_lines(self) -> list[str]:
        """The lines of a listing of one path a line (`rev-parse --git-path`), as decode_path reads them."""
        return [decode_path(line) for line in self.raw.removesuffix(b"\n").split(b"\n")] if self.raw else []

    def path(self) -> str:
        """The one path (or URL) git wrote, on one line (`rev-parse --show-toplevel`), as decode_path
        reads it; blanks of the path are kept."""
        return decode_path(self.raw.removesuffix(b"\n"))


def run(
    args: Sequence[str],
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    strip: bool = True,
    what: str | None = None,
    cancel: threading.Event | None = None,
    settle: float = 0.0,
    timeout: float | None = None,
    stdin: bytes | None = None,
) -> GitResult:
    """Run `git ARGS` and return its status and output; raise GitError/GitAuthError on failure.
    `stdin`: bytes for git's standard input (`--stdin` options; not with `cancel` or `timeout`), else none.

    git runs in a session (process group) of its own: it never reads a terminal, and however this call
    ends -- an interrupt (KeyboardInterrupt), a cancel, a timeout -- git and what it started (transport
    helpers, ssh, a local receive-pack and its hooks) are stopped first (interrupts.stop): no git process
    outlives the call.  `cancel` (an event: a background thread's cancel, or the held section of a push):
    once it is set, git gets `settle` more seconds to finish on its own (its result is then returned as
    usual), then it is stopped and Cancelled raised.  `timeout`: stopped after that many seconds, GitError
    "... timed out".
    """
    Git, GitCommandNotFound = _gitpython()
    env = dict(env or {})
    options = _command_line(cwd, env)
    if cwd and not os.path.isdir(cwd):  # GitPython would run git in the current directory instead
        raise GitError(f"{cwd}: no such directory" if not os.path.exists(cwd) else f"{cwd}: not a directory")
    label = what or f"git {args[0]}"
    if stdin is not None and (cancel is not None or timeout is not None):
        raise ValueError("git.run: stdin with cancel or timeout")
    handles: list[Any] = []  # GitPython's handle kills git when it is garbage: kept until the call ends

    def start() -> subprocess.Popen[bytes]:
        try:
            handles.append(Git(str(cwd) if cwd else None).execute(
                ["git", *options, *args], as_process=True, env=base_env(env), start_new_session=True,
                istream=subprocess.PIPE if stdin is not None else None))
        except GitCommandNotFound:
            raise GitError("git is not installed (no `git` on PATH)",
                           hint="install git (apt-get install git)") from None
        except PermissionError as exc:  # a `git` on PATH that is no program this user may run
            raise GitError(f"git cannot be run: {exc.strerror}",
                           hint="check the `git` found on PATH (its permissions) or reinstall git") from None
        return handles[0].proc  # type: ignore[no-any-return]

    started: subprocess.Popen[bytes] | None = None
    try:
        with interrupts.owning(start, group=True) as started:
            if cancel is None and timeout is None:
                out, err = started.communicate(stdin)
            else:
                out, err = _communicate(started, label, cancel, settle, timeout)
    finally:
        if started is not None:  # its pipes, once it is stopped
            for stream in (started.stdout, started.stderr):
                if stream is not None:
                    stream.close()
    stdout = out.decode("utf-8", "surrogateescape") if out else ""  # paths: GitResult.paths() and co.
    stderr = err.decode("utf-8", "replace") if err else ""
    if strip and stdout.endswith("\n"):
        stdout = stdout[:-1]
    status = started.returncode
    if check and status != 0:
        raise error_for(args, status, stderr, what=what, cwd=cwd or os.getcwd())
    return GitResult(status, stdout, stderr.removesuffix("\n"), out or b"")


_IMPORT_LOCK = threading.Lock()


def _gitpython() -> tuple[Any, type[Exception]]:
    """GitPython's Git and GitCommandNotFound, imported lazily (`gitops lint` never loads them).  GitPython
    looks for a git executable when it is first imported and, without one, raises an ImportError of ~700
    characters of its own; GIT_PYTHON_REFRESH=quiet (its documented switch, set for the import only, so
    whatever the user set) leaves that to the first command, which `run` reports as "git is not installed"."""
    with _IMPORT_LOCK:
        saved = os.environ.get("GIT_PYTHON_REFRESH")
        os.environ["GIT_PYTHON_REFRESH"] = "quiet"
        try:
            from git.cmd import Git
            from git.exc import GitCommandNotFound
        except ImportError as exc:  # its `git version` failed (not a missing git: that one is quiet)
            raise _unusable_git(exc) from None
        finally:
            if saved is None:
                del os.environ["GIT_PYTHON_REFRESH"]
            else:
                os.environ["GIT_PYTHON_REFRESH"] = saved
    return Git, GitCommandNotFound


def _unusable_git(exc: ImportError) -> GitError:
    """The GitError (exit 10) for GitPython's ImportError: the `git version` it runs when first imported
    failed, GIT_PYTHON_REFRESH=quiet or not (only a missing git is quiet), which git does when it cannot
    read its configuration (a bad line of the global config, an `[include] path` naming a directory).
    git's own words, from the same command run again (GitPython's message quotes them inside its own)."""
    try:
        res = subprocess.run(["git", "version"], env=base_env(), capture_output=True, stdin=subprocess.DEVNULL,
                             timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        res = None
    if res is not None and res.returncode != 0:
        return error_for(["version"], res.returncode, res.stderr.decode("utf-8", "replace"), what="git", cwd=None)
    first = redact(strip_credentials(str(exc))).strip().split("\n", 1)[0]
    return GitError(f"git cannot be run: {first}")


def run_outside(args: Sequence[str], env: Mapping[str, str] | None = None, **kwargs: Any) -> GitResult:
    """`run` for a command that needs no local repository (ls-remote, clone, `init DIR`, reading the
    user's config): in `/` with GIT_CEILING_DIRECTORIES=/, never in the caller's current directory, whose
    repository's config git would read -- an `http.<url>.extraHeader` actions/checkout wrote into the app's
    checkout, its url.*.insteadOf, its credential helpers.  Paths in `args` must be absolute."""
    return run(args, cwd="/", env={**(env or {}), "GIT_CEILING_DIRECTORIES": "/"}, **kwargs)


class Cancelled(GitError):
    """git was stopped because `cancel` was set (see run)."""


_POLL = 0.05  # seconds between looks at `cancel` and the clock


def _communicate(proc: subprocess.Popen[bytes], label: str, cancel: threading.Event | None, settle: float,
                 timeout: float | None) -> tuple[bytes, bytes]:
    """proc.communicate(), polled so that `cancel` (after `settle` seconds) and `timeout` can stop git."""
    started = time.monotonic()
    stop_at: float | None = None
    while True:
        try:
            return proc.communicate(timeout=_POLL)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if cancel is not None and cancel.is_set():
            stop_at = now + settle if stop_at is None else stop_at
            if now >= stop_at:
                interrupts.stop(proc, group=True)
                raise Cancelled(f"{label} cancelled")
        if timeout is not None and now - started >= timeout:
            interrupts.stop(proc, group=True)
            raise GitError(f"{label} timed out after {timeout:g} s")


def error_for(args: Sequence[str], status: int, stderr: str, what: str | None = None, *,
              cwd: str | Path | None = None) -> GitError:
    """A one-line, credential-free GitError for a failed git command; `cwd`: the directory git ran in, which
    tells a refused repository git ran in from a remote (see ownership_error; None: outside any repository)."""
    lines = [ln.strip() for ln in redact(strip_credentials(stderr)).splitlines() if ln.strip()]
    # git prefixes the real reason with "fatal:" or "error:"; prefer that line, else its first words that
    # are no hint (advice that follows the reason: `hint: Disable this message with ...`)
    at = next((i for i, ln in enumerate(lines) if ln.startswith(("fatal:", "error:"))), len(lines) - 1)
    reason = lines[at] if at >= 0 and lines[at].startswith(("fatal:", "error:")) else _first_said(lines)
    if reason in _GENERIC_REASONS and at > 0:  # ssh's own reason ("Host key verification failed.") says more
        reason = lines[at - 1]
    # a program git started that is not there (a filter: `git-lfs filter-process: 1: git-lfs: not found`):
    # what follows from it ("packet write ... failed", "hung up") says less
    reason = next((ln for ln in lines[:at] if ln.endswith(_NOT_FOUND)), reason)
    refused = ownership_error(stderr, cwd=cwd)
    if refused is not None:
        return refused
    prompt = _PROMPT_RE.fullmatch(reason)
    if prompt:  # git's words when the server answers 401 to the credentials sent, or when none were sent
        reason = (f"{prompt.group('url')} asked for credentials: none were sent, or it refused those sent "
                  "(gitops never prompts for them)")
    # ssh's own words for a key it would not use (`Load key "K": bad permissions` / `invalid format`),
    # which the "Permission denied (publickey)" that follows does not tell
    load = next((ln for ln in lines[:at] if ln.startswith('Load key "')), None)
    if load is not None and load not in reason:
        reason = f"ssh: {load}; {reason}" if reason else f"ssh: {load}"
    config = _CONFIG_RE.match(reason) is not None
    if config:  # which file git could not read, when it said so only in a warning before (an include's)
        access = next((ln for ln in lines[:at] if ln.startswith("warning: unable to access")), None)
        reason += f" ({access})" if access is not None else ""
    label = what or f"git {args[0]}"
    message = f"{label} failed (exit {status})" + (f": {reason}" if reason else "")
    if config:
        return GitError(message, hint="every git command reads git's configuration: fix the file it names (or "
                        "the GIT_CONFIG_* variables)")
    if any(p in stderr for p in _AUTH_PATTERNS):
        if load is not None:
            hint = ("ssh ignores a private key that others can read: chmod 600 the key's file"
                    if load.endswith("bad permissions") else
                    "ssh could not load the key: give the private key's file (not the .pub), as ssh-keygen wrote it")
            return GitAuthError(message, hint=hint)
        return GitAuthError(message, hint="check the credentials (GITOPS_GIT_TOKEN, GITHUB_TOKEN or CI_JOB_TOKEN, "
                            "the URL's user-info or a credential helper) or --ssh-key, and their access")
    places = _written_places(args, cwd)
    said = next((words for words in _WRITE_REFUSED if words in stderr), None)
    if said is None and _failed_write(stderr):
        # git's words do not always tell a full disk: `failed to write new configuration file`, `unable to
        # write file`, `couldn't write ...main.lock`, even "Aborting commit due to empty commit message"
        # (its COMMIT_EDITMSG could not be written): the file systems it wrote to tell
        for place in places:
            free = _short_of_space(place)
            if free is not None:
                return GitError(f"{label} failed (exit {status}): the file system of {_name_place(place)} is "
                                f"full ({free}"
                                + (f"; git said: {reason}" if reason else "") + ")",
                                exit_code=EXIT_WRITE_FAILED, hint=_space_hint(place))
    if said is not None:  # a write the system refused: its cause, not the remote's
        place = next((p for p in places if _short_of_space(p) is not None), places[0])
        hint = _space_hint(place) if said not in _NOT_SPACE else \
            f"git could not write on the file system of {_name_place(place)} ({said})"
        return GitError(message, exit_code=EXIT_WRITE_FAILED, hint=hint)
    return GitError(message)


# git's words for a configuration it cannot read (a bad line, value or include; GIT_CONFIG_GLOBAL naming a
# directory): no command runs until it is fixed
_CONFIG_RE = re.compile(r"fatal: (bad (\w+ )?config |unknown error occurred while reading the configuration)")
_ADVICE = ("hint:", "warning:")  # what git writes around a reason given without "fatal:" or "error:"
_SAID_LINES = 4  # of such a reason, wrapped over lines by git (a list of paths may follow)


def _first_said(lines: list[str]) -> str:
    """git's reason when no line is "fatal:" or "error:": its first lines that are no hint or warning, as
    one line (git wraps `The following paths and/or pathspecs matched paths that exist outside of your
    sparse-checkout definition, ...` over three, then lists the paths), else its last line."""
    start = next((i for i, ln in enumerate(lines) if not ln.startswith(_ADVICE)), None)
    if start is None:
        return lines[-1] if lines else ""
    block: list[str] = []
    for ln in lines[start:]:
        if ln.startswith(_ADVICE):
            break
        block.append(ln)
    more = len(block) - _SAID_LINES
    return " ".join(block[:_SAID_LINES]) + (f" ... ({more} more lines)" if more > 0 else "")


# git's words for a write the system refused (strerror of errors.WRITE_FAILURES): exit 74, as gitops' own
_WRITE_REFUSED = (*(os.strerror(code) for code in sorted(WRITE_FAILURES - {errno.EBADF})),
                  "Out of diskspace")  # git's own words for a full disk under its index or objects
_NOT_SPACE = frozenset(os.strerror(code) for code in (errno.EROFS, errno.EIO))  # no space to free for those
# git's words for a failure of the remote or the way to it: a file system short of space is not its cause
_REMOTE_FAILURES = (
    "Could not resolve host", "unable to access", "Connection refused", "Connection timed out",
    "Could not read from remote repository", "does not appear to be a git repository", "Repository not found",
    "couldn't find remote ref", "remote rejected", "[rejected]", "remote: ", "The requested URL returned error",
    "Failed to connect", "Could not connect", "timed out", "SSL", "hung up", "early EOF", "unexpected disconnect",
)
# git's words for a write that failed without saying why (a full disk, among other causes)
_WRITE_WORDS = ("unable to write", "failed to write", "couldn't write", "could not write", "cannot write",
                "write error", "short write", "unable to create temporary", "Aborting commit due to empty commit")
# ... and for failures that are no write's, though a write's words may come with them
_NOT_A_WRITE = ("File exists", "not found in upstream", "cannot lock ref", "not a valid", "unknown revision")


def _failed_write(stderr: str) -> bool:
    """Do git's words say a write failed (for no reason given), so that a full file system may be why?  A
    lock another process holds (`index.lock': File exists`), a branch or ref that is not there, or a
    remote's failure (_REMOTE_FAILURES) is no full disk, however little space is left."""
    return (any(w in stderr for w in _WRITE_WORDS) and not any(w in stderr for w in _NOT_A_WRITE)
            and not any(p in stderr for p in _REMOTE_FAILURES))


LOW_SPACE = 1 << 20  # bytes: a file system with less free (or an eighth of a smaller one, or no inode free)
# is full for git's writes


def _written_places(args: Sequence[str], cwd: str | Path | None) -> list[Path]:
    """The directories whose file systems a git command may have written to: the one it ran in (a
    checkout, sync's cache; not `/`, where run_outside runs git), that repository's git dir, the existing
    parent of each absolute path among its arguments (`clone URL DEST`, `init DIR`), else TMPDIR."""
    places: list[Path] = []
    if cwd is not None and os.path.abspath(cwd) != "/":
        here = Path(os.path.abspath(cwd))
        places.append(here)
        top = work_tree_top(here)
        if top is not None:
            places.append(_git_dir(top))
    for arg in args:
        if arg.startswith("/"):
            where = Path(arg)
            while not where.exists() and where != where.parent:
                where = where.parent
            places.append(where)
    if not places:
        import tempfile

        places.append(Path(tempfile.gettempdir()))
    return list(dict.fromkeys(places))


def _git_dir(top: Path) -> Path:
    """The git dir of the work tree `top`: `.git`, or where a `.git` file (a linked worktree, a submodule)
    points."""
    dot_git = top / ".git"
    try:
        if dot_git.is_file():
            first = dot_git.read_text(errors="replace").split("\n", 1)[0]
            if first.startswith("gitdir: "):
                return (top / first[len("gitdir: "):].strip()).resolve()
    except OSError:
        pass
    return dot_git


def _short_of_space(place: Path) -> str | None:
    """What is short on the file system of `place` ("40 KiB free", "no inode free"), None when nothing is
    (LOW_SPACE free or more, an eighth of its size on a smaller one) or it cannot be told."""
    try:
        fs = os.statvfs(place)
    except OSError:
        return None
    root = os.geteuid() == 0  # root may write into the blocks and inodes a file system reserves (ext4's 5%)
    free = (fs.f_bfree if root else fs.f_bavail) * fs.f_frsize
    if free < min(LOW_SPACE, fs.f_blocks * fs.f_frsize // 8):  # a small one: an eighth
        return f"{free // 1024} KiB free"
    if fs.f_files and not (fs.f_ffree if root else fs.f_favail):  # f_files 0: no fixed number of inodes
        return "no inode free"
    return None


def _name_place(place: Path) -> str:
    """`place` as a hint names it: TMPDIR (where a deploy repo's clone goes) said so."""
    import tempfile

    tmp = Path(tempfile.gettempdir())
    below = place.relative_to(tmp).parts if place == tmp or tmp in place.parents else None
    ours = below is not None and (not below or below[0].startswith("gitops-"))  # TMPDIR, or a clone of ours
    return f"{tmp} (TMPDIR, where a deploy repo's clone goes)" if ours else str(place)


def _space_hint(place: Path) -> str:
    return f"free some space on the file system of {_name_place(place)}"


def work_tree_top(directory: Path) -> Path | None:
    """The top of the git work tree holding `directory`, as found on disk (the nearest of it and its
    parents with a `.git`), None outside one.  No git process: for checks that must stay cheap."""
    return next((d for d in (directory, *directory.parents) if (d / ".git").exists()), None)


def is_shallow(repo: str | Path) -> bool:
    return run(["rev-parse", "--is-shallow-repository"], cwd=repo, check=False).stdout.strip() == "true"


_ID_LENGTHS = {"sha1": 40, "sha256": 64}  # hex digits of an object id, by the repository's object format


def id_length(repo: str | Path) -> int:
    """The hex digits of a full object id in `repo`: 40, 64 in a SHA-256 repository."""
    res = run(["rev-parse", "--show-object-format"], cwd=repo, check=False)
    return _ID_LENGTHS.get(res.stdout.strip(), 40)


def is_ancestor(repo: str | Path, ancestor: str, descendant: str) -> bool:
    return run(["merge-base", "--is-ancestor", ancestor, descendant], cwd=repo, check=False).status == 0


APP_CHECKOUT_HINT = "run inside the app's git repository or pass --repo"


def require_directory(path: Path) -> None:
    """UsageError (exit 2) naming `path` as given when it is no directory (missing, or a file)."""
    if not path.is_dir():
        raise UsageError(f"{path}: no such directory" if not path.exists() else f"{path}: not a directory")


def toplevel(path: str | Path, hint: str = APP_CHECKOUT_HINT) -> Path:
    """The work tree root containing `path`: DirtyTreeError (exit 4, with `hint`: what to give instead) when
    it is in no work tree (git says "not a git repository", or it is a bare one), GitError (exit 10) with
    git's reason when git fails otherwise: it refuses it as another user's (see ownership_error), it cannot
    read a configuration file (error_for); UsageError (exit 2) when it is no directory (GitPython would run
    git in the current directory instead)."""
    p = Path(path)
    require_directory(p)
    args = ["rev-parse", "--show-toplevel"]
    res = run(args, cwd=p, check=False)
    if res.status != 0 and any(words in res.stderr for words in _NOT_A_CHECKOUT):
        raise DirtyTreeError(f"{p}: not a git checkout", hint=hint)
    if res.status != 0:  # another user's repository, a configuration git cannot read: git's own words
        raise error_for(args, res.status, res.stderr, what=f"git rev-parse in {p}", cwd=p)
    return Path(res.path())


# git's words for a directory that is in no work tree: no repository found, a bare one, or a git dir
_NOT_A_CHECKOUT = ("not a git repository", "must be run in a work tree")


# git (>= 2.35.2) refuses a repository owned by another user unless safe.directory names it:
# "fatal: detected dubious ownership in repository at '/path'"
_DUBIOUS_RE = re.compile(r"detected dubious ownership in repository at '(?P<path>.*)'")


def ownership_error(stderr: str, *, cwd: str | Path | None = None) -> GitError | None:
    """The GitError (exit 10) for git's refusal of a repository another user owns (its safe.directory
    check), naming the directory, its owner and the user gitops runs as, with the setting that trusts it;
    None when `stderr` is not that refusal.  `cwd`: the directory git ran in (None: outside any repository,
    so the refused one is a remote: the hint that holds for either, the global config).

    Which setting works depends on the repository refused.  The one git ran in (a checkout): the global
    config or GIT_CONFIG_* environment entries alike.  A remote reached by path (a file:// URL, a local
    origin), refused by the upload-pack or receive-pack git starts for it: only the global (or system)
    config -- git clears GIT_CONFIG_* (`git rev-parse --local-env-vars`) for that process."""
    found = _DUBIOUS_RE.search(stderr)
    if found is None:
        return None
    where = found.group("path")
    quoted = shlex.quote(where)
    command = f"git config --global --add safe.directory {quoted}"  # as git names it (a relative origin's too)
    found_at = Path(cwd or "/", where)  # git names a remote given as a relative path relative to where it ran
    if cwd is not None and _ran_in(found_at, Path(cwd)):
        hint = f"if you trust it: {command} (in CI, as environment{_env_entry('safe.directory', quoted)})"
    else:
        hint = (f"if you trust it: {command} (in CI too: run that first; git ignores GIT_CONFIG_* variables for "
                "a remote it reaches by path)")
    return GitError(
        f"{where}: git refuses this repository (\"dubious ownership\"): {_owner_situation(found_at)}",
        hint=hint)


def _ran_in(refused: Path, cwd: Path) -> bool:
    """Is `refused` the repository git finds from `cwd` (cwd itself or the nearest of its parents holding
    one), not a remote it reached from there?"""
    here, there = cwd.resolve(), refused.resolve()
    if here != there and there not in here.parents:
        return False
    below = [d for d in (here, *here.parents) if there in d.parents]  # between cwd and refused: a nearer one?
    return not any((d / ".git").exists() for d in below)


def _env_entry(key: str, value: str) -> str:
    """The GIT_CONFIG_* variables that add `key = value` (already quoted for the shell) to those of this
    process's environment: the next entry after the user's, never one replacing theirs."""
    count = os.environ.get("GIT_CONFIG_COUNT", "").strip()
    n = int(count) if count.isdigit() else 0
    entry = f"GIT_CONFIG_COUNT={n + 1} GIT_CONFIG_KEY_{n}={key} GIT_CONFIG_VALUE_{n}={value}"
    return f", add an entry after the {n} already set: {entry}" if n else f": {entry}"


def _owner_situation(where: Path) -> str:
    """`owned by NAME (uid N), gitops runs as NAME (uid M)`: the owner of the directory, or of its .git
    when the directory itself is the user's."""
    me = os.geteuid()
    owner: int | None = None
    for candidate in (where, where / ".git"):
        try:
            owner = candidate.stat().st_uid
        except OSError:
            continue
        if owner != me:
            break
    if owner is None or owner == me:
        return f"not owned by {_user(me)}, who runs gitops"
    return f"owned by {_user(owner)}, gitops runs as {_user(me)}"


def _user(uid: int) -> str:
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:  # no passwd entry (a container's arbitrary uid)
        return f"uid {uid}"


def git_paths(repo: str | Path, *names: str) -> list[Path]:
    """Where files of repo's git dir are (`git rev-parse --git-path NAME`, one call for all): right in a
    linked worktree or a submodule too, where `.git` is a file, not the directory."""
    res = run(["rev-parse", *(arg for name in names for arg in ("--git-path", name))], cwd=repo, strip=False)
    return [p if p.is_absolute() else Path(repo) / p for p in map(Path, res.path_lines())]
