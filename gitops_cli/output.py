"""Output conventions: results on stdout, progress and logs on stderr.

- `result(text)` prints a machine-usable line on stdout (`TAG=$(gitops tag)` works in any shell).
- `info`/`warn`/`step` go to stderr; colour only on a TTY and never when NO_COLOR is set.
- `live_progress()` tells whether live progress (bars, spinners) is drawn: only when stderr is an
  interactive terminal and NO_COLOR is not set; otherwise the plain step lines are the progress.
  `status(text)` is a spinner for a long step without measurable progress (a clone).

rich is imported lazily so that light verbs (`gitops --version`, `gitops lint`) start fast.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_err_console: Console | None = None
_secrets: set[str] = set()
MIN_SECRET_LENGTH = 3  # shorter values are not secrets anyone could keep (and would mask everything)
MIN_ANYWHERE_LENGTH = 8  # shorter secrets are masked only as a whole word, not inside other words
_short_patterns: dict[str, re.Pattern[str]] = {}


def register_secret(value: str | None) -> None:
    """Remember a secret so that no message this module prints can contain it (replaced by ***): as it
    is, as repr() writes it inside quotes (a message shows values with !r: `\\`, `\\'`, `\\n`), and as
    printable() and quoted_path() write it (a line made printable, or a quoted file name, before it is
    masked: a tab as `\\t`, `"` as `\\"`).  JSON is masked string by string before it is encoded
    (json_text): its escapes (`\\u00e4`) need no form of their own."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        for form in {value, repr(value)[1:-1], repr(value + '"')[1:-2],  # repr's either quote style
                     printable(value), quoted_path(value, always=True)[1:-1]}:
            _add_secret(form)


def _add_secret(value: str) -> None:
    _secrets.add(value)
    if len(value) < MIN_ANYWHERE_LENGTH:
        # a whole word: between start/end, whitespace, quotes or `=`; so that a password `app` or
        # `sha256` does not turn `sample-app` or `@sha256:...` into `sample-***` (nor `app:dev@sha256`
        # into `app:***@`).  Also where a credential sits in a URL: its user-info (`//user:pw@`,
        # `//token@`) or a query value (`?token=pw`), whatever follows them.
        v = re.escape(value)
        _short_patterns[value] = re.compile(
            rf"(?<![^\s'\"=]){v}(?![^\s'\"])"
            rf"|(?<=//){v}(?=[:@])|(?P<user>//[^/@\s:]*:){v}(?=@)"
            rf"|(?P<key>[?&;][^=&;#\s/]*=){v}(?=$|[&;,#)/.'\"\s])")


def _masked(match: re.Match[str]) -> str:
    return (match.group("user") or match.group("key") or "") + "***"


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***: one of MIN_ANYWHERE_LENGTH characters or
    more wherever it occurs, a shorter one where it stands as a whole word."""
    for secret in sorted(_secrets, key=len, reverse=True):
        pattern = _short_patterns.get(secret)
        text = pattern.sub(_masked, text) if pattern is not None else text.replace(secret, "***")
    return text


def no_color() -> bool:
    return "NO_COLOR" in os.environ and os.environ["NO_COLOR"] != ""


def is_interactive(stream: Any = None) -> bool:
    """True when live progress (spinners, bars) should be drawn on `stream` (default stderr)."""
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def live_progress() -> bool:
    """Progress bars and spinners: on an interactive terminal only, and never with NO_COLOR."""
    return is_interactive() and not no_color()


@contextmanager
def status(text: str) -> Iterator[None]:
    """A spinner with `text` on stderr while a long step runs, erased when it ends (live_progress only:
    elsewhere the step line printed before it is all the progress there is)."""
    if not live_progress():
        yield
        return
    with err_console().status(markup_line(text), spinner="dots"):
        yield


def reader_gone(fd: int) -> None:
    """The reader of descriptor `fd` (a pipe) went away: point it at /dev/null, so what is written there
    from now on -- by gitops, or by a command that inherits it -- is dropped instead of failing (EPIPE)
    or killing the writer (SIGPIPE).  See cli._ReaderGone and apptest.run_command."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        tty = is_interactive(sys.stderr)
        _err_console = Console(
            stderr=True,
            force_terminal=tty,
            no_color=no_color() or not tty,
            highlight=False,
            soft_wrap=True,
            emoji=False,
        )
    return _err_console


_UNPRINTABLE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """`text` as one line a terminal shows as it is: line breaks and tabs as `\\n`, `\\r`, `\\t`, other
    control characters (C0, DEL, C1: escape sequences among them) and Unicode line separators as
    `\\xNN`/`\\uNNNN`, a byte that is not UTF-8 (kept as a lone surrogate, surrogateescape) as `\\xNN`.
    Backslashes stay as they are, so that text already made printable stays the same."""
    return _UNPRINTABLE_RE.sub(lambda found: _escaped(found.group()), text)


def _escaped(char: str) -> str:
    """One character as printable() and the output streams (ESCAPE_ERRORS) show it escaped."""
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


ESCAPE_ERRORS = "gitops.escape"  # a codec error handler: what an output stream's encoding cannot encode


def _escape_unencodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(_escaped(char) for char in exc.object[exc.start:exc.end]), exc.end


codecs.register_error(ESCAPE_ERRORS, _escape_unencodable)


def escape_unencodable(stream: Any) -> None:
    """Make `stream` (stdout, stderr) write what its encoding cannot encode escaped as printable() does
    (`ä` as `\\xe4` under LC_ALL=C, a byte that is not UTF-8 as `\\xff`), instead of failing: every
    verb's output stays readable in any locale."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors=ESCAPE_ERRORS)


_QUOTED_PATH_RE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]')
_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
              '"': '\\"', "\\": "\\\\"}


def quoted_path(path: str, always: bool = False) -> str:
    """A file name as git writes it (quote_c_style): as it is, unless it holds a character printable()
    escapes, a `"` or a `\\`; then in double quotes, with C escapes (`\\n`, `\\t`, `\\"`, `\\\\`) and
    the UTF-8 bytes of any other such character in octal (`\\033`; a byte that is not UTF-8 as itself),
    which `git apply` reads back to the exact name.  Other non-ASCII characters stay as they are (git's
    `core.quotePath=false`).  `always`: in double quotes even when nothing needs escaping."""
    def escape(found: re.Match[str]) -> str:
        char = found.group()
        if char in _C_ESCAPES:
            return _C_ESCAPES[char]
        try:
            raw = char.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate that stands for no byte
            raw = char.encode("utf-8", "surrogatepass")
        return "".join(f"\\{byte:03o}" for byte in raw)

    if not always and not _QUOTED_PATH_RE.search(path):
        return path
    return '"' + _QUOTED_PATH_RE.sub(escape, path) + '"'


# repr() -- how a message quotes a value (`{value!r}`, settings.Names, click's usage errors) -- writes a byte
# that is not UTF-8 (a lone surrogate, surrogateescape: from the command line, the environment, a file name)
# as `\udcff`; a backslash before it that repr doubled (`\\udcff`: the text `\udcff` itself) is no escape
_REPR_BYTE_RE = re.compile(r"(?<!\\)((?:\\\\)*)\\udc([89a-f][0-9a-f])")


def repr_bytes(text: str) -> str:
    """`text` (a message) with repr()'s escape of a byte that is not UTF-8, `\\udcff`, written as printable()
    writes that byte, `\\xff`: the one form for such a byte wherever a message shows it."""
    return _REPR_BYTE_RE.sub(r"\1\\x\2", text)


def _line(text: str) -> str:
    """A message line as printed: secrets masked (on the raw text), then made one printable line (a byte
    that is not UTF-8 as `\\xff`, in a quoted value too: see repr_bytes)."""
    return printable(repr_bytes(redact(text)))


def _write(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _plain(text: str) -> None:
    _write(redact(text))


def _message(label: str, style: str, text: str) -> None:
    """`label: text` on stderr as exactly one line (see printable), `label` styled on a TTY."""
    if is_interactive() and not no_color():
        err_console().print(f"[{style}]{label}:[/] {markup_line(text)}")
    else:
        _write(f"{label}: {_line(text)}")


def info(text: str) -> None:
    """Progress on stderr (plain text; no markup interpretation): each line of `text` printable."""
    text = "\n".join(printable(repr_bytes(line)) for line in redact(text).split("\n"))
    if is_interactive() and not no_color():
        err_console().print(text, markup=False)
    else:
        _write(text)


def step(text: str) -> None:
    """A step heading on stderr (one line), bold on a TTY."""
    if is_interactive() and not no_color():
        err_console().print(f"[bold cyan]==>[/] [bold]{markup_line(text)}[/]")
    else:
        _write(f"==> {_line(text)}")


def warn(text: str) -> None:
    """A warning on stderr: one line."""
    _message("warning", "yellow", text)


def error(text: str, hint: str | None = None, details: Sequence[str] = ()) -> None:
    """An error on stderr: exactly one `error:` line and at most one `hint:` line, whatever `text` and
    `hint` hold (a value with a line break or an escape sequence is shown escaped: see printable).
    `details` (a failed build's last log lines) come first, one printable line each."""
    for line in details:
        _write(_line(line))
    _message("error", "bold red", text)
    if hint:
        _message("hint", "dim", hint)


def result(text: str, trusted: bool = False) -> None:
    """A result line on stdout.  `trusted`: built only from values that hold no secret (a tag, an image
    reference, a digest), printed as is: redaction would corrupt them when a short password happens to
    be a word of them (the line is for machines: `REF=$(gitops publish ...)`)."""
    sys.stdout.write((text if trusted else redact(text)) + "\n")
    sys.stdout.flush()


def result_json(data: Any, trusted: bool = False) -> None:
    """`data` as JSON on stdout (json_text), secrets masked unless `trusted` (see result)."""
    sys.stdout.write(json_text(data, masked=not trusted) + "\n")
    sys.stdout.flush()


def json_text(data: Any, masked: bool = True) -> str:
    """`data` as JSON, indented, every string in it faithful (json_str): the one JSON encoding of every
    verb's `--output json` and of `lint --format json|sarif`.  A value JSON has no type for is its str().
    `masked`: every string -- keys and values -- has its secrets masked (redact) BEFORE it is encoded:
    JSON escapes `"`, `\\`, control and non-ASCII characters (`ä` as `\\u00e4`), and a secret masked in
    the encoded text would no longer be found there."""
    def text(value: str) -> str:
        return json_str(redact(value) if masked else value)

    def strings(item: Any) -> Any:
        if isinstance(item, str):
            return text(item)
        if isinstance(item, dict):
            return {text(key) if isinstance(key, str) else key: strings(value) for key, value in item.items()}
        if isinstance(item, (list, tuple)):
            return [strings(value) for value in item]
        return item

    return json.dumps(strings(data), indent=2, sort_keys=False, default=lambda value: text(str(value)))


_ESCAPED_BYTES_RE = re.compile("[\udc80-\udcff]+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def json_str(text: str) -> str:
    """`text` as JSON should carry it: no lone surrogate, which strict JSON readers refuse or mangle.
    A run of surrogateescape's stand-ins for bytes (a file name's, read under an ASCII file system
    encoding, LC_ALL=C without UTF-8 mode: `é.yaml` as `\\udcc3\\udca9.yaml`) is taken back to its bytes
    and decoded as UTF-8 where they are UTF-8 (`é.yaml`); a byte that is not UTF-8 is written as
    printable() writes it, `\\xff`, and so is any other lone surrogate (`\\ud800`).  Text decoded as
    UTF-8 already (branch names, git's user.name) holds no surrogate and stays as it is."""
    if not _SURROGATE_RE.search(text):
        return text
    text = _ESCAPED_BYTES_RE.sub(
        lambda found: found.group().encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape"), text)
    return _SURROGATE_RE.sub(lambda found: _escaped(found.group()), text)


def print_diff(diff: str) -> None:
    """A unified diff on stdout, coloured on a TTY (unless NO_COLOR)."""
    diff = redact(diff)
    if not (sys.stdout.isatty() and not no_color()):
        sys.stdout.write(diff)
        sys.stdout.flush()
        return
    colours = (("+++", "1"), ("---", "1"), ("diff ", "1"), ("@@", "36"), ("+", "32"), ("-", "31"))
    for line in diff.splitlines(True):
        code = next((c for prefix, c in colours if line.startswith(prefix)), None)
        sys.stdout.write(f"\033[{code}m{line.rstrip(chr(10))}\033[0m\n" if code else line)
    sys.stdout.flush()


def log_line(text: str) -> None:
    """A raw log line streamed from a build, push or command (stderr, never interpreted as markup)."""
    _plain(text.rstrip("\n"))


def markup_line(text: str) -> str:
    """`text` for rich markup: secrets masked, one printable line (see printable), markup escaped."""
    from rich.markup import escape

    return escape(_line(text))
