"""Locate image references in YAML text, with the exact source span of every value.

`locate(text)` parses the text into YAML events (libyaml through ruamel.yaml.clib when importable, the
pure-Python ruamel parser otherwise or when libyaml refuses the text), composes a tiny node tree that
keeps anchors, aliases and merge keys, and walks it for the places an image reference lives:

- `container`: `image` of an item of `containers` / `initContainers` / `ephemeralContainers`, anywhere;
- `compose`:   `services.<name>.image` of a docker-compose document, and the `image` of a top-level `x-...`
               extension field (a template services merge: `<<: *app`; no container name);
- `image`:     any other mapping key `image` with a scalar value (CRDs, Tekton steps, Helm values strings);
- `kustomize`: entries of a kustomization's top-level `images:` (Flux Kustomization: `spec.images`; Flux
               HelmRelease: `spec.postRenderers[i].kustomize.images`), and
               kustomize's image-override strings (`name=newName:tag`, `name:tag`, `name@digest`: form
               'override') in an Argo CD Application's `spec.source.kustomize.images` (`spec.sources[i]`, an
               ApplicationSet's `spec.template.spec`) and in the top-level `kustomize.images` of an Argo CD
               Image Updater write-back file (`.argocd-source-<app>.yaml`, by name);
- `helm`:      Helm-values maps with `repository` (+ `registry`) and `tag` / `digest`, and the usual
               variants (`image: {repo, tag}`, `registry`/`hub` + `image`, `hub` + `tag`); and the Helm
               parameters of one prefix that name an image in the same way (`image.name` + `image.tag`) in an
               Argo CD Application source's (or write-back file's) `helm.parameters` list.

An `image:` block scalar (`>-`, `|-`) is a reference too; when its value is one line, its span is that
content line (as for any other scalar), so it can be edited in place.
Never: values under other keys (args, annotations, labels, the data of a ConfigMap or Secret wherever it sits:
a document, a `kind: List` item, an object inside a CRD), comments.
Offsets are code-point offsets into the original str (a BOM is part of it; CRLF counts as two), so the
caller can splice `text[start:end]` directly.  Lines and columns are 1-based.
"""

from __future__ import annotations

import bisect
import os
import re
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, NamedTuple, Protocol

from gitops_cli import imageref
from gitops_cli.errors import UsageError
from gitops_cli.kustomize import KUSTOMIZATION_FILES

CONTAINER_KEYS = frozenset({"containers", "initContainers", "ephemeralContainers"})
# an entry's fields read; `tagSuffix` is never written: kustomize appends it to the tag of its resources' image
# only when the entry sets no newTag or digest, which the bump then never adds (see splice.kept)
KUSTOMIZE_FIELDS = ("name", "newName", "newTag", "digest", "tagSuffix")
KUSTOMIZATION_KINDS = frozenset({"Kustomization", "Component"})
ARGO_APPLICATION_KINDS = frozenset({"Application", "ApplicationSet"})  # apiVersion argoproj.io/...
# Keys whose subtree never holds image references: free-form string maps.
_SKIP_KEYS = frozenset({"annotations", "labels"})
# Kustomization keys whose subtrees are selectors or patches, not images.
_KUSTOMIZATION_SKIP = frozenset(
    {"images", "patches", "patchesJson6902", "patchesStrategicMerge", "replacements"})
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_HELM_NAME_KEYS = ("repository", "repo", "name", "image", "registry", "hub")  # keys that may name an image
_STYLES = {None: "plain", "": "plain", "'": "single", '"': "double", "|": "literal", ">": "folded"}
_ALIAS_BUDGET = 20_000  # node visits through aliases per file (guards against "billion laughs" files)
_MAX_DEPTH = 400


@dataclass(frozen=True, slots=True)
class Scalar:
    """One scalar in the source text: `text[start:end]` is its source (quotes included)."""

    value: str
    start: int
    end: int
    line: int
    column: int
    style: str  # 'plain' | 'single' | 'double' | 'literal' | 'folded'
    anchor: str | None = None
    flow: bool = False  # inside {...} / [...]: a plain scalar there may not contain ': , [ ] { }'

    @property
    def is_null(self) -> bool:
        """A plain YAML null (`~`, `null`, nothing): an unset field."""
        return self.style == "plain" and self.value in _NULLS


@dataclass(frozen=True, slots=True)
class Reference:
    """One image reference: a whole scalar (form 'string'), a kustomize / Helm map (form 'map'), or a kustomize
    image-override string (form 'override': `name=newName:tag@digest`, whose `value` is the image it sets,
    `newName:tag@digest`, and whose `fields` are its parts, each a Scalar of its own span where the source
    writes the value as it is, else of the whole scalar's)."""

    kind: str  # 'container' | 'image' | 'compose' | 'kustomize' | 'helm'
    form: str  # 'string' | 'map' | 'override'
    value: str
    doc: int
    path: tuple[str | int, ...]
    line: int
    column: int
    scalar: Scalar | None = None
    fields: dict[str, Scalar] = field(default_factory=dict)
    container: str | None = None  # kind 'compose' without one: a compose `x-...` template's `image:`
    via_alias: bool = False
    # string form: the alias or merge key through which this `image:` reaches a value written elsewhere
    # ("the merge key `<<: *app` on line 4"); None when the value is written right there
    through: str | None = None
    insert_after: int | None = None
    indent: str | None = None
    # map form: the added field goes before the map's pair with this index (as written, `<<` included), not
    # after its last: see _Walk._insertion_point
    insert_before: int | None = None
    flow: bool = False
    # map form: field -> key as written ('repo' for 'repository')
    keys: dict[str, str] = field(default_factory=dict)
    # map form: fields whose value comes from a `<<` merge key (shared with other maps)
    shared: frozenset[str] = frozenset()
    start: int | None = None  # map form: offset of the map node (its anchor, `{`, or first key)
    # string form: why the value cannot be edited in place - its anchor is also used by something that is
    # not a located image (`a: &x team/app:1` + `image: *x`); None when it can
    conflict: str | None = None
    # map form: the same, per field (role -> why) - a field whose anchor is also used by something other than
    # that field of a map naming the same image (`tag: &v "1"` + `appVersion: *v`)
    field_conflicts: dict[str, str] = field(default_factory=dict)

    @property
    def template(self) -> bool:
        """A compose `x-...` extension field's `image:`: the image of the services that merge or alias it."""
        return self.kind == "compose" and self.container is None

    @property
    def name(self) -> str | None:
        """Map and override form: the repository name as written (newName/name; registry/repository)."""
        if self.form not in ("map", "override"):
            return None
        return map_name(self.kind, _field_values(self.fields))


@dataclass
class LocateResult:
    references: list[Reference]
    error: YamlSyntaxError | None = None
    # the `tag:` (or `digest:`) of each `image:` map that names no repository (a Helm values override file's
    # `image: {tag: v1}`): no reference, since nothing in the text says which image it tags
    tag_only: list[Scalar] = field(default_factory=list)


class YamlSyntaxError(Exception):
    """The text is not valid YAML; line and column are 1-based."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.message = message


# --------------------------------------------------------------------------------------------------
# Parsing: events -> tiny nodes
# --------------------------------------------------------------------------------------------------

def pure_parser_forced(environ: Any = None) -> bool:
    """GITOPS_YAML_PARSER=python: parse with the pure-Python parser alone (see _c_loader).  Blank or unset
    is the default; any other value is exit 2 (UsageError) naming it: a typo is never taken silently.  The
    verbs that read YAML call this before any work."""
    value = (os.environ if environ is None else environ).get("GITOPS_YAML_PARSER", "")
    if value.strip().lower() in ("", "python"):
        return bool(value.strip())
    raise UsageError(f"GITOPS_YAML_PARSER={value!r}: expected python (the pure-Python parser) or no value "
                     "(libyaml when installed)")


def _c_loader() -> Any | None:
    """libyaml's event parser (ruamel.yaml.clib), or None when the C extension is missing or when
    GITOPS_YAML_PARSER=python; the pure-Python ruamel parser is used then.  The C one is ~20x faster; on text
    both accept they give the same events and marks.  They do not accept the same texts: libyaml (YAML 1.1)
    refuses a ':' inside a plain scalar in a flow collection (`{image: team/app:v1}`, `[a:b]`), which YAML
    1.2, PyYAML, go-yaml (kubectl) and the pure parser read as a string, and any directive other than
    `%YAML` / `%TAG`, which the pure parser ignores as the spec asks; so `parse` retries a text libyaml
    refuses with the pure parser: results never depend on which parser is installed.  The pure parser in
    turn refuses a tab between tokens inside a line (before a comment, after a value or `:`), which libyaml
    reads as YAML 1.2 says: see _pure_parse."""
    if pure_parser_forced():
        return None
    try:
        from ruamel.yaml.cyaml import CBaseLoader
    except ImportError:  # pragma: no cover - depends on the optional C extension
        return None
    return CBaseLoader


class _Node:
    """S(calar), M(apping), Q (sequence) or A(lias)."""

    __slots__ = ("kind", "start", "end", "line", "column", "anchor", "scalar", "flow", "items", "target")

    def __init__(self, kind: str, start: int, line: int, column: int, anchor: str | None) -> None:
        self.kind = kind
        self.start = start
        self.end = start
        self.line = line
        self.column = column
        self.anchor = anchor
        self.scalar: Scalar | None = None
        self.flow = False
        self.items: list[Any] = []  # M: [(key, value), ...]; Q: [node, ...]
        self.target: _Node | None = None


@dataclass(frozen=True)
class _Merge:
    """Where a merged pair comes from: the `<<` key and the item of its value (an alias, or a mapping)."""

    key: _Node
    item: _Node

    def describe(self) -> str:
        alias = f": *{self.item.target.anchor}" if self.item.kind == "A" and self.item.target is not None else ""
        return f"the merge key `<<{alias}` on line {self.key.line}"


# key, key node, value node, and the merge it comes from (None: written in the mapping itself)
_Pair = tuple[str, _Node, _Node, _Merge | None]


class _Event(NamedTuple):
    """The parts of a parser event the verifier compares."""

    kind: str  # 'S', 'A', 'M', 'Q', 'm' (mapping end), 'q' (sequence end), 'D', 'd'
    start: int
    value: str | None = None
    style: str | None = None
    anchor: str | None = None


class _EventSink(Protocol):
    def add(self, kind: str, start: int, end: int, value: str | None, style: str | None,
            anchor: str | None) -> None:
        """One parser event (see _Event; `end`: where its source ends; an end event's style is its
        collection's, 'block' or 'flow', which its _Event leaves out)."""


_EVENT_KINDS = "SAMQmqDd"
_EVENT_STYLES = (None, "plain", "single", "double", "literal", "folded", "flow", "block")
_KIND_CODES = {kind: 8 * i for i, kind in enumerate(_EVENT_KINDS)}
_STYLE_CODES = {style: i for i, style in enumerate(_EVENT_STYLES)}
# code -> (kind, style as an _Event has it: None for an end event)
_DECODED = {_KIND_CODES[kind] + _STYLE_CODES[style]: (kind, None if kind in "mq" else style)
            for kind in _EVENT_KINDS for style in _EVENT_STYLES}


class _EventLog:
    """The verifier's record of the parser events of a text, a few bytes each rather than an object apiece:
    kind and style in one byte, start and end offsets in arrays, a scalar's value only where it is not its
    source as written (`text[start:end]`, less the quotes of a quoted one), and an anchor where there is one.
    Reads back as _Events (a list's indexing and iteration); `block_end(i)`: does event i end a block (not
    flow) mapping or sequence?"""

    def __init__(self, text: str) -> None:
        self.text = text
        self._codes = bytearray()
        offsets = "i" if len(text) < 2**31 else "q"  # 4 bytes an offset, unless the text needs 8
        self._starts = array(offsets)
        self._ends = array(offsets)
        self._values: dict[int, str] = {}
        self._anchors: dict[int, str] = {}

    def add(self, kind: str, start: int, end: int, value: str | None, style: str | None,
            anchor: str | None) -> None:
        codes = self._codes
        if value is not None and value != self._written(style, start, end):
            self._values[len(codes)] = value
        if anchor is not None:
            self._anchors[len(codes)] = anchor
        codes.append(_KIND_CODES[kind] + _STYLE_CODES[style])
        self._starts.append(start)
        self._ends.append(end)

    def _written(self, style: str | None, start: int, end: int) -> str | None:
        """A scalar's source less its quotes: its value, unless it has escapes, line breaks or a block style."""
        if style == "plain":
            return self.text[start:end]
        if style == "single" or style == "double":
            return self.text[start + 1:end - 1]
        return None

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, index: int) -> _Event:
        if index < 0:
            index += len(self._codes)
        kind, style = _DECODED[self._codes[index]]
        value = None
        if kind == "S":
            value = self._values.get(index)
            if value is None:
                value = self._written(style, self._starts[index], self._ends[index])
        return _Event(kind, self._starts[index], value, style, self._anchors.get(index))

    def __iter__(self) -> Iterator[_Event]:
        return map(_Event._make, self.tuples())

    def tuples(self) -> Iterator[tuple[str, int, str | None, str | None, str | None]]:
        """The events as plain tuples (kind, start, value, style, anchor), faster than _Events."""
        text, values, anchors = self.text, self._values, self._anchors
        for index, (code, start, end) in enumerate(zip(self._codes, self._starts, self._ends, strict=True)):
            kind, style = _DECODED[code]
            value = None
            if kind == "S":
                value = values.get(index)
                if value is None:  # as written (see _written)
                    value = text[start:end] if style == "plain" else text[start + 1:end - 1]
            yield kind, start, value, style, anchors.get(index)

    def kind(self, index: int) -> str:
        return _EVENT_KINDS[self._codes[index] >> 3]

    def block_end(self, index: int) -> bool:
        code = self._codes[index]
        return _EVENT_KINDS[code >> 3] in "mq" and _EVENT_STYLES[code & 7] == "block"

    def find(self, kind: str, starts: Collection[int], last: bool = False) -> dict[int, int]:
        """start -> index of the first (`last`: the last) event of this kind at that start, for each of these
        starts where there is one."""
        out: dict[int, int] = {}
        if not starts:
            return out
        code = _KIND_CODES[kind]
        for index, (c, start) in enumerate(zip(self._codes, self._starts, strict=True)):
            if c & ~7 == code and start in starts and (last or start not in out):
                out[start] = index
        return out


_LINE_BREAK = re.compile(r"\r\n?|\n")


class _Lines:
    """Offset -> (line, column), both 1-based."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] | None = None

    def position(self, offset: int) -> tuple[int, int]:
        if self._starts is None:
            self._starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.text)]
        i = bisect.bisect_right(self._starts, offset) - 1
        column = offset - self._starts[i] + 1
        if i == 0 and self.text.startswith("\ufeff") and offset > 0:
            column -= 1  # the parser does not count a BOM
        return i + 1, column


def _syntax_error(exc: Exception, text: str, offset: int) -> YamlSyntaxError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
    context = getattr(exc, "context", None)
    message = f"{context}: {problem}" if context else str(problem)
    if mark is not None:
        return YamlSyntaxError(mark.line + 1, mark.column + 1, message)
    position = getattr(exc, "position", None)  # ReaderError: a bad character
    if isinstance(position, int):
        line, column = _Lines(text).position(position + offset)
        return YamlSyntaxError(line, column, message)
    return YamlSyntaxError(1, 1, message)


class _ParserFailure(Exception):
    """An exception other than a YAMLError from inside a parser (a bug of that parser, on this text); `offset`
    (set by _Parsed) is where the events it gave before it end."""

    def __init__(self, error: Exception) -> None:
        detail = str(error).strip().splitlines()
        super().__init__(f"{type(error).__name__}: {detail[0]}" if detail else type(error).__name__)
        self.offset = 0


def _events(text: str, pure: bool = False) -> Iterator[Any]:
    """Raw parser events for text (BOM already removed): libyaml's unless `pure` or missing, else those of
    ruamel's pure-Python parser, run as its public API runs it (`YAML.parse`: a bare BaseLoader lacks the
    per-document state its scanner keeps for a `%YAML` directive).  Raises the parser's YAMLError, or
    _ParserFailure for any other exception from inside the parser."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    c_loader = None if pure else _c_loader()
    loader = None
    try:
        if c_loader is not None:
            loader = c_loader(text)
            while loader.check_event():
                yield loader.get_event()
        else:
            yield from YAML(typ="base", pure=True).parse(text)
    except (YAMLError, RecursionError, MemoryError):
        raise
    except Exception as exc:  # whatever it is, it is about this text: reported as its problem, at a line
        raise _ParserFailure(exc) from exc
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()


# the versions a `%YAML` directive may name: those both parsers read (YAML 1.2 says: refuse a higher major
# version, warn about a higher minor one; libyaml refuses both, and 1.0, which is not read here either)
YAML_VERSIONS = ((1, 1), (1, 2))


def yaml_version_error(text: str) -> YamlSyntaxError | None:
    """The first `%YAML` directive of text naming a version other than 1.1 or 1.2, as an error at its line;
    None when there is none.  Decided here, by one scanner, so that which parser is installed does not change
    what is read; a text the scanner stops on is left for the parser to report."""
    if "%YAML" not in text:
        return None
    text = text.removeprefix("\ufeff")  # a parser does not count it
    if "\t" in text:  # `%YAML<TAB>1.3`: the scanner refuses the tab that libyaml reads (see _separation_tabs)
        text = _spaced(text, [run for run in _separation_tabs(text) if text.startswith("%", _line_start(text, run[0]))])
    from ruamel.yaml import YAML
    from ruamel.yaml.tokens import DirectiveToken

    try:
        for token in YAML(typ="base", pure=True).scan(text):
            if type(token) is DirectiveToken and token.name == "YAML" and tuple(token.value) not in YAML_VERSIONS:
                major, minor = token.value
                mark = token.start_mark
                return YamlSyntaxError(mark.line + 1, mark.column + 1,
                                       f"%YAML {major}.{minor}: gitops reads YAML 1.1 and 1.2 only")
    except Exception:  # the scanner stops here: the parse that follows reports why
        return None
    return None


def _skip_properties(text: str, start: int, end: int) -> int:
    """Move start past `&anchor` / `!tag` properties (and comments/space between them and the scalar)."""
    i = start
    while i < end:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "#" and (i == 0 or text[i - 1] in " \t\r\n"):
            while i < end and text[i] not in "\r\n":
                i += 1
        elif c in "&!":
            while i < end and text[i] not in " \t\r\n":
                i += 1
        else:
            break
    return i


def _after_colon(text: str, key_end: int) -> int | None:
    """Offset just after the ':' that follows a mapping key ending at key_end."""
    i = key_end
    while i < len(text) and text[i] in " \t":
        i += 1
    if i < len(text) and text[i] == ":":
        return i + 1
    return None


def _block_content(text: str, start: int, end: int, value: str) -> tuple[int, int] | None:
    """The span of a block scalar's one content line (text[start:end] is `|-` / `>` ... through its end),
    when its value (less trailing line breaks) is exactly that line; None otherwise."""
    content = value.rstrip("\n")
    if not content or "\n" in content:
        return None
    header = _LINE_BREAK.search(text, start, end)  # the end of the header line (`>-  # comment`)
    if header is None:
        return None
    i = header.end()
    while i < end and text[i] == " ":
        i += 1
    if text.startswith(content, i) and (i + len(content) == len(text) or text[i + len(content)] in "\r\n"):
        return i, i + len(content)
    return None


def _scalar_span(text: str, e: Any, start: int, end: int) -> tuple[int, int]:
    """The span of a scalar event's Scalar (its source text[start:end]): after its properties (`&anchor`,
    `!tag`); a one-line block scalar's content line (see _block_content)."""
    if e.anchor is not None or getattr(e, "tag", None) is not None:
        start = _skip_properties(text, start, end)
    if e.style in ("|", ">"):
        content = _block_content(text, start, end, e.value)
        if content is not None:
            return content
    return start, end


# which documents _Parsed composes: (index, start, end) -> compose it? (see _Parsed)
Keep = Callable[[int, int, int], bool]
# the events of one document held back before it is composed as it is read (see _Parsed): ~300 KB of YAML
_HELD_EVENTS = 50_000
# what an open collection waits for, in _Parsed._read (a mapping waiting for the value of a scalar key: its end)
_IN_SEQUENCE, _FOR_KEY, _FOR_VALUE = -3, -2, -1


class _Parsed:
    """Documents (root nodes), the verifier's events of one text, and where each anchored scalar is
    used: `uses[id(anchored node)]` = [(the node written there: itself or an alias, its role), ...] with
    role the mapping key it is the value of, or None (a list item, a key, a document).

    source: the text the parser reads, when not text itself: a copy of the same length (see _pure_parse);
    `spans` then lists each scalar's (start, end, plain), its content without properties or block header.
    Another reader of the text (sync's loader) reads `source` with the same parser (`pure`) to read what
    this did.  `shallow`: a collection nested more than _MAX_DEPTH levels deep is a YamlSyntaxError there,
    raised at once (the walker leaves such a part out and searches the rest).

    Every event is read (a syntax error anywhere is one), but a document's nodes are made only when needed:
    - keep: which documents to compose, asked once each is read, with its index and the span from the end of
      the one before to its own end; one turned down has no nodes (None in `docs`), unless it has an alias,
      a merge key or a collection nested more than _MAX_DEPTH deep, which the walker's alias budget and depth
      limit (file-wide) must see as before.  `kept`: the indexes of the documents composed.  A document's
      events wait for its end (past _HELD_EVENTS, it is composed as it is read, and dropped if turned down).
    - walk: locate the image references of each document as soon as it is composed (the result: `located`;
      `filename` as for locate), and keep none of its nodes: `docs` stays empty, `uses` is the last one's.
    events: makes the sink of the parser events from the text (default: `events` is an _EventLog of them);
    None: they are not kept."""

    def __init__(self, text: str, pure: bool = False, source: str | None = None, shallow: bool = False, *,
                 keep: Keep | None = None, events: Callable[[str], _EventSink] | None = _EventLog,
                 walk: bool = False, filename: str | None = None) -> None:
        self.text = text
        self.source = text if source is None else source
        self.pure = pure  # read by the pure-Python parser (else libyaml's)
        self.shallow = shallow
        self.offset = 1 if text.startswith("\ufeff") else 0
        self.lines = _Lines(text)
        self.docs: list[_Node | None] = []
        self.events = events(text) if events is not None else None
        self.uses: dict[int, list[tuple[_Node, str | None]]] = {}
        self.spans: list[tuple[int, int, bool]] | None = None if source is None else []
        self.kept: set[int] = set()
        self.located: LocateResult | None = None
        self._walk = _Walk(self, filename) if walk else None
        self._read(pure, keep)
        if self._walk is not None:
            self.located = self._walk.result()
            self._walk = None

    def _scalar(self, e: Any, start: int, end: int, flow: bool) -> Scalar:
        begin, finish = _scalar_span(self.text, e, start, end)
        if begin != start or e.anchor is not None or getattr(e, "tag", None) is not None:
            line, column = self.lines.position(begin)
        else:
            line, column = e.start_mark.line + 1, e.start_mark.column + 1
        return Scalar(e.value, begin, finish, line, column, _STYLES.get(e.style, "plain"), e.anchor, flow)

    def _read(self, pure: bool, keep: Keep | None) -> None:
        """Every event, to the sink and spans; each document's events to a _Composer (see the class)."""
        from ruamel.yaml import events as ev

        scalar_event, alias_event = ev.ScalarEvent, ev.AliasEvent
        mapping_start, sequence_start, mapping_end, sequence_end = \
            ev.MappingStartEvent, ev.SequenceStartEvent, ev.MappingEndEvent, ev.SequenceEndEvent
        text, off = self.text, self.offset
        add = self.events.add if self.events is not None else None
        spans = self.spans
        waits: list[int] = []  # per open collection: _IN_SEQUENCE, _FOR_KEY, or (waiting for a value) the
        styles: list[str] = []  # end of its scalar key, _FOR_VALUE after another key; and its style
        composer: _Composer | None = None
        held: list[Any] | None = None  # the events of the document being read, while its composing waits
        special = False  # it has an alias, a merge key or a collection too deep for `keep` to turn it down
        index = begin = 0  # of the document being read, and where the one before ended
        body = self.source[off:] if off else self.source
        reached = off  # where the events so far end
        try:
            for e in _events(body, pure):
                cls = type(e)
                start = e.start_mark.index + off
                reached = e.end_mark.index + off
                key_end: int | None = None  # a node read: its end when a scalar, for the mapping it is a key of
                if cls is scalar_event:
                    style = _STYLES.get(e.style, "plain")
                    if add is not None or spans is not None:
                        at, end = _scalar_span(text, e, start, reached)
                        if spans is not None:
                            content = at
                            if style in ("literal", "folded"):  # after its header line
                                header = _LINE_BREAK.search(text, _skip_properties(text, start, reached), reached)
                                content = header.end() if header is not None else reached
                            spans.append((content, reached, style == "plain"))
                        if add is not None:
                            if at == end and waits and waits[-1] >= 0 and style == "plain" and e.anchor is None \
                                    and e.value in _NULLS:
                                # an empty value: libyaml and the Python parser disagree on its mark; right after ':'
                                colon = _after_colon(text, waits[-1])
                                at = at if colon is None else colon
                            add("S", at, end, e.value, style, e.anchor)
                    if e.value == "<<" and style == "plain":
                        special = True
                    key_end = reached
                elif cls is mapping_start or cls is sequence_start:
                    kind = "M" if cls is mapping_start else "Q"
                    style = "flow" if e.flow_style else "block"
                    if add is not None:
                        add(kind, start, reached, None, style, e.anchor)
                    if waits and waits[-1] != _IN_SEQUENCE:
                        waits[-1] = _FOR_VALUE if waits[-1] == _FOR_KEY else _FOR_KEY
                    waits.append(_FOR_KEY if kind == "M" else _IN_SEQUENCE)
                    styles.append(style)
                    if len(waits) > _MAX_DEPTH:
                        special = True
                        if self.shallow:
                            raise YamlSyntaxError(e.start_mark.line + 1, e.start_mark.column + 1,
                                                  f"nested more than {_MAX_DEPTH} levels deep")
                elif cls is mapping_end or cls is sequence_end:
                    waits.pop()
                    style = styles.pop()
                    if add is not None:
                        add("m" if cls is mapping_end else "q", start, reached, None, style, None)
                elif cls is alias_event:
                    special = True
                    if add is not None:
                        add("A", start, reached, None, None, e.anchor)
                    key_end = _FOR_VALUE
                elif cls is ev.DocumentStartEvent:
                    if e.explicit:  # at its `---` (libyaml starts the event at its first directive)
                        start = reached - 3
                    if add is not None:
                        add("D", start, reached, None, None, None)
                    composer, held = (_Composer(self), None) if keep is None else (None, [])
                    special = False
                    continue
                elif cls is ev.DocumentEndEvent:
                    if add is not None:
                        add("d", start, reached, None, None, None)
                    if keep is not None and not special and not keep(index, begin, reached):
                        composer = None
                    elif held is not None:
                        composer = _Composer(self, held)
                    self._document(index, composer)
                    composer, held = None, None
                    index, begin = index + 1, reached
                    continue
                else:  # stream start / end
                    continue
                if key_end is not None and waits and waits[-1] != _IN_SEQUENCE:  # a key read, or its value
                    waits[-1] = key_end if waits[-1] == _FOR_KEY else _FOR_KEY
                if held is not None:
                    held.append(e)
                    if len(held) > _HELD_EVENTS:  # too many to hold: composed as read, dropped if turned down
                        composer, held = _Composer(self, held), None
                elif composer is not None:
                    composer.feed(e)
        except RecursionError as exc:  # pragma: no cover - pathological nesting
            raise YamlSyntaxError(1, 1, "too deeply nested") from exc
        except _ParserFailure as exc:
            exc.offset = reached
            raise

    def _document(self, index: int, composer: _Composer | None) -> None:
        """A document read: composed (`composer`) or not (None)."""
        if composer is not None:
            self.kept.add(index)
        if self._walk is None:
            self.docs.append(composer.root if composer is not None else None)
            if composer is not None:
                self.uses.update(composer.uses)
        elif composer is not None:
            self.uses = composer.uses
            self._walk.document(index, composer.root)


class _Composer:
    """The nodes of one document from its parser events, fed in order (no document start or end): `root`
    once it is complete, and `uses` (see _Parsed) of its anchored scalars.  `held`: events read already, fed
    first."""

    def __init__(self, parsed: _Parsed, held: Iterable[Any] = ()) -> None:
        from ruamel.yaml import events as ev

        self.parsed = parsed
        self.anchors: dict[str, _Node] = {}
        self.stack: list[_Node] = []
        self.pending_key: list[_Node | None] = []  # per open mapping: the key waiting for its value
        self.uses: dict[int, list[tuple[_Node, str | None]]] = {}
        self.root: _Node | None = None
        self._ev = ev
        for event in held:
            self.feed(event)

    def feed(self, e: Any) -> None:
        ev, parsed, stack = self._ev, self.parsed, self.stack
        cls = type(e)
        off = parsed.offset
        start = e.start_mark.index + off
        if cls is ev.ScalarEvent:
            node = _Node("S", start, e.start_mark.line + 1, e.start_mark.column + 1, e.anchor)
            end = e.end_mark.index + off
            node.scalar = parsed._scalar(e, start, end, bool(stack) and stack[-1].flow)
            node.start, node.end = node.scalar.start, end
            if node.scalar.style in ("literal", "folded"):  # the node starts at its `|` / `>`
                node.start = _skip_properties(parsed.text, start, end)
            if e.anchor is not None:
                self.anchors[e.anchor] = node
        elif cls is ev.AliasEvent:
            node = _Node("A", start, e.start_mark.line + 1, e.start_mark.column + 1, None)
            node.end = e.end_mark.index + off
            node.target = self.anchors.get(e.anchor)
        elif cls is ev.MappingStartEvent or cls is ev.SequenceStartEvent:
            kind = "M" if cls is ev.MappingStartEvent else "Q"
            node = _Node(kind, start, e.start_mark.line + 1, e.start_mark.column + 1, e.anchor)
            node.flow = bool(e.flow_style)
            if e.anchor is not None:
                self.anchors[e.anchor] = node
            self._add(node)
            stack.append(node)
            self.pending_key.append(None)
            return
        elif cls is ev.MappingEndEvent or cls is ev.SequenceEndEvent:
            done = stack.pop()
            self.pending_key.pop()
            done.end = e.end_mark.index + off
            if not stack:
                self.root = done
            return
        else:
            return
        if not stack:
            self._use(node, None)
            self.root = node
        else:
            self._add(node)

    def _use(self, node: _Node, role: str | None) -> None:
        target = node.target if node.kind == "A" else node
        if target is not None and target.kind == "S" and target.anchor is not None:
            self.uses.setdefault(id(target), []).append((node, role))

    def _add(self, node: _Node) -> None:
        stack, pending_key = self.stack, self.pending_key
        if not stack:
            return
        parent = stack[-1]
        if parent.kind == "Q":
            self._use(node, None)
            parent.items.append(node)
            return
        key = pending_key[-1]
        if key is None:
            self._use(node, None)
            pending_key[-1] = node
            return
        if node.kind == "S" and node.scalar is not None and node.scalar.is_null and node.anchor is None \
                and node.scalar.start == node.scalar.end and key.kind == "S":
            # An empty value: libyaml and the Python parser disagree on its mark; put it right after ':'.
            pos = _after_colon(self.parsed.text, key.end)
            if pos is not None:
                line, column = self.parsed.lines.position(pos)
                node.scalar = Scalar("", pos, pos, line, column, "plain", None, parent.flow)
                node.start = node.end = pos
        self._use(node, _key(key))
        parent.items.append((key, node))
        pending_key[-1] = None


def parse(text: str, shallow: bool = False, *, keep: Keep | None = None,
          events: Callable[[str], _EventSink] | None = _EventLog, walk: bool = False,
          filename: str | None = None) -> _Parsed:
    """Parse text into nodes and events; raises YamlSyntaxError (the pure parser's, when libyaml refuses the
    text: see _c_loader).  A `%YAML` directive naming a version other than 1.1 or 1.2 is such an error, and
    so is any other exception from inside a parser (at the line where its events end).  `shallow`: and so
    is a collection nested more than _MAX_DEPTH levels deep, found as soon as it opens (sync, which reads
    what this read with a loader that recurses per level: see _Parsed).  keep, events, walk, filename: see
    _Parsed (each reading of the text starts them afresh)."""
    from ruamel.yaml.error import YAMLError

    refused = yaml_version_error(text)
    if refused is not None:
        raise refused
    offset = 1 if text.startswith("\ufeff") else 0
    error = YamlSyntaxError(1, 1, "no YAML parser")
    read = partial(_Parsed, shallow=shallow, keep=keep, events=events, walk=walk, filename=filename)
    for pure in (False, True) if _c_loader() is not None else (True,):
        try:
            return _pure_parse(text, read) if pure else read(text)
        except YAMLError as exc:
            error = _syntax_error(exc, text, offset)
        except _ParserFailure as exc:
            line, column = _Lines(text).position(exc.offset)
            error = YamlSyntaxError(line, column, f"the YAML parser failed after this point ({exc})")
    raise error from None


# a run of blanks with a tab in it, after something else on its line
_TAB_RUN = re.compile(r"(?<=[^\s\ufeff])[ \t]*\t[ \t]*")
_PROPERTY_BEFORE = re.compile(r"(?:^|[\s:\-?,\[{])[&!][^\s]*$")


def _separation_tabs(text: str) -> list[tuple[int, int, bool]]:
    """Runs of blanks with a tab inside a line that, outside a quoted or block scalar, separate tokens:
    (start, end, before a comment or line end).  Such a run is followed by a comment or the line's end, or
    comes after a `:` (a value indicator: a plain scalar holds no `:` before a blank), before one, after
    an `&anchor` / `!tag`, after the `---` that starts a document (`---<TAB>!!map`, `---<TAB>[a]`), or is on a
    directive's line (`%YAML<TAB>1.2`, `%TAG !e!<TAB>tag:...`: a `%` in a line's first column starts one)."""
    runs = []
    for m in _TAB_RUN.finditer(text):
        a, b = m.span()
        after = text[b:b + 2]
        trailing = after[:1] in ("", "#", "\r", "\n")
        before = text[_line_start(text, a):a].lstrip("\ufeff")
        if (trailing or text[a - 1] == ":" or (after[:1] == ":" and after[1:] in ("", " ", "\t", "\r", "\n"))
                or _PROPERTY_BEFORE.search(before) or before == "---" or before.startswith("%")):
            runs.append((a, b, trailing))
    return runs


def _line_start(text: str, pos: int) -> int:
    return max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos)) + 1


def _spaced(text: str, runs: list[tuple[int, int, bool]]) -> str:
    """A copy of text with each run of blanks made spaces, one for one (every offset stays)."""
    chars = list(text)
    for a, b, _ in runs:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _pure_parse(text: str, read: Callable[..., _Parsed] = _Parsed) -> _Parsed:
    """The pure parser's reading of text, the same as libyaml's where a tab separates tokens inside a line.

    YAML 1.2 and libyaml take a tab as separation white space inside a line (before a comment, after a
    value, after `:`); ruamel's pure-Python scanner refuses it in block context.  When it refuses text, the
    text is read again from a copy in which each such run of blanks (_separation_tabs) is spaces, one for
    one, so every offset stays; a run that turns out to lie inside a quoted or block scalar (content: its
    tab stays), or inside a plain one other than at a line's end, is put back and the copy read again.
    Raises the YAMLError of the last text read.  read: makes a _Parsed (of the options parse was given)."""
    from ruamel.yaml.error import YAMLError

    try:
        return read(text, pure=True)
    except YAMLError:
        if "\t" not in text:
            raise
        runs = _separation_tabs(text)
        if not runs:
            raise
    while True:
        parsed = read(text, pure=True, source=_spaced(text, runs))
        assert parsed.spans is not None
        begins = [start for start, _, _ in parsed.spans]
        content = set()
        for run in runs:
            i = bisect.bisect_right(begins, run[0]) - 1
            if i >= 0 and run[0] < parsed.spans[i][1] and not (parsed.spans[i][2] and run[2]):
                content.add(run)
        if not content:
            return parsed
        runs = [run for run in runs if run not in content]


# --------------------------------------------------------------------------------------------------
# Walking: nodes -> references
# --------------------------------------------------------------------------------------------------

def _alias(node: _Node) -> str:
    """An alias node as messages name it."""
    return f"the alias *{node.target.anchor if node.target is not None else '?'} on line {node.line}"


def _deref(node: _Node | None) -> tuple[_Node | None, bool]:
    if node is not None and node.kind == "A":
        return node.target, True
    return node, False


def _key(node: _Node) -> str | None:
    return node.scalar.value if node.kind == "S" and node.scalar is not None else None


def _pairs(node: _Node, budget: list[int]) -> list[_Pair]:
    """(key, key node, value node, the merge it comes from), `<<` merges resolved; explicit keys win."""
    out: list[_Pair] = []
    merges: list[tuple[_Node, _Merge]] = []
    seen: set[str] = set()
    for k, v in node.items:
        name = _key(k)
        if name == "<<" and k.scalar is not None and k.scalar.style == "plain":
            target, _ = _deref(v)
            items = target.items if target is not None and target.kind == "Q" else [v]
            merges.extend((t, _Merge(k, i)) for i in items for t in [_deref(i)[0]] if t is not None)
            continue
        if name is not None:
            seen.add(name)
            out.append((name, k, v, None))
    for m, merge in merges:
        if m.kind != "M" or budget[0] <= 0:
            continue
        budget[0] -= len(m.items)
        for name, k, v, _ in _pairs(m, budget):
            if name not in seen:
                seen.add(name)
                out.append((name, k, v, merge))
    return out


def _string_scalar(node: _Node | None) -> Scalar | None:
    """The scalar of a node when it is a usable (non-block) scalar."""
    if node is None or node.kind != "S" or node.scalar is None:
        return None
    if node.scalar.style in ("literal", "folded"):
        return None
    return node.scalar


def top_level_scalar(text: str, key: str) -> Scalar | None:
    """The scalar of a key of the first document's top-level mapping (Chart.yaml's `appVersion`), as written
    (`1.10` stays "1.10"); None when the key is absent or not a scalar.  Raises YamlSyntaxError."""
    parsed = parse(text)
    root, _ = _deref(parsed.docs[0] if parsed.docs else None)
    if root is None or root.kind != "M":
        return None
    for name, _k, value, _merge in _pairs(root, [_ALIAS_BUDGET]):
        if name == key:
            return _string_scalar(_deref(value)[0])
    return None


def _field_values(fields: dict[str, Scalar]) -> dict[str, str]:
    return {name: "" if s.is_null else s.value for name, s in fields.items()}


def map_name(kind: str, values: dict[str, str]) -> str:
    """The repository name a kustomize entry (newName, else name) or Helm map (registry/repository) gives."""
    if kind == "kustomize":
        return values.get("newName") or values.get("name", "")
    registry, repository = values.get("registry", "").rstrip("/"), values.get("repository", "")
    if registry and repository:
        return f"{registry}/{repository}"
    return repository or registry


def _repository(name: str | None) -> str | None:
    """A map reference's name normalised (`team/app` -> `docker.io/team/app`); as written when it is no
    valid name (then only the same spelling is the same image)."""
    parsed = imageref.try_parse(name) if name else None
    return parsed.normalized_name if parsed is not None else name


def compose_map_value(kind: str, values: dict[str, str]) -> str:
    """A map reference as one string: `name[:tag][@digest]` from field values ('' = unset)."""
    out = map_name(kind, values)
    tag = values.get("newTag" if kind == "kustomize" else "tag")
    if tag:
        out += f":{tag}"
    if values.get("digest"):
        out += f"@{values['digest']}"
    return out


def is_argocd_source_file(basename: str) -> bool:
    """A file Argo CD merges into the source of the Applications whose path holds it: `.argocd-source.yaml` (all of
    them), `.argocd-source-<app>.yaml` (Argo CD Image Updater's git write-back; `<namespace>_<app>` too)."""
    return basename == ".argocd-source.yaml" or (basename.startswith(".argocd-source-") and basename.endswith(".yaml"))


# kustomize's `<image>:<tag>` (`kustomize edit set image`): the tag is what follows the last ':' when it is all
# tag characters (so `localhost:5000/app` has none)
_OVERRIDE_TAG = re.compile(r"(.*):([a-zA-Z0-9._-]+)", re.ASCII | re.DOTALL)


def override_parts(value: str) -> dict[str, tuple[int, int]] | None:
    """A kustomize image-override string as `kustomize edit set image` reads it (which Argo CD runs for an
    Application's `kustomize.images`): role (name, newName, newTag, digest) -> (start, end) in value.

    `name=newName[:tag][@digest]`, `name:tag[@digest]`, `name@digest` (kustomize 5.2 and later read a tag
    before a digest).  None for anything else, and for what gitops does not edit: a `*` (keep the
    kustomization's value, which gitops does not look up), an empty part, more than one `=` or `@`, blanks."""
    if not value or "*" in value or value.count("=") > 1 or value.count("@") > 1 \
            or any(c.isspace() for c in value):
        return None
    out: dict[str, tuple[int, int]] = {}
    start, role = 0, "name"
    if "=" in value:
        start = value.index("=") + 1
        out["name"] = (0, start - 1)
        role = "newName"
    at = value.find("@", start)
    head_end = len(value) if at == -1 else at
    if at != -1:
        out["digest"] = (at + 1, len(value))
    tagged = _OVERRIDE_TAG.fullmatch(value, start, head_end)
    if tagged is not None:
        out[role] = (start, tagged.end(1))
        out["newTag"] = tagged.span(2)
    elif at != -1 or role == "newName":
        out[role] = (start, head_end)
    else:  # `team/app`: kustomize refuses a name with neither tag nor digest
        return None
    if any(a >= b for a, b in out.values()) or value[head_end - 1] == ":":  # `team/app:`: an empty tag
        return None
    return out


class _Walk:
    def __init__(self, parsed: _Parsed, filename: str | None) -> None:
        self.parsed = parsed
        self.text = parsed.text
        basename = os.path.basename(filename) if filename else None
        self.kustomization_file = basename in KUSTOMIZATION_FILES
        self.argocd_source_file = basename is not None and is_argocd_source_file(basename)
        self.refs: list[Reference] = []
        self.budget = [_ALIAS_BUDGET]
        self.doc = 0
        self.root_kind: str | None = None
        self.kustomization = False
        self.compose = False
        self.argo: str | None = None  # an Argo CD Application or ApplicationSet document: its kind
        self.helm_release = False  # a Flux HelmRelease document
        self.active: set[int] = set()
        self.too_deep: _Node | None = None  # the first node below _MAX_DEPTH (not searched)
        self.sites: set[int] = set()  # id() of each node written at a located `image:` string
        self.anchored: list[tuple[int, _Node, _Node]] = []  # (index in refs, anchored scalar, node written)
        self.through: list[_Node | _Merge] = []  # the aliases and merge keys walked through to here (innermost last)
        self.field_sites: dict[int, list[tuple[int, str]]] = {}  # id() of a node written at a map field: [(ref, role)]
        self.anchored_fields: list[tuple[int, str, _Node, _Node]] = []  # (ref, role, anchored scalar, node written)
        self.tag_only: list[Scalar] = []  # see LocateResult

    def run(self) -> list[Reference]:
        for i, root in enumerate(self.parsed.docs):
            self.document(i, root)
        return self.finish()

    def document(self, index: int, root: _Node | None) -> None:
        """The references of one document, with the conflicts of its anchored values (an anchor is one
        document's: what is kept of the nodes is let go once this returns)."""
        self.doc = index
        self._document(root)
        for ref, target, written in self.anchored:
            conflict = self._conflict(target, written, lambda node: id(node) in self.sites)
            if conflict is not None:
                self.refs[ref] = replace(self.refs[ref], conflict=conflict)
        field_conflicts: dict[int, dict[str, str]] = {}
        for ref, role, target, written in self.anchored_fields:
            conflict = self._field_conflict(ref, role, target, written)
            if conflict is not None:
                field_conflicts.setdefault(ref, {})[role] = conflict
        for ref, conflicts in field_conflicts.items():
            self.refs[ref] = replace(self.refs[ref], field_conflicts=conflicts)
        self.sites.clear()
        self.anchored.clear()
        self.field_sites.clear()
        self.anchored_fields.clear()

    def finish(self) -> list[Reference]:
        self.refs.sort(key=lambda r: (r.doc, r.line, r.column))
        return self.refs

    def result(self) -> LocateResult:
        return LocateResult(self.finish(), self.error(), self.tag_only)

    def error(self) -> YamlSyntaxError | None:
        """Set when part of the text was too deeply nested to search: reported like a syntax error."""
        node = self.too_deep
        if node is None:
            return None
        return YamlSyntaxError(node.line, node.column, f"nested more than {_MAX_DEPTH} levels deep; "
                                                       "not searched for image references")

    def _conflict(self, target: _Node, written: _Node, fine: Callable[[_Node], bool],
                  extension: bool = True) -> str | None:
        """Why editing an anchored scalar for this reference would change something else; None if it would not.

        Fine: every use of the anchor is a node `fine` accepts (a located `image:` string; the same field of a
        map naming the same image), or (`extension`) the anchor is set on an `x-...` key (a compose extension
        field: a value kept only to be aliased)."""
        others = [(node, role) for node, role in self.parsed.uses.get(id(target), [])
                  if not fine(node) and not (extension and node is target and (role or "").startswith("x-"))]
        if not others:
            return None
        node, role = others[0]
        how = "is set on" if node is target else "is also used by"
        where = f" (written as *{target.anchor} on line {written.line})" if written is not target else ""
        sites = self.field_sites.get(id(node))
        if sites:  # a field of another image's map
            what = f"the `{role}` of {self.refs[sites[0][0]].value!r} on line {node.line}"
        else:
            what = (f"`{role}`" if role is not None else "a list item or key") + f" on line {node.line}, not an image"
        return f"comes from the anchor &{target.anchor}{where}, which {how} {what}; bumping it would change that too"

    def _field_conflict(self, index: int, role: str, target: _Node, written: _Node) -> str | None:
        """_conflict for a field of a map reference: fine where the anchor is only used by that same field of
        maps naming the same image, compared normalised as the bump matches them (they all get the same new
        value: `team/app` and `docker.io/team/app` are one image)."""
        ref = self.refs[index]

        repository = _repository(ref.name)

        def fine(node: _Node) -> bool:
            return any(r == role and self.refs[i].kind == ref.kind and _repository(self.refs[i].name) == repository
                       for i, r in self.field_sites.get(id(node), ()))

        return self._conflict(target, written, fine, extension=False)

    def _document(self, root: _Node | None) -> None:
        if root is None or root.kind != "M":
            if root is not None:
                self._node(root, (), False, 0)
            return
        top = {name: v for name, _, v, _ in _pairs(root, self.budget)}
        kind_node = _string_scalar(_deref(top.get("kind"))[0])
        self.root_kind = kind_node.value if kind_node else None
        images = _deref(top.get("images"))[0]
        self.kustomization = (
            self.root_kind in KUSTOMIZATION_KINDS
            or self.kustomization_file
            or (self.root_kind is None and "apiVersion" not in top and _looks_like_kustomize_images(images))
        )
        services = _deref(top.get("services"))[0]
        self.compose = (services is not None and services.kind == "M" and "apiVersion" not in top
                        and "kind" not in top)
        api = _string_scalar(_deref(top.get("apiVersion"))[0])
        argo = api is not None and api.value.startswith("argoproj.io/")
        self.argo = self.root_kind if argo and self.root_kind in ARGO_APPLICATION_KINDS else None
        self.helm_release = (self.root_kind == "HelmRelease" and api is not None
                             and api.value.startswith("helm.toolkit.fluxcd.io/"))
        self._node(root, (), False, 0)

    def _app_source(self, path: tuple[str | int, ...]) -> bool:
        """Is the mapping at path an Argo CD ApplicationSource: an Application's `spec.source` or an item of its
        `spec.sources`, or the same in an ApplicationSet's `spec.template`; or the document of a file Argo CD
        merges into an Application's source (`.argocd-source-<app>.yaml`, Argo CD Image Updater's write-back)?"""
        if self.argocd_source_file and path == ():
            return True
        if self.argo is None:
            return False
        base = ("spec",) if self.argo == "Application" else ("spec", "template", "spec")
        if path[:len(base)] != base:
            return False
        rest = path[len(base):]
        return rest == ("source",) or (len(rest) == 2 and rest[0] == "sources" and isinstance(rest[1], int))

    def _node(self, node: _Node | None, path: tuple[str | int, ...], via: bool, depth: int) -> None:
        if node is None:
            return
        if depth > _MAX_DEPTH:
            if self.too_deep is None:
                self.too_deep = node
            return
        if node.kind == "A":
            target = node.target
            if target is None or id(target) in self.active or self.budget[0] <= 0:
                return
            self.active.add(id(target))
            self.through.append(node)
            try:
                self._node(target, path, True, depth + 1)
            finally:
                self.active.discard(id(target))
                self.through.pop()
            return
        if via:
            self.budget[0] -= 1
            if self.budget[0] <= 0:
                return
        if node.kind == "Q":
            for i, item in enumerate(node.items):
                self._node(item, (*path, i), via, depth + 1)
        elif node.kind == "M":
            self._mapping(node, path, via, depth)

    def _mapping(self, node: _Node, path: tuple[str | int, ...], via: bool, depth: int) -> None:
        pairs = _pairs(node, self.budget)
        values = {name: v for name, _, v, _ in pairs}
        skip: set[str] = set()
        if self.kustomization and (path == () or (path == ("spec",) and self.root_kind == "Kustomization")):
            self._kustomize_images(values.get("images"), (*path, "images"), via)
            skip |= _KUSTOMIZATION_SKIP
        if self._app_source(path):
            self._app_source_images(values, path, via)
        if self.helm_release and len(path) == 4 and path[:2] == ("spec", "postRenderers") and path[3] == "kustomize":
            # a Flux HelmRelease's kustomize post-renderer: its `images` are kustomization images: entries
            self._kustomize_images(values.get("images"), (*path, "images"), via)
            skip.add("images")
        kind = _string_scalar(_deref(values.get("kind"))[0])
        if kind is not None and kind.value in ("ConfigMap", "Secret"):  # a document, a `kind: List` item, ...
            skip |= {"data", "stringData", "binaryData"}
        parent_key = path[-1] if path and isinstance(path[-1], str) else None
        consumed = self._helm_map(node, values, pairs, path, parent_key, via)
        skip |= consumed
        for name, _, value, merge in pairs:
            if name in skip or name in _SKIP_KEYS:
                continue
            target, aliased = _deref(value)
            if target is None:
                continue
            if merge is not None:
                self.through.append(merge)
            try:
                if name == "image" and target.kind == "S":
                    self._image_string(values, value, target, (*path, name), via or merge is not None or aliased)
                elif target.kind in "MQ":
                    self._node(value, (*path, name), via or merge is not None, depth + 1)
            finally:
                if merge is not None:
                    self.through.pop()

    def _image_string(self, values: dict[str, _Node], written: _Node, value: _Node,
                      path: tuple[str | int, ...], via: bool) -> None:
        """`image: VALUE` (written: the node as written there, value or an alias of it)."""
        scalar = value.scalar
        if scalar is None or scalar.is_null or not scalar.value.strip():
            return
        container = None
        if len(path) >= 3 and isinstance(path[-2], int) and path[-3] in CONTAINER_KEYS:
            kind = "container"
            name = _string_scalar(_deref(values.get("name"))[0])
            container = name.value if name is not None else None
        elif self.compose and len(path) == 3 and path[0] == "services":
            kind, container = "compose", str(path[1])
        elif self.compose and len(path) == 2 and str(path[0]).startswith("x-"):
            kind = "compose"  # an extension field's template (`x-app: &app {image: ...}`), merged into services
        else:
            kind = "image"
        self.sites.add(id(written))
        if value.anchor is not None:
            self.anchored.append((len(self.refs), value, written))
        link = written if written.kind == "A" else self.through[-1] if self.through else None
        through = link.describe() if isinstance(link, _Merge) else _alias(link) if link is not None else None
        self.refs.append(Reference(kind=kind, form="string", value=scalar.value, doc=self.doc, path=path,
                                   line=scalar.line, column=scalar.column, scalar=scalar, container=container,
                                   via_alias=via, through=through))

    def _kustomize_images(self, images: _Node | None, path: tuple[str | int, ...], via: bool) -> None:
        images, aliased = _deref(images)
        if images is None or images.kind != "Q":
            return
        for i, item in enumerate(images.items):
            entry, item_alias = _deref(item)
            if entry is None or entry.kind != "M":
                continue
            pairs = _pairs(entry, self.budget)
            fields = {name: s for name, _, v, _ in pairs if name in KUSTOMIZE_FIELDS
                      for s in [_string_scalar(_deref(v)[0])] if s is not None}
            if "name" not in fields:
                continue
            self._map_ref("kustomize", entry, pairs, fields, {f: f for f in fields}, (*path, i),
                          via or aliased or item_alias)

    def _app_source_images(self, values: dict[str, _Node], path: tuple[str | int, ...], via: bool) -> None:
        """An Argo CD ApplicationSource's `kustomize.images` (image-override strings) and `helm.parameters`."""
        kustomize, aliased = _deref(values.get("kustomize"))
        if kustomize is not None and kustomize.kind == "M":
            fields = {name: v for name, _, v, _ in _pairs(kustomize, self.budget)}
            self._overrides(fields.get("images"), (*path, "kustomize", "images"), via or aliased)
        helm, aliased = _deref(values.get("helm"))
        if helm is not None and helm.kind == "M":
            fields = {name: v for name, _, v, _ in _pairs(helm, self.budget)}
            self._helm_parameters(fields.get("parameters"), (*path, "helm", "parameters"), via or aliased)

    def _helm_parameters(self, params: _Node | None, path: tuple[str | int, ...], via: bool) -> None:
        """An Argo CD Helm parameter list (`[{name: image.repository, value: team/app}, {name: image.tag, ...}]`,
        each a `--set`): the parameters of one prefix X that name an image, as a Helm values map would (see
        helm_parameter_roles), are one map reference whose fields are their values; a lone `X.image` whose
        value has a tag or digest (Image Updater's image-spec) is an `image` string.  A name given twice is
        not read (which value Helm takes is then a matter of order)."""
        params, aliased = _deref(params)
        if params is None or params.kind != "Q":
            return
        entries: dict[str, list[tuple[int, _Node, _Node, bool, bool]]] = {}  # name -> [(i, item, value, ...)]
        for i, item in enumerate(params.items):
            entry, item_alias = _deref(item)
            if entry is None or entry.kind != "M":
                continue
            got = {name: (v, merge) for name, _, v, merge in _pairs(entry, self.budget)}
            key = _string_scalar(_deref(got["name"][0])[0]) if "name" in got else None
            if key is None or key.is_null or "value" not in got:
                continue
            value, merge = got["value"]
            entries.setdefault(key.value, []).append((i, entry, value, merge is not None, item_alias))
        groups: dict[str, dict[str, str]] = {}  # prefix -> last part -> parameter name
        for name, found in entries.items():
            if len(found) == 1:
                prefix, _, last = name.rpartition(".")
                groups.setdefault(prefix, {})[last] = name
        for prefix, names in groups.items():
            roles = helm_parameter_roles(prefix, names)
            if roles is None:
                continue
            if "tag" not in roles and "digest" not in roles:  # a lone `X.image`
                if "registry" not in roles:
                    self._image_parameter(entries[roles["repository"]][0], path, via or aliased)
                continue
            fields = {role: s for role, name in roles.items()
                      for s in [_string_scalar(_deref(entries[name][0][2])[0])] if s is not None}
            # every value a string, and a tag parameter or a digest (a tag cannot be added to a parameter list)
            if set(fields) != set(roles) or not ("tag" in fields or _field_values(fields).get("digest")):
                continue
            self._parameter_map(roles, fields, {role: entries[name][0] for role, name in roles.items()}, path,
                                via or aliased)

    def _image_parameter(self, found: tuple[int, _Node, _Node, bool, bool], path: tuple[str | int, ...],
                         via: bool) -> None:
        """A lone `X.image` parameter: an image string when its value has a tag or a digest (a bare name is
        the repository of a tag set elsewhere, as Image Updater's image-name parameter is)."""
        i, _, written, merged, item_alias = found
        value = _deref(written)[0]
        scalar = _string_scalar(value)
        parsed = imageref.try_parse(scalar.value) if scalar is not None and not scalar.is_null else None
        if value is None or parsed is None or (parsed.tag is None and parsed.digest is None):
            return
        self._image_string({}, written, value, (*path, i), via or merged or item_alias)

    def _parameter_map(self, roles: dict[str, str], fields: dict[str, Scalar],
                       found: dict[str, tuple[int, _Node, _Node, bool, bool]], path: tuple[str | int, ...],
                       via: bool) -> None:
        """One Helm map reference from parameters: fields are their values, keys their names."""
        index = len(self.refs)
        i, entry = found["repository"][0], found["repository"][1]
        for role, (_, _, written, _, _) in found.items():
            target = _deref(written)[0]
            self.field_sites.setdefault(id(written), []).append((index, role))
            if target is not None and target.anchor is not None:
                self.anchored_fields.append((index, role, target, written))
        first_key = entry.items[0][0] if entry.items else entry
        line, column = (first_key.scalar.line, first_key.scalar.column) if first_key.scalar else \
            (first_key.line, first_key.column)
        self.refs.append(Reference(
            kind="helm", form="map", value=compose_map_value("helm", _field_values(fields)), doc=self.doc,
            path=(*path, i), line=line, column=column, fields=fields,
            via_alias=via or any(f[4] for f in found.values()), flow=entry.flow, keys=dict(roles),
            shared=frozenset(role for role, f in found.items() if f[3]), start=entry.start))

    def _overrides(self, images: _Node | None, path: tuple[str | int, ...], via: bool) -> None:
        """The kustomize image-override strings of a list (see override_parts); other items are not images."""
        images, aliased = _deref(images)
        if images is None or images.kind != "Q":
            return
        for i, item in enumerate(images.items):
            target, item_alias = _deref(item)
            scalar = target.scalar if target is not None and target.kind == "S" else None
            parts = override_parts(scalar.value) if scalar is not None and not scalar.is_null else None
            if target is None or scalar is None or parts is None:
                continue
            fields = self._override_fields(scalar, parts)
            self.sites.add(id(item))
            if scalar.anchor is not None:
                self.anchored.append((len(self.refs), target, item))
            self.refs.append(Reference(
                kind="kustomize", form="override", value=compose_map_value("kustomize", _field_values(fields)),
                doc=self.doc, path=(*path, i), line=scalar.line, column=scalar.column, scalar=scalar,
                fields=fields, via_alias=via or aliased or item_alias))

    def _override_fields(self, scalar: Scalar, parts: dict[str, tuple[int, int]]) -> dict[str, Scalar]:
        """The parts of an override string as Scalars: each of its own span when the source writes the value
        as it is (plain, or quoted with no escape), else of the whole scalar's span."""
        source = self.text[scalar.start:scalar.end]
        quote = 1 if scalar.style in ("single", "double") else 0
        exact = source[quote:len(source) - quote] == scalar.value
        out = {}
        for role, (a, b) in parts.items():
            part = replace(scalar, value=scalar.value[a:b], anchor=None)
            if exact:
                start = scalar.start + quote + a
                part = replace(part, start=start, end=start + b - a, column=scalar.column + quote + a)
            out[role] = part
        return out

    def _helm_map(self, node: _Node, values: dict[str, _Node], pairs: list[_Pair],
                  path: tuple[str | int, ...], parent_key: str | None, via: bool) -> set[str]:
        def scal(name: str) -> Scalar | None:
            return _string_scalar(_deref(values.get(name))[0])

        keys = _helm_keys(scal, parent_key)
        if keys is None:
            value = scal("tag") or scal("digest")
            if parent_key == "image" and value is not None and not value.is_null \
                    and not any(k in values for k in _HELM_NAME_KEYS if not (k == "hub" and _unset(scal(k)))):
                self.tag_only.append(value)
            return set()
        fields = {role: s for role, key in keys.items() for s in [scal(key)] if s is not None}
        self._map_ref("helm", node, pairs, fields, keys, path, via)
        return set(keys.values())

    def _map_ref(self, kind: str, node: _Node, pairs: list[_Pair], fields: dict[str, Scalar],
                 keys: dict[str, str], path: tuple[str | int, ...], via: bool) -> None:
        first_key = node.items[0][0] if node.items else node
        line, column = (first_key.scalar.line, first_key.scalar.column) if first_key.scalar else \
            (first_key.line, first_key.column)
        insert_after, indent, insert_before = self._insertion_point(node, pairs)
        by_key = {name: (v, merge) for name, _, v, merge in pairs}
        shared = frozenset(role for role, key in keys.items() if key in by_key and by_key[key][1] is not None)
        index = len(self.refs)
        for role, key in keys.items():
            if role not in fields or key not in by_key:
                continue
            written = by_key[key][0]
            target = _deref(written)[0]
            self.field_sites.setdefault(id(written), []).append((index, role))
            if target is not None and target.anchor is not None:
                self.anchored_fields.append((index, role, target, written))
        self.refs.append(Reference(
            kind=kind, form="map", value=compose_map_value(kind, _field_values(fields)), doc=self.doc,
            path=path, line=line, column=column, fields=fields, via_alias=via, insert_after=insert_after,
            indent=indent, flow=node.flow, keys=keys, shared=shared, start=node.start,
            insert_before=insert_before))

    def _insertion_point(self, node: _Node, pairs: list[_Pair]) -> tuple[int | None, str | None, int | None]:
        """Where a field added to this map goes: (offset, indentation of a new line, index of the written pair
        it comes before or None for the map's end).  After the map's last own pair (a `<<` merge key written
        after it stays after it); but before that pair when the text ends in its last value, a `|` / `>` block
        scalar with no final line break, whose value a line after it would change (`note: |` + `  hello` at the
        end of a file is 'hello'; followed by a line, 'hello\\n')."""
        own = {id(k) for _, k, _, merge in pairs if merge is None}
        after = max((i for i, (k, _) in enumerate(node.items) if id(k) in own), default=None)
        if after is None:
            return None, None, None
        if not node.flow and after == len(node.items) - 1 and _gains_line_break(self.text, node):
            after -= 1
            if after < 0:
                return None, None, None
        before = after + 1 if after + 1 < len(node.items) else None
        key, value = node.items[after]
        end = max(_content_end(key), _content_end(value))
        text = self.text
        if node.flow:
            return end, None, before
        if end > 0 and text[end - 1] in "\r\n":  # a block scalar ends at the start of the next line
            end -= 2 if text.endswith("\r\n", 0, end) else 1
            return end, self._indent(node), before
        eol = _LINE_BREAK.search(text, end)  # a CR alone is a line break too (YAML's, and old Mac files')
        return eol.start() if eol else len(text), self._indent(node), before

    def _indent(self, node: _Node) -> str:
        first_key = node.items[0][0]
        line_start = max(self.text.rfind("\n", 0, first_key.start), self.text.rfind("\r", 0, first_key.start)) + 1
        if line_start == 0 and self.parsed.offset:
            line_start = 1
        prefix = self.text[line_start:first_key.start]
        return prefix if prefix.strip() == "" else " " * (first_key.start - line_start)


def _content_end(node: _Node) -> int:
    """End of a node's own text (a block collection's end mark lies at the next token: use its last child)."""
    while node.kind in "MQ" and not node.flow and node.items:
        last = node.items[-1]
        if node.kind == "M":
            key, value = last
            return max(_content_end(key), _content_end(value))
        node = last
    if node.kind in "MQ" and not node.flow:
        return node.start
    return node.end


_BLOCK_HEADER = re.compile(r"[|>][1-9+-]{0,2}")


def _gains_line_break(text: str, node: _Node) -> bool:
    """True when a line added after a block collection's text would change a value in it: the text ends in
    its last value, a block scalar with no final line break that does not strip it (`|`, `>`, `|+`), whose
    last line would get one, and so its value ('hello' -> 'hello\\n'; a keep `|+` scalar's last blank line
    too).  Not for one whose value already ends with its line break (blank lines after it), or a lone header."""
    while node.kind in "MQ" and not node.flow and node.items:
        last = node.items[-1]
        node = last[1] if node.kind == "M" else last
    scalar = node.scalar
    if node.kind != "S" or scalar is None or scalar.style not in ("literal", "folded"):
        return False
    if node.end != len(text) or text.endswith(("\r", "\n")):
        return False
    header = _BLOCK_HEADER.match(text, node.start)
    chomping = header.group()[1:] if header else ""
    if "-" in chomping:
        return False
    if "+" in chomping:  # keep: every line break counts; its last line gets one unless it is the header
        return _LINE_BREAK.search(text, node.start) is not None
    return scalar.value != "" and not scalar.value.endswith("\n")  # clip: one final line break, once content has one


def _looks_like_kustomize_images(images: _Node | None) -> bool:
    """A list of maps that all have `name`, at least one with newName/newTag/digest/tagSuffix."""
    if images is None or images.kind != "Q" or not images.items:
        return False
    overrides = False
    for item in images.items:
        entry, _ = _deref(item)
        if entry is None or entry.kind != "M":
            return False
        names = {_key(k) for k, _ in entry.items}
        if "name" not in names:
            return False
        overrides = overrides or bool(names & {"newName", "newTag", "digest", "tagSuffix"})
    return overrides


def _helm_keys(scal: Any, parent_key: str | None) -> dict[str, str] | None:
    """Which keys of a mapping make it a Helm image map: role -> key as written; None when it is not one."""
    tag, digest = scal("tag"), scal("digest")
    registry_key = next((k for k in ("registry", "hub") if scal(k) is not None), None)
    repository_key = None
    if scal("repository") is not None and (tag or digest or registry_key):
        repository_key = "repository"
    elif registry_key is not None and scal("image") is not None:
        repository_key = "image"
    elif parent_key == "image" and (tag or digest):
        repository_key = next((k for k in ("repo", "name") if scal(k) is not None), None)
        if repository_key is None:
            return None
    elif registry_key == "hub" and tag is not None:
        if _unset(scal("hub")):  # Istio's `hub: ""`: inherit the global hub; like `image: {tag: v1}`, no name
            return None
        repository_key = None
    else:
        return None
    keys: dict[str, str] = {}
    if registry_key:
        keys["registry"] = registry_key
    if repository_key:
        keys["repository"] = repository_key
    if tag is not None:
        keys["tag"] = "tag"
    if digest is not None:
        keys["digest"] = "digest"
    return keys


def _unset(scalar: Scalar | None) -> bool:
    """An empty value: `""`, `~`, nothing."""
    return scalar is None or scalar.is_null or scalar.value == ""


def helm_parameter_roles(prefix: str, names: dict[str, str]) -> dict[str, str] | None:
    """Which Helm parameters of one prefix X name an image, as a values map at X would (see _helm_keys): role ->
    parameter name.  names: last part -> parameter name, for the parameters `X.<last part>` of one list.

    The repository is `X.repository` or `X.image`, or `X.name` / `X.repo` where X is `image` or ends with
    `.image` (Argo CD Image Updater's helm write-back writes `image.name` and `image.tag` by default); with
    `X.registry` when there is one; the tag `X.tag`, the digest `X.digest`.  None unless there is exactly one
    repository parameter, and a tag or digest parameter; but a lone `X.image` (its role repository, with no
    tag or digest) is returned too: its value may be a whole reference (Image Updater's image-spec)."""
    under_image = prefix.rpartition(".")[2] == "image"
    candidates: list[str] = [k for k in ("repository", "image") if k in names]
    if under_image:
        candidates += [k for k in ("name", "repo") if k in names]
    if len(candidates) != 1:
        return None
    roles = {"repository": names[candidates[0]]}
    for role in ("registry", "tag", "digest"):
        if role in names:
            roles[role] = names[role]
    if "tag" not in roles and "digest" not in roles and candidates[0] != "image":
        return None
    return roles


def _any_needle(text: str, needles: Iterable[str] | None) -> bool:
    if needles is None:
        return True
    return any(n in text for n in needles)


def locate(text: str, needles: Iterable[str] | None = None, *, filename: str | None = None) -> LocateResult:
    """Every image reference in text, in document order; `error` is set (no references) if it does not parse,
    and (with the references found elsewhere) if part of it is nested too deeply to search.

    needles: substrings of which at least one must occur for the text to be parsed at all (a cheap
    pre-filter: the last path component of each searched repository, say).  filename: used only to
    recognise kustomization files and Argo CD write-back files (`.argocd-source-<app>.yaml`) by name.
    Each document is searched as soon as it is read, and its nodes let go (see _Parsed: walk).
    """
    if not _any_needle(text, needles):
        return LocateResult([])
    try:
        parsed = parse(text, events=None, walk=True, filename=filename)
    except YamlSyntaxError as exc:
        return LocateResult([], exc)
    return locate_result(parsed, filename)


def locate_result(parsed: _Parsed, filename: str | None = None) -> LocateResult:
    """References of an already parsed text, and the error for a part too deeply nested to search (those
    found as it was parsed, when it was parsed with `walk`, for the filename given then)."""
    if parsed.located is not None:
        return parsed.located
    walk = _Walk(parsed, filename)
    references = walk.run()
    return LocateResult(references, walk.error(), walk.tag_only)


def locate_parsed(parsed: _Parsed, filename: str | None = None) -> list[Reference]:
    """References of an already parsed text (the splicer parses once for locating and verifying)."""
    return locate_result(parsed, filename).references
