"""Errors through the installed command: a bad setting names where it came from (the flag, GITOPS_X or
`<file>: key`), and every error is one `error:` line (plus at most one `hint:` line) with no control
character of the user's input reaching the terminal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.cli import run_gitops_tty
from tests.fixtures.gitremotes import DeployRemote, git, make_bare_remote, write_tree

pytestmark = pytest.mark.integration

IMAGE = "registry.example.com/team/api:2.0.0"
FAKE_KUBECTL = Path(__file__).resolve().parents[1] / "fixtures" / "fake_kubectl.py"


@pytest.fixture
def remote(tmp_path: Path) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes")


def app_dir(path: Path, config: str | None) -> Path:
    """A directory (a git checkout) whose gitops.toml holds `config`."""
    path.mkdir(parents=True, exist_ok=True)
    git("init", "--quiet", "--initial-branch=main", str(path))
    write_tree(path, {"Dockerfile": "FROM scratch\n", **({"gitops.toml": config} if config else {})})
    git("add", "-A", cwd=path)
    git("commit", "--quiet", "-m", "app", cwd=path)
    return path


def error_lines(stderr: str) -> list[str]:
    """The error and hint lines that end the output; asserts there is exactly one error line."""
    lines = stderr.splitlines()
    assert [ln for ln in lines if ln.startswith("error:")] == [lines[-1] if not lines[-1].startswith("hint:")
                                                               else lines[-2]], stderr
    return lines[-2:] if lines[-1].startswith("hint:") else lines[-1:]


@pytest.mark.parametrize("config, env, flags, expected", [
    ("retries = -1\n", {}, [], "{config}: retries = -1: must be 0 or more"),
    (None, {"GITOPS_RETRIES": "-1"}, [], "GITOPS_RETRIES=-1: must be 0 or more"),
    ("retries = 3\n", {}, ["--retries", "-1"], "--retries -1: must be 0 or more"),  # the flag wins
    ('author = "nobody"\n', {}, [], "{config}: author = 'nobody': expected \"Name <email@example.com>\""),
    (None, {"GITOPS_AUTHOR": "nobody"}, [], "GITOPS_AUTHOR='nobody': expected \"Name <email@example.com>\""),
    ('message = ""\n', {}, [], "{config}: message = '': empty value; give a value, or leave the key out"),
    ('message = " "\n', {}, [], "{config}: message = ' ': empty template"),
    ('push_branch = "a b"\n', {}, [], "{config}: push_branch = 'a b': not a valid branch name"),
    ('paths = ["apps", "../x"]\n', {}, [], "{config}: paths entry '../x': outside the repository"),
    (None, {"GITOPS_PATHS": "nope"}, [], "GITOPS_PATHS entry 'nope': does not exist in the repository"),
    ('container = "nope"\n', {}, [], "{config}: container = 'nope': no container of that name uses"),
])
def test_a_bad_bump_setting_names_its_source(gitops, remote: DeployRemote, tmp_path: Path, config, env, flags,
                                              expected) -> None:
    app = app_dir(tmp_path / "app", config)
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", IMAGE, "--dry-run", *flags], cwd=app, env=env)
    assert res.returncode == (3 if "container" in expected else 2), res.stderr
    line = error_lines(res.stderr)[0]
    assert line.startswith("error: " + expected.format(config=app / "gitops.toml")), line
    assert flags or not line.startswith("error: --")  # no flag named that was not given


def test_a_bad_deploy_repo_or_build_setting_names_its_file(gitops, tmp_path: Path) -> None:
    app = app_dir(tmp_path / "app", 'deploy_repo = "/nonexistent"\nlabels = ["NOEQ"]\nbuild_args = ["A=1"]\n')
    config = app / "gitops.toml"
    res = gitops(["bump", "--image", IMAGE, "--dry-run"], cwd=app)
    assert res.returncode == 2
    assert error_lines(res.stderr)[0] == (f"error: {config}: deploy_repo = '/nonexistent': not a URL and no such "
                                          "directory")
    res = gitops(["build", "--image", "x/y", "--tag", "t1"], cwd=app)
    assert res.returncode == 2
    assert error_lines(res.stderr) == [f"error: {config}: labels entry 'NOEQ': expected KEY=VALUE"]
    (app / "gitops.toml").write_text('deploy_repo = "/nonexistent"\nbuild_args = ["A=1"]\n')
    res = gitops(["build", "--image", "x/y", "--tag", "t1"], cwd=app, env={"GITOPS_BUILD_ARGS": "A=1,=B"})
    assert error_lines(res.stderr) == ["error: GITOPS_BUILD_ARGS entry '=B': expected KEY=VALUE or KEY (its value "
                                       "from the environment)"]
    res = gitops(["build", "--image", "x/y", "--tag", "t1", "--build-arg", " =C"], cwd=app)
    assert error_lines(res.stderr) == ["error: --build-arg ' =C': expected KEY=VALUE or KEY (its value from the "
                                       "environment)"]


def test_sync_names_its_own_flag_or_the_variable(gitops, tmp_path: Path) -> None:
    cwd = app_dir(tmp_path / "here", None)
    args = ["sync", "--kubectl", str(FAKE_KUBECTL), "--cache-dir", str(tmp_path / "cache"), "--dry-run"]
    res = gitops([*args, "--repo", "/nonexistent"], cwd=cwd)
    assert res.returncode == 2 and error_lines(res.stderr)[0].startswith("error: --repo '/nonexistent': not a URL")
    res = gitops(args, cwd=cwd, env={"GITOPS_DEPLOY_REPO": "/nonexistent"})
    assert res.returncode == 2
    assert error_lines(res.stderr)[0].startswith("error: GITOPS_DEPLOY_REPO='/nonexistent': not a URL")


@pytest.mark.parametrize("args", [
    ["bump", "--deploy-repo", "/tmp/x\ny", "--image", IMAGE, "--dry-run"],
    ["history", "--deploy-repo", "file:///nonexistent\n\x1b[2J"],
    ["rollback", "--deploy-repo", "/tmp/x\n\x1b]0;title\x07", "--image", "team/api", "--dry-run"],
    ["sync", "--repo", "file:///tmp/x", "--interval", "5\x1b[2J\nm"],
    ["sync", "--repo", "/tmp/x\ny", "--once"],
])
def test_an_error_is_one_line_without_control_characters(gitops, tmp_path: Path, args: list[str]) -> None:
    res = gitops(args, cwd=app_dir(tmp_path / "app", None))
    assert res.returncode == 2, res.stderr
    lines = error_lines(res.stderr)
    assert len(res.stderr.splitlines()) <= 3  # a progress line at most, then the error (and its hint)
    assert not any(c in res.stderr for c in "\x1b\x07\r"), repr(res.stderr)
    assert "\\n" in lines[0] and "\n" not in lines[0]


@pytest.mark.parametrize("args, env, expected", [
    (["test", "--command", "true \udcff; exit 3"], {},
     ["==> Running 'true \\xff; exit 3' in {app}", "error: tests failed: 'true \\xff; exit 3' exited with "
      "status 3 (host)"]),
    (["bump", "--deploy-repo", ".", "--image", IMAGE, "--dry-run", "--path", "x\udcff"], {},
     ["error: --path 'x\\xff': does not exist in the repository"]),
    (["bump", "--deploy-repo", ".", "--image", IMAGE, "--dry-run"], {"GITOPS_RETRIES": "\udcff"},
     ["error: GITOPS_RETRIES='\\xff': expected a whole number"]),
    (["bump", "--deploy-repo", ".", "--image", IMAGE, "--retries", "\udcff"], {},
     ["Error: Invalid value for '--retries': '\\xff' is not a valid int."]),  # the option parser's own
    # under an ASCII locale (no UTF-8 mode) every non-ASCII byte of a value arrives so
    (["tag", "--prefix", "\u00fc"], {"LC_ALL": "C", "PYTHONUTF8": "0", "LANG": ""},
     ["error: --prefix '\\xc3\\xbc': a tag prefix must start with a letter, digit or _, hold only letters, digits, "
      "_ . -, and leave room for 40 hex digits within 128 characters"]),
])
def test_a_byte_that_is_not_utf8_in_a_quoted_value_is_shown_as_the_byte(gitops, tmp_path: Path, args, env,
                                                                          expected) -> None:
    """The README's promise, `\\xff`, for a value quoted in a message (it showed `\\udcff`, Python's
    stand-in for the byte)."""
    app = app_dir(tmp_path / "app", None)
    res = gitops(args, cwd=app, env=env)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(("==> ", "error: ", "Error: "))]
    assert lines == [ln.format(app=app) for ln in expected], res.stderr
    assert "udc" not in res.stderr


def test_bump_container_and_kubectl_values_stay_on_one_line(gitops, remote: DeployRemote,
                                                             tmp_path: Path) -> None:
    app = app_dir(tmp_path / "app", None)
    res = gitops(["bump", "--deploy-repo", remote.url, "--image", IMAGE, "--dry-run", "--container", "a\nb"],
                 cwd=app)
    assert res.returncode == 3
    assert error_lines(res.stderr)[0].startswith("error: --container 'a\\nb': no container of that name")
    res = gitops(["sync", "--repo", remote.url, "--kubectl", "kube\nctl\x1b[2J", "--cache-dir",
                  str(tmp_path / "cache"), "--dry-run"], cwd=app)
    assert res.returncode == 14, res.stderr
    assert error_lines(res.stderr)[0] == "error: kubectl not found: 'kube\\nctl\\x1b[2J'"
    assert "\x1b" not in res.stderr


def test_on_a_terminal_the_escape_sequence_is_shown_not_sent(tmp_path: Path) -> None:
    status, _, terminal = run_gitops_tty(["sync", "--repo", "file:///tmp/x", "--interval", "5\x1b[2J\nm"],
                                         cwd=app_dir(tmp_path / "app", None))
    assert status == 2
    assert "\x1b[2J" not in terminal and "5\\x1b[2J\\nm" in terminal


# --- settings through the command: blank variables, the value that wins, unknown names ---------------

SAMPLE_APP = Path(__file__).resolve().parents[2] / "examples" / "sample-app"


@pytest.fixture
def sample_app(tmp_path: Path) -> Path:
    """A copy of examples/sample-app committed to a fresh repository, test_command "echo FROMFILE"."""
    config, replaced = re.subn(r'(?m)^test_command = .*$', 'test_command = "echo FROMFILE"',
                               (SAMPLE_APP / "gitops.toml").read_text())
    assert replaced == 1  # the example's own test_command, whatever it is
    files = {p.name: p.read_text() for p in SAMPLE_APP.iterdir() if p.is_file()}
    path = tmp_path / "app"
    path.mkdir()
    git("init", "--quiet", "--initial-branch=main", str(path))
    write_tree(path, {**files, "gitops.toml": config})
    git("add", "-A", cwd=path)
    git("commit", "--quiet", "-m", "app", cwd=path)
    return path


def test_a_blank_variable_leaves_the_files_value(gitops, sample_app: Path) -> None:
    """CI exports unset variables as empty ones: `GITOPS_TEST_COMMAND= gitops test` ran `make test`, and
    `GITOPS_IMAGE= gitops build` said --image is required though gitops.toml sets it."""
    res = gitops(["test"], cwd=sample_app, env={"GITOPS_TEST_COMMAND": ""})
    assert res.returncode == 0, res.stderr
    assert "FROMFILE" in res.stdout + res.stderr and "make test" not in res.stderr
    # the image is the file's: the run gets as far as the Dockerfile (no engine needed to tell)
    res = gitops(["build", "--file", "nonexistent.Dockerfile"], cwd=sample_app, env={"GITOPS_IMAGE": " "})
    assert res.returncode == 2 and "--image is required" not in res.stderr
    assert error_lines(res.stderr) == [f"error: --file '{sample_app / 'nonexistent.Dockerfile'}': no such file"]


def test_a_bad_value_that_does_not_win_or_is_not_used_stops_nothing(gitops, sample_app: Path) -> None:
    res = gitops(["tag", "--length", "8"], cwd=sample_app, env={"GITOPS_TAG_LENGTH": "seven"})
    assert res.returncode == 0 and len(res.stdout.strip()) == 8, res.stderr
    assert "warning: GITOPS_TAG_LENGTH='seven': expected a whole number (ignored: --length 8" in res.stderr
    res = gitops(["tag"], cwd=sample_app, env={"GITOPS_RETRIES": "x"})  # tag does not use retries
    assert res.returncode == 0 and res.stderr == "", res.stderr
    res = gitops(["tag"], cwd=sample_app, env={"GITOPS_TAG_LENGTH": "seven"})  # the value that wins
    assert res.returncode == 2
    assert error_lines(res.stderr) == ["error: GITOPS_TAG_LENGTH='seven': expected a whole number"]


def test_a_bad_value_in_the_file_overridden_by_a_flag(gitops, sample_app: Path) -> None:
    config = sample_app / "gitops.toml"
    config.write_text(config.read_text() + 'tag_length = "x"\n')
    git("commit", "--quiet", "-am", "bad length", cwd=sample_app)
    res = gitops(["tag", "--length", "8"], cwd=sample_app)
    assert res.returncode == 0 and len(res.stdout.strip()) == 8, res.stderr
    res = gitops(["tag"], cwd=sample_app)
    assert error_lines(res.stderr) == [f"error: {config}: tag_length = 'x': expected a whole number"]


def test_an_unknown_variable_or_key_is_named(gitops, sample_app: Path) -> None:
    res = gitops(["tag"], cwd=sample_app, env={"GITOPS_PREFIX": "v-", "GITOPS_DEBUG": "0"})
    assert res.returncode == 0 and not res.stdout.startswith("v-")
    assert res.stderr == ("warning: GITOPS_PREFIX is no gitops setting and is ignored; did you mean "
                          "GITOPS_TAG_PREFIX?\n")
    config = sample_app / "gitops.toml"
    config.write_text(config.read_text() + "tag_lenght = 8\n")
    res = gitops(["tag", "--allow-dirty"], cwd=sample_app)
    assert res.returncode == 2
    assert error_lines(res.stderr) == [f"error: {config}: unknown setting 'tag_lenght' at the top level",
                                       "hint: did you mean 'tag_length'?"]
