"""examples/: the CI configs parse and call `gitops build-and-bump` with real options; lint is clean;
the sample app's settings and the deploy repo agree on the image."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from ruamel.yaml import YAML

from gitops_cli.cli import app
from gitops_cli.imageref import parse_repository
from gitops_cli.pipeline import OUTPUT_NAMES, dotenv_name
from gitops_cli.settings import load_settings
from tests.fixtures.cli import run_gitops

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CI = EXAMPLES / "ci"
YAMLLINT_CONFIG = ("{extends: default, rules: {line-length: {max: 120}, document-start: disable, "
                   "truthy: {allowed-values: ['true', 'false'], check-keys: false}}}")


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def build_and_bump_options() -> set[str]:
    command = typer.main.get_command(app).commands["build-and-bump"]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def gitops_invocations(script: str) -> list[list[str]]:
    """The argument lists of every `gitops build-and-bump` in a shell script (CI expressions blanked)."""
    script = re.sub(r"\$\{\{.*?\}\}", "X", script)
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line)
        for i in range(len(words) - 1):
            if words[i] == "gitops" and words[i + 1] == "build-and-bump":
                out.append(words[i + 2:])
    return out


def check_flags(args: list[str]) -> None:
    known = build_and_bump_options()
    flags = [a.split("=", 1)[0] for a in args if a.startswith("-")]
    assert flags and set(flags) <= known, set(flags) - known


def test_github_actions_example() -> None:
    workflow = load(CI / "github-actions.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    ship = next(s for s in steps if "gitops build-and-bump" in s.get("run", ""))
    calls = gitops_invocations(ship["run"])
    assert len(calls) == 1
    check_flags(calls[0])
    assert {"--image", "--deploy-repo"} <= set(calls[0])
    # secrets come from the secret store, never inline
    secrets = {k: v for k, v in ship["env"].items() if "PASSWORD" in k or "TOKEN" in k}
    assert secrets and all(v.startswith("${{ secrets.") for v in secrets.values())
    # the outputs used later are ones build-and-bump writes to $GITHUB_OUTPUT
    text = (CI / "github-actions.yml").read_text()
    used = set(re.findall(rf"steps\.{ship['id']}\.outputs\.([\w-]+)", text))
    assert used and used <= set(OUTPUT_NAMES)


def test_gitlab_ci_example() -> None:
    pipeline = load(CI / "gitlab-ci.yml")
    job = pipeline["ship"]
    calls = [c for line in job["script"] for c in gitops_invocations(line)]
    assert len(calls) == 1
    check_flags(calls[0])
    dotenv = calls[0][calls[0].index("--dotenv") + 1]
    assert job["artifacts"]["reports"]["dotenv"] == dotenv
    assert all(re.fullmatch(r"[A-Z0-9_]+", dotenv_name(n)) for n in OUTPUT_NAMES)  # valid GitLab names
    assert job["variables"]["GITOPS_REGISTRY_PASSWORD"].startswith("$")  # from CI/CD variables


def _ci_calls() -> dict[str, list[str]]:
    workflow = load(CI / "github-actions.yml")
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    ship = next(s for s in steps if "gitops build-and-bump" in s.get("run", ""))
    gitlab = [c for line in load(CI / "gitlab-ci.yml")["ship"]["script"] for c in gitops_invocations(line)]
    return {"github": gitops_invocations(ship["run"])[0], "gitlab": gitlab[0]}


def test_ci_examples_agree_and_bump_every_file_of_the_example_deploy_repo() -> None:
    """The GitHub example bumped `--path apps/sample-app` (leaving out the top-level values.yaml that names the
    image too), the GitLab one the whole deploy repo: both now take the same options (GitLab's --dotenv
    aside), and their --path values (none) reach every reference to the image in examples/deploy-repo."""
    from gitops_cli.bump import compute_edits

    calls = _ci_calls()
    flags = {ci: [a for a in args if a.startswith("-") and a != "--dotenv"] for ci, args in calls.items()}
    assert flags["github"] == flags["gitlab"] == ["--image", "--deploy-repo"]
    image = parse_repository(load_settings(EXAMPLES / "sample-app", environ={}).image or "")
    for args in calls.values():
        paths = [args[i + 1] for i, a in enumerate(args) if a == "--path"]
        edits, _, _ = compute_edits(EXAMPLES / "deploy-repo", [image.with_tag("abc1234")], paths)
        assert sorted(e.path for e in edits) == ["apps/sample-app/deployment.yaml",
                                                 "apps/sample-app/kustomization.yaml", "values.yaml"]


_TRAILING_COMMENT = re.compile(r"\s+#(?:\s.*)?$")


def _code_lines(text: str) -> list[str]:
    """A YAML text's lines without comment-only and blank lines, each without its trailing comment."""
    lines = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(_TRAILING_COMMENT.sub("", line).rstrip())
    return lines


def readme_example_snippets() -> list[tuple[str, str]]:
    """(file under examples/, snippet) for each ```yaml block of the README whose first line names one."""
    readme = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"^```yaml\n(.*?)^```", readme, flags=re.M | re.S):
        named = re.match(r"#[^\n]*?\b(examples/[\w./-]+\.ya?ml)", block)
        if named:
            found.append((named.group(1), block))
    return found


def test_the_readme_shows_the_ci_examples() -> None:
    assert sorted(name for name, _ in readme_example_snippets()) == [
        "examples/ci/github-actions.yml", "examples/ci/gitlab-ci.yml", "examples/pre-commit-config.yaml"]


@pytest.mark.parametrize("name,snippet", readme_example_snippets(), ids=[n for n, _ in readme_example_snippets()])
def test_a_readme_snippet_is_an_excerpt_of_its_example(name: str, snippet: str) -> None:
    """The README's GitHub snippet, labelled with the file's name, was another text (other step layout,
    another --deploy-repo, no --path): each line of a snippet (but for comments) is now the file's, in one
    run of its lines (comments aside), shifted by one indentation, and the snippet parses."""
    assert YAML(typ="safe", pure=True).load(snippet) is not None
    mine, theirs = _code_lines(snippet), _code_lines((ROOT / name).read_text())
    assert mine
    for start, line in enumerate(theirs):
        indent = line[:len(line) - len(line.lstrip())]
        if theirs[start:start + len(mine)] == [f"{indent}{m}" if m else m for m in mine]:
            return
    pytest.fail(f"the README's snippet of {name} is not a run of its lines:\n" + "\n".join(mine))


def _install_lines() -> dict[str, tuple[str, dict[str, str]]]:
    """The install command of each CI example, with the environment the CI gives it."""
    workflow = load(CI / "github-actions.yml")
    step = next(s for job in workflow["jobs"].values() for s in job["steps"] if "install" in s.get("run", ""))
    gitlab = next(line for line in load(CI / "gitlab-ci.yml")["ship"]["script"] if "install" in line)
    return {"github": (step["run"], step.get("env", {})), "gitlab": (gitlab, {})}


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_examples_install_gitops_cli_only_from_where_it_is_published(ci: str) -> None:
    """No bare `pip install gitops-cli` (a public index has no such package, and whoever registered the
    name would get the job's secrets): the spec comes from a variable, and an unset one stops the job
    with a message naming it."""
    import subprocess

    line, env = _install_lines()[ci]
    assert "GITOPS_CLI_SPEC" in line and "gitops-cli" not in line.replace("(where gitops-cli is)", "")
    if ci == "github":
        assert env == {"GITOPS_CLI_SPEC": "${{ vars.GITOPS_CLI_SPEC }}"}
    stub = "pip() { echo \"pip $*\"; }; pipx() { echo \"pipx $*\"; }; "
    unset = subprocess.run(["bash", "-c", stub + line], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert unset.returncode != 0 and "set the" in unset.stderr and "GITOPS_CLI_SPEC" in unset.stderr
    spec = "git+https://git.example.com/platform/gitops-cli@v0.1.0"
    given = subprocess.run(["bash", "-c", stub + line], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin", "GITOPS_CLI_SPEC": spec})
    assert given.returncode == 0 and given.stdout.split() == [line.split()[0], "install", spec]


@pytest.mark.parametrize("path", sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.y*ml")))
def test_every_example_yaml_parses(path: str) -> None:
    docs = list(YAML(typ="safe", pure=True).load_all((EXAMPLES / path).read_text()))
    assert docs and all(d is not None for d in docs)


def test_gitops_lint_of_examples_is_clean() -> None:
    res = run_gitops(["lint", str(EXAMPLES)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == "" and "no findings" in res.stderr


def test_yamllint_of_examples_is_clean() -> None:
    exe = shutil.which("yamllint")
    assert exe, "yamllint is not installed (apt-get install yamllint; see .ci/run)"
    res = subprocess.run([exe, "-f", "parsable", "-d", YAMLLINT_CONFIG, str(EXAMPLES)],
                         capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout == "", res.stdout + res.stderr


def test_demo_script_is_valid_bash() -> None:
    res = subprocess.run(["bash", "-n", str(EXAMPLES / "demo.sh")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_sample_app_settings_match_the_deploy_repo() -> None:
    """The image the sample app builds is the one the example deploy repo references (3 places)."""
    from gitops_cli.bump import compute_edits

    settings = load_settings(EXAMPLES / "sample-app", environ={})
    assert settings.build_command == "make build" and settings.test_command == "sh test_app.sh"
    image = parse_repository(settings.image or "")
    edits, skipped, found = compute_edits(EXAMPLES / "deploy-repo", [image.with_tag("abc1234")])
    assert found == {image.normalized_name} and skipped == []
    assert sorted(e.path for e in edits) == ["apps/sample-app/deployment.yaml",
                                             "apps/sample-app/kustomization.yaml", "values.yaml"]


def test_pre_commit_example_uses_the_repositorys_hook() -> None:
    config = load(EXAMPLES / "pre-commit-config.yaml")
    hook_ids = {h["id"] for h in load(ROOT / ".pre-commit-hooks.yaml")}
    used = [hook["id"] for repo in config["repos"] for hook in repo["hooks"]]
    assert used == ["gitops-tag-lint"] and set(used) <= hook_ids
