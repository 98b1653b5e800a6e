"""`.dockerignore` as `docker build` applies it: which files of a build context go to the engine.

A port of what the docker CLI does for the legacy builder (`DOCKER_BUILDKIT=0 docker build`), which
filters the context on the client with the Go code of moby:
- `read_patterns`: patternmatcher/ignorefile.ReadAll: lines split at `\\n` (a final `\\r` dropped), a
  UTF-8 byte order mark dropped from the first line, lines starting with `#` skipped before spaces are
  trimmed, the rest trimmed (Go's `strings.TrimSpace`), cleaned (`filepath.Clean`), a leading `/`
  dropped, `!` kept in front;
- `Matcher`: patternmatcher.New and its Pattern: cleaned again, `!` for an exclusion, checked with
  `filepath.Match`; matched by exact string, prefix (`dir/**`), suffix (`**/name`) or a regular
  expression built from the pattern (`*` is `[^/]*`, `?` is `[^/]`, `**` any number of directories;
  `[...]` and `\\x` go through to Go's regexp, so `[^R]` is "not R", `[!R]` is "! or R" and `\\d` is a
  digit, as docker has them) -- compiled when first needed, as docker does, so an invalid expression
  fails only a build that gets to use it;
- `BuildContext.selection`: the CLI's selection (build.TrimBuildFilesFromExcludes,
  archive.TarWithOptions): the `.dockerignore` and the Dockerfile are always sent (the engine removes
  them afterwards if the patterns match them, see `removal`), and the walk leaves out an excluded
  directory unless an exclusion pattern starts with it (`sent` answers for one file); before it, the
  check build.ValidateContextDirectory makes.

Names are compared as docker compares them, as bytes: file names and patterns are `str` decoded from
UTF-8 with `surrogateescape` (an invalid byte is one lone surrogate, as Go reads it as one
U+FFFD), so a context or `.dockerignore` that is not UTF-8 is filtered as docker filters it.

Go's regular expressions (RE2 syntax) are translated into Python's (`_Re2`).  Unicode classes
(`\\p{Greek}`) and flags cannot be translated exactly: a pattern using them is refused (exit 2) when it
is first used.

The engine itself removes the `.dockerignore` and the Dockerfile after it read them (moby
builder/remotecontext.removeDockerfile), with its own version's matcher: up to Docker 20.10 a plain
regular expression for every pattern (no escaping of `+(){}|`, no exact/prefix/suffix shortcuts,
only one parent directory checked).  `removal` answers for every version, or says it cannot.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from gitops_cli.errors import UsageError
from gitops_cli.output import printable

MAX_LINE = 64 * 1024  # bufio.Scanner's largest token: a longer line is an error for docker
_BOM = b"\xef\xbb\xbf"
# Go's unicode.IsSpace, which strings.TrimSpace trims (Python's str.strip also trims \x1c-\x1f)
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"
# patternmatcher's shouldEscape: regexp characters with no glob meaning.  Its source lists `.+()|{}$`, but
# its bitmap keeps only those below 64: `|{}` go through to the regexp (docker 28 matches `x{2}*` to `xx`)
_ESCAPED = frozenset(".+()$")
_ESCAPED_LEGACY = frozenset(".$")  # the same in Docker 20.10's pkg/fileutils


def decode(name: bytes) -> str:
    """A file name or pattern as compared here: UTF-8, an invalid byte kept as a lone surrogate."""
    return name.decode("utf-8", "surrogateescape")


def encode(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def go_trim_space(text: str) -> str:
    return text.strip(_GO_SPACE)


def go_clean(path: str) -> str:
    """Go's `filepath.Clean` (Unix): the shortest equivalent path by lexical processing."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


class DockerignoreError(UsageError):
    """A `.dockerignore` docker cannot build with either (or gitops cannot match exactly): exit 2."""


@dataclass(frozen=True)
class Line:
    """A pattern as read from `.dockerignore` (`!` in front for an exclusion), with its line number;
    line 0 is a pattern docker adds itself (`!Dockerfile`)."""

    number: int
    text: str


def read_patterns(data: bytes, where: str = ".dockerignore") -> list[Line]:
    """The patterns of a `.dockerignore` with the content `data`, as ignorefile.ReadAll reads them."""
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the text after the last line break, when there is any, is a last line
        lines.pop()
    patterns: list[Line] = []
    for number, raw in enumerate(lines, start=1):
        if len(raw) >= MAX_LINE:
            raise DockerignoreError(f"{where} line {number}: longer than {MAX_LINE - 1} bytes, which docker "
                                    "cannot read either", hint="shorten the line")
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        text = decode(raw)
        if text.startswith("#"):
            continue
        text = go_trim_space(text)
        if not text:
            continue
        invert = text.startswith("!")
        if invert:
            text = go_trim_space(text[1:])
        if text:
            text = go_clean(text)
            if len(text) > 1 and text.startswith("/"):
                text = text[1:]
        patterns.append(Line(number, "!" + text if invert else text))
    return patterns


# --- filepath.Match's syntax check ----------------------------------------------------------------------
def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_range, i = False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _class_char(chunk: str) -> tuple[str, str] | None:
    """One character of a `[...]` class and what follows it (Go's getEsc); None when malformed."""
    if not chunk or chunk[0] in "-]":
        return None
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            return None
    if "\udc80" <= chunk[0] <= "\udcff":  # an invalid UTF-8 byte
        return None
    return (chunk[0], chunk[1:]) if len(chunk) > 1 else None


def _match_chunk(chunk: str, name: str) -> tuple[str | None, bool]:
    """Go's matchChunk: (the rest of `name` when the chunk matches its start, else None; whether the
    chunk is well-formed -- checked to its end even after a mismatch)."""
    failed = False
    while chunk:
        if not name:
            failed = True
        ch = chunk[0]
        if ch == "[":
            char = "" if failed else "\ufffd" if "\udc80" <= name[0] <= "\udcff" else name[0]
            name = name if failed else name[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            found, ranges = False, 0
            while True:
                if chunk.startswith("]") and ranges:
                    chunk = chunk[1:]
                    break
                low = _class_char(chunk)
                if low is None:
                    return None, False
                high, chunk = low
                if chunk[0] == "-":
                    upper = _class_char(chunk[1:])
                    if upper is None:
                        return None, False
                    high, chunk = upper
                found = found or (not failed and low[0] <= char <= high)
                ranges += 1
            if found == negated:
                failed = True
        elif ch == "?":
            if not failed:
                failed = name[0] == "/"
                name = name[1:]
            chunk = chunk[1:]
        else:
            if ch == "\\":
                chunk = chunk[1:]
                if not chunk:
                    return None, False
            if not failed:
                failed = chunk[0] != name[0]
                name = name[1:]
            chunk = chunk[1:]
    return (None if failed else name), True


def go_match(pattern: str, name: str) -> bool | None:
    """Go's `filepath.Match` (Unix): whether `name` matches `pattern`, None for a malformed pattern
    (ErrBadPattern).  Only the chunks it gets to are checked: it stops at the first that does not match."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name
        rest, ok = _match_chunk(chunk, name)
        if rest is not None and (rest == "" or pattern):
            name = rest
            continue
        if not ok:
            return None
        if star:
            advanced = False
            for i in range(len(name)):
                if name[i] == "/":
                    break
                rest, ok = _match_chunk(chunk, name[i + 1:])
                if rest is not None:
                    if not pattern and rest:
                        continue
                    name, advanced = rest, True
                    break
                if not ok:
                    return None
            if advanced:
                continue
        return False
    return name == ""


def match_syntax_ok(pattern: str) -> bool:
    """Whether `filepath.Match(pattern, ".")`, as patternmatcher.New calls it, returns no error."""
    return go_match(pattern, ".") is not None


# --- Go regular expressions in Python -----------------------------------------------------------------
class PatternUnsupported(Exception):
    """Go regexp syntax that has no exact Python equivalent here."""


class PatternInvalid(Exception):
    """What Go's regexp.Compile refuses."""


_MAX_RUNE = 0x10FFFF
_SURROGATE_ESCAPES = (0xDC80, 0xDCFF)  # the invalid bytes of a name, each of which Go reads as U+FFFD
_NAME_CHARS = [(0, 0xD7FF), _SURROGATE_ESCAPES, (0xE000, _MAX_RUNE)]  # what a decoded name can hold
_Ranges = list[tuple[int, int]]
_DIGIT: _Ranges = [(0x30, 0x39)]
_SPACE: _Ranges = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]
_WORD: _Ranges = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_PERL = {"d": _DIGIT, "s": _SPACE, "w": _WORD}
_POSIX: dict[str, _Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)], "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x00, 0x7F)], "blank": [(0x09, 0x09), (0x20, 0x20)], "cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "digit": _DIGIT, "graph": [(0x21, 0x7E)], "lower": [(0x61, 0x7A)], "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)], "space": [(0x09, 0x0D), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)], "word": _WORD, "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}


def _merge(ranges: _Ranges) -> _Ranges:
    out: _Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _negate(ranges: _Ranges) -> _Ranges:
    out: _Ranges = []
    nxt = 0
    for lo, hi in _merge(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_RUNE:
        out.append((nxt, _MAX_RUNE))
    return out


def _bmp_size(ranges: _Ranges) -> int:
    return sum(max(0, min(hi, 0xFFFF) - lo + 1) for lo, hi in ranges)


def _class_body(ranges: _Ranges) -> str:
    return "".join(f"\\U{lo:08x}" if lo == hi else f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges)


def _python_class(ranges: _Ranges) -> str:
    """A Python class matching, in a decoded name, the characters Go's class matches: Go never sees a
    surrogate (an invalid byte is U+FFFD to it), so surrogates are members exactly when U+FFFD is.

    A decoded name holds no other surrogate (`encode` refuses one), so those are left to whichever form
    is cheaper to compile: Python's compiler walks every character of the Basic Multilingual Plane a
    class lists, so `[^/]` is written `[^/]`, not as the ranges of everything else (5 ms a pattern)."""
    ranges = _merge(ranges)
    fffd = any(lo <= 0xFFFD <= hi for lo, hi in ranges)
    kept: _Ranges = []
    for lo, hi in ranges:
        if lo < 0xD800:
            kept.append((lo, min(hi, 0xD7FF)))
        if hi > 0xDFFF:
            kept.append((max(lo, 0xE000), hi))
    if fffd:
        kept.append(_SURROGATE_ESCAPES)
    kept = _merge(kept)
    if not kept:
        return "(?!)"
    if len(kept) == 1 and kept[0][0] == kept[0][1]:
        return re.escape(chr(kept[0][0]))
    # the characters of a name the class does not match (its complement but the surrogates no name holds)
    outside = [(max(lo, low), min(hi, high)) for lo, hi in _negate(kept) for low, high in _NAME_CHARS
               if max(lo, low) <= min(hi, high)]
    if not outside:
        return "[\\s\\S]"
    if _bmp_size(outside) < _bmp_size(kept):
        return f"[^{_class_body(outside)}]"
    return f"[{_class_body(kept)}]"


def _is_hex(ch: str) -> bool:
    return ch in "0123456789abcdefABCDEF"


class _Re2:
    """Go's regexp/syntax parser (Perl flags, as regexp.Compile), writing a Python expression."""

    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def translate(self) -> str:
        out = self._alternation()
        if self.i < len(self.text):  # only a `)` stops an alternation early
            raise PatternInvalid("unexpected )")
        return out

    def _peek(self, k: int = 0) -> str:
        return self.text[self.i + k] if self.i + k < len(self.text) else ""

    def _alternation(self) -> str:
        branches = [self._concatenation()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._concatenation())
        return "|".join(branches)

    def _concatenation(self) -> str:
        items: list[str] = []
        last: str | None = None  # the item the next repetition applies to (None: nothing to repeat)
        repeated = False  # the previous token was a repetition
        while self.i < len(self.text) and self._peek() not in "|)":
            repeat = self._repetition()
            if repeat is not None:
                if repeated:
                    raise PatternInvalid("invalid nested repetition operator")
                if last is None:
                    raise PatternInvalid("missing argument to repetition operator")
                items[-1] = f"(?:{last}){repeat}"
                repeated = True
                continue
            repeated = False
            last = self._atom()
            items.append(last)
        return "".join(items)

    def _repetition(self) -> str | None:
        ch = self._peek()
        if ch in ("*", "+", "?"):
            self.i += 1
            op = ch
        elif ch == "{":
            parsed = self._braces()
            if parsed is None:
                return None
            op = parsed
        else:
            return None
        if self._peek() == "?":
            self.i += 1
            op += "?"
        return op

    def _int(self, j: int) -> tuple[int, int] | None:
        start = j
        while j < len(self.text) and self.text[j].isascii() and self.text[j].isdigit():
            j += 1
        digits = self.text[start:j]
        if not digits or (len(digits) > 1 and digits[0] == "0"):
            return None
        return (int(digits) if len(digits) <= 8 else -1), j

    def _braces(self) -> str | None:
        """`{n}`, `{n,}` or `{n,m}` at the cursor (consumed), None for a literal `{`."""
        parsed = self._int(self.i + 1)
        if parsed is None:
            return None
        low, j = parsed
        high: int | None = low
        if j < len(self.text) and self.text[j] == ",":
            j += 1
            if j < len(self.text) and self.text[j] == "}":
                high = None
            else:
                parsed = self._int(j)
                if parsed is None:
                    return None
                high, j = parsed
                if high < 0:
                    low = -1
        if j >= len(self.text) or self.text[j] != "}":
            return None
        if low < 0 or low > 1000 or (high is not None and (high > 1000 or low > high)):
            raise PatternInvalid("invalid repeat count")
        self.i = j + 1
        return f"{{{low}}}" if high == low else f"{{{low},}}" if high is None else f"{{{low},{high}}}"

    def _atom(self) -> str:
        ch = self._peek()
        if ch == "(":
            return self._group()
        if ch == "[":
            return self._class()
        if ch == "^":
            self.i += 1
            return r"\A"
        if ch == "$":
            self.i += 1
            return r"\Z"
        if ch == ".":
            self.i += 1
            return "."  # any character but \n, as Go's (a lone surrogate is Go's U+FFFD)
        if ch == "\\":
            return self._escape_atom()
        self.i += 1
        return _python_class([(ord(ch), ord(ch))])

    def _group(self) -> str:
        self.i += 1
        if self._peek() == "?":
            rest = self.text[self.i + 1:]
            name = re.match(r"P?<(\w+)>", rest, re.ASCII)
            if name is not None:
                self.i += 1 + name.end()
            elif rest.startswith(":"):
                self.i += 2
            else:
                raise PatternUnsupported("regular-expression flags (?...)")
        inner = self._alternation()
        if self._peek() != ")":
            raise PatternInvalid("missing closing )")
        self.i += 1
        return f"(?:{inner})"

    def _escape_atom(self) -> str:
        nxt = self._peek(1)
        simple = {"A": r"\A", "z": r"\Z", "b": r"\b", "B": r"\B"}
        if nxt in simple:
            self.i += 2
            return simple[nxt]
        if nxt == "C":
            raise PatternInvalid("invalid escape sequence \\C")
        if nxt == "Q":
            end = self.text.find("\\E", self.i + 2)
            literal = self.text[self.i + 2:] if end < 0 else self.text[self.i + 2:end]
            self.i = len(self.text) if end < 0 else end + 2
            return "".join(_python_class([(ord(c), ord(c))]) for c in literal)
        if nxt in ("p", "P"):
            raise PatternUnsupported("Unicode classes \\p")
        perl = self._perl_class()
        if perl is not None:
            return _python_class(perl)
        code = self._escape()
        return _python_class([(code, code)])

    def _perl_class(self) -> _Ranges | None:
        """`\\d \\D \\s \\S \\w \\W` at the cursor (consumed)."""
        if self._peek() != "\\" or self._peek(1).lower() not in _PERL:
            return None
        letter = self._peek(1)
        self.i += 2
        ranges = _PERL[letter.lower()]
        return _negate(ranges) if letter.isupper() else list(ranges)

    def _escape(self) -> int:
        """The code point of an escape (`\\x41`, `\\n`, `\\.`) at the cursor (consumed)."""
        self.i += 1
        if self.i >= len(self.text):
            raise PatternInvalid("trailing backslash at end of expression")
        ch = self.text[self.i]
        self.i += 1
        if ch.isascii() and not ch.isalnum():
            return ord(ch)
        if ch in "01234567":
            if ch != "0" and not ("0" <= self._peek() <= "7"):
                raise PatternInvalid("invalid escape sequence")  # a back reference
            code = int(ch)
            for _ in range(2):
                if not ("0" <= self._peek() <= "7"):
                    break
                code = code * 8 + int(self._peek())
                self.i += 1
            return code
        if ch == "x":
            if self._peek() == "{":
                end = self.text.find("}", self.i)
                digits = self.text[self.i + 1:end] if end > 0 else ""
                if not digits or not all(_is_hex(c) for c in digits) or int(digits, 16) > _MAX_RUNE:
                    raise PatternInvalid("invalid escape sequence")
                self.i = end + 1
                return int(digits, 16)
            digits = self.text[self.i:self.i + 2]
            if len(digits) < 2 or not all(_is_hex(c) for c in digits):
                raise PatternInvalid("invalid escape sequence")
            self.i += 2
            return int(digits, 16)
        controls = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if ch in controls:
            return controls[ch]
        raise PatternInvalid("invalid escape sequence")

    def _class(self) -> str:
        self.i += 1
        negated = self._peek() == "^"
        if negated:
            self.i += 1
        ranges: _Ranges = []
        first = True
        while first or self._peek() != "]":
            if self.i >= len(self.text):
                raise PatternInvalid("missing closing ]")
            first = False
            if self.text.startswith("[:", self.i):
                end = self.text.find(":]", self.i + 2)
                if end >= 0:
                    name = self.text[self.i + 2:end]
                    negate = name.startswith("^")
                    group = _POSIX.get(name[1:] if negate else name)
                    if group is None:
                        raise PatternInvalid("invalid character class range")
                    ranges += _negate(group) if negate else group
                    self.i = end + 2
                    continue
            if self._peek() == "\\" and self._peek(1) in ("p", "P"):
                raise PatternUnsupported("Unicode classes \\p")
            perl = self._perl_class()
            if perl is not None:
                ranges += perl
                continue
            low = self._class_char()
            high = low
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.i += 1
                high = self._class_char()
                if high < low:
                    raise PatternInvalid("invalid character class range")
            ranges.append((low, high))
        self.i += 1
        return _python_class(_negate(ranges) if negated else ranges)

    def _class_char(self) -> int:
        if self.i >= len(self.text):
            raise PatternInvalid("missing closing ]")
        if self._peek() == "\\":
            return self._escape()
        self.i += 1
        return ord(self.text[self.i - 1])


@functools.cache
def translate_re2(expression: str) -> re.Pattern[str]:
    """Go's regexp.MustCompile(expression).MatchString, as a compiled Python expression to `search`.
    Compiled once a process: a `.dockerignore` has more patterns than Python's own cache holds (512)."""
    return re.compile(_Re2(expression).translate(), re.ASCII)


# --- the patterns ---------------------------------------------------------------------------------------
_EXACT, _PREFIX, _SUFFIX, _REGEXP = range(4)
_LITERAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.,@%=:~")


def _literal_prefix(text: str) -> str:
    """The start of a pattern that is plain text for every matcher (Docker 20.10's regular expression
    too): no glob, class, escape or regexp character; none at all with a `|`, which may split the
    expression; the character before `{` or `+` left out (a repetition of it)."""
    if "|" in text:
        return ""
    end = 0
    while end < len(text) and text[end] in _LITERAL:
        end += 1
    if 0 < end < len(text) and text[end] in "{+":
        end -= 1
    return text[:end]


@dataclass
class Pattern:
    """One pattern of a patternmatcher.PatternMatcher (legacy: Docker 20.10's pkg/fileutils)."""

    line: Line
    cleaned: str  # without the `!`
    exclusion: bool
    legacy: bool = False
    dirs: int = 0
    _kind: int | None = None
    _regexp: re.Pattern[str] | None = None
    _bytes: bytes = b""
    prefix: str = ""  # what every path it matches starts with
    name: str | None = None  # for `**/.../name`: the last part of every path it matches

    def __post_init__(self) -> None:
        self.dirs = len(self.cleaned.split("/"))
        self._bytes = encode(self.cleaned)
        self.prefix = _literal_prefix(self.cleaned)

    def compiles(self) -> bool:
        """Whether it compiles (done now); a pattern that does not fails when it is first used."""
        try:
            if self._kind is None:
                self._compile()
        except DockerignoreError:
            return False
        if self._kind == _SUFFIX and self.cleaned.startswith("**/"):
            last = self.cleaned.rsplit("/", 1)[1]
            self.name = last or None
        return True

    def match(self, path: str) -> bool:
        if self._kind is None:
            self._compile()
        if self._kind == _EXACT:
            return encode(path) == self._bytes
        if self._kind == _PREFIX:
            return encode(path).startswith(self._bytes[:-2])
        if self._kind == _SUFFIX:
            suffix = self._bytes[2:]
            name = encode(path)
            return name.endswith(suffix) or (suffix[:1] == b"/" and name == suffix[1:])
        assert self._regexp is not None
        return self._regexp.search(path) is not None

    def _compile(self) -> None:
        """Pattern.compile: the regular expression Go builds, and the shortcut it takes when it can."""
        text = self.cleaned
        if text.startswith("\ufeff"):
            text = text[1:]  # text/scanner skips a byte order mark at the start
        escaped = _ESCAPED_LEGACY if self.legacy else _ESCAPED
        expression, kind = "^", _EXACT
        i = step = 0
        while i < len(text):
            ch = "\ufffd" if "\udc80" <= text[i] <= "\udcff" else text[i]  # text/scanner's reading
            i += 1
            if ch == "*":
                if text[i:i + 1] == "*":
                    i += 1
                    if text[i:i + 1] == "/":
                        i += 1
                    if i >= len(text):
                        if kind == _EXACT and not self.legacy:
                            kind = _PREFIX
                        else:
                            expression, kind = expression + ".*", _REGEXP
                    else:
                        expression, kind = expression + "(.*/)?", _REGEXP
                    if step == 0 and not self.legacy:
                        kind = _SUFFIX
                else:
                    expression, kind = expression + "[^/]*", _REGEXP
            elif ch == "?":
                expression, kind = expression + "[^/]", _REGEXP
            elif ch in escaped:
                expression += "\\" + ch
            elif ch == "\\":
                if i < len(text):
                    nxt = "\ufffd" if "\udc80" <= text[i] <= "\udcff" else text[i]
                    expression, kind = expression + "\\" + nxt, _REGEXP
                    i += 1
                else:
                    expression += "\\"
            elif ch in "[]":
                expression, kind = expression + ch, _REGEXP
            else:
                expression += ch
            step += 1
        if self.legacy:
            kind = _REGEXP
        if kind == _REGEXP:
            try:
                self._regexp = translate_re2(expression + "$")
            except PatternInvalid:
                raise DockerignoreError(
                    f"{self._where()}: syntax error in pattern (docker build fails on it too)",
                    hint="fix the pattern (`\\` escapes the next character; `[...]` is a class)") from None
            except PatternUnsupported as exc:
                raise DockerignoreError(
                    f"{self._where()}: gitops cannot match this pattern as docker does ({exc})",
                    hint="write the pattern without it") from None
        self._kind = kind

    def _where(self) -> str:
        text = ("!" if self.exclusion else "") + self.cleaned
        if self.line.number:
            return f".dockerignore line {self.line.number}: `{printable(text)}`"
        return f"the pattern `{printable(text)}` docker adds for the Dockerfile"


@dataclass
class Matcher:
    """patternmatcher.PatternMatcher over the lines of a `.dockerignore` (+ what docker adds)."""

    patterns: list[Pattern] = field(default_factory=list)
    exclusions: bool = False
    legacy: bool = False  # Docker 20.10's pkg/fileutils
    # the patterns that can match a path, by a start of it / a part of it (`**/name`); the others to try always
    _by_prefix: dict[str, list[int]] | None = None
    _by_name: dict[str, list[int]] = field(default_factory=dict)
    _always: list[int] = field(default_factory=list)
    _prefix_lengths: list[int] = field(default_factory=list)

    def _candidates(self, path: str) -> list[int]:
        """The patterns that may match `path` or a directory holding it, in order: a pattern with a literal
        start the path lacks cannot (nor one for a `**/name` none of its parts is), so it is not tried."""
        if self._by_prefix is None:
            self._by_prefix = {}
            for index, pattern in enumerate(self.patterns):
                if not pattern.compiles():
                    self._always.append(index)
                elif pattern.name is not None:
                    self._by_name.setdefault(pattern.name, []).append(index)
                elif pattern.prefix:
                    self._by_prefix.setdefault(pattern.prefix, []).append(index)
                else:
                    self._always.append(index)
            self._prefix_lengths = sorted({len(prefix) for prefix in self._by_prefix})
        found = list(self._always)
        for length in self._prefix_lengths:
            if length > len(path):
                break
            found += self._by_prefix.get(path[:length], ())
        if self._by_name:
            for part in set(path.split("/")):
                found += self._by_name.get(part, ())
        found.sort()
        return found

    @classmethod
    def of(cls, lines: Sequence[Line], legacy: bool = False) -> Matcher:
        """patternmatcher.New; DockerignoreError (exit 2) where docker fails too.  One matcher for the same
        lines within a process (its patterns compile when first used, and stay compiled)."""
        return _matcher(tuple(lines), legacy)

    @classmethod
    def _new(cls, lines: Sequence[Line], legacy: bool) -> Matcher:
        matcher = cls(legacy=legacy)
        for line in lines:
            text = go_trim_space(line.text)
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise DockerignoreError(f".dockerignore line {line.number}: a `!` with no pattern after it, "
                                            "which docker refuses too", hint="remove the line")
                text = text[1:]
                matcher.exclusions = True
            if not match_syntax_ok(text):
                where = f".dockerignore line {line.number}" if line.number else "the Dockerfile's name"
                raise DockerignoreError(f"{where}: `{printable(line.text)}`: syntax error in pattern (docker build "
                                        "fails on it too)",
                                        hint="close every `[` with `]`; end no pattern with a lone `\\`")
            matcher.patterns.append(Pattern(line, text, exclusion, legacy))
        return matcher

    def _parent_matches(self, pattern: Pattern, path: str, every: bool) -> bool:
        parent = os.path.dirname(path) or "."
        if parent == ".":
            return False
        parts = parent.split("/")
        if not every:  # the deprecated Matches: only the parent with as many parts as the pattern
            return pattern.dirs <= len(parts) and pattern.match("/".join(parts[:pattern.dirs]))
        return any(pattern.match("/".join(parts[:i + 1])) for i in range(len(parts)))

    def matches(self, path: str, every_parent: bool = False) -> bool:
        """PatternMatcher.Matches (every_parent: MatchesOrParentMatches) for a cleaned path."""
        matched = False
        for index in self._candidates(path):
            pattern = self.patterns[index]
            if not self.legacy and pattern.exclusion != matched:
                continue  # patternmatcher evaluates only the patterns that can change the answer
            found = pattern.match(path) or self._parent_matches(pattern, path, every_parent)
            if found:
                matched = not pattern.exclusion
        return matched

    def matches_in_walk(self, path: str, parent: list[bool] | None) -> tuple[bool, list[bool]]:
        """PatternMatcher.MatchesUsingParentResults: `parent` is what each pattern did for the
        directory holding `path` (None at the top), the second value the same for `path`."""
        matched = False
        info = [False] * len(self.patterns)
        for index in self._candidates(path):
            pattern = self.patterns[index]
            found = bool(parent) and parent[index]  # type: ignore[index]
            if not found:
                if pattern.exclusion != matched:
                    continue
                found = pattern.match(path) or (not parent and self._parent_matches(pattern, path, True))
            info[index] = found
            if found:
                matched = not pattern.exclusion
        return matched, info

    def walk_enters(self, directory: str) -> bool:
        """Whether the walk goes into an excluded directory: an exclusion pattern starts with it."""
        prefix = directory + "/"
        return self.exclusions and any(p.exclusion and (p.cleaned + "/").startswith(prefix) for p in self.patterns)


@functools.lru_cache(maxsize=32)
def _matcher(lines: tuple[Line, ...], legacy: bool) -> Matcher:
    return Matcher._new(lines, legacy)


def matches(path: str, lines: Sequence[Line], every_parent: bool = False, legacy: bool = False) -> bool:
    """patternmatcher.Matches (every_parent: MatchesOrParentMatches) as a function, as docker calls it:
    False for `.` and for patterns that do not compile."""
    path = go_clean(path)
    if path == ".":
        return False
    try:
        return Matcher.of(lines, legacy).matches(path, every_parent)
    except DockerignoreError:
        return False


def removal(name: str, lines: Sequence[Line]) -> bool | None:
    """Whether the engine removes `name` (the `.dockerignore`, the Dockerfile) from the context after
    reading it: True or False when every engine version agrees (Docker 20.10's matcher, and the
    later patternmatcher's Matches and MatchesOrParentMatches), None when they differ or a pattern
    does not compile (the engine then keeps the file, which an older one may not)."""
    path = go_clean(name)
    if path == ".":
        return False
    answers = set()
    for legacy, every_parent in ((False, False), (False, True), (True, False)):
        try:
            answers.add(Matcher.of(lines, legacy).matches(path, every_parent))
        except DockerignoreError:
            return None
    return answers.pop() if len(answers) == 1 else None


def excluding(name: str, lines: Sequence[Line]) -> list[Line]:
    """The lines of a `.dockerignore` whose pattern (not a `!` one) matches `name` or a directory holding
    it, for any engine version's matcher: what to drop for the engine to keep it."""
    path = go_clean(name)
    found: dict[int, Line] = {}
    for legacy in (False, True):
        try:
            matcher = Matcher.of(lines, legacy)
        except DockerignoreError:
            continue
        for pattern in matcher.patterns:
            try:
                if not pattern.exclusion and (pattern.match(path) or matcher._parent_matches(pattern, path, True)):
                    found[pattern.line.number] = pattern.line
            except DockerignoreError:
                continue
    return [found[number] for number in sorted(found)]


def trim_build_files(lines: Sequence[Line], dockerfile: str) -> list[Line]:
    """build.TrimBuildFilesFromExcludes: the CLI sends the `.dockerignore` and the Dockerfile even when
    the patterns exclude them (the engine removes them after reading them)."""
    out = list(lines)
    if matches(".dockerignore", out):
        out.append(Line(0, "!.dockerignore"))
    if matches(dockerfile, out):
        out.append(Line(0, "!" + dockerfile))
    return out


def sent(path: str, lines: Sequence[Line], dockerfile: str = "Dockerfile") -> bool:
    """Whether `docker build` sends the file `path` of a context whose `.dockerignore` has `lines`:
    the decisions its walk makes for the directories holding it and for it (a directory it leaves out
    is not entered, unless an exclusion pattern starts with it)."""
    matcher = Matcher.of(trim_build_files(lines, dockerfile))
    parts = path.split("/")
    parent: list[bool] | None = None
    for depth in range(len(parts)):
        here = "/".join(parts[:depth + 1])
        skip, parent = matcher.matches_in_walk(here, parent)
        if skip and (depth == len(parts) - 1 or not matcher.walk_enters(here)):
            return False
    return True


# --- the build context ------------------------------------------------------------------------------------
class ContextReadError(UsageError):
    """A directory or file of the build context that cannot be read (docker fails on it too)."""


def _listing(root: bytes, rel: str) -> list[tuple[str, os.DirEntry[bytes]]]:
    """The entries of the context directory `rel` in Go's order (by name, as bytes)."""
    path = root + b"/" + encode(rel) if rel else root
    try:
        with os.scandir(path) as found:
            entries = sorted(found, key=lambda entry: entry.name)
    except OSError as exc:
        raise ContextReadError(f"cannot read the directory {printable(rel or '.')} of the build context: "
                               f"{exc.strerror or exc}") from None
    prefix = rel + "/" if rel else ""
    return [(prefix + decode(entry.name), entry) for entry in entries]


def _is_dir(entry: os.DirEntry[bytes]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


@dataclass
class BuildContext:
    """A build context directory, its `.dockerignore` and its Dockerfile, as `docker build` sees them."""

    root: str
    dockerfile: str | None  # its path in the context, links resolved (as docker); None when outside
    dockerfile_path: str  # where it is
    ignore: bytes | None  # the `.dockerignore`'s content; None without one
    lines: list[Line]
    _selection: list[str] | None = None

    @classmethod
    def load(cls, root: str, dockerfile: str | None) -> BuildContext:
        """DockerignoreError (exit 2) for a `.dockerignore` docker cannot read or use either."""
        real_root = os.path.realpath(root)
        path = os.path.join(root, dockerfile or "Dockerfile")
        rel = os.path.relpath(os.path.realpath(path), real_root)
        inside = rel != ".." and not rel.startswith("../")
        ignore_path = os.path.join(root, ".dockerignore")
        try:
            with open(ignore_path, "rb") as file:
                ignore: bytes | None = file.read()
        except FileNotFoundError:
            ignore = None
        except OSError as exc:
            raise DockerignoreError(f"cannot read {ignore_path}: {exc.strerror or exc}") from None
        lines = [] if ignore is None else read_patterns(ignore)
        Matcher.of(lines)  # what docker refuses outright (`!` alone, a malformed `[...]`), before any work
        return cls(root, decode(os.fsencode(rel)) if inside else None, path, ignore, lines)

    def removal(self, name: str) -> bool | None:
        return removal(name, self.lines) if self.lines else False

    def _dockerfile_name(self) -> str:
        return self.dockerfile or decode(os.fsencode(os.path.relpath(self.dockerfile_path, self.root)))

    def walk_keeps(self, path: str) -> bool:
        """Whether the CLI's walk sends the file `path` (see `sent`)."""
        return sent(path, self.lines, self._dockerfile_name())

    def selection(self) -> list[str]:
        """The paths the docker CLI sends (files, directories, links), in its order: after the check it
        makes first (validate), the walk of archive.TarWithOptions with the trimmed patterns."""
        if self._selection is None:
            self._validate()
            self._selection = list(self._walk())
        return self._selection

    def _walk(self) -> Iterator[str]:
        matcher = Matcher.of(trim_build_files(self.lines, self._dockerfile_name()))
        root = os.fsencode(self.root)
        stack = [(iter(_listing(root, "")), None)]
        while stack:
            entries, parent = stack[-1]
            found = next(entries, None)
            if found is None:
                stack.pop()
                continue
            rel, entry = found
            is_dir = _is_dir(entry)
            skip, info = matcher.matches_in_walk(rel, parent)
            if skip:
                if not (is_dir and matcher.walk_enters(rel)):
                    continue
            else:
                yield rel
            if is_dir:
                stack.append((iter(_listing(root, rel)), info))  # type: ignore[arg-type]

    def _validate(self) -> None:
        """build.ValidateContextDirectory: a walk with the patterns as written (MatchesOrParentMatches,
        an excluded directory skipped): what a pattern fails on, a file that cannot be opened."""
        matcher = Matcher.of(self.lines)
        root = os.fsencode(self.root)
        stack = [iter(_listing(root, ""))]
        while stack:
            found = next(stack[-1], None)
            if found is None:
                stack.pop()
                continue
            rel, entry = found
            is_dir = _is_dir(entry)
            if self.lines and matcher.matches(go_clean(rel), every_parent=True):
                continue
            if is_dir:
                stack.append(iter(_listing(root, rel)))
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode) or stat.S_ISFIFO(mode):
                continue
            try:
                os.close(os.open(entry.path, os.O_RDONLY | os.O_NOCTTY))
            except PermissionError:
                raise ContextReadError(f"no permission to read {printable(rel)} in the build context") from None
            except OSError:
                pass
