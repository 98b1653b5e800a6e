"""The installed `gitops` on the YAML forms the engine used to get wrong: a ':' in a flow plain scalar
(libyaml refuses it), one-line block scalars, an alias of a non-image value, an image nested too deep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops_cli.yamledit import locate
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


DIRECTIVES = {
    # the README's example of a flow colon, which libyaml refuses, under a %YAML 1.2 directive
    "flow.yaml": f"%YAML 1.2\n---\n{{image: {APP}:v1}}\n",
    "tagged.yaml": f"%YAML 1.1\n%TAG !e! tag:example.com,2000:\n---\nspec:\n  containers:\n  - name: a\n"
                   f"    image: !e!img {APP}:v1\n",
    "newer.yaml": f"x: 1\n...\n%YAML 1.3\n---\nimage: {APP}:v1\n",
    "major.yaml": f"%YAML 2.0\n---\nimage: {APP}:v1\n",
}
NOT_READ = "gitops reads YAML 1.1 and 1.2 only"


@pytest.mark.parametrize("parser", ["default", "python"])
def test_yaml_directives_with_either_parser(gitops, tmp_path: Path, parser: str) -> None:
    """`%YAML 1.1/1.2` and `%TAG` are read and kept byte for byte; another version is a skipped file (bump,
    history, rollback) or GL000 (lint), at its line, whichever parser reads the text."""
    env = no_identity_env(tmp_path, **({"GITOPS_YAML_PARSER": "python"} if parser == "python" else {}))
    remote = make_bare_remote(tmp_path / "remotes", files=DIRECTIVES)
    checkout = remote.clone(tmp_path / "co")
    res = gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{APP}:v2", "--no-commit", "-o", "json"],
                 env=env)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert sorted(report["files"]) == ["flow.yaml", "tagged.yaml"]
    assert sorted(report["skipped"]) == [f"major.yaml:1: skipped (%YAML 2.0: {NOT_READ})",
                                         f"newer.yaml:3: skipped (%YAML 1.3: {NOT_READ})"]
    assert f"major.yaml:1: skipped (%YAML 2.0: {NOT_READ})" in res.stderr and "internal error" not in res.stderr
    for name in ("flow.yaml", "tagged.yaml"):
        assert (checkout / name).read_text() == DIRECTIVES[name].replace(":v1", ":v2")

    lint = gitops(["lint", "--format", "json", "."], cwd=checkout, env=env)
    assert lint.returncode == 1, lint.stderr
    found = sorted((f["path"], f["line"], f["column"], f["rule"], f["message"])
                   for f in json.loads(lint.stdout)["findings"] if f["rule"] == "GL000")
    assert found == [("major.yaml", 1, 1, "GL000", f"YAML does not parse: %YAML 2.0: {NOT_READ}"),
                     ("newer.yaml", 3, 1, "GL000", f"YAML does not parse: %YAML 1.3: {NOT_READ}")]

    history = gitops(["history", "--deploy-repo", remote.url, "--image", APP, "-o", "json"], env=env)
    assert history.returncode == 0, history.stderr
    assert [e["tag"] for e in json.loads(history.stdout)["entries"]] == ["v1"]
    assert f"newer.yaml: skipped (line 3: %YAML 1.3: {NOT_READ})" in history.stderr
    rollback = gitops(["rollback", "--deploy-repo", remote.url, "--image", APP, "--to", "v0", "--no-verify",
                       "--dry-run"], env=env)
    assert rollback.returncode == 0, rollback.stderr
    assert f"{APP}:v0" in rollback.stdout and f"major.yaml:1: skipped (%YAML 2.0: {NOT_READ})" in rollback.stderr


# `image:` values spelled with escapes next to the name (`\x2f` is `/`, `\x3a` and `\u003a` are `:`)
# and a continued line, all kept as written: only the tag at their end changes
ESCAPED = (f'spec:\n  containers:\n  - name: a\n    image: "registry.example.com/team\\x2fapp:v1"\n'
           f'  - name: b\n    image: "{APP}\\x3av1"\n  - name: c\n    image: "{APP}\\u003av1"\n'
           f'  - name: d\n    image: "registry.example.com/team/\\\n      app:v1"\n')


def test_references_spelled_with_escapes_are_bumped_and_pushed(gitops, tmp_path: Path) -> None:
    """Not "already up to date" (the pre-filter used to miss them while the locator found them)."""
    remote = make_bare_remote(tmp_path / "remotes", files={"esc.yaml": ESCAPED})
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", f"{APP}:v2", "-o", "json"],
                 env=no_identity_env(tmp_path))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["pushed"] and report["files"] == ["esc.yaml"]
    assert [(c["line"], c["old"], c["new"]) for c in report["changes"]] == [
        (4, f"{APP}:v1", f"{APP}:v2"), (6, f"{APP}:v1", f"{APP}:v2"), (8, f"{APP}:v1", f"{APP}:v2"),
        (10, f"{APP}:v1", f"{APP}:v2")]
    pushed = remote.show("esc.yaml").decode()
    assert [r.value for r in locate(pushed).references] == [f"{APP}:v2"] * 4
    assert pushed == ESCAPED.replace('v1"', 'v2"')


def test_a_tag_line_is_added_to_a_helm_map_whose_last_value_is_a_nested_list(gitops, tmp_path: Path) -> None:
    values = "image:\n  registry: registry.example.com\n  repository: team/app\n  pullSecrets:\n    - name: regcred\n"
    res, checkout = _bump(gitops, tmp_path, {"values.yaml": values})
    assert res.returncode == 0, res.stderr  # was exit 13: the verifier expected the list to end after the new line
    assert [(c["line"], c["field"], c["new"]) for c in json.loads(res.stdout)["changes"]] == [(2, "tag", "v2")]
    assert (checkout / "values.yaml").read_text() == values + "  tag: v2\n"


def test_an_added_line_takes_the_ending_of_the_line_it_follows(gitops, tmp_path: Path) -> None:
    """Mixed line endings (a CRLF first line, LF after) and CR alone: no existing line's ending changes."""
    mixed = f"kind: Kustomization\r\nimages:\n- name: app\n  newName: {APP}\n"
    cr = f"images:\r- name: app\r  newName: {APP}\r  x:\r  - y\r"
    res, checkout = _bump(gitops, tmp_path, {"mixed/kustomization.yaml": mixed.encode(),
                                             "cr/kustomization.yaml": cr.encode()})
    assert res.returncode == 0, res.stderr
    assert (checkout / "mixed/kustomization.yaml").read_bytes() == (mixed + "  newTag: v2\n").encode()
    assert (checkout / "cr/kustomization.yaml").read_bytes() == (cr + "  newTag: v2\r").encode()
    assert sorted((c["file"], c["line"]) for c in json.loads(res.stdout)["changes"]) == [
        ("cr/kustomization.yaml", 2), ("mixed/kustomization.yaml", 3)]
