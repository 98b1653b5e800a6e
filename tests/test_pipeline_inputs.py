"""pipeline.build_inputs: the value recorded in the image (label dev.gitops-cli.build-inputs) depends on
what makes the image, never on where the checkout sits (another CI runner, another clone path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops_cli.errors import UsageError
from gitops_cli.pipeline import build_inputs, input_differences
from tests.fixtures.services import commit_all, git


def monorepo(where: Path) -> Path:
    """A checkout whose app builds with the repo root as context (shared libraries there)."""
    (where / "services" / "api").mkdir(parents=True)
    (where / "lib").mkdir()
    (where / "lib" / "shared.sh").write_text("echo shared\n")
    (where / "services" / "api" / "Dockerfile").write_text("FROM scratch\nCOPY lib /lib\n")
    git(where, "init", "-q", "-b", "main")
    commit_all(where, "monorepo")
    return where


@pytest.mark.parametrize("options", [
    {"context": "../..", "dockerfile": "Dockerfile"},  # the repo root as context (relative to the app)
    {},  # the defaults: the app directory and its Dockerfile
])
def test_the_same_inputs_in_clones_at_other_paths_match(tmp_path: Path, options: dict) -> None:
    first = monorepo(tmp_path / "runner-1" / "work")
    second = tmp_path / "elsewhere" / "deeper" / "clone"
    shutil.copytree(first, second)
    a = build_inputs(first / "services" / "api", options)
    b = build_inputs(second / "services" / "api", options)
    assert a == b and input_differences(a, b) == []
    assert str(tmp_path) not in a


def test_other_inputs_are_named(tmp_path: Path) -> None:
    repo = monorepo(tmp_path / "repo")
    app = repo / "services" / "api"
    base = build_inputs(app, {})
    assert input_differences(base, build_inputs(app, {"build_args": ["FLAVOR=debug"]})) == ["build-args"]
    assert input_differences(base, build_inputs(app, {"context": "../..", "dockerfile": "Dockerfile"})) == [
        "context"]
    (app / "Dockerfile").write_text("FROM scratch\n")
    assert input_differences(base, build_inputs(app, {})) == ["dockerfile"]
    with pytest.raises(UsageError):
        build_inputs(app, {"dockerfile": "nope/Dockerfile"})


def test_names_and_values_that_are_not_utf8_are_hashed_as_their_bytes(tmp_path: Path) -> None:
    """A context or Dockerfile path whose name is not UTF-8, a build command holding such a byte (from the
    command line): hashed as their bytes (a strict encode failed: exit 70 before any work)."""
    import hashlib
    import os

    repo = monorepo(tmp_path / "repo")
    odd = repo / os.fsdecode(b"ctx\xff")
    odd.mkdir()
    (odd / "Dockerfile").write_text("FROM scratch\n")
    inputs = dict(item.split("=") for item in build_inputs(repo, {"context": odd.name,
                                                                  "build_command": "echo \udcff"}).split(";"))
    assert inputs["context"] == hashlib.sha256(b"ctx\xff").hexdigest()[:16]
    assert inputs["dockerfile-path"] == hashlib.sha256(b"ctx\xff/Dockerfile").hexdigest()[:16]
    assert inputs["build-command"] == hashlib.sha256(b"echo \xff").hexdigest()[:16]


# --- newer_deployed: build-and-bump's never-backwards guard ------------------------------------------


def _edit(old: str, field: str | None, name: str):
    from gitops_cli.bump import FileEdit
    from gitops_cli.yamledit import Change

    return FileEdit("f.yaml", "", "", [Change("f.yaml", 1, 1, old, "x", "helm" if field else "container", field)],
                    [name])


def test_newer_deployed_reads_every_form_of_the_tag(tmp_path: Path) -> None:
    from gitops_cli.imageref import parse_repository
    from gitops_cli.pipeline import newer_deployed

    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a").write_text("1\n")
    commit_all(repo, "older")
    older = git(repo, "rev-parse", "HEAD")
    (repo / "a").write_text("2\n")
    commit_all(repo, "newer")
    newer = git(repo, "rev-parse", "HEAD")
    name = parse_repository("r.example/team/app")
    digest = "sha256:" + "1" * 64
    for edit in (_edit(f"r.example/team/app:{newer[:7]}@{digest}", None, name.normalized_name),
                 _edit(newer[:7], "newTag", name.normalized_name),
                 _edit(f"{newer[:7]}@{digest}", "tag", name.normalized_name),  # Helm: tag holding a digest
                 _edit(f"v-{newer[:9]}", "tag", name.normalized_name)):
        prefix = "v-" if edit.changes[0].old.startswith("v-") else ""
        reason = newer_deployed(repo, older, prefix, name, [edit])
        assert reason and newer[:12] in reason, edit
    # no evidence: the same commit, an older one deployed, a digest field, another image, a tag that is no SHA
    assert newer_deployed(repo, newer, "", name, [_edit(newer[:7], "tag", name.normalized_name)]) is None
    assert newer_deployed(repo, newer, "", name, [_edit(older[:7], "tag", name.normalized_name)]) is None
    assert newer_deployed(repo, older, "", name, [_edit(digest, "digest", name.normalized_name)]) is None
    assert newer_deployed(repo, older, "", name, [_edit(newer[:7], "tag", "r.example/other")]) is None
    assert newer_deployed(repo, older, "", name, [_edit("1.2.3", "tag", name.normalized_name)]) is None
