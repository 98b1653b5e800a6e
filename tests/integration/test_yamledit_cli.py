"""The installed `gitops` on the YAML forms the engine used to get wrong: a ':' in a flow plain scalar
(libyaml refuses it), one-line block scalars, an alias of a non-image value, an image nested too deep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import git, make_bare_remote
from tests.integration.test_bump import no_identity_env

pytestmark = pytest.mark.integration

APP = "registry.example.com/team/app"
FLOW = f"spec:\n  containers:\n  - {{name: b, image: {APP}:v1}}   # flow\n  - {{name: c, image: '{APP}:v1'}}\n"
BLOCK = f"spec:\n  containers:\n  - name: a\n    image: >-\n      {APP}:v1\n"
SHARED = f"version: &v {APP}:v1\nspec:\n  containers:\n  - name: a\n    image: *v\n"
DEEP = "".join("  " * i + f"k{i}:\n" for i in range(420)) + "  " * 420 + f"image: {APP}:v1\n"


def _bump(gitops, tmp_path: Path, files: dict[str, str], *extra: str):
    remote = make_bare_remote(tmp_path / "remotes", files=files)
    checkout = remote.clone(tmp_path / "co")
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v2", "--no-commit", "-o", "json",
                  *extra], env=no_identity_env(tmp_path))
    return res, checkout


def test_flow_and_block_scalar_images_are_bumped_keeping_their_form(gitops, tmp_path: Path) -> None:
    res, checkout = _bump(gitops, tmp_path, {"flow.yaml": FLOW, "block.yaml": BLOCK})
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(res.stdout)["files"]) == ["block.yaml", "flow.yaml"]
    assert (checkout / "flow.yaml").read_text() == FLOW.replace(":v1", ":v2")  # no quotes added
    assert (checkout / "block.yaml").read_text() == BLOCK.replace(":v1", ":v2")


def test_an_alias_of_a_non_image_value_is_refused_and_nothing_written(gitops, tmp_path: Path) -> None:
    res, checkout = _bump(gitops, tmp_path, {"flow.yaml": FLOW, "shared.yaml": SHARED})
    assert res.returncode == 13, (res.stdout, res.stderr)
    assert "shared.yaml:1:" in res.stderr and "&v" in res.stderr and "`version`" in res.stderr
    assert "Traceback" not in res.stderr
    assert git("status", "--porcelain", cwd=checkout) == ""


def test_too_deep_image_is_skipped_with_a_warning_and_a_lint_error(gitops, tmp_path: Path) -> None:
    res, checkout = _bump(gitops, tmp_path, {"flow.yaml": FLOW, "deep.yaml": DEEP})
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["files"] == ["flow.yaml"]
    (skipped,) = report["skipped"]
    assert skipped.startswith("deep.yaml:402: skipped (nested more than 400 levels deep")
    assert "deep.yaml:402" in res.stderr
    lint = gitops(["lint", "--format", "json", "."], cwd=checkout)
    assert lint.returncode == 1, lint.stderr
    found = [(f["path"], f["line"], f["rule"]) for f in json.loads(lint.stdout)["findings"]]
    assert ("deep.yaml", 402, "GL000") in found
    assert not any(f == "flow.yaml" and rule == "GL000" for f, _, rule in found)  # parses, whatever the parser
