"""Splice new image tags/digests into YAML text byte-exactly, then prove the result by re-parsing.

`update_images(text, targets)` locates every reference to the targets' repositories (yamledit.locate),
plans one text edit per changed value (or one inserted `newTag:` / `tag:` line where a kustomize entry or
Helm map has no tag field), applies them to the original text and verifies the new text: its parser event
stream must equal the old one except for exactly the planned values (same positions after the shift of
each edit), and re-locating must read every changed reference back as intended and every other reference
as before.  Anything else raises errors.VerificationError and the caller writes nothing.
Never changed (`kept`): a tag or digest that holds a placeholder, and a kustomize entry with a tagSuffix and no
newTag or digest (a newTag added there would turn the suffix off).
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate

from gitops_cli import imageref
from gitops_cli.errors import UsageError, VerificationError
from gitops_cli.imageref import ImageRef
from gitops_cli.yamledit.locate import (
    Reference,
    Scalar,
    YamlSyntaxError,
    _EventLog,
    _Parsed,
    compose_map_value,
    locate_parsed,
    locate_result,
    override_parts,
    parse,
)

DigestResolver = Callable[[ImageRef, Reference], str]
# which of the targets' references to change (rollback: those at the value it rolls back from); None: all
Selector = Callable[[Reference], bool]


@dataclass(frozen=True)
class Change:
    """One value change, as `gitops bump --output json` prints it (line/column in the original file)."""

    file: str | None
    line: int
    column: int
    old: str
    new: str
    kind: str
    field: str | None  # map form: the key as written ('newTag', 'tag', 'digest'); None for a whole string


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] with text (start == end: an insertion)."""

    start: int
    end: int
    text: str


def apply_edits(text: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits (any order); ValueError on overlap or on two insertions at one point."""
    out: list[str] = []
    pos = 0
    last: Edit | None = None
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        if e.start < pos or (last is not None and e.start == last.start and e.end == last.end == e.start):
            raise ValueError(f"overlapping edits at offset {e.start}")
        if not 0 <= e.start <= e.end <= len(text):
            raise ValueError(f"edit {e.start}..{e.end} outside the text")
        out.append(text[pos:e.start])
        out.append(e.text)
        pos = e.end
        last = e
    out.append(text[pos:])
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Rendering a scalar so it reads back as the same string
# --------------------------------------------------------------------------------------------------

# Plain scalars that YAML 1.1 (kubectl, PyYAML, go-yaml) or YAML 1.2 read as something else than a string.
_NON_STRING = re.compile(
    r"""(?x)
    ~|null|Null|NULL|
    y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|
    [-+]?(?:0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)|                         # ints
    [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|                                  # sexagesimal
    [-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|            # floats
    [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|
    [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt\s].*)?|                                        # timestamps
    <<|=
    """
)
_PLAIN_BAD_START = set("-?:,[]{}#&*!|>'\"%@` \t")


def plain_ok(value: str, flow: bool = False, flow_colon: bool = False) -> bool:
    """True when `value` written as a plain scalar reads back as this same string.

    flow: inside `{...}` / `[...]`, where `,[]{}` end a plain scalar.  A ':' there (`{image: team/app:v1}`)
    is a string for YAML 1.2, PyYAML, go-yaml and our parser, but libyaml (YAML 1.1) refuses it: written
    plain only when flow_colon says the old value already was (the file's readers accept it).
    """
    if not value or value != value.strip() or value[0] in _PLAIN_BAD_START or _NON_STRING.fullmatch(value):
        return False
    if ": " in value or " #" in value or value.endswith(":") or any(c in value for c in "\r\n\t"):
        return False
    if flow and ":" in value and not flow_colon:
        return False
    return not (flow and any(c in value for c in ",[]{}"))


def render(value: str, style: str, flow: bool = False, flow_colon: bool = False) -> tuple[str, str]:
    """Source text for value in the given style: (text, style).  Plain stays plain when the value can be
    (see plain_ok), else becomes double-quoted; quoted styles are kept; a one-line block scalar (`>-`, `|-`)
    gets the value as its content line."""
    if style in ("literal", "folded"):
        if not value or value != value.strip() or not value.isprintable():
            raise ValueError(f"{value!r} cannot be the content line of a block scalar")
        return value, style
    if style == "plain":
        if plain_ok(value, flow, flow_colon):
            return value, "plain"
        style = "double"
    if style == "single" and all(c.isprintable() for c in value):
        return "'" + value.replace("'", "''") + "'", "single"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"', "double"


# --------------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------------

@dataclass
class _Planned:
    edit: Edit
    new_value: str
    new_style: str
    scalar: Scalar | None  # replaced scalar; None for an inserted field
    key: str | None = None  # inserted field: its key
    ref: Reference | None = None
    # where the new value's source starts relative to edit.start (negative: the edit starts inside it)
    value_offset: int = 0


@dataclass
class _Plan:
    file: str | None
    resolve: DigestResolver | None
    items: list[_Planned] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    expected: dict[tuple[int, tuple[str | int, ...]], str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    def where(self, line: int) -> str:
        return f"{self.file or '<text>'}:{line}"

    def digest_for(self, target: ImageRef, ref: Reference) -> str:
        if target.digest is not None:
            return target.digest
        key = str(target)
        if key not in self.digests:
            if self.resolve is None:
                raise VerificationError(
                    f"{self.where(ref.line)}: {ref.value!r} is pinned by digest but --image {target} "
                    "has none",
                    hint="give --image NAME:TAG@sha256:... or let gitops resolve it from the registry",
                )
            digest = self.resolve(target, ref)
            imageref.validate_digest(digest)
            self.digests[key] = digest
        return self.digests[key]


def _line_ending(text: str, pos: int) -> str:
    """The line ending at pos, the end of a line's content: a line inserted there ends with it, and so the
    line it follows keeps its own.  At the end of a text with no final line break: the last one before."""
    if pos < len(text):
        return "\r\n" if text.startswith("\r\n", pos) else text[pos]
    last = max(text.rfind("\n"), text.rfind("\r"))
    if last == -1:
        return "\n"
    return "\r\n" if last > 0 and text.startswith("\r\n", last - 1) else text[last]


def _literal_end(text: str, start: int, end: int) -> int:
    """Where the characters that a double-quoted scalar's source text[start:end] (between its quotes) ends
    with, each written as itself, begin: no escape, blank or line break among them.  The value ends with
    the same characters (escapes have a fixed length; folding and continuations only touch blanks)."""
    tail = i = start
    while i < end:
        c = text[i]
        if c == "\\":
            i += 2 + _ESCAPE_DIGITS.get(text[i + 1] if i + 1 < end else "", 0)
            tail = i
        else:
            i += 1
            if c in " \t\r\n":
                tail = i
    return min(tail, end)


_ESCAPE_DIGITS = {"x": 2, "u": 4, "U": 8}


def _splice_double(text: str, scalar: Scalar, old: str, new: str) -> tuple[int, str] | None:
    """For a double-quoted scalar: (offset, new source) replacing only the characters of old that change
    (from the first that differs from new to its end), when those are written as themselves at the end of
    the source, so that its escapes and continued lines stay as written; None otherwise."""
    same = 0
    while same < min(len(old), len(new)) and old[same] == new[same]:
        same += 1
    changed, added = len(old) - same, new[same:]
    close = scalar.end - 1  # the closing quote
    if changed > close - _literal_end(text, scalar.start + 1, close):
        return None
    if not all(c.isprintable() and c not in ' \\"' for c in added):
        return None
    return close - changed, added


def _set_scalar(plan: _Plan, text: str, ref: Reference, scalar: Scalar, new: str, field_name: str | None) -> None:
    old = "" if scalar.is_null else scalar.value
    if old == new and not scalar.is_null:
        return
    if scalar.style in ("literal", "folded") and "\n" in scalar.value:
        raise VerificationError(f"{plan.where(scalar.line)}: will not rewrite a block scalar whose value has "
                                "a line break", hint="edit it by hand")
    part = _splice_double(text, scalar, old, new) if scalar.style == "double" else None
    if part is not None:  # only its changing end: its escapes and continued lines stay as written
        at, source = part
        edit, style, value_offset = Edit(at, scalar.end - 1, source), "double", scalar.start - at
    else:
        flow_colon = scalar.flow and scalar.style == "plain" and ":" in scalar.value
        try:
            source, style = render(new, scalar.style if not scalar.is_null else "plain", scalar.flow, flow_colon)
        except ValueError as exc:
            raise VerificationError(f"{plan.where(scalar.line)}: {exc}") from None
        prefix = " " if scalar.start == scalar.end else ""  # an empty value right after ':'
        edit, value_offset = Edit(scalar.start, scalar.end, prefix + source), len(prefix)
    plan.items.append(_Planned(edit, new, style, scalar, ref=ref, value_offset=value_offset))
    plan.changes.append(Change(plan.file, scalar.line, scalar.column, old, new, ref.kind, field_name))


def _insert_field(plan: _Plan, text: str, ref: Reference, key: str, new: str) -> None:
    if ref.insert_after is None:
        raise VerificationError(f"{plan.where(ref.line)}: no place to add `{key}:` to this entry")
    name = ref.fields.get("newName") or ref.fields.get("name") or ref.fields.get("repository")
    style = name.style if name is not None and name.style in ("single", "double") else "plain"
    value_text, value_style = render(new, style, ref.flow)  # a new value in flow: ':' quoted (libyaml)
    if ref.flow:
        prefix = f", {key}: "
    else:
        prefix = f"{_line_ending(text, ref.insert_after)}{ref.indent or ''}{key}: "
    edit = Edit(ref.insert_after, ref.insert_after, prefix + value_text)
    plan.items.append(_Planned(edit, new, value_style, None, key=key, ref=ref, value_offset=len(prefix)))
    plan.changes.append(Change(plan.file, ref.line, ref.column, "", new, ref.kind, key))


def _string_value(plan: _Plan, ref: Reference, current: ImageRef, target: ImageRef) -> str:
    if target.tag is None:  # the target is pinned by digest only
        return f"{current.name}@{target.digest}"
    if current.digest is not None:
        digest = plan.digest_for(target, ref)
        if current.tag is None:
            return f"{current.name}@{digest}"
        return f"{current.name}:{target.tag}@{digest}"
    return f"{current.name}:{target.tag}"


def _value(s: Scalar | None) -> str:
    return "" if s is None or s.is_null else s.value


def _plan_map(plan: _Plan, text: str, ref: Reference, target: ImageRef) -> str:
    """Plan a kustomize entry / Helm map; returns the value the reference must read back as."""
    tag_role = "newTag" if ref.kind == "kustomize" else "tag"
    tag_key = ref.keys.get(tag_role, tag_role)
    digest_key = ref.keys.get("digest", "digest")
    tag_s, digest_s = ref.fields.get(tag_role), ref.fields.get("digest")
    sets: dict[str, str] = {}
    if tag_s is not None and "@" in _value(tag_s):  # Helm `tag: v1@sha256:...`: tag and digest in one value
        old_tag = _value(tag_s).split("@", 1)[0]
        sets[tag_role] = f"{target.tag or old_tag}@{plan.digest_for(target, ref)}"
    elif _value(digest_s):
        sets["digest"] = plan.digest_for(target, ref)
        if _value(tag_s) and target.tag is not None:
            sets[tag_role] = target.tag
    elif target.tag is not None:
        sets[tag_role] = target.tag
    else:
        sets["digest"] = plan.digest_for(target, ref)
    for role, new in sets.items():
        if role in ref.shared:
            raise VerificationError(
                f"{plan.where(ref.line)}: the {role} of {ref.value!r} comes from a YAML merge key "
                "shared with other entries", hint="edit this entry by hand once, then bump again")
        key = tag_key if role == tag_role else digest_key
        scalar = ref.fields.get(role)
        conflict = ref.field_conflicts.get(role)
        if conflict is not None and scalar is not None:
            raise VerificationError(f"{plan.where(scalar.line)}: the {key} of {ref.value!r} {conflict}",
                                    hint="give this image its own value instead of the alias, then bump again")
        if scalar is None:
            _insert_field(plan, text, ref, key, new)
        else:
            _set_scalar(plan, text, ref, scalar, new, key)
    fields = {role: _value(s) for role, s in ref.fields.items()} | sets
    return compose_map_value(ref.kind, fields)


def _plan_override(plan: _Plan, text: str, ref: Reference, target: ImageRef) -> str:
    """Plan a kustomize image-override string (`name=newName:tag@digest`) as _plan_map plans a kustomize entry:
    its tag and digest change, or a tag is added (`name=newName` -> `name=newName:v2`), and the name part stays
    as written; returns the value the reference must read back as."""
    assert ref.scalar is not None
    old = ref.scalar.value
    parts = override_parts(old)
    assert parts is not None
    tag = old[slice(*parts["newTag"])] if "newTag" in parts else None
    digest = old[slice(*parts["digest"])] if "digest" in parts else None
    if digest is not None:
        digest = plan.digest_for(target, ref)
        if tag is not None and target.tag is not None:
            tag = target.tag
    elif target.tag is not None:
        tag = target.tag
    else:
        digest = plan.digest_for(target, ref)
    name_end = parts["newName" if "newName" in parts else "name"][1]
    new = old[:name_end] + (f":{tag}" if tag is not None else "") + (f"@{digest}" if digest is not None else "")
    if ref.conflict is not None and new != old:
        raise VerificationError(f"{plan.where(ref.line)}: {old!r} {ref.conflict}",
                                hint="give this image its own value instead of the alias, then bump again")
    _set_scalar(plan, text, ref, ref.scalar, new, None)
    values = {role: _value(s) for role, s in ref.fields.items()} | {"newTag": tag or "", "digest": digest or ""}
    return compose_map_value("kustomize", values)


def _match(name: str, targets: list[ImageRef]) -> tuple[ImageRef, ImageRef] | None:
    current = imageref.try_parse(name)
    if current is None:
        return None
    for target in targets:
        if current.same_repository(target):
            return current, target
    return None


@dataclass(frozen=True)
class Kept:
    """A reference the bump leaves as it is, though it names an image: `why` is 'placeholder' (its tag or digest
    holds one, `detail`, which whatever fills it in sets: never overwritten) or 'tagSuffix' (a kustomize entry
    with a tagSuffix, `detail`, and no newTag or digest: kustomize appends the suffix to the tag its resources
    give the image, and drops it once the entry has a newTag or digest of its own).  `line`: of that value."""

    ref: Reference
    image: ImageRef  # the image it names (a repository, no tag)
    why: str
    detail: str
    line: int
    part: str | None = None  # 'placeholder': 'tag' or 'digest'


def kept(ref: Reference) -> Kept | None:
    """Why the bump leaves this reference as it is (see Kept), or None: one rule for every form and kind."""
    if ref.kind == "kustomize" and ref.form == "map":
        suffix = ref.fields.get("tagSuffix")
        if suffix is not None and not _value(ref.fields.get("newTag")) and not _value(ref.fields.get("digest")):
            image = imageref.try_parse(ref.name or "")
            if image is not None and image.tag is None and image.digest is None:
                return Kept(ref, image, "tagSuffix", _value(suffix), suffix.line)
    found = imageref.templated(ref.value)
    if found is None:
        return None
    image, part, placeholder = found
    line = ref.line
    if ref.form == "map":  # the field holding it
        role = ("newTag" if ref.kind == "kustomize" else "tag") if part == "tag" else "digest"
        field_scalar = ref.fields.get(role)
        line = field_scalar.line if field_scalar is not None else line
    elif ref.scalar is not None:
        line = ref.scalar.line
    return Kept(ref, image, "placeholder", placeholder, line, part)


def kept_references(refs: list[Reference], targets: list[ImageRef], container: str | None = None,
                    ) -> list[tuple[Kept, ImageRef]]:
    """The references to the targets (of that container's, with `container`: as _plan reads them) that the bump
    leaves as they are (see Kept), each with its target."""
    out = []
    for ref in refs:
        if container is not None and ref.form == "string" and ref.container != container:
            continue
        why = kept(ref)
        target = next((t for t in targets if why is not None and why.image.same_repository(t)), None)
        if why is not None and target is not None:
            out.append((why, target))
    return out


def _plan(text: str, refs: list[Reference], targets: list[ImageRef], container: str | None,
          plan: _Plan, select: Selector | None = None) -> None:
    sharing: dict[Scalar, list[Reference]] = {}  # the `image:` strings of each scalar (more than one: an alias)
    for ref in refs:
        if ref.form == "string" and ref.scalar is not None:
            sharing.setdefault(ref.scalar, []).append(ref)
    for ref in refs:
        if kept(ref) is not None:  # a placeholder, or a kustomize tagSuffix: left as it is (see Kept)
            continue
        if ref.form == "string":
            if container is not None and ref.container != container:
                continue
            assert ref.scalar is not None
            found = _match(ref.scalar.value, targets)
            if found is None or (select is not None and not select(ref)):
                continue
            if ref.conflict is not None:
                raise VerificationError(f"{plan.where(ref.line)}: {ref.value!r} {ref.conflict}",
                                        hint="give this image its own value instead of the alias, then bump again")
            _check_excluded_aliases(plan, sharing[ref.scalar], ref, container)
            current, target = found
            new = _string_value(plan, ref, current, target)
            _set_scalar(plan, text, ref, ref.scalar, new, None)
            for other in sharing[ref.scalar]:  # itself, and every `image:` (or compose template) sharing its value
                plan.expected[(other.doc, other.path)] = new
        else:
            name = ref.name
            found = _match(name, targets) if name else None
            if found is None or (select is not None and not select(ref)):
                continue
            plan_ref = _plan_override if ref.form == "override" else _plan_map
            plan.expected[(ref.doc, ref.path)] = plan_ref(plan, text, ref, found[1])


def _check_excluded_aliases(plan: _Plan, sharing: list[Reference], ref: Reference, container: str | None) -> None:
    """Refuse to edit a value that --container excludes at another `image:` (through an alias or a `<<` merge
    key; `sharing`: the `image:` strings of its scalar).  A compose `x-...` template is no such other: it is the
    image of the services that use it."""
    if container is None or ref.scalar is None:
        return
    for other in sharing:
        if other.container == container or other.template:
            continue
        if other.kind == "compose":
            whose = f"service {other.container!r}"
        elif other.kind == "container":
            whose = f"container {other.container!r}" if other.container is not None else "a container with no name"
        else:
            whose = f"the `image:` at {'.'.join(map(str, other.path))}"
        through = other.through or ref.through
        how = f" (they share it through {through})" if through else ""
        raise VerificationError(
            f"{plan.where(ref.line)}: {ref.value!r} is also the image of {whose}{how}, "
            f"which --container {container} excludes",
            hint="give each its own value instead of the alias or merge key, or bump without --container")


def _dedupe(plan: _Plan) -> tuple[list[_Planned], list[Change]]:
    """One edit per span (an anchored scalar reached through aliases is edited once)."""
    items: dict[tuple[int, int, str | None], _Planned] = {}
    changes: dict[tuple[int, int, str | None], Change] = {}
    for item, change in zip(plan.items, plan.changes, strict=True):
        span = (item.edit.start, item.edit.end, item.key)
        if span in items:
            if items[span].edit.text != item.edit.text:
                raise VerificationError(f"{plan.where(change.line)}: one value would get two updates "
                                        f"({items[span].new_value!r} and {item.new_value!r})")
            continue
        items[span] = item
        changes[span] = change
    order = sorted(items, key=lambda s: (s[0], s[1]))
    return [items[s] for s in order], [changes[s] for s in order]


# --------------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------------

class _Shift:
    """Where an old offset outside every replaced span lies in the new text, once the edits are applied: the
    offset plus the length change of every edit ending before it, and of one ending at it when it replaces
    something (an insertion there only `after_insertions`: what an insertion at an event's offset goes before
    or after).  The changes are summed up once per edit end, replacements and insertions apart, so an offset
    costs two binary searches, not a pass over the edits (a file with 10,000 edited values has ~10,000 times as
    many events); and none between the same two edit ends as the offset before (the events come in order)."""

    def __init__(self, edits: list[Edit]) -> None:
        replaced = sorted((e.end, len(e.text) - (e.end - e.start)) for e in edits if e.start < e.end)
        inserted = sorted((e.end, len(e.text)) for e in edits if not e.start < e.end)
        self._replaced_ends = [end for end, _ in replaced]
        self._replaced_sums = list(accumulate((change for _, change in replaced), initial=0))
        self._inserted_ends = [end for end, _ in inserted]
        self._inserted_sums = list(accumulate((change for _, change in inserted), initial=0))
        self._ends = sorted({e.end for e in edits})
        self._between = (0, -1, 0)  # (low, high, shift): every offset strictly between low and high moves by shift

    def __call__(self, pos: int, after_insertions: bool) -> int:
        low, high, delta = self._between
        if low < pos < high:
            return pos + delta
        replaced = bisect_right(self._replaced_ends, pos)  # those ending at pos or before
        inserted = (bisect_right if after_insertions else bisect_left)(self._inserted_ends, pos)
        delta = self._replaced_sums[replaced] + self._inserted_sums[inserted]
        ends = self._ends
        i = bisect_right(ends, pos)
        if i == 0 or ends[i - 1] < pos:  # no edit ends at pos: the same from the end before to the next
            self._between = (ends[i - 1] if i else -1, ends[i] if i < len(ends) else sys.maxsize, delta)
        return pos + delta


def _key_start(item: _Planned, shift: _Shift) -> int:
    """Where an inserted field's key starts in the new text."""
    return shift(item.edit.start, False) + item.value_offset - len(item.key or "") - 2


def _child_event(old_events: _EventLog, opening: int, n: int | None) -> int:
    """Index of the event that starts the n-th node right inside the collection opened at old_events[opening]
    (n None: of its end event)."""
    depth, count = 0, 0
    for index in range(opening + 1, len(old_events)):
        kind = old_events.kind(index)
        if depth == 0:
            if kind in "mq" and n is None:
                return index
            if kind in "SAMQ":
                if count == n:
                    return index
                count += 1
        depth += kind in "MQ"
        depth -= kind in "mq"
        if depth < 0:
            break
    raise VerificationError("internal: the place of an added field not found among parser events")


def _expected_events(old_events: _EventLog, items: list[_Planned], edits: list[Edit]) -> Iterator[tuple]:
    """The new text's events, one by one: the old ones, each at its shifted offset, with the planned values.

    A block collection ends at the token after it: where a line is added to a block mapping whose last
    value is a block mapping or sequence, that value now ends at the new key (the mapping itself still
    ends after the new line, at the shifted offset of its old end)."""
    by_start = old_events.find("S", {item.scalar.start for item in items if item.scalar is not None}, last=True)
    mappings = old_events.find("M", {item.ref.start for item in items
                                     if item.scalar is None and item.ref is not None and item.ref.start is not None})
    replaced: dict[int, _Planned] = {}
    inserted: dict[int, list[_Planned]] = {}
    closed: dict[int, _Planned] = {}  # end of a block nested in a mapping's last value -> the field added there
    for item in items:
        if item.scalar is not None:
            index = by_start.get(item.scalar.start)
            if index is None:
                raise VerificationError("internal: edited scalar not found among parser events")
            replaced[index] = item
        else:
            ref = item.ref
            assert ref is not None and ref.start is not None
            opening = mappings.get(ref.start)
            if opening is None:
                raise VerificationError("internal: edited mapping not found among parser events")
            # before the key of the pair it precedes (2 nodes a pair), else before the mapping's end
            index = _child_event(old_events, opening, None if ref.insert_before is None else 2 * ref.insert_before)
            inserted.setdefault(index, []).append(item)
            nested = index - 1
            while nested > opening and old_events.block_end(nested):
                closed.setdefault(nested, item)
                nested -= 1
    return _expected_stream(old_events, _Shift(edits), replaced, inserted, closed)


def _expected_stream(old_events: _EventLog, shift: _Shift, replaced: dict[int, _Planned],
                     inserted: dict[int, list[_Planned]], closed: dict[int, _Planned]) -> Iterator[tuple]:
    marked = replaced.keys() | inserted.keys() | closed.keys()
    for i, (kind, start, value, style, anchor) in enumerate(old_events.tuples()):
        if i not in marked:  # most: the old event where the edits moved it
            yield (kind, shift(start, kind in "mqd"), value, style, anchor)
            continue
        for item in inserted.get(i, ()):
            key_start = _key_start(item, shift)
            yield ("S", key_start, item.key, "plain", None)
            yield ("S", key_start + len(item.key or "") + 2, item.new_value, item.new_style, None)
        if i in replaced:
            item = replaced[i]
            yield ("S", shift(item.edit.start, False) + item.value_offset, item.new_value, item.new_style, anchor)
        elif i in closed:
            yield (kind, _key_start(closed[i], shift), value, style, anchor)
        else:
            yield (kind, shift(start, kind in "mqd"), value, style, anchor)


class _EventCheck:
    """The events of the edited text (a sink, see locate._EventSink) compared with the expected ones as the
    parser gives them, none of them kept: `mismatch` is the first that differs, (index, expected, got), with
    None for the side that ran out of events (see `finish`)."""

    def __init__(self, want: Iterator[tuple]) -> None:
        self.want = want
        self.count = 0
        self.mismatch: tuple[int, tuple | None, tuple | None] | None = None

    def add(self, kind: str, start: int, end: int, value: str | None, style: str | None,
            anchor: str | None) -> None:
        if self.mismatch is not None:
            return
        got = (kind, start, value, None if kind in "mq" else style, anchor)
        want = next(self.want, None)
        if want != got:
            self.mismatch = (self.count, want, got)
        self.count += 1

    def finish(self) -> tuple[int, tuple | None, tuple | None] | None:
        if self.mismatch is None:
            extra = next(self.want, None)
            if extra is not None:
                self.mismatch = (self.count, extra, None)
        return self.mismatch


def _verify(new_text: str, parsed_old: _Parsed, items: list[_Planned], edits: list[Edit],
            old_refs: list[Reference], expected: dict, filename: str | None) -> None:
    """Re-read the edited text: every parser event must be the expected one (compared as they come, for
    the whole text), and every reference located before must read back as intended.  Only the documents
    composed for the plan (parsed_old.kept) are composed and searched again: the others' events are those
    of before, at shifted offsets, so their references are too."""
    where = filename or "<text>"
    old_events = parsed_old.events
    assert isinstance(old_events, _EventLog)
    checks: list[_EventCheck] = []  # one per reading of the text (see parse)

    def check(_: str) -> _EventCheck:
        checks.append(_EventCheck(_expected_events(old_events, items, edits)))
        return checks[-1]

    kept = parsed_old.kept
    try:
        parsed_new = parse(new_text, keep=lambda index, _start, _end: index in kept, events=check, walk=True,
                           filename=filename)
    except YamlSyntaxError as exc:
        raise VerificationError(f"{where}: the edit would not parse ({exc}); nothing written") from None
    mismatch = checks[-1].finish()
    if mismatch is not None:
        bad, want, got = mismatch
        raise VerificationError(
            f"{where}: re-reading the edited file does not give the intended values "
            f"(event {bad}: expected {want}, got {got}); nothing written")
    new_refs = {(r.doc, r.path): r for r in locate_parsed(parsed_new, filename)}
    for ref in old_refs:
        now = new_refs.get((ref.doc, ref.path))
        intended = expected.get((ref.doc, ref.path), ref.value)
        if now is None or now.value != intended:
            raise VerificationError(
                f"{where}:{ref.line}: {ref.value!r} reads back as {now.value if now else None!r}, "
                f"expected {intended!r}; nothing written")


# --------------------------------------------------------------------------------------------------
# The use case
# --------------------------------------------------------------------------------------------------

def needles_for(targets: list[ImageRef]) -> list[str]:
    """Substrings one of which any text referencing the targets must contain (last path components)."""
    return sorted({t.path.rsplit("/", 1)[-1] for t in targets})


@lru_cache(maxsize=64)
def _mention_re(needles: tuple[str, ...]) -> re.Pattern[str]:
    # The last path component as a whole word followed by a tag/digest separator, a quote, a flow
    # indicator, whitespace or the end - but not as a mapping key (`app: x`, `app:` + newline).
    words = "|".join(re.escape(n) for n in needles)
    return re.compile(rf"(?<![\w.-])(?:{words})(?:[@\"'\s,\]}}]|:(?![ \t\r\n])|$)")


def _may_escape(text: str) -> bool:
    """True when text may hold a double-quoted scalar with a backslash in it (an escape, `\\x2f`, or an escaped
    line break): one whose value the source does not spell as written, so that the name of an image, or what
    bounds it, may be hidden from _mention_re (`"team\\x2fapp:1"`, `"team/app\\x3a1"`).  Cheap and
    conservative: a backslash anywhere after a `"`."""
    quote = text.find('"')
    return quote != -1 and text.find("\\", quote) != -1


def mentions(text: str, targets: list[ImageRef]) -> bool:
    """Cheap pre-filter: False when text certainly holds no reference to any of the targets (one that the
    locator finds and the planner would match); True for a text that may spell one with escapes."""
    return _mention_re(tuple(needles_for(targets))).search(text) is not None or _may_escape(text)


def pending(text: str, references: list[Reference], targets: list[ImageRef], *, container: str | None = None,
            resolve_digest: DigestResolver | None = None, filename: str | None = None,
            select: Selector | None = None) -> list[Change]:
    """The changes update_images would make to these references (located in text): [] when every one the
    bump applies to is at its target already, which is what update_images leaving a text as it is must
    mean.  The caller's check before it counts such a text as "already up to date"."""
    plan = _Plan(filename, resolve_digest)
    _plan(text, references, targets, container, plan, select)
    return _dedupe(plan)[1]


def update_images(text: str, targets: list[ImageRef], *, container: str | None = None,
                  resolve_digest: DigestResolver | None = None, filename: str | None = None,
                  select: Selector | None = None) -> tuple[str, list[Change]]:
    """(new text, changes): see update_images_located."""
    new_text, changes, _ = update_images_located(text, targets, container=container, resolve_digest=resolve_digest,
                                                 filename=filename, select=select)
    return new_text, changes


def update_images_located(text: str, targets: list[ImageRef], *, container: str | None = None,
                          resolve_digest: DigestResolver | None = None, filename: str | None = None,
                          select: Selector | None = None) -> tuple[str, list[Change], list[Reference]]:
    """update_images, with the references it searched: those of the documents that mention a target (all of
    them, in document order), which is every reference it may change or match; [] when the text mentions none.
    The caller that needs the references of the whole text (of a document naming no target, too) locates it.

    Bump every reference to the targets' repositories in text (with `select`, those it selects; with
    `container`, those of that container); returns (new text, changes).

    Raises YamlSyntaxError when the text (containing a target's name) does not parse, VerificationError
    (exit 13) when a needed digest cannot be had or the edit does not verify; a resolver's GitopsError
    passes through.  Identical text and no changes when everything is already at the targets.
    Of a multi-document text, only the documents that mention a target (see `mentions`) are composed and
    searched; every document is read, for its errors and for the verifier's events (see locate._Parsed).
    """
    for target in targets:
        if target.tag is None and target.digest is None:
            raise UsageError(f"--image {target}: a tag or digest is required")
    if not targets or not mentions(text, targets):
        return text, [], []
    # a document that does not mention a target is read (for errors, and for the verifier's events), not composed
    parsed = parse(text, keep=lambda _index, start, end: mentions(text[start:end], targets), walk=True,
                   filename=filename)
    located = locate_result(parsed, filename)
    if located.error is not None:  # too deeply nested to search: skipped as if it did not parse
        raise located.error
    refs = located.references
    plan = _Plan(filename, resolve_digest)
    _plan(text, refs, targets, container, plan, select)
    items, changes = _dedupe(plan)
    if not items:
        return text, [], refs
    edits = [item.edit for item in items]
    try:
        new_text = apply_edits(text, edits)
    except ValueError as exc:
        raise VerificationError(f"{filename or '<text>'}: {exc}; nothing written") from None
    _verify(new_text, parsed, items, edits, refs, plan.expected, filename)
    return new_text, changes, refs
