"""The shared real-world corpus (374 upstream files, index.json built independently with PyYAML).

For every file and every repository it references: bump to a new tag (and digest) and prove that exactly
the indexed values changed, at the indexed line/column, and that every other byte is identical.  The
expected new text is built here from index.json alone (line/column/style of each value), not from the
locator's spans.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import replace
from functools import partial

import pytest

from gitops_cli import imageref
from gitops_cli.yamledit import YamlSyntaxError, locate, read_text, update_images
from gitops_cli.yamledit.locate import parse
from tests.fixtures.corpus import CORPUS  # noqa: E402

NEW_TAG = "v9.9.9-bump"
NEW_DIGEST = "sha256:" + "ab" * 32
# index field key -> the locator's field role
HELM_ROLES = {"registry": "registry", "hub": "registry", "repository": "repository", "repo": "repository",
              "image": "repository", "name": "repository", "tag": "tag", "digest": "digest"}
KUSTOMIZE_ROLES = {k: k for k in ("name", "newName", "newTag", "digest")}

# References in shapes the independent index (image keys and maps) does not read, listed here by hand: kustomize
# image-override strings of an Argo CD Application (`spec.source.kustomize.images`, one `>-` line each).
_PETS = "Azure-Samples__aks-store-demo/sample-manifests/argocd/pets.yaml"
_STORE = "ghcr.io/azure-samples/aks-store-demo/"
OVERRIDES = {_PETS: [
    (18 + 2 * i, 11, ("spec", "source", "kustomize", "images", i), f"{_STORE}{svc}={_STORE}{svc}:2.2.0")
    for i, svc in enumerate(["ai-service", "makeline-service", "order-service", "product-service", "store-admin",
                             "store-front", "virtual-customer", "virtual-worker"])]}
# Maps the index reads as references that gitops does not, by design: Istio's "inherit the global hub and tag"
# (`repair: {hub: "", tag: ""}`), which names no image, as a tag-only `image: {tag: v1}` map does not.
NOT_REFERENCES = {("istio__istio/manifests/charts/istio-cni/values.yaml", ("_internal_defaults_do_not_set", "repair"))}


@pytest.fixture(scope="module")
def index() -> dict:
    if not (CORPUS / "index.json").exists():
        pytest.fail(f"the shared corpus is missing at {CORPUS}")
    return json.loads((CORPUS / "index.json").read_text())


@pytest.fixture(scope="module")
def texts(index: dict) -> dict[str, str]:
    return {f["file"]: read_text(CORPUS / f["file"]) for f in index["files"]}


def _image_keys(index: dict) -> dict[str, list[dict]]:
    """Indexed refs plus the `image:` keys the index lists under other_image_keys (for us: kind image)."""
    out: dict[str, list[dict]] = defaultdict(list)
    for r in index["refs"]:
        if (r["file"], tuple(r["path"])) not in NOT_REFERENCES:
            out[r["file"]].append(r)
    for r in index["other_image_keys"]:
        if r["path"][-1] == "image" and "patches" not in r["path"]:
            out[r["file"]].append({**r, "kind": "image"})
    for file, overrides in OVERRIDES.items():
        for line, column, path, raw in overrides:
            out[file].append({"file": file, "doc": 0, "path": list(path), "kind": "kustomize", "line": line,
                              "column": column, "value": raw.split("=")[1], "override": raw})
    return out


def _expected_kind(r: dict) -> str:
    return "image" if r["kind"] == "helm" and "fields" not in r else r["kind"]


def _roles(r: dict) -> dict[str, str]:
    return KUSTOMIZE_ROLES if r["kind"] == "kustomize" else HELM_ROLES


def test_locate_finds_every_indexed_reference(index: dict, texts: dict[str, str]) -> None:
    unparseable = {u["file"] for u in index["unparseable"]}
    expected = _image_keys(index)
    for name, text in texts.items():
        if name in unparseable:
            continue
        result = locate(text, filename=name)
        assert result.error is None, (name, result.error)
        found = {(r.doc, r.path): r for r in result.references}
        for r in expected[name]:
            ref = found.pop((r["doc"], tuple(r["path"])), None)
            assert ref is not None, (name, r["path"])
            assert ref.kind == _expected_kind(r), (name, r["path"], ref.kind)
            assert (ref.line, ref.column) == (r["line"], r["column"]), (name, r["path"])
            assert ref.value == r["value"], (name, r["path"])
            if ref.form == "string":
                assert ref.scalar is not None and ref.scalar.style == r["style"]
                assert ref.scalar.value == r["value"]
            assert (ref.form == "override") is ("override" in r), (name, r["path"])
            if "override" in r:
                assert ref.scalar is not None and ref.scalar.value == r["override"]
            for key, f in r.get("fields", {}).items():
                role = _roles(r).get(key)
                if role is None:  # tagSuffix, newDigest, variant: not fields we read or write
                    continue
                mine = ref.fields[role]
                want = (f["line"], f["column"], f["style"])
                assert (mine.line, mine.column, mine.style) == want, (name, key)
                assert ("" if mine.is_null else mine.value) == (f["value"] if f["value"] is not None else "")
        assert not found, (name, sorted(found))  # nothing beyond the index (+ its other `image:` keys)


def test_unparseable_files_report_line_and_column(index: dict, texts: dict[str, str]) -> None:
    assert len(index["unparseable"]) == 4
    for u in index["unparseable"]:
        text = texts[u["file"]]
        result = locate(text)
        assert result.error is not None and result.references == []
        where = u["detail"].strip().splitlines()[-1]  # '  in "<unicode string>", line 28, column 21'
        line, column = (int(x.split()[-1]) for x in where.split(",")[-2:])
        assert (result.error.line, result.error.column) == (line, column), u["file"]
        assert result.error.line == u["line"]
        # the repository named on the file's first `image:` line: bumping it must fail cleanly
        first = next(x for x in text.splitlines() if "image:" in x).split("image:")[1].strip().strip('"')
        target = imageref.parse(first).repository_only().with_tag("new")
        with pytest.raises(YamlSyntaxError, match=f"line {line}, column {column}"):
            update_images(text, [target], filename=u["file"])
        assert read_text(CORPUS / u["file"]) == text


def test_c_and_python_parsers_agree(texts: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def snapshot() -> dict:
        out = {}
        for name, text in texts.items():
            result = locate(text, filename=name)
            events = [] if result.error else [(e.kind, e.start, e.value, e.style, e.anchor)
                                              for e in parse(text).events]
            err = result.error and (result.error.line, result.error.column)
            out[name] = (result.references, err, events)
        return out

    fast = snapshot()
    monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    assert snapshot() == fast


# ------------------------------------------------------------------------------------------------------
# Bumping: the expected text is built from index.json positions
# ------------------------------------------------------------------------------------------------------

def _quoted(value: str, style: str) -> str:
    return {"plain": value, "double": f'"{value}"', "single": f"'{value}'"}[style]


def _repository(r: dict) -> imageref.ImageRef | None:
    ref = imageref.try_parse(r["value"])
    if ref is None or (r["kind"] == "kustomize" and "override" not in r and not imageref.try_parse(
            (r["fields"].get("newName") or r["fields"]["name"])["value"] or "")):
        return None
    return ref


def _suffixed(r: dict) -> bool:
    """A kustomize entry with a tagSuffix and no newTag or digest: the bump leaves it as it is (kustomize appends
    the suffix to the tag of its resources' image, and drops it once the entry has a newTag)."""
    fields = r.get("fields", {})
    return r["kind"] == "kustomize" and "tagSuffix" in fields and not any(
        (fields.get(k) or {}).get("value") for k in ("newTag", "digest"))


def _string_new(value: str) -> str:
    ref = imageref.parse(value)
    if ref.digest is not None:
        return f"{ref.name}:{NEW_TAG}@{NEW_DIGEST}" if ref.tag is not None else f"{ref.name}@{NEW_DIGEST}"
    return f"{ref.name}:{NEW_TAG}"


def _map_edits(r: dict) -> tuple[list[tuple[int, int, str, str]], list[tuple[int, str]]]:
    """(line, column, old source, new source) replacements and (after line, new line) insertions."""
    fields = r["fields"]
    tag_key = "newTag" if r["kind"] == "kustomize" else "tag"

    def value(key: str) -> str:
        f = fields.get(key)
        return "" if f is None or f["value"] is None else f["value"]

    def replace(key: str, new: str) -> tuple[int, int, str, str]:
        f = fields[key]
        old = "" if f["value"] is None else f["value"]
        return f["line"], f["column"], _quoted(old, f["style"]), _quoted(new, f["style"])

    reps, inserts = [], []
    if "@" in value(tag_key):
        reps.append(replace(tag_key, f"{NEW_TAG}@{NEW_DIGEST}"))
    elif value("digest"):
        reps.append(replace("digest", NEW_DIGEST))
        if value(tag_key):
            reps.append(replace(tag_key, NEW_TAG))
    elif tag_key in fields:
        reps.append(replace(tag_key, NEW_TAG))
    else:
        last = max(f["line"] for f in fields.values())
        inserts.append((last, " " * (r["column"] - 1) + f"{tag_key}: {NEW_TAG}"))
    return reps, inserts


def _expected_text(text: str, refs: list[dict]) -> str:
    lines = text.splitlines(keepends=True)
    eol = "\r\n" if "\r\n" in text else "\n"
    reps: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    inserts: dict[int, list[str]] = defaultdict(list)
    for r in refs:
        if "override" in r:  # name=newName:tag, written as it is: its tag changes
            old = r["override"]
            reps[r["line"]].append((r["column"], old, old.rsplit(":", 1)[0] + f":{NEW_TAG}"))
        elif "fields" in r:
            rs, ins = _map_edits(r)
            for line, column, old, new in rs:
                reps[line].append((column, old, new))
            for line, new_line in ins:
                inserts[line].append(new_line)
        else:
            reps[r["line"]].append((r["column"], _quoted(r["value"], r["style"]),
                                    _quoted(_string_new(r["value"]), r["style"])))
    for line, items in reps.items():
        src = lines[line - 1]
        for column, old, new in sorted(set(items), reverse=True):
            assert src[column - 1:column - 1 + len(old)] == old, (line, column, old)
            src = src[:column - 1] + new + src[column - 1 + len(old):]
        lines[line - 1] = src
    for line in sorted(inserts, reverse=True):
        body = lines[line - 1].rstrip("\r\n")
        ending = lines[line - 1][len(body):]
        lines[line - 1] = body + "".join(eol + x for x in inserts[line]) + ending
    return "".join(lines)


def test_bump_every_repository_changes_exactly_the_indexed_values(index: dict, texts: dict[str, str]) -> None:
    unparseable = {u["file"] for u in index["unparseable"]}
    expected = _image_keys(index)
    bumped = untouchable = suffixed = 0
    for name, text in texts.items():
        if name in unparseable:
            continue
        by_repo: dict[str, list[dict]] = defaultdict(list)
        for r in expected[name]:
            repo = _repository(r)
            if repo is None:
                untouchable += 1
                continue
            if _suffixed(r):
                suffixed += 1
                target = imageref.parse(f"{repo.name}:{NEW_TAG}@{NEW_DIGEST}")
                assert update_images(text, [target], filename=name) == (text, []), (name, repo.name)
                continue
            by_repo[repo.normalized_name].append(r)
        for refs in by_repo.values():
            repo = _repository(refs[0])
            assert repo is not None
            target = imageref.parse(f"{repo.name}:{NEW_TAG}@{NEW_DIGEST}")
            new_text, changes = update_images(text, [target], filename=name)
            want = _expected_text(text, refs)
            assert new_text == want, (name, repo.name)
            assert changes and all(c.file == name for c in changes)
            bumped += len(refs)
            again, none = update_images(new_text, [target], filename=name)  # idempotent
            assert again == new_text and none == []
    total = sum(len(v) for k, v in expected.items() if k not in unparseable)
    assert bumped + untouchable + suffixed == total
    assert bumped >= 580 and untouchable == 64 and suffixed == 11  # ${IMAGE}, <<PROJECT>>, CONTAINER_IMAGES_REGISTRY/x



def test_placeholder_references_are_left_untouched(index: dict, texts: dict[str, str]) -> None:
    """A value that is not a valid reference never matches, even when its words are the bumped repository."""
    checked = 0
    for name, refs in _image_keys(index).items():
        for r in refs:
            if _repository(r) is not None:
                continue
            words = re.findall(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*", r["value"])
            if not words:
                continue
            text = texts[name]
            target = imageref.parse(f"{words[-1]}:{NEW_TAG}")
            new_text, _ = update_images(text, [target], filename=name)
            old_line = text.splitlines()[r["line"] - 1]
            assert old_line in new_text.splitlines(), (name, r["value"])
            checked += 1
    assert checked >= 45


def _positions(refs: list) -> list:
    """What a reference says, less its offsets (a header before the text moves them)."""
    return [replace(r, scalar=None, fields={}, insert_after=None, start=None) for r in refs]


def _with_directives(text: str, version: str) -> tuple[str, str]:
    """(text with a `%YAML` and a `%TAG` directive before its first document, the lines put in)."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    first = next((x for x in body.splitlines() if x.strip() and not x.lstrip().startswith("#")), "")
    head = f"%YAML {version}\n%TAG !e! tag:example.com,2000:\n" + ("" if first.startswith("---") else "---\n")
    return bom + head + body, head


@pytest.fixture(scope="module")
def undirected(index: dict, texts: dict[str, str]) -> dict[str, tuple]:
    """Per file: what locate gives, and the text after bumping every indexed repository at once."""
    targets: dict[str, dict[str, imageref.ImageRef]] = defaultdict(dict)
    for name, refs in _image_keys(index).items():
        for r in refs:
            ref = _repository(r)
            if ref is not None:
                targets[name][ref.normalized_name] = imageref.parse(f"{ref.name}:{NEW_TAG}@{NEW_DIGEST}")
    out = {}
    for name, text in texts.items():
        found = locate(text, filename=name)
        wanted = list(targets[name].values())
        new = update_images(text, wanted, filename=name)[0] if wanted and found.error is None else None
        out[name] = (found, wanted, new)
    return out


@pytest.mark.parametrize(("parser", "version"), [("default", "1.2"), ("python", "1.1")])
def test_directives_change_nothing_with_either_parser(texts: dict[str, str], undirected: dict[str, tuple],
                                                      parser: str, version: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file with `%YAML 1.x` and `%TAG` directives put first: the same references (lines shifted) and
    errors, and a bump of its repositories changes the same bytes, the directive lines never.  (libyaml reads
    1.1 and 1.2 alike; the pure parser scans a `%YAML 1.1` document by YAML 1.1 rules, 1.2 is its default.)"""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    for name, text in texts.items():
        plain, wanted, new_plain = undirected[name]
        directed, head = _with_directives(text, version)
        shift = head.count("\n")
        got = locate(directed, filename=name)
        assert [replace(r, line=r.line + shift) for r in _positions(plain.references)] == \
            _positions(got.references), name
        assert (plain.error and (plain.error.line + shift, plain.error.message)) == \
            (got.error and (got.error.line, got.error.message)), name
        if new_plain is not None:
            bom = "\ufeff" if text.startswith("\ufeff") else ""
            new_directed, _ = update_images(directed, wanted, filename=name)
            assert new_directed == bom + head + new_plain[len(bom):], name


class _Recorded:
    """An event sink (see locate._Parsed) that keeps each event as the parser gave it, as a tuple."""

    def __init__(self, text: str) -> None:
        self.events: list[tuple] = []

    def add(self, kind, start, end, value, style, anchor) -> None:
        self.events.append((kind, start, value, None if kind in "mq" else style, anchor))


def test_the_compact_event_record_reads_back_every_event_as_the_parser_gave_it(texts: dict[str, str]) -> None:
    """The verifier's record keeps a scalar's value only where it is not its source as written: read back, each
    event of every corpus file is the one the parser gave (values, styles, anchors, offsets)."""
    for name, text in texts.items():
        try:
            given = parse(text, events=_Recorded).events
        except YamlSyntaxError:
            continue
        assert [tuple(e) for e in parse(text).events] == given.events, name


def test_locating_each_document_as_it_is_read_finds_what_walking_the_whole_text_finds(
        texts: dict[str, str]) -> None:
    """locate walks each document as soon as it is read and lets its nodes go: the same references, conflicts
    (anchors), tag-only maps and too-deep errors as a walk of all of the text's documents once composed; and
    so does update_images' reading (only the documents mentioning an image composed), for those documents."""
    from gitops_cli.yamledit.locate import locate_result

    for name, text in texts.items():
        try:
            composed = locate_result(parse(text), name)
        except YamlSyntaxError:
            continue
        assert locate(text, filename=name) == composed, name
        needles = [n for r in composed.references for n in [r.value.split("@")[0].rsplit("/", 1)[-1].split(":")[0]]
                   if n][:1]
        if needles:
            parsed = parse(text, keep=partial(_names, text, needles[0]), walk=True, filename=name)
            assert parsed.located is not None
            assert parsed.located.references == [r for r in composed.references if r.doc in parsed.kept], name


def _names(text: str, needle: str, _index: int, start: int, end: int) -> bool:
    return needle in text[start:end]
