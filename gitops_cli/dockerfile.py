"""Dockerfile image references: `FROM` lines and `COPY --from=<image>`, with exact positions.

A pure function over text (no docker): `parse_dockerfile(text)` returns every image the Dockerfile
pulls, skipping `scratch`, references to earlier build stages (`FROM builder`, `COPY --from=builder`,
`COPY --from=0`) and flags such as `--platform=...`.  Variables in `FROM` are expanded with the
defaults of the `ARG` instructions before the first `FROM` (the only ones `FROM` can see), including
`${VAR:-default}` / `${VAR:+alt}` forms; a variable without a default stays as written (`${TAG}`), so
that the caller can report it as unresolved.

Handled like Docker's parser: the `# escape=` directive, line continuations (with comment and blank
lines inside them), CRLF, case-insensitive instructions, heredoc bodies (`RUN <<EOF ... EOF`) skipped.
Positions are 1-based line/column (in characters) of the image token as written in the file.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

_DIRECTIVE_RE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC_RE = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class DockerImage:
    """One image a Dockerfile uses.

    kind: "from" or "copy-from".  raw: the token as written.  value: after ARG-default expansion
    (variables without a default are kept as written, e.g. `app:${TAG}`).  line/column: start of the
    token; end_line/end_column: just after its last character (1-based).  unresolved: the variable
    names that had no value.
    """

    kind: str
    value: str
    raw: str
    line: int
    column: int
    end_line: int
    end_column: int
    unresolved: tuple[str, ...] = ()
    stage: str | None = None


@dataclass(frozen=True)
class DockerfileError(Exception):
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line} column {self.column}: {self.message}"


@dataclass
class DockerfileResult:
    images: list[DockerImage] = field(default_factory=list)
    error: DockerfileError | None = None


@dataclass
class _Logical:
    """A logical line (continuations joined) with the absolute text offset of every character."""

    text: str
    offsets: list[int]
    first_line: int  # 0-based physical line index where it starts


class _Positions:
    def __init__(self, text: str) -> None:
        self.starts = [0]
        for m in re.finditer(r"\r\n|\r|\n", text):
            self.starts.append(m.end())

    def at(self, offset: int) -> tuple[int, int]:
        i = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        return i + 1, offset - self.starts[i] + 1


def physical_lines(text: str) -> list[tuple[str, int]]:
    """(line content without its line break, absolute offset of its first character)."""
    out: list[tuple[str, int]] = []
    pos = 0
    for m in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n|$)", text):
        chunk = m.group(0)
        if not chunk and m.start() >= len(text):
            break
        content = chunk.rstrip("\r\n")
        out.append((content, pos))
        pos += len(chunk)
        if pos >= len(text):
            break
    return out


def escape_char(lines: list[tuple[str, int]]) -> str:
    """The `# escape=` parser directive (only in the leading comment block, before any instruction)."""
    seen: set[str] = set()
    for content, _ in lines:
        m = _DIRECTIVE_RE.fullmatch(content.strip()) if content.strip().startswith("#") else None
        if m is None:
            break
        key, value = m.group(1).lower(), m.group(2)
        if key in seen:
            break
        seen.add(key)
        if key == "escape" and value in ("`", "\\"):
            return value
    return "\\"


def logical_lines(text: str) -> list[_Logical]:
    lines = physical_lines(text)
    escape = escape_char(lines)
    out: list[_Logical] = []
    i = 0
    while i < len(lines):
        content, start = lines[i]
        stripped = content.lstrip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        buf: list[str] = []
        offs: list[int] = []
        first = i
        while True:
            body = content.rstrip(" \t")
            continued = body.endswith(escape)
            if continued:
                body = body[:-1]
            buf.append(body)
            offs.extend(range(start, start + len(body)))
            i += 1
            if not continued:
                break
            # skip comment and blank lines inside a continuation, as Docker does
            while i < len(lines) and (not lines[i][0].strip() or lines[i][0].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
            content, start = lines[i]
        logical = _Logical("".join(buf), offs, first)
        out.append(logical)
        i = _skip_heredocs(logical.text, lines, i)
    return out


def _skip_heredocs(instruction: str, lines: list[tuple[str, int]], i: int) -> int:
    """Skip heredoc bodies (`<<EOF` ... `EOF`) that follow an instruction line."""
    word = instruction.split(None, 1)[0].upper() if instruction.strip() else ""
    if word not in {"RUN", "COPY", "ADD"}:
        return i
    for m in _HEREDOC_RE.finditer(instruction):
        strip_tabs, delimiter = m.group(1) == "-", m.group(3)
        while i < len(lines):
            content = lines[i][0]
            i += 1
            if (content.lstrip("\t") if strip_tabs else content) == delimiter:
                break
    return i


def _tokens(logical: _Logical, begin: int) -> list[tuple[str, int]]:
    """Whitespace-separated words of the logical line from `begin`, with their index in it."""
    return [(m.group(0), m.start()) for m in re.finditer(r"\S+", logical.text) if m.start() >= begin]


def _arg_words(text: str) -> list[str]:
    """Split ARG arguments like a shell would (quotes removed, backslash escapes kept simple)."""
    words: list[str] = []
    cur: list[str] = []
    quote: str | None = None
    has_word = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"' and i + 1 < len(text):
                i += 1
                cur.append(text[i])
            else:
                cur.append(ch)
        elif ch in "\"'":
            quote, has_word = ch, True
        elif ch.isspace():
            if has_word:
                words.append("".join(cur))
                cur, has_word = [], False
        elif ch == "\\" and i + 1 < len(text):
            i += 1
            cur.append(text[i])
            has_word = True
        else:
            cur.append(ch)
            has_word = True
        i += 1
    if has_word:
        words.append("".join(cur))
    return words


class _Unterminated(ValueError):
    pass


def expand(word: str, args: dict[str, str | None]) -> tuple[str, tuple[str, ...]]:
    """Expand `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`.

    `args` maps declared names to their default (None: declared without a default).  A variable with
    no value is kept exactly as written and its name returned in the second element.
    Raises ValueError for an unterminated `${`.
    """
    out: list[str] = []
    missing: list[str] = []
    i = 0
    while i < len(word):
        ch = word[i]
        if ch == "\\" and i + 1 < len(word) and word[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if ch != "$" or i + 1 >= len(word):
            out.append(ch)
            i += 1
            continue
        if word[i + 1] == "{":
            close = _matching_brace(word, i + 2)
            if close < 0:
                raise _Unterminated(f"unterminated variable {word[i:]!r}")
            inner = word[i + 2:close]
            text, unresolved = _expand_braced(inner, args)
            if unresolved is not None:
                out.append(word[i:close + 1])
                missing.append(unresolved)
            else:
                out.append(text)
            i = close + 1
            continue
        m = _NAME_RE.match(word, i + 1)
        if m is None:
            out.append(ch)
            i += 1
            continue
        name = m.group(0)
        value = args.get(name)
        if value is None:
            out.append(m.string[i:m.end()])
            missing.append(name)
        else:
            out.append(value)
        i = m.end()
    return "".join(out), tuple(missing)


def _matching_brace(word: str, i: int) -> int:
    depth = 1
    while i < len(word):
        if word[i] == "{":
            depth += 1
        elif word[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _expand_braced(inner: str, args: dict[str, str | None]) -> tuple[str, str | None]:
    """Expand the inside of `${...}`: return (text, None) or ("", name) when it has no value."""
    m = _NAME_RE.match(inner)
    if m is None:
        return "", inner
    name, rest = m.group(0), inner[m.end():]
    value = args.get(name)
    if not rest:
        return ("", name) if value is None else (value, None)
    for op in (":-", ":+", "-", "+"):
        if rest.startswith(op):
            use_word = {":-": not value, "-": value is None, ":+": bool(value), "+": value is not None}[op]
            if not use_word:
                return ("", None) if op in (":+", "+") else (value or "", None)
            sub, sub_missing = expand(rest[len(op):], args)
            return ("", name) if sub_missing else (sub, None)
    return "", name  # ${VAR:?msg}, ${VAR#pattern}, ...: depends on the build; leave it unresolved


def _image(logical: _Logical, positions: _Positions, token: str, index: int, kind: str,
           args: dict[str, str | None], stage: str | None = None) -> DockerImage:
    start = logical.offsets[index]
    end = logical.offsets[index + len(token) - 1] + 1
    line, column = positions.at(start)
    end_line, end_column = positions.at(end)
    try:
        value, missing = expand(token, args)
    except _Unterminated as exc:
        raise DockerfileError(line, column, str(exc)) from None
    return DockerImage(kind, value, token, line, column, end_line, end_column, missing, stage)


def parse_dockerfile(text: str) -> DockerfileResult:
    """All images a Dockerfile uses (FROM and COPY --from=<image>), or the first syntax error."""
    result = DockerfileResult()
    positions = _Positions(text)
    global_args: dict[str, str | None] = {}
    stages: list[str] = []
    seen_from = False
    try:
        for logical in logical_lines(text):
            m = re.match(r"\s*(\S+)", logical.text)
            if m is None:
                continue
            instruction = m.group(1).upper()
            if instruction == "ARG" and not seen_from:
                _declare_args(logical.text[m.end():], global_args)
            elif instruction == "FROM":
                seen_from = True
                image = _from(logical, m.end(), positions, global_args, stages)
                if image is not None:
                    result.images.append(image)
            elif instruction in {"COPY", "ADD"}:
                image = _copy_from(logical, m.end(), positions, global_args, stages)
                if image is not None:
                    result.images.append(image)
    except DockerfileError as exc:
        result.error = exc
    return result


def _declare_args(rest: str, args: dict[str, str | None]) -> None:
    for word in _arg_words(rest):
        name, eq, default = word.partition("=")
        if not _NAME_RE.fullmatch(name):
            continue
        if eq:
            try:
                value, missing = expand(default, args)
            except ValueError:
                value, missing = default, ("?",)
            args[name] = None if missing else value
        else:
            args.setdefault(name, None)


def _from(logical: _Logical, begin: int, positions: _Positions, args: dict[str, str | None],
          stages: list[str]) -> DockerImage | None:
    words = [(w, i) for w, i in _tokens(logical, begin) if not w.startswith("--")]
    if len(words) not in (1, 3) or (len(words) == 3 and words[1][0].lower() != "as"):
        line, column = positions.at(logical.offsets[0] if logical.offsets else 0)
        raise DockerfileError(line, column, "FROM needs one or three arguments: FROM IMAGE [AS NAME]")
    token, index = words[0]
    stage = words[2][0].lower() if len(words) == 3 else None
    image = _image(logical, positions, token, index, "from", args, stage)
    earlier = list(stages)
    if stage is not None:
        stages.append(stage)
    if image.value.lower() == "scratch" or image.value.lower() in earlier:
        return None
    return image


def _copy_from(logical: _Logical, begin: int, positions: _Positions, args: dict[str, str | None],
               stages: list[str]) -> DockerImage | None:
    for word, index in _tokens(logical, begin):
        if not word.startswith("--"):
            return None  # flags come first
        if word.lower().startswith("--from="):
            value = word[len("--from="):]
            if not value or value.isdigit() or value.lower() in stages:
                return None
            image = _image(logical, positions, value, index + len("--from="), "copy-from", args)
            if image.value.lower() in stages:
                return None
            return image
    return None


_GLOB_CHARS = frozenset("*?[")


def _json_form(text: str) -> list[str] | None:
    """The arguments of an instruction in JSON form (`["a", "b"]`), None when `text` is not one."""
    import json

    if not text.startswith("["):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(a, str) for a in parsed) else None


def copies_root_file(text: str, name: str) -> bool:
    """Whether a `COPY` or `ADD` of the Dockerfile `text` may copy the build context's top-level file
    `name` (e.g. `.dockerignore`): a source that is the whole context (`.`, `./`, `/`), the file itself,
    or a pattern matching it (Go's `filepath.Match`, as the engine's: `*` matches a leading dot, `\\`
    escapes, `[^x]` is "not x").  A source with a variable counts (its value is not known here), and so
    does a malformed pattern; `--from=` copies and URLs do not."""
    import posixpath

    from gitops_cli.dockerignore import go_match

    for logical in logical_lines(text):
        words = logical.text.split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        args = _json_form(rest)
        if args is None:
            flags: list[str] = []
            args = rest.split()
            while args and args[0].startswith("--"):
                flags.append(args.pop(0))
            if any(f.lower().startswith("--from=") for f in flags):
                continue
            args = _json_form(" ".join(args)) or args  # flags, then the JSON form
        for source in args[:-1]:
            if source.startswith("<<") or "://" in source or source.startswith("git@"):
                continue  # a heredoc or a URL: nothing from the context
            if "$" in source:
                return True
            path = posixpath.normpath("/" + source).lstrip("/")
            if path in ("", "."):
                return True
            if "/" in path:
                continue  # inside a directory: not the top-level file
            if path == name or (_GLOB_CHARS & set(path) and go_match(path, name) is not False):
                return True
    return False



_LEGACY_COPY_FLAGS = ("--from=", "--chown=")  # the only COPY/ADD flags the legacy builder builds with
# a shell word that opens a heredoc, as BuildKit's parser reads one (heredocsFromLine: the line split into
# words, quotes kept; a word `[n]<<[-]NAME`): `<<` inside a quoted word or alone (`$(( 1 << 2 ))`) is none
_HEREDOC_WORD_RE = re.compile(r"\d*" + _HEREDOC_RE.pattern)


def _heredoc_word(rest: str) -> str | None:
    """The first word of an instruction's shell form that opens a heredoc (see _HEREDOC_WORD_RE), or None."""
    import shlex

    lexer = shlex.shlex(rest, posix=False)
    lexer.whitespace_split, lexer.commenters = True, ""
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote: no word BuildKit would take for a heredoc is sure
        return None
    return next((word for word in words if _HEREDOC_WORD_RE.fullmatch(word)), None)


@dataclass(frozen=True)
class BuildkitSyntax:
    """An instruction only BuildKit builds: its 1-based line and what it uses (`RUN --mount`)."""

    line: int
    what: str


def buildkit_only(text: str, target: str | None = None) -> BuildkitSyntax | None:
    """The first instruction of a Dockerfile that the legacy builder refuses and BuildKit builds: a flag
    of `RUN` (`--mount`, `--network`, `--security`), a flag of `COPY`/`ADD` other than `--from` and
    `--chown` (`--chmod`, `--link`, ...), a heredoc (`RUN <<EOF`, `COPY <<EOF /x`).  None without one.
    `target` (--target): the legacy builder builds the stages up to that one, in order, and no later one,
    so what follows the target stage is not looked at."""
    in_target = False
    for logical in logical_lines(text):
        words = logical.text.split(None, 1)
        keyword = words[0].upper() if words else ""
        if keyword == "FROM" and target is not None:
            if in_target:
                return None  # the stage after the target's: never built
            args = words[1].split() if len(words) > 1 else []
            in_target = len(args) == 3 and args[1].upper() == "AS" and args[2].lower() == target.lower()
        if len(words) < 2 or keyword not in ("RUN", "COPY", "ADD"):
            continue
        instruction, rest = keyword, words[1].strip()
        line = logical.first_line + 1
        for flag in rest.split():
            if not flag.startswith("--"):
                break  # flags come first
            if instruction == "RUN" or not flag.lower().startswith(_LEGACY_COPY_FLAGS):
                return BuildkitSyntax(line, f"{instruction} {flag.split('=', 1)[0]}")
        heredoc = _heredoc_word(rest) if _json_form(rest) is None else None
        if heredoc is not None:
            return BuildkitSyntax(line, f"{instruction} {heredoc} (a heredoc)")
    return None
