"""Values that say nothing, end to end: an empty value is refused (exit 2, naming the flag, variable or file)
before any work, never taken as "not given", "the whole deploy repo" or "the current directory"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.gitremotes import DeployRemote, git

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("error:", "hint:"))]


@pytest.mark.parametrize(("args", "env", "config", "expected"), [
    (["--path", ""], {}, None, "error: --path '': empty value; give a value, or leave the option out"),
    (["--path=", "--path", "apps/api"], {}, None, "error: --path '': empty value"),
    ([], {"GITOPS_PATHS": ","}, None, "error: GITOPS_PATHS=',': no entry, only commas and blanks"),
    ([], {}, 'paths = [""]\n', "error: {config}: paths entry '': empty value; give a value, or leave the key out"),
])
def test_an_empty_path_bumps_nothing(gitops, deploy_remote: DeployRemote, tmp_path: Path, args: list[str],
                                     env: dict[str, str], config: str | None, expected: str) -> None:
    """`ENV_DIR=; gitops bump --path "$ENV_DIR"` bumped every environment, prod included, and pushed:
    normpath("") is ".".  GITOPS_PATHS="$A,$B" with both unset, or an empty entry in the file, did too."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if config:
        (cwd / "gitops.toml").write_text(config)
    head = deploy_remote.head()
    res = gitops(["bump", "--deploy-repo", deploy_remote.url, "--image", f"{API}:9.9.9", *args], cwd=cwd, env=env)
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr)[0].startswith(expected.format(config=cwd / "gitops.toml")), res.stderr
    assert res.stdout == "" and deploy_remote.head() == head


def test_an_empty_in_image_runs_no_test(gitops, tmp_path: Path) -> None:
    """`gitops test --in-image "$IMAGE"` with IMAGE unset ran the tests on the host and exited 0: CI took the
    image for tested."""
    res = gitops(["test", "--in-image", "", "--command", "touch ran"], cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr) == ["error: --in-image '': empty value; give a value, or leave the option out",
                                        "hint: a shell variable that is empty or unset gives one"]
    assert not (tmp_path / "ran").exists()


def test_an_empty_dotenv_is_refused_and_the_step_outputs_written_empty(gitops, tmp_path: Path) -> None:
    """build-and-bump's step outputs after bad input found before the first step: written empty (the
    README), also for an empty --dotenv, which names no file (Path("") is the current directory)."""
    github_output = tmp_path / "github-output"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = gitops(["build-and-bump", "--dotenv", ""], cwd=cwd, env={"GITHUB_OUTPUT": str(github_output)})
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr)[0] == "error: --dotenv '': empty value; give a value, or leave the option out"
    assert github_output.read_text() == "tag=\nimage=\ndigest=\ndeploy-commit=\n"
    assert list(cwd.iterdir()) == []


def test_an_empty_prefix_overrides_the_files(gitops, tmp_path: Path) -> None:
    """The one option whose empty value is a value: the empty tag prefix, the default."""
    repo = tmp_path / "app"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=main", str(repo))
    (repo / "gitops.toml").write_text('tag_prefix = "v1-"\n')
    git("add", "-A", cwd=repo)
    git("commit", "--quiet", "-m", "app", cwd=repo)
    sha = git("rev-parse", "--short=7", "HEAD", cwd=repo).strip()
    assert gitops(["tag"], cwd=repo).stdout.strip() == f"v1-{sha}"
    res = gitops(["tag", "--prefix", ""], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == sha
