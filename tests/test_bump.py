"""gitops_cli.bump: request validation, commit message, diff rendering (pure parts of the use case);
prepare/apply against a real bare remote (marked integration)."""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitops_cli.bump import (
    BumpRequest,
    FileEdit,
    apply,
    bump,
    compute_edits,
    prepare,
    render_message,
    unified_diff,
    validate,
)
from gitops_cli.ci import CIInfo
from gitops_cli.errors import GitError, NotFoundError, RegistryError, UsageError, VerificationError
from gitops_cli.imageref import parse
from tests.fixtures.gitremotes import git

API = parse("registry.example.com/team/api:2.0.0")
WORKER = parse("registry.example.com/team/worker:2.0.0")
NO_CI = CIInfo(None, None, None)


@dataclass
class FakeChange:  # the fields of yamledit.Change the message needs
    old: str
    new: str
    line: int = 1
    column: int = 1


def test_default_message_one_image() -> None:
    msg = render_message([API], [], None, NO_CI)
    assert msg == (
        "Update registry.example.com/team/api image to registry.example.com/team/api:2.0.0\n\n"
        "Image: registry.example.com/team/api:2.0.0\n"
    )


def test_default_message_several_images_and_ci_trailers() -> None:
    info = CIInfo("github", "f" * 40, "https://github.com/org/app/actions/runs/9")
    msg = render_message([API, WORKER], [], None, info)
    subject, body, trailers = msg.split("\n\n")
    assert subject == "Update 2 images"
    assert body.splitlines() == [
        "Update registry.example.com/team/api image to registry.example.com/team/api:2.0.0",
        "Update registry.example.com/team/worker image to registry.example.com/team/worker:2.0.0",
    ]
    assert trailers.splitlines() == [
        "Image: registry.example.com/team/api:2.0.0",
        "Image: registry.example.com/team/worker:2.0.0",
        "Source-Commit: " + "f" * 40,
        "CI-Run: https://github.com/org/app/actions/runs/9",
    ]


def test_message_template_fields(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    image = parse(f"registry.example.com/team/api:2.0.0@{digest}")
    (tmp_path / "a.yaml").write_text("image: registry.example.com/team/api:1.0.0\n")
    edits, _, _ = compute_edits(tmp_path, [image])
    msg = render_message([image], edits, "deploy {repository} {tag} ({digest}) was {old}; {image}", NO_CI)
    assert msg.splitlines()[0] == f"deploy registry.example.com/team/api 2.0.0 ({digest}) was 1.0.0; {image}"


def test_message_old_is_each_previous_value_once_in_one_form(tmp_path: Path) -> None:
    """{old} listed the changed strings and fields as written: a full reference, a bare `@sha256:` one, a tag,
    a digest (`team/app:v1@sha256:1.., team/app@sha256:1.., team/app:v1, v1, sha256:1..`)."""
    d1, d2, d3 = ("sha256:" + c * 64 for c in "123")
    (tmp_path / "d.yaml").write_text(
        f"containers:\n- name: a\n  image: 127.0.0.1:5000/team/app:v1@{d1}\n"
        f"- name: b\n  image: 127.0.0.1:5000/team/app@{d1}\n- name: c\n  image: 127.0.0.1:5000/team/app:v1\n"
        f"- name: d\n  image: 127.0.0.1:5000/team/app:v0  # canary\n- name: e\n  image: 127.0.0.1:5000/team/app:v3\n")
    (tmp_path / "kustomization.yaml").write_text(
        f"images:\n- name: 127.0.0.1:5000/team/app\n  newTag: v1\n  digest: {d1}\n")
    image = parse(f"127.0.0.1:5000/team/app:v3@{d3}")
    edits, _, _ = compute_edits(tmp_path, [image])
    # e (tag only, at v3 already) is not changed: not a previous value
    assert render_message([image], edits, "{old}", NO_CI).splitlines()[0] == f"v1@{d1}, v0"
    # a tag alone and a digest alone that no value joins stay apart; a digest-only form reads `@digest`
    (tmp_path / "kustomization.yaml").unlink()
    (tmp_path / "d.yaml").write_text(f"containers:\n- name: a\n  image: 127.0.0.1:5000/team/app@{d2}\n"
                                     "- name: b\n  image: 127.0.0.1:5000/team/app:v1\n")
    edits, _, _ = compute_edits(tmp_path, [image])
    assert render_message([image], edits, "{old}", NO_CI).splitlines()[0] == f"@{d2}, v1"
    # only the image's own changes: with two images each gets its own previous values
    other = parse("127.0.0.1:5000/team/worker:w2")
    (tmp_path / "w.yaml").write_text("image: 127.0.0.1:5000/team/worker:w1\n")
    edits, _, _ = compute_edits(tmp_path, [image, other])
    assert render_message([image, other], edits, "{repository} was {old}", NO_CI).split("\n\n")[1] == (
        f"127.0.0.1:5000/team/app was @{d2}, v1\n127.0.0.1:5000/team/worker was w1")


def _many_in_one_file(tmp_path: Path, n: int) -> None:
    """One multi-document file of n Deployments, running API and WORKER in turn (a third of them behind a
    kustomize-style map), and a document naming neither."""
    docs = []
    for i in range(n):
        image = (API if i % 2 else WORKER).with_tag("1.0.0")
        if i % 3:
            docs.append(f"kind: Deployment\nspec:\n  containers:\n  - name: app\n    image: {image}\n")
        else:
            docs.append(f"image:\n  repository: {image.name}\n  tag: 1.0.0\n")
    docs.append("kind: Deployment\nspec:\n  containers:\n  - name: app\n    image: registry.example.com/x/y:1\n")
    (tmp_path / "all.yaml").write_text("---\n".join(docs))


def test_several_images_in_one_file_are_attributed_by_lookup(tmp_path: Path, monkeypatch) -> None:
    """Each change's image was found by a pass over every reference of the file, and each reference was
    parsed again for every image: N changes x N references.  Now each reference's name is parsed once and
    each change is a lookup: the work grows with the references, not their square."""
    from gitops_cli import bump as bump_module

    n = 60
    _many_in_one_file(tmp_path, n)
    calls = {"spots": 0, "parse": 0}
    spots, try_parse = bump_module._spots, bump_module.try_parse

    def counting_spots(ref):  # type: ignore[no-untyped-def]
        calls["spots"] += 1
        return spots(ref)

    def counting_parse(text):  # type: ignore[no-untyped-def]
        calls["parse"] += 1
        return try_parse(text)

    monkeypatch.setattr(bump_module, "_spots", counting_spots)
    monkeypatch.setattr(bump_module, "try_parse", counting_parse)
    for container in (None, "app"):
        calls.update(spots=0, parse=0)
        edits, _, found = compute_edits(tmp_path, [API, WORKER], container=container)
        assert found == {API.normalized_name, WORKER.normalized_name}
        (edit,) = edits
        expected = [(API if i % 2 else WORKER).normalized_name for i in range(n)]
        assert edit.images == expected  # each change's image, in file order (--container leaves maps in)
        assert len(edit.changes) == len(expected)
        assert calls["spots"] <= n and calls["parse"] <= n, calls  # was ~n * n / 2 and 4 * n


def _count_readings(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """A list that gets an item for each reading of a YAML text by the locator's parser (from now on)."""
    import importlib

    locate_module = importlib.import_module("gitops_cli.yamledit.locate")  # the module, not its function
    reads: list[int] = []
    read = locate_module._Parsed._read

    def counting_read(self, *args):  # type: ignore[no-untyped-def]
        reads.append(1)
        return read(self, *args)

    monkeypatch.setattr(locate_module._Parsed, "_read", counting_read)
    return reads


def test_a_changed_file_is_read_twice_whatever_the_images(tmp_path: Path, monkeypatch) -> None:
    """A changed file is read to plan its edits and read again, edited, to verify them.  With several images or
    --container the bump read it a third time, whole, to attribute the changes: now it uses the references the
    planning found (those of the documents naming an image: every one it may change or count)."""
    _many_in_one_file(tmp_path, 12)
    reads = _count_readings(monkeypatch)
    for images, container in (([API], None), ([API, WORKER], None), ([API], "app"), ([API, WORKER], "app")):
        reads.clear()
        edits, _, found = compute_edits(tmp_path, images, container=container)
        assert found == {i.normalized_name for i in images} and len(edits) == 1
        assert len(reads) == 2, (images, container)


def test_message_old_reads_each_edited_file_once_for_every_image(tmp_path: Path, monkeypatch) -> None:
    """{old} located each edited file again for each image bumped (50 images in one file: 50 readings of it);
    now once for all of them, with the same values."""
    (tmp_path / "all.yaml").write_text(
        "image: registry.example.com/team/api:1.0.0\n---\nimage: registry.example.com/team/worker:0.9\n---\n"
        "image: registry.example.com/team/api:1.1.0\n---\nimage: {repository: registry.example.com/team/worker, "
        "tag: 0.8}\n")
    edits, _, _ = compute_edits(tmp_path, [API, WORKER])
    reads = _count_readings(monkeypatch)
    message = render_message([API, WORKER], edits, "{repository} was {old}", NO_CI)
    assert message.split("\n\n")[1] == ("registry.example.com/team/api was 1.0.0, 1.1.0\n"
                                         "registry.example.com/team/worker was 0.9, 0.8")
    assert len(reads) == 1  # was 2: one an image


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": []}, "--image is required"),
        ({"images": [API, parse("registry.example.com/team/api:3")]}, "given twice"),
        ({"retries": -1}, "--retries"),
        ({"author": "nobody"}, "--author"),
        ({"message": "bump {nope}"}, "unknown placeholder {nope}"),
        ({"message": "bump {image"}, "--message"),
        ({"message": "  "}, "empty"),
        ({"push_branch": "bad..name"}, "--push-branch"),
        ({"branch": "-x"}, "--branch"),
        ({"push_branch": "@"}, "--push-branch '@': not a valid branch name"),  # `--branch` shorthand
        ({"push_branch": "@{-1}"}, "not a valid branch name"),
        ({"push_branch": "HEAD"}, "not a valid branch name"),
        ({"push_branch": "refs/heads/foo"}, "without refs/heads/"),  # pushed to refs/heads/refs/heads/foo
        ({"paths": ["apps/" + "x" * 256]}, "a part of it is longer than 255 bytes"),  # ENAMETOOLONG later
        ({"push_branch": "b" * 10000}, "not a valid branch name"),  # the remote cannot store that ref
        ({"container": ""}, "--container '': empty"),
    ],
)
def test_validate_rejects(kwargs: dict, match: str) -> None:
    request = BumpRequest(**{"deploy_repo": "file:///x.git", "images": [API], **kwargs})
    with pytest.raises(UsageError, match=match):
        validate(request)


def test_validate_accepts() -> None:
    assert validate(BumpRequest("file:///x.git", [API, WORKER], message="{image} {old}", author="A <a@b.c>",
                                push_branch="bump/api-2.0.0")) is None  # nothing raised


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retries": 0},
        {"paths": ["apps/" + "x" * 255]},  # a part of 255 bytes: a file can be named so
        {"paths": ["apps/" + "é" * 127]},  # 254 bytes
        {"container": "api", "branch": "release/1.x", "push_branch": "bump/api"},
        {"images": []},  # images_required=False: they come later
    ],
)
def test_validate_accepts_the_limits_of_what_it_refuses(kwargs: dict) -> None:
    request = BumpRequest(**{"deploy_repo": "file:///x.git", "images": [API], **kwargs})
    assert validate(request, images_required=False) is None


def test_unified_diff_keeps_missing_final_newline_and_crlf() -> None:
    edits = [
        FileEdit("a.yaml", "image: x:1\nname: a", "image: x:2\nname: a", []),
        FileEdit("b.yaml", "k: v\r\nimage: y:1\r\n", "k: v\r\nimage: y:2\r\n", []),
    ]
    diff = unified_diff(edits)
    assert "diff --git a/a.yaml b/a.yaml\n--- a/a.yaml\n+++ b/a.yaml\n" in diff
    assert "-image: x:1\n+image: x:2\n name: a\n\\ No newline at end of file\n" in diff
    assert "-image: y:1\r\n+image: y:2\r\n" in diff


def test_unified_diff_quotes_a_file_name_as_git_does_and_stays_a_patch(tmp_path: Path) -> None:
    """A name with an escape sequence and a line break: quoted as git quotes it (not raw: a terminal would
    run the sequence, and the broken header lines would make no patch), and `git apply` takes the diff."""
    name = "e\x1b[31mred\nx.yaml"
    git("init", "-q", "-b", "main", str(tmp_path))
    (tmp_path / name).write_text("image: x:1\n")
    diff = unified_diff([FileEdit(name, "image: x:1\n", "image: x:2\n", [])])
    assert diff.startswith('diff --git "a/e\\033[31mred\\nx.yaml" "b/e\\033[31mred\\nx.yaml"\n'
                           '--- "a/e\\033[31mred\\nx.yaml"\n+++ "b/e\\033[31mred\\nx.yaml"\n@@ ')
    assert "\x1b" not in diff and len(diff.splitlines()) == 6
    (tmp_path / "bump.diff").write_text(diff)
    git("apply", "bump.diff", cwd=tmp_path)
    assert (tmp_path / name).read_text() == "image: x:2\n"


def test_compute_edits_skips_files_that_are_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("image: registry.example.com/team/api:1.0.0\n")
    (tmp_path / "notes.yaml").write_bytes(b"name: caf\xe9\n")  # latin-1, names no image: silently ignored
    (tmp_path / "b.yaml").write_bytes(b"x: 1\nimage: registry.example.com/team/api:1.0.0 # caf\xe9\n")
    edits, skipped, found = compute_edits(tmp_path, [API])
    assert [e.path for e in edits] == ["a.yaml"] and found == {API.normalized_name}
    assert skipped == ["b.yaml:2: skipped (not UTF-8 text: byte 53)"]


def test_compute_edits_bumps_a_reference_spelled_with_escapes(tmp_path: Path) -> None:
    """`"registry.example.com/team\\x2fapi:1.0.0"` is a reference: bumped, not "already up to date"."""
    (tmp_path / "a.yaml").write_text('image: "registry.example.com/team\\x2fapi:1.0.0"\n')
    edits, _, found = compute_edits(tmp_path, [API])
    assert [e.path for e in edits] == ["a.yaml"] and found == {API.normalized_name}
    assert [(c.old, c.new) for c in edits[0].changes] == [(f"{API.name}:1.0.0", f"{API.name}:2.0.0")]


def test_a_found_reference_left_unedited_is_an_error_not_up_to_date(tmp_path: Path, monkeypatch) -> None:
    """Whatever leaves a reference unedited (here: a pre-filter that misses it), a file is counted "already
    up to date" only when every reference in it the bump applies to is at its target: else exit 13."""
    from gitops_cli.yamledit import splice

    (tmp_path / "b.yaml").write_text(f"x: 1\nimage: {API.name}:1.0.0\n")
    monkeypatch.setattr(splice, "mentions", lambda text, targets: False)
    with pytest.raises(VerificationError, match=r"b\.yaml:2: a reference found there was not bumped "
                                                r"\('registry.example.com/team/api:1.0.0' -> '.*:2.0.0'\)"):
        compute_edits(tmp_path, [API])
    (tmp_path / "b.yaml").write_text(f"x: 1\nimage: {API.name}:2.0.0\n")  # at the target: up to date
    assert compute_edits(tmp_path, [API]) == ([], [], {API.normalized_name})


def test_trailer_values_cannot_forge_trailers() -> None:
    """A CR/LF in a CI variable (GITHUB_REPOSITORY, a run URL) must not start a trailer of its own."""
    info = CIInfo("github", "f" * 40, "https://github.com/org/app\nSigned-off-by: M <m@x>/actions/runs/9")
    msg = render_message([API], [], "Deploy {image}\n\nmulti-line body\nkept", info,
                         extra=(("Rollback-Of", "abc\r\nApproved-by: Eve <e@x>"),))
    assert "\nSigned-off-by" not in msg and "\nApproved-by" not in msg
    body, trailers = msg.rsplit("\n\n", 1)
    assert body == "Deploy registry.example.com/team/api:2.0.0\n\nmulti-line body\nkept"  # --message stays
    assert trailers.splitlines() == [
        "Image: registry.example.com/team/api:2.0.0",
        "Source-Commit: " + "f" * 40,
        "CI-Run: https://github.com/org/app Signed-off-by: M <m@x>/actions/runs/9",
        "Rollback-Of: abc Approved-by: Eve <e@x>",
    ]


def test_failed_digest_lookup_is_exit_13_with_the_registrys_reason(tmp_path: Path) -> None:
    digest = "sha256:" + "a" * 64
    (tmp_path / "d.yaml").write_text(f"image: registry.example.com/team/api:1.0.0@{digest}\n")

    def unreachable(target: object, reference: object) -> str:
        raise RegistryError("registry unreachable: GET https://127.0.0.1:1/v2/: connection refused")

    with pytest.raises(VerificationError) as exc:
        compute_edits(tmp_path, [API], resolve_digest=unreachable)
    assert exc.value.exit_code == 13
    assert exc.value.message.startswith("d.yaml:1: needs the digest of registry.example.com/team/api:2.0.0")
    assert "connection refused" in exc.value.message


KUSTOMIZE_AND_DEPLOYMENT = {
    "kustomization.yaml": "images:\n- name: registry.example.com/team/api\n  newTag: 1.0.0\n",
    "deploy.yaml": ("spec:\n  template:\n    spec:\n      containers:\n      - name: api\n"
                    "        image: registry.example.com/team/api:1.0.0\n"),
}


def test_container_naming_no_container_finds_nothing(tmp_path: Path) -> None:
    """--container with a typo must not bump the kustomize entry (which names no container) alone."""
    for rel, text in KUSTOMIZE_AND_DEPLOYMENT.items():
        (tmp_path / rel).write_text(text)
    edits, _, found = compute_edits(tmp_path, [API], container="apii")
    assert found == set()  # -> exit 3 (NotFoundError naming the container)
    edits, _, found = compute_edits(tmp_path, [API], container="api")
    assert found == {API.normalized_name}
    assert sorted(e.path for e in edits) == ["deploy.yaml", "kustomization.yaml"]


def test_container_not_found_error_names_the_container(tmp_path: Path) -> None:
    for rel, text in KUSTOMIZE_AND_DEPLOYMENT.items():
        (tmp_path / rel).write_text(text)
    checkout = tmp_path
    git("init", "--quiet", str(checkout))
    with pytest.raises(NotFoundError) as exc:
        bump(BumpRequest(str(checkout), [API], container="apii", commit=False))
    assert exc.value.exit_code == 3 and exc.value.message.startswith("--container 'apii': no container")
    assert (tmp_path / "kustomization.yaml").read_text() == KUSTOMIZE_AND_DEPLOYMENT["kustomization.yaml"]


TAG_ONLY_CHART = {  # a values override file layered over the chart's values.yaml (valueFiles / valuesFiles)
    "chart/values.yaml": "image:\n  repository: registry.example.com/team/api\n  tag: 1.0.0\n",
    "chart/values-staging.yaml": "replicas: 2\nimage:\n  tag: 1.0.0   # set by CI\n",
}


def test_a_tag_only_values_override_is_no_reference_and_says_why(tmp_path: Path) -> None:
    _write(tmp_path, TAG_ONLY_CHART)
    warning = ("chart/values-staging.yaml:3: skipped (a tag in an `image:` map that names no repository, as in a "
               "Helm values override file: gitops cannot tell which image it tags)")
    edits, skipped, found = compute_edits(tmp_path, [API], ["chart/values-staging.yaml"])
    assert (edits, skipped, found) == ([], [warning], set())
    git("init", "--quiet", str(tmp_path))
    with pytest.raises(NotFoundError) as exc:
        bump(BumpRequest(str(tmp_path), [API], paths=["chart/values-staging.yaml"], commit=False))
    assert exc.value.exit_code == 3
    assert exc.value.message == (
        f"no reference to registry.example.com/team/api found in the YAML files of {tmp_path} "
        "(paths: chart/values-staging.yaml): the tag at chart/values-staging.yaml:3 is in an `image:` map that "
        "names no repository (a values override file), so gitops cannot tell which image it tags")
    assert exc.value.hint is not None and "repository: registry.example.com/team/api" in exc.value.hint
    # the chart's directory: values.yaml is bumped, and the override it leaves is named
    edits, skipped, _ = compute_edits(tmp_path, [API], ["chart"])
    assert [e.path for e in edits] == ["chart/values.yaml"] and skipped == [warning]
    assert compute_edits(tmp_path, [API])[1] == []  # without --path, files naming no image are not read
    # with its repository written beside the tag, the override is a reference like any other
    (tmp_path / "chart/values-staging.yaml").write_text(
        "image:\n  repository: registry.example.com/team/api\n  tag: 1.0.0\n")
    edits, skipped, _ = compute_edits(tmp_path, [API], ["chart"])
    assert [e.path for e in edits] == ["chart/values-staging.yaml", "chart/values.yaml"] and skipped == []


TWO_CONTAINERS_ONE_IMAGE = {  # kustomize sets the entry's image in both containers
    "kustomization.yaml": "resources: [d.yaml]\nimages:\n- name: registry.example.com/team/api\n  newTag: 1.0.0\n",
    "d.yaml": ("kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n"
               "        image: registry.example.com/team/api:1.0.0\n      - name: worker\n"
               "        image: registry.example.com/team/api:1.0.0\n"),
}


def test_container_is_refused_when_a_kustomize_entry_would_move_another_container(tmp_path: Path) -> None:
    """--container worker bumped the kustomize entry along, and kustomize set web to the new tag too."""
    for rel, text in TWO_CONTAINERS_ONE_IMAGE.items():
        (tmp_path / rel).write_text(text)
    with pytest.raises(VerificationError) as exc:
        compute_edits(tmp_path, [API], container="worker")
    assert exc.value.exit_code == 13 and exc.value.message == (
        "kustomization.yaml:3: this kustomize images: entry sets registry.example.com/team/api in every container "
        "using it, container 'web' (d.yaml:7) too, which --container 'worker' leaves out; nothing was written")
    assert "without --container" in (exc.value.hint or "")
    # through bump: nothing is written
    with pytest.raises(VerificationError):
        bump(BumpRequest(str(tmp_path), [API], container="worker", commit=False))
    assert {rel: (tmp_path / rel).read_text() for rel in TWO_CONTAINERS_ONE_IMAGE} == TWO_CONTAINERS_ONE_IMAGE
    # a misspelt --container is still "not found" (exit 3), not this refusal
    assert compute_edits(tmp_path, [API], container="workr")[2] == set()
    # an entry already at the target is not changed: the named container alone moves (the others stay as
    # kustomize deploys them already)
    (tmp_path / "kustomization.yaml").write_text(TWO_CONTAINERS_ONE_IMAGE["kustomization.yaml"].replace("1.0.0",
                                                                                                      "2.0.0"))
    edits, _, found = compute_edits(tmp_path, [API], container="worker")
    assert [e.path for e in edits] == ["d.yaml"] and found == {API.normalized_name}
    assert edits[0].new.count("api:2.0.0") == 1


def test_container_gets_an_image_through_a_kustomize_entry_name(tmp_path: Path) -> None:
    """An entry `name: web` + `newName: .../team/web` applies to containers whose image is `web`: a container
    named web that uses it counts as using the image (it was exit 3), and one of another name is refused."""
    web = parse("registry.example.com/team/web:2.0.0")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [d.yaml]\nimages:\n- name: web\n  newName: registry.example.com/team/web\n  newTag: 1.0.0\n")
    (tmp_path / "d.yaml").write_text("containers:\n- name: web\n  image: web\n")
    edits, _, found = compute_edits(tmp_path, [web], container="web")
    assert found == {web.normalized_name} and [e.path for e in edits] == ["kustomization.yaml"]
    (tmp_path / "d.yaml").write_text("containers:\n- name: web\n  image: web\n- name: side\n  image: web:0\n")
    with pytest.raises(VerificationError, match="container 'side' .d.yaml:5. too, which --container 'web' leaves"):
        compute_edits(tmp_path, [web], container="web")


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


WEB = parse("registry.example.com/team/web:2.0.0")
DEPLOYMENT = ("kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: {name}\n"
              "        image: {image}\n")


def test_container_other_containers_are_those_the_kustomization_renders(tmp_path: Path) -> None:
    """A container of another name outside the kustomization's resources (apps/b, which `kubectl kustomize
    apps/a` does not include) is not moved by its entry: the bump goes ahead (it was refused, exit 13)."""
    files = {
        "apps/a/kustomization.yaml": "resources: [deployment.yaml]\nimages:\n- name: registry.example.com/team/web\n"
                                     "  newTag: 1.0.0\n",
        "apps/a/deployment.yaml": DEPLOYMENT.format(name="app", image="registry.example.com/team/web:1.0.0"),
        "apps/b/deployment.yaml": DEPLOYMENT.format(name="worker", image="registry.example.com/team/web:0"),
    }
    _write(tmp_path, files)
    edits, _, found = compute_edits(tmp_path, [WEB], container="app")
    assert found == {WEB.normalized_name}
    assert [e.path for e in edits] == ["apps/a/deployment.yaml", "apps/a/kustomization.yaml"]
    # one it renders through a base directory (followed to its kustomization) is refused
    _write(tmp_path, {"apps/a/kustomization.yaml": files["apps/a/kustomization.yaml"].replace(
        "[deployment.yaml]", "[deployment.yaml, ../base]"), "apps/base/kustomization.yaml": "resources: [w.yaml]\n",
        "apps/base/w.yaml": DEPLOYMENT.format(name="worker", image="registry.example.com/team/web:0")})
    with pytest.raises(VerificationError, match=r"^apps/a/kustomization.yaml:3: .* container 'worker' "
                                                r"\(apps/base/w.yaml:7\) too, which --container 'app' leaves out"):
        compute_edits(tmp_path, [WEB], container="app")
    # and one a patch file of it gives the image
    _write(tmp_path, {"apps/a/kustomization.yaml": files["apps/a/kustomization.yaml"].replace(
        "resources: [deployment.yaml]", "resources: [deployment.yaml]\npatches:\n- path: p.yaml"),
        "apps/a/p.yaml": DEPLOYMENT.format(name="side", image="registry.example.com/team/web")})
    with pytest.raises(VerificationError, match=r"container 'side' \(apps/a/p.yaml:7\) too"):
        compute_edits(tmp_path, [WEB], container="app")
    # a JSON 6902 patch sets an image by the container's index: which container, gitops cannot tell
    for op in ("- op: replace\n  path: /spec/template/spec/containers/1/image\n  value: team/web\n",
               "- op: add\n  path: /spec/template/spec/containers/-\n  value: {name: extra, image: x}\n"):
        _write(tmp_path, {"apps/a/p.yaml": op})
        with pytest.raises(VerificationError, match=r"apps/a/p.yaml: a JSON patch sets a container's image by its "
                                                    r"index in the list, not by its name"):
            compute_edits(tmp_path, [WEB], container="app")
    _write(tmp_path, {"apps/a/p.yaml": "- op: replace\n  path: /spec/replicas\n  value: 3\n"})  # no image: fine
    assert [e.path for e in compute_edits(tmp_path, [WEB], container="app")[0]] == [
        "apps/a/deployment.yaml", "apps/a/kustomization.yaml"]


@pytest.mark.parametrize(("resource", "why"), [
    ("https://github.com/acme/deploy//base?ref=v1", "apps/a/kustomization.yaml has the remote resources entry "
                                                    "'https://github.com/acme/deploy//base?ref=v1'"),
    ("git@github.com:acme/deploy.git", "apps/a/kustomization.yaml has the remote resources entry"),
    ("github.com/acme/deploy/base", "apps/a/kustomization.yaml: resources entry 'github.com/acme/deploy/base' "
                                    "names no file or directory gitops can read in the repository"),
    ("../../../outside", "resources entry '../../../outside' names no file"),
    ("../empty", "apps/a/kustomization.yaml: resources entry '../empty' is a directory with no kustomization file"),
    ("../broken", "apps/broken/kustomization.yaml:2: not valid YAML: while parsing a flow sequence: "
                  "expected ',' or ']', but got ':'"),  # the parser's words, as lint gives them
])
def test_container_with_a_kustomization_gitops_cannot_follow_is_refused(tmp_path: Path, resource: str,
                                                                          why: str) -> None:
    """Which containers the entry moves is unknown: the bump with --container is refused, saying why."""
    _write(tmp_path, {
        "apps/a/kustomization.yaml": f"resources: [deployment.yaml, {resource!r}]\nimages:\n"
                                     "- name: registry.example.com/team/web\n  newTag: 1.0.0\n",
        "apps/a/deployment.yaml": DEPLOYMENT.format(name="app", image="registry.example.com/team/web:1.0.0"),
        "apps/empty/x.yaml": "kind: ConfigMap\n",
        "apps/broken/kustomization.yaml": "resources: [a\n  b: c\n",
    })
    with pytest.raises(VerificationError) as exc:
        compute_edits(tmp_path, [WEB], container="app")
    assert exc.value.exit_code == 13 and exc.value.message.startswith(
        "apps/a/kustomization.yaml:3: this kustomize images: entry sets registry.example.com/team/web in every "
        "container using it, and gitops cannot tell which: ")
    assert why in exc.value.message
    assert exc.value.message.endswith(", so a container --container 'app' leaves out may use it; nothing was written")
    # without --container, or with the entry already at the target, nothing is refused
    assert [e.path for e in compute_edits(tmp_path, [WEB])[0]] == ["apps/a/deployment.yaml",
                                                                   "apps/a/kustomization.yaml"]
    assert compute_edits(tmp_path, [parse("registry.example.com/team/web:1.0.0")], container="app")[2] == {
        WEB.normalized_name}


def test_container_with_flux_kustomization_images_is_refused(tmp_path: Path) -> None:
    """A Flux Kustomization's spec.images apply to the manifests of its spec.path, which gitops does not follow."""
    _write(tmp_path, {
        "flux.yaml": "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: a\n"
                     "spec:\n  path: ./apps/a\n  images:\n  - name: registry.example.com/team/web\n    newTag: 1.0.0\n",
        "apps/a/deployment.yaml": DEPLOYMENT.format(name="app", image="registry.example.com/team/web:1.0.0"),
    })
    with pytest.raises(VerificationError, match=r"^flux.yaml:8: .*cannot tell which: flux.yaml is not a "
                                                r"kustomization file"):
        compute_edits(tmp_path, [WEB], container="app")


@pytest.mark.parametrize(("override", "line"), [
    ("apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    path: apps/a\n"
     "    kustomize:\n      images: [registry.example.com/team/web:1.0.0]\n", 7),
    ("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  postRenderers:\n  - kustomize:\n"
     "      images:\n      - {name: registry.example.com/team/web, newTag: 1.0.0}\n", 7),
])
def test_container_with_argo_cd_or_helmrelease_images_is_refused(tmp_path: Path, override: str, line: int) -> None:
    """An Application's kustomize.images apply to its source path's manifests, a HelmRelease post-renderer's to its
    chart's: which containers they set, gitops cannot tell."""
    _write(tmp_path, {
        "override.yaml": override,
        "apps/a/deployment.yaml": DEPLOYMENT.format(name="app", image="registry.example.com/team/web:1.0.0"),
    })
    with pytest.raises(VerificationError, match=rf"^override.yaml:{line}: .*cannot tell which: override.yaml is not "
                                                r"a kustomization file .*(HelmRelease|Application)"):
        compute_edits(tmp_path, [WEB], container="app")


def test_container_using_an_entry_name_in_a_file_that_names_no_target_is_seen(tmp_path: Path) -> None:
    """`name: web` + `newName: .../team/webapp`: apps/b/job.yaml (in the kustomization's resources) uses `web`
    but holds no "webapp", so it was never read and the bump moved `migrate` along (exit 0)."""
    webapp = parse("registry.example.com/team/webapp:2.0.0")
    _write(tmp_path, {
        "apps/a/kustomization.yaml": "resources: [deployment.yaml, ../b]\nimages:\n- name: web\n"
                                     "  newName: registry.example.com/team/webapp\n  newTag: 1.0.0\n",
        "apps/a/deployment.yaml": DEPLOYMENT.format(name="app", image="registry.example.com/team/webapp:1.0.0"),
        "apps/b/kustomization.yaml": "resources: [job.yaml]\n",
        "apps/b/job.yaml": DEPLOYMENT.format(name="migrate", image="web"),
    })
    with pytest.raises(VerificationError) as exc:
        compute_edits(tmp_path, [webapp], container="app")
    assert exc.value.message == (
        "apps/a/kustomization.yaml:3: this kustomize images: entry sets web in every container using it, container "
        "'migrate' (apps/b/job.yaml:7) too, which --container 'app' leaves out; nothing was written")
    # `migrate` gets the image through the entry (found), `app` names the image itself: the entry alone moves
    edits, _, found = compute_edits(tmp_path, [webapp], container="migrate")
    assert found == {webapp.normalized_name} and [e.path for e in edits] == ["apps/a/kustomization.yaml"]
    # out of the kustomization's resources, `web` is another image: the entry does not reach it
    (tmp_path / "apps/a/kustomization.yaml").write_text(
        (tmp_path / "apps/a/kustomization.yaml").read_text().replace(", ../b]", "]"))
    assert [e.path for e in compute_edits(tmp_path, [webapp], container="app")[0]] == [
        "apps/a/deployment.yaml", "apps/a/kustomization.yaml"]
    assert compute_edits(tmp_path, [webapp], container="migrate")[2] == set()  # -> exit 3


def test_validate_without_images_when_they_come_later() -> None:
    validate(BumpRequest("file:///x.git", []), images_required=False)  # build-and-bump: images after publish
    with pytest.raises(UsageError, match="--retries"):
        validate(BumpRequest("file:///x.git", [], retries=-1), images_required=False)


# --- prepare / apply on a real bare remote (file://) -------------------------------------------------------

SEED_API = "registry.example.com/team/api"


def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("gitops-bump-"))


@pytest.mark.integration
def test_prepare_then_apply_with_images_given_later(deploy_remote, private_tmp: Path) -> None:
    request = BumpRequest(deploy_remote.url, [])
    notes: list[tuple[str, str]] = []
    with prepare(request, notes=notes) as prepared:
        assert prepared.branch == "main" and prepared.work is not None and (prepared.work / ".git").is_dir()
        assert _leftovers(private_tmp) and len(deploy_remote.log()) == 1  # cloned, nothing pushed yet
        result = apply(prepared, [parse(f"{SEED_API}:2.0.0")])
    assert notes == [("step", f"Cloning {deploy_remote.url} (its default branch)")]  # kept, not printed
    assert result.pushed and result.commit == deploy_remote.head() and result.attempts == 1
    assert deploy_remote.changed_files() == ["apps/api/deployment.yaml"]
    assert _leftovers(private_tmp) == []  # the with block removed the clone
    with pytest.raises(GitError, match="already removed"):
        apply(prepared, [parse(f"{SEED_API}:3.0.0")])
    with prepare(request) as again, pytest.raises(UsageError, match="--image is required"):
        apply(again, [])


@pytest.mark.integration
def test_apply_refresh_fast_forwards_an_old_clone(deploy_remote, private_tmp: Path) -> None:
    """The remote moved after the clone: refresh fetches it first, so the first push is accepted."""
    with prepare(BumpRequest(deploy_remote.url, [])) as prepared:
        other = deploy_remote.commit_change("apps/other/values.yaml", "replicas: 3\n", "another pipeline")
        result = apply(prepared, [parse(f"{SEED_API}:2.0.0")], refresh=True, sleep=_no_sleep)
    assert result.pushed and result.attempts == 1
    assert deploy_remote.log("%s")[:2] == [f"Update {SEED_API} image to {SEED_API}:2.0.0", "another pipeline"]
    assert deploy_remote.git("rev-parse", "main~1").strip() == other


def _work_files(work: Path) -> list[str]:
    return sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file() and ".git" not in p.parts)


def _count_selections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    from gitops_cli import deployrepo

    calls: list[object] = []
    real = deployrepo.check_out_matching

    def counted(repo, needles, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(needles)
        return real(repo, needles, *args, **kwargs)

    monkeypatch.setattr(deployrepo, "check_out_matching", counted)
    return calls


@pytest.mark.integration
def test_prepare_selects_the_files_naming_the_image_and_apply_keeps_them(
        deploy_remote, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build-and-bump knows the image's name before its tag: prepare (in its background thread) checks out
    the files that name it; apply, given that image with its tag, does not select again."""
    with prepare(BumpRequest(deploy_remote.url, []), select_for=[parse(SEED_API)]) as prepared:
        assert prepared.work is not None and prepared.selected == ("api",)
        files = _work_files(prepared.work)
        assert "apps/api/deployment.yaml" in files and "README.md" not in files
        assert all("api" in (prepared.work / f).read_text() for f in files)
        calls = _count_selections(monkeypatch)
        result = apply(prepared, [parse(f"{SEED_API}:2.0.0")], sleep=_no_sleep)
    assert calls == [] and result.pushed
    assert deploy_remote.changed_files() == ["apps/api/deployment.yaml"]


@pytest.mark.integration
def test_prepared_selection_is_redone_for_other_images_and_after_a_fast_forward(
        deploy_remote, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_selections(monkeypatch)
    with prepare(BumpRequest(deploy_remote.url, []), select_for=[parse(SEED_API)]) as prepared:
        # another pipeline adds a file naming the image after the clone: refresh fetches it, and the
        # selection made on the old HEAD is redone, so the new file is bumped too
        deploy_remote.commit_change("apps/api-canary/deployment.yaml",
                                    f"spec:\n  containers:\n    - image: {SEED_API}:1.0.0\n", "canary")
        result = apply(prepared, [parse(f"{SEED_API}:2.0.0")], refresh=True, sleep=_no_sleep)
    assert calls == [["api"], ["api"]] and result.pushed and result.attempts == 1
    assert deploy_remote.changed_files() == ["apps/api-canary/deployment.yaml", "apps/api/deployment.yaml"]
    calls.clear()
    with prepare(BumpRequest(deploy_remote.url, []), select_for=[parse(SEED_API)]) as prepared:
        result = apply(prepared, [parse("registry.example.com/team/worker:2.0.0")], sleep=_no_sleep)
    assert calls == [["api"], ["worker"]] and result.pushed  # selected for api, applied for worker


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"no backoff expected (slept {seconds})")


@pytest.mark.integration
def test_prepare_failure_leaves_no_temp_dir(tmp_path: Path, private_tmp: Path) -> None:
    not_a_repo = tmp_path / "not-a-repo.git"  # a directory (a missing one is refused up front: exit 2)
    not_a_repo.mkdir()
    with pytest.raises(GitError) as exc:
        prepare(BumpRequest(not_a_repo.as_uri(), [], branch="main"))  # --branch given: straight to the clone
    assert exc.value.exit_code == 10 and "cloning" in exc.value.message
    assert _leftovers(private_tmp) == []


@pytest.mark.integration
@pytest.mark.timeout(120)  # a cancel that ends nothing hangs: the server never answers
def test_cancel_ends_a_hanging_remote_and_cleans_up(private_tmp: Path) -> None:
    """A server that accepts and never answers: the ls-remote/clone is ended by `cancel`, and its git."""
    import subprocess

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/deploy.git"
        for branch in (None, "main"):  # ls-remote (default branch), then the clone itself
            cancel = threading.Event()
            timer = threading.Timer(0.5, cancel.set)
            timer.start()
            with pytest.raises(GitError, match="cancelled"):
                prepare(BumpRequest(url, [], branch=branch), cancel=cancel)
            assert subprocess.run(["pgrep", "-f", url], capture_output=True, text=True).stdout == ""  # git ended
            assert _leftovers(private_tmp) == []


@pytest.mark.integration
def test_guard_is_asked_again_after_a_rejected_push(deploy_remote, private_tmp: Path) -> None:
    """build-and-bump's never-backwards guard: a newer run's push lands between the clone and this push;
    the bump re-applied on the new head asks the guard again, which now refuses: nothing is committed."""
    from tests.fixtures.gitremotes import SEED_FILES

    asked: list[list[str]] = []

    def guard(edits: list[FileEdit]) -> str | None:
        asked.append(sorted({c.old for e in edits for c in e.changes}))
        return "a newer commit is deployed" if any("9.9.9" in old for old in asked[-1]) else None

    newer = SEED_FILES["apps/api/deployment.yaml"].replace(f"{SEED_API}:1.0.0", f"{SEED_API}:9.9.9")
    with prepare(BumpRequest(deploy_remote.url, [])) as prepared:
        head = deploy_remote.commit_change("apps/api/deployment.yaml", newer, "the newer run's bump")
        result = apply(prepared, [parse(f"{SEED_API}:2.0.0")], guard=guard, sleep=lambda seconds: None)
    assert asked == [[f"{SEED_API}:1.0.0"], [f"{SEED_API}:9.9.9"]]  # before the push, after the fetch
    assert result.superseded == "a newer commit is deployed" and not result.up_to_date
    assert result.commit is None and not result.pushed and result.edits == []
    assert result.to_json()["superseded"] == "a newer commit is deployed"
    assert deploy_remote.head() == head  # nothing pushed over the newer run's bump


def test_an_interrupted_push_says_what_the_remote_has() -> None:
    from gitops_cli.bump import BumpResult, _push_interrupted
    from gitops_cli.deployrepo import PushOutcome
    from gitops_cli.errors import GitError

    result = BumpResult(repository="file:///d.git", images=[], commit="a" * 40)
    where = "file:///d.git (main)"
    pushed = _push_interrupted(result, PushOutcome(ok=True, rejected=False), None, where)
    assert (pushed.pushed, pushed.detail) == (True, f"{'a' * 12} was pushed to {where} before it stopped")
    assert isinstance(pushed, KeyboardInterrupt)  # exit 130 wherever it is caught
    stopped = _push_interrupted(result, PushOutcome(False, False, f"{where} was not changed", stopped=True), None,
                                where)
    assert (stopped.pushed, stopped.detail) == (
        False, f"the push of {'a' * 12} was stopped after 4 s; {where} was not changed")
    unknown = _push_interrupted(result, PushOutcome(False, False, f"{where} could not be read: timed out",
                                                    stopped=True, unknown=True), None, where)
    assert unknown.pushed is None
    assert unknown.detail.endswith(f"whether it reached {where} is unknown ({where} could not be read: timed out)")
    failed = _push_interrupted(result, None, GitError("pushing failed (exit 1)"), where)
    assert (failed.pushed, failed.detail) == (False, f"{'a' * 12} was not pushed (pushing failed (exit 1))")
    moved = _push_interrupted(result, PushOutcome(False, True, "[rejected] (fetch first)"), None, where)
    assert moved.pushed is False and "not retried" in moved.detail


# --- the lock of a local checkout (real git, real flock) ----------------------------------------------------


def test_the_checkout_lock_is_one_for_all_worktrees_and_a_wait_for_it_ends_in_exit_16(tmp_path: Path, capsys) -> None:
    from gitops_cli import filelock
    from gitops_cli.bump import checkout_lock
    from gitops_cli.errors import LockedError

    repo, linked = tmp_path / "deploy", tmp_path / "deploy-staging"
    git("init", "-q", "-b", "main", str(repo))
    git("commit", "-q", "--allow-empty", "-m", "seed", cwd=repo)
    git("worktree", "add", "-q", "-b", "staging", str(linked), cwd=repo)
    with filelock.exclusive(repo / ".git" / "gitops.lock"):  # another run, on the main worktree
        with pytest.raises(LockedError, match=rf"another gitops run on {linked} \(pid \d+\) still holds") as exc:
            with checkout_lock(linked, wait=0.2):
                raise AssertionError("the lock was taken twice")
    assert exc.value.exit_code == 16
    assert f"waiting for another gitops run on {linked}" in capsys.readouterr().err
    with filelock.exclusive(repo / ".git" / "gitops.lock"):  # a wait of 0: refused at once, not waited for
        with pytest.raises(LockedError) as exc:
            with checkout_lock(repo, wait=0):
                raise AssertionError("the lock was taken twice")
    lock = repo / ".git" / "gitops.lock"
    assert exc.value.message == (f"another gitops run on {repo} (pid {os.getpid()}) holds its lock {lock} "
                                 "(not waited for: --lock-wait 0); nothing was changed")
    assert "waiting" not in capsys.readouterr().err
    (repo / ".git" / "gitops.lock").write_text("")  # a holder that wrote no pid (no gitops run)
    held = os.open(repo / ".git" / "gitops.lock", os.O_RDWR)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(LockedError, match=r"on .* \(its pid not recorded\) holds its lock"):
            with checkout_lock(repo, wait=0):
                raise AssertionError("the lock was taken twice")
    finally:
        os.close(held)
    with checkout_lock(linked), checkout_lock(repo):  # released; and held again in one process, it is not waited for
        pass
    plain = tmp_path / "plain"
    plain.mkdir()
    with checkout_lock(plain):  # no checkout: nothing to lock (the caller's checks say what is wrong)
        pass


def test_an_image_at_its_target_in_a_file_another_image_changes_is_up_to_date_not_missing(tmp_path: Path) -> None:
    """`bump --image A:v2 --image B:v2` where A is at v2 already in the file whose B changes: A counted as
    found only through a change of its own, and the bump failed with exit 3 "no reference to A found"."""
    a, b = parse("registry.example.com/team/a:v2"), parse("registry.example.com/team/b:v2")
    (tmp_path / "d.yaml").write_text("containers:\n- name: a\n  image: registry.example.com/team/a:v2\n"
                                     "- name: b\n  image: registry.example.com/team/b:v1\n")
    edits, _, found = compute_edits(tmp_path, [a, b])
    assert found == {a.normalized_name, b.normalized_name}
    assert [e.path for e in edits] == ["d.yaml"]
    assert "team/a:v2" in edits[0].new and "team/b:v2" in edits[0].new and "team/b:v1" not in edits[0].new
    # an image named nowhere is still missing
    c = parse("registry.example.com/team/c:v2")
    assert compute_edits(tmp_path, [a, b, c])[2] == {a.normalized_name, b.normalized_name}
    # with --container, an image at its target in another container counts only for that container's name
    assert compute_edits(tmp_path, [a, b], container="b")[2] == {b.normalized_name}


def _render(directory: Path) -> list[str]:
    """The images `kubectl kustomize` (offline) deploys from a kustomization directory."""
    import shutil

    from gitops_cli import kube

    out = kube.kustomize(kube.Kubectl(shutil.which("kubectl") or "kubectl"), directory, directory.name)
    return [line.split("image:", 1)[1].strip() for line in out.splitlines() if "image:" in line]


DEPLOY = "apiVersion: apps/v1\nmetadata: {{name: api}}\n" + DEPLOYMENT  # one kustomize renders
SUFFIX_OVERLAY = {
    "base/kustomization.yaml": "resources:\n- deploy.yaml\n",
    "base/deploy.yaml": DEPLOY.format(name="api", image="registry.example.com/team/api:1.0.0"),
    "overlay/kustomization.yaml": "resources:\n- ../base\nimages:\n- name: registry.example.com/team/api\n"
                                  "  tagSuffix: -debug\n",
}


def test_a_kustomize_tag_suffix_entry_is_left_as_it_is_and_its_suffix_keeps_applying(tmp_path: Path) -> None:
    """An entry with only `name` + `tagSuffix` got a `newTag:` line, and kustomize drops the suffix once an entry
    has a newTag: the overlay deployed team/api:2.0.0, not 2.0.0-debug.  Now the base is bumped and the entry
    left as it is; kustomize renders the new tag with the suffix."""
    _write(tmp_path, SUFFIX_OVERLAY)
    git("init", "--quiet", str(tmp_path))
    assert all(i.startswith("registry.example.com/team/api:1.0.0-debug") for i in _render(tmp_path / "overlay"))
    result = bump(BumpRequest(str(tmp_path), [API], commit=False))
    assert [e.path for e in result.edits] == ["base/deploy.yaml"] and result.skipped == []
    assert (tmp_path / "overlay/kustomization.yaml").read_text() == SUFFIX_OVERLAY["overlay/kustomization.yaml"]
    rendered = _render(tmp_path / "overlay")
    assert rendered and all(i.startswith("registry.example.com/team/api:2.0.0-debug") for i in rendered)
    # with no base to bump, nothing is found: the entry is named, and the error says why
    (tmp_path / "base/deploy.yaml").write_text(DEPLOY.format(name="api", image="team/other:1"))
    with pytest.raises(NotFoundError) as exc:
        bump(BumpRequest(str(tmp_path), [API], commit=False))
    assert exc.value.message.endswith(
        ": at overlay/kustomization.yaml:5, a kustomize `images:` entry with a tagSuffix and no newTag or digest "
        "takes its tag from the kustomization's resources")
    assert (tmp_path / "overlay/kustomization.yaml").read_text() == SUFFIX_OVERLAY["overlay/kustomization.yaml"]


def test_a_kustomize_tag_suffix_beside_a_new_tag_never_applied_and_the_tag_is_bumped(tmp_path: Path) -> None:
    """kustomize ignores a tagSuffix when the entry has a newTag (or digest) of its own: the new tag renders as it
    is, before the bump and after alike."""
    overlay = SUFFIX_OVERLAY["overlay/kustomization.yaml"] + "  newTag: 1.5.0\n"
    _write(tmp_path, {**SUFFIX_OVERLAY, "overlay/kustomization.yaml": overlay})
    assert _render(tmp_path / "overlay") == ["registry.example.com/team/api:1.5.0"]
    edits, skipped, found = compute_edits(tmp_path, [API])
    assert [e.path for e in edits] == ["base/deploy.yaml", "overlay/kustomization.yaml"] and skipped == []
    assert edits[1].new == overlay.replace("1.5.0", "2.0.0")
    git("init", "--quiet", str(tmp_path))
    bump(BumpRequest(str(tmp_path), [API], commit=False))
    assert _render(tmp_path / "overlay") == ["registry.example.com/team/api:2.0.0"]


def test_a_renaming_kustomize_tag_suffix_entry_is_named_in_a_warning(tmp_path: Path) -> None:
    """`name: team/old` + `newName: .../team/api` + `tagSuffix`: its tag is that of team/old in the resources,
    which the bump of team/api does not change, and a newTag would drop the suffix: left, with a warning."""
    overlay = ("resources:\n- ../base\nimages:\n- name: team/old\n  newName: registry.example.com/team/api\n"
               "  tagSuffix: -debug\n")
    _write(tmp_path, {**SUFFIX_OVERLAY, "overlay/kustomization.yaml": overlay,
                      "base/deploy.yaml": DEPLOY.format(name="api", image="team/old:1.0.0")})
    assert _render(tmp_path / "overlay") == ["registry.example.com/team/api:1.0.0-debug"]
    warning = ("overlay/kustomization.yaml:6: skipped (a kustomize `images:` entry with a tagSuffix and no newTag or "
               "digest: kustomize appends '-debug' to the tag its resources give team/old, and drops the suffix for a "
               "newTag, which gitops never adds)")
    assert compute_edits(tmp_path, [API]) == ([], [warning], set())
    # found elsewhere, the image is bumped there, and the entry is still named
    (tmp_path / "other.yaml").write_text(DEPLOYMENT.format(name="api", image="registry.example.com/team/api:1.0.0"))
    edits, skipped, found = compute_edits(tmp_path, [API])
    assert [e.path for e in edits] == ["other.yaml"] and skipped == [warning] and found == {API.normalized_name}


PLACEHOLDERS = {
    "values.yaml": "image:\n  repository: registry.example.com/team/api\n  tag: ${APP_VERSION}\n",
    "kustomization.yaml": "images:\n- name: registry.example.com/team/api\n  newTag: ${APP_VERSION}\n",
    "chart/values.yaml": 'image:\n  repository: registry.example.com/team/api\n  tag: "{{ .Chart.AppVersion }}"\n',
    "dep.yaml": DEPLOYMENT.format(name="api", image="registry.example.com/team/api:${TAG:-v1}"),
}


def test_a_placeholder_is_never_overwritten_and_each_one_is_named(tmp_path: Path) -> None:
    """A Flux postBuild variable (`newTag: ${APP_VERSION}`) or a Helm template in values was overwritten with
    the tag, while the same placeholder in an image string was not counted at all (exit 3 'no reference
    found', saying nothing of it).  Now none is overwritten, each is named, and the error says why."""
    _write(tmp_path, PLACEHOLDERS)
    git("init", "--quiet", str(tmp_path))
    with pytest.raises(NotFoundError) as exc:
        bump(BumpRequest(str(tmp_path), [API], commit=False))
    assert exc.value.exit_code == 3 and exc.value.message == (
        f"no reference to registry.example.com/team/api found in the YAML files of {tmp_path}: the tag or digest "
        "at chart/values.yaml:3, dep.yaml:7, kustomization.yaml:3, ... is a placeholder, which gitops never "
        "overwrites")
    assert "where the placeholder is filled in" in (exc.value.hint or "")
    assert {rel: (tmp_path / rel).read_text() for rel in PLACEHOLDERS} == PLACEHOLDERS
    _, skipped, found = compute_edits(tmp_path, [API])
    assert found == set() and skipped == [
        f"{where}: skipped (the tag of registry.example.com/team/api, {value!r}, is a placeholder, which gitops never "
        "overwrites: whatever fills it in (Flux's postBuild substitution, Helm, envsubst, ...) sets it)"
        for where, value in [("chart/values.yaml:3", "{{ .Chart.AppVersion }}"), ("dep.yaml:7", "${TAG:-v1}"),
                             ("kustomization.yaml:3", "${APP_VERSION}"), ("values.yaml:3", "${APP_VERSION}")]]
    # a reference with a tag of its own is bumped; the placeholders are still named
    (tmp_path / "other.yaml").write_text(DEPLOYMENT.format(name="api", image="registry.example.com/team/api:1.0.0"))
    result = bump(BumpRequest(str(tmp_path), [API], commit=False))
    assert [e.path for e in result.edits] == ["other.yaml"] and len(result.skipped) == 4
    assert {rel: (tmp_path / rel).read_text() for rel in PLACEHOLDERS} == PLACEHOLDERS


def test_a_placeholder_of_an_image_found_elsewhere_does_not_explain_another_not_found(tmp_path: Path) -> None:
    """Two images bumped, one found (its other reference holds a placeholder), one named nowhere: the error
    for the missing one does not blame the found one's placeholder."""
    _write(tmp_path, {"dep.yaml": DEPLOYMENT.format(name="api", image="registry.example.com/team/api:1.0.0"),
                      "job.yaml": DEPLOYMENT.format(name="api", image="registry.example.com/team/api:${MIGRATE}")})
    git("init", "--quiet", str(tmp_path))
    missing = parse("registry.example.com/team/missing:v2")
    with pytest.raises(NotFoundError) as exc:
        bump(BumpRequest(str(tmp_path), [API, missing], commit=False))
    assert exc.value.message == (f"no reference to registry.example.com/team/missing found in the YAML files of "
                                 f"{tmp_path}")
    assert "placeholder" not in (exc.value.hint or "")


@pytest.mark.usefixtures("secrets_restored")
def test_the_commit_message_masks_known_secrets_but_not_the_image_values() -> None:
    """A --message template holding a secret was committed as it was; masked now, before it is filled in, so
    that a short password equal to a word of an image (`app`) does not turn `team/app` into `team/***`."""
    from gitops_cli import output

    output.register_secret("tmpl-Secret-123")
    output.register_secret("app")
    image = parse("registry.example.com/team/app:v2")
    msg = render_message([image], [], "deploy {image} tmpl-Secret-123 app", NO_CI)
    assert msg.splitlines()[0] == "deploy registry.example.com/team/app:v2 *** ***"
    assert "Image: registry.example.com/team/app:v2" in msg
