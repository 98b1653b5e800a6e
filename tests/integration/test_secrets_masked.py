"""Every secret gitops knows of from its settings is masked from a run's first line on: the secret variables
(GITOPS_REGISTRY_PASSWORD, GITOPS_GIT_TOKEN, GITHUB_TOKEN, CI_JOB_TOKEN), --password-stdin and a deploy repo
URL's password, in verbs that never use them and in what a verb prints before it loads its credentials
(an option's error, the test command's progress lines, the build-and-bump summary, JSON, image labels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import make_bare_remote
from tests.fixtures.services import Registry, sample_app
from tests.integration.test_pipeline import GITOPS_TOML, PATH, config_labels, deploy_files

pytestmark = pytest.mark.integration

TOKEN = "tok-4f9a8b7c6d5e"
PASSWORD = "hunter2hunter2"
REGISTRY_ENV = {"GITOPS_REGISTRY_USERNAME": "ci-bot", "GITOPS_REGISTRY_PASSWORD": PASSWORD}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return sample_app(tmp_path / "app")


@pytest.mark.parametrize("variable", ["GITOPS_GIT_TOKEN", "GITOPS_REGISTRY_PASSWORD", "GITHUB_TOKEN",
                                      "CI_JOB_TOKEN"])
def test_the_test_commands_progress_lines_mask_a_secret_variable(gitops, app: Path, variable: str) -> None:
    env = {variable: TOKEN, **({"GITOPS_REGISTRY_USERNAME": "ci-bot"} if "REGISTRY" in variable else {})}
    res = gitops(["test", "--command", f"make test TOKEN={TOKEN}"], cwd=app, env=env)
    assert res.returncode == 0, res.stderr
    assert f"==> Running 'make test TOKEN=***' in {app}" in res.stderr.splitlines()
    assert "tests passed: 'make test TOKEN=***' (host)" in res.stderr.splitlines()
    assert TOKEN not in res.stdout + res.stderr


def test_a_short_secret_is_masked_only_as_a_word_of_its_own(gitops, app: Path) -> None:
    res = gitops(["test", "--command", "true abc sample-abc"], cwd=app, env={"GITOPS_GIT_TOKEN": " abc "})
    assert res.returncode == 0, res.stderr
    assert f"==> Running 'true *** sample-abc' in {app}" in res.stderr.splitlines()


def test_tag_option_errors_mask_a_secret_variable(gitops, app: Path) -> None:
    res = gitops(["tag", "--prefix", f"{PASSWORD} x"], cwd=app, env=REGISTRY_ENV)
    assert res.returncode == 2
    assert res.stderr.startswith("error: --prefix '*** x': a tag prefix must start with"), res.stderr
    res = gitops(["tag", "--length", TOKEN], cwd=app, env={"GITOPS_GIT_TOKEN": TOKEN})  # the option parser's
    assert res.returncode == 2 and "Error: Invalid value for '--length': '***' is not a valid int" in res.stderr
    assert PASSWORD not in res.stderr and TOKEN not in res.stderr


def test_publish_masks_the_password_before_it_resolves_credentials(gitops, app: Path) -> None:
    res = gitops(["publish", "--image", "team/app:t1", "--tag", f"{PASSWORD} x"], cwd=app, env=REGISTRY_ENV)
    assert res.returncode == 2
    assert res.stderr == "error: --tag '*** x' contradicts the tag in --image 'team/app:t1'\n"


def test_build_and_bump_masks_the_password_stdin_in_its_first_checks(gitops, app: Path, tmp_path: Path) -> None:
    res = gitops(["build-and-bump", "--username", "ci-bot", "--password-stdin",
                  "--dotenv", str(tmp_path / "missing" / PASSWORD)], cwd=app, input=PASSWORD + "\n")
    assert res.returncode == 2
    assert res.stderr.startswith(f"error: --dotenv {tmp_path}/missing/***: no such directory"), res.stderr


def test_a_deploy_repo_urls_password_is_masked_whatever_gives_it(gitops, app: Path) -> None:
    url = f"https://ci-bot:{TOKEN}@127.0.0.1:9/deploy.git"
    res = gitops(["bump", "--deploy-repo", url, "--image", f"team/app:{TOKEN} x"], cwd=app)  # before any clone
    assert res.returncode == 2 and res.stderr.startswith("error: --image 'team/app:*** x': invalid tag"), res.stderr
    res = gitops(["test", "--command", f"true {TOKEN}"], cwd=app, env={"GITOPS_DEPLOY_REPO": url})
    assert res.returncode == 0 and "tests passed: 'true ***' (host)" in res.stderr, res.stderr
    (app / "gitops.toml").write_text(f'deploy_repo = "{url}"\n')
    res = gitops(["test", "--command", f"true {TOKEN}"], cwd=app)
    assert res.returncode == 0 and "tests passed: 'true ***' (host)" in res.stderr, res.stderr
    assert TOKEN not in res.stdout + res.stderr


def test_build_and_bump_masks_an_unused_git_token_everywhere(gitops, tmp_path: Path, base_image: str,
                                                             registry: Registry, docker_engine) -> None:
    """The deploy repo is reached over file://, so GITOPS_GIT_TOKEN is never used: it is masked all the
    same, in the progress lines, the summary, the JSON, the step output files and the image's label that
    records the test command."""
    app = sample_app(tmp_path / "app", extra_files={"gitops.toml": GITOPS_TOML})
    image = registry.image(PATH)
    remote = make_bare_remote(tmp_path / "remotes", deploy_files(image))
    github_output, dotenv = tmp_path / "github-output", tmp_path / "gitops.env"
    env = {"GITOPS_GIT_TOKEN": TOKEN, "GITHUB_OUTPUT": str(github_output)}
    args = ["build-and-bump", "--image", image, "--deploy-repo", remote.url, "--path", "apps/app",
            "--test-command", f"make test TOKEN={TOKEN}", "--dotenv", str(dotenv)]
    res = gitops(args, cwd=app, env=env)
    assert res.returncode == 0, res.stderr
    assert "==> Running 'make test TOKEN=***' in" in res.stderr
    assert "make test TOKEN=***" in res.stdout  # the summary's test step
    rerun = gitops([*args, "--output", "json"], cwd=app, env=env)  # published: the tests are skipped
    assert rerun.returncode == 0, rerun.stderr
    test_step = next(s for s in json.loads(rerun.stdout)["steps"] if s["name"] == "test")
    assert test_step["status"] == "skipped" and "(tests 'make test TOKEN=***' passed)" in test_step["detail"]
    tag = json.loads(rerun.stdout)["tag"]
    assert config_labels(registry, tag)["dev.gitops-cli.tested-command"] == "make test TOKEN=***"
    written = github_output.read_text() + dotenv.read_text() + remote.git("log", "-p", "--all")
    assert f"TAG={tag}" in dotenv.read_text()
    for text in (res.stdout, res.stderr, rerun.stdout, rerun.stderr, written):
        assert TOKEN not in text
