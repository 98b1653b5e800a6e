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
