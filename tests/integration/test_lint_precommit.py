"""The real `pre-commit try-repo` runs the gitops-tag-lint hook on a sample repository.

pre-commit installs the hook repository from its git HEAD into a fresh virtualenv with pip (from PyPI),
so the tests snapshot this working tree (the package, pyproject.toml, .pre-commit-hooks.yaml) into a
temporary git repository first: they test the code as it is now, committed or not.  The snapshot is made
once for the module; the tests that run `pre-commit run` share one PRE_COMMIT_HOME, so the hook is
installed once for them (pre-commit keys its install by repository and rev: the same snapshot, the same
install).  `pre-commit try-repo` always installs into a store of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Lint Test", "GIT_AUTHOR_EMAIL": "lint@example.com",
    "GIT_COMMITTER_NAME": "Lint Test", "GIT_COMMITTER_EMAIL": "lint@example.com",
}

BAD_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: nginx:latest
        - name: sidecar
          image: localhost:5000/sidecar
"""

GOOD_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
        - name: api
          image: ghcr.io/acme/api:3f2a9c1  # an immutable tag
"""


def _git(args: list[str], cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                   env={**os.environ, **IDENTITY})


def _snapshot_hook_repo(dest: Path) -> Path:
    """A committed copy of this working tree's package: what try-repo installs."""
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "gitops_cli", dest / "gitops_cli", ignore=ignore)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(ROOT / name, dest / name)
    _git(["init", "-q", "-b", "main"], dest)
    _git(["add", "-A"], dest)
    _git(["commit", "-q", "-m", "snapshot"], dest)
    return dest


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> Path:
    """The snapshot of this working tree, for every test of the module (none changes it)."""
    return _snapshot_hook_repo(tmp_path_factory.mktemp("precommit") / "hook-repo")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory) -> Path:
    """One PRE_COMMIT_HOME for the `pre-commit run` tests: the hook's environment is installed once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def _try_repo(hook_repo: Path, sample: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_", "GITHUB_", "PRE_COMMIT"))}
    env |= {"PRE_COMMIT_HOME": str(home), "NO_COLOR": "1", **IDENTITY}
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(hook_repo), "gitops-tag-lint", "--color", "never", *args],
        cwd=sample, env=env, capture_output=True, text=True, timeout=900,
    )


@pytest.mark.integration
def test_pre_commit_try_repo_reports_bad_manifest_and_passes_good(tmp_path, hook_repo):
    assert PRE_COMMIT.exists(), "pre-commit is not installed in the venv (pip install -e '.[dev]')"

    sample = tmp_path / "sample"
    (sample / "deploy").mkdir(parents=True)
    (sample / "deploy" / "bad.yaml").write_text(BAD_MANIFEST)
    (sample / "deploy" / "good.yaml").write_text(GOOD_MANIFEST)
    dockerfile = "FROM python:3.12-slim AS build\nFROM build\nCOPY --from=busybox /a /b\n"
    (sample / "Dockerfile").write_text(dockerfile)
    (sample / "notes.md").write_text("image: nginx:latest  (markdown: not a hook file type)\n")
    # names pre-commit's types miss (the hook's files pattern takes them, as `gitops lint DIR` does)
    (sample / "deploy" / "Kustomization").write_text("images:\n- name: team/app\n  newTag: latest\n")
    (sample / "Dockerfile-dev").write_text("FROM node:latest\n")
    _git(["init", "-q", "-b", "main"], sample)
    _git(["add", "-A"], sample)
    home = tmp_path / "pre-commit-home"

    bad = _try_repo(hook_repo, sample, home, "--all-files")
    out = bad.stdout + bad.stderr
    assert bad.returncode == 1, out
    assert "gitops tag lint" in out and "Failed" in out
    assert "deploy/bad.yaml:10:18: GL001 " in out
    assert "deploy/bad.yaml:12:18: GL002 " in out
    assert "Dockerfile:3:13: GL002 " in out          # the hook's files include Dockerfiles
    assert "deploy/Kustomization:3:11: GL001 " in out and "Dockerfile-dev:1:6: GL001 " in out
    assert "good.yaml:" not in out
    assert "notes.md" not in out

    good = _try_repo(hook_repo, sample, home, "--files", "deploy/good.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout


def _pre_commit(args: list[str], sample: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_", "GITHUB_", "PRE_COMMIT"))}
    env |= {"PRE_COMMIT_HOME": str(home), "NO_COLOR": "1", **IDENTITY}
    return subprocess.run([str(PRE_COMMIT), *args], cwd=sample, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.integration
def test_example_config_installs_the_hook_with_the_c_yaml_parser(tmp_path, hook_repo, pre_commit_home):
    """examples/pre-commit-config.yaml, its repo: pointed at a snapshot, works as its comments say: its rev
    placeholder is set by `pre-commit autoupdate` (to the head commit: the snapshot has no tag), and the hook
    installs and runs; the hook's environment has the libyaml parser (a pyproject dependency): ~5x faster
    than ruamel's pure-Python parser."""
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True, text=True,
                         check=True).stdout.strip()
    example = (ROOT / "examples" / "pre-commit-config.yaml").read_text()
    assert "https://git.example.com/platform/gitops-cli" in example
    # no tag that does not exist (there is no release tag yet): a placeholder the comments say how to fill
    assert "rev: TAG-OR-COMMIT-SHA  # placeholder: `pre-commit autoupdate` sets it" in example
    config = example.replace("https://git.example.com/platform/gitops-cli", str(hook_repo))

    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / ".pre-commit-config.yaml").write_text(config)
    (sample / "bad.yaml").write_text(BAD_MANIFEST)
    _git(["init", "-q", "-b", "main"], sample)
    home = pre_commit_home
    update = _pre_commit(["autoupdate", "--color", "never"], sample, home)
    assert update.returncode == 0, update.stdout + update.stderr
    assert f"rev: {rev}" in (sample / ".pre-commit-config.yaml").read_text()
    _git(["add", "-A"], sample)
    run = _pre_commit(["run", "--all-files", "--color", "never"], sample, home)
    assert run.returncode == 1 and "bad.yaml:10:18: GL001 " in run.stdout, run.stdout + run.stderr

    (python,) = home.glob("repo*/py_env-*/bin/python")
    probe = subprocess.run([str(python), "-c", "from ruamel.yaml.cyaml import CBaseLoader; print('C parser')"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "C parser", probe.stderr


@pytest.mark.integration
def test_a_staged_file_whose_name_starts_with_a_dash_is_linted_with_the_batch(tmp_path, hook_repo,
                                                                               pre_commit_home):
    """pre-commit runs `gitops lint ARGS FILES...` with no `--` between the hook's args and the file names:
    `-x.yaml` is a file to lint, not an unknown option that fails the whole batch."""
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=hook_repo, capture_output=True, text=True,
                         check=True).stdout.strip()
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook_repo}\n    rev: {rev}\n    hooks:\n      - id: gitops-tag-lint\n"
        "        args: [--require-digest]\n")
    (sample / "-x.yaml").write_text(BAD_MANIFEST)
    (sample / "good.yaml").write_text(GOOD_MANIFEST)
    _git(["init", "-q", "-b", "main"], sample)
    _git(["add", "-A"], sample)
    run = _pre_commit(["run", "--all-files", "--color", "never"], sample, pre_commit_home)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "-x.yaml:10:18: GL001 " in out and "-x.yaml:12:18: GL002 " in out
    assert "good.yaml:10:18: GL005 " in out  # the rest of the batch, with the hook's args
    assert "No such option" not in out
