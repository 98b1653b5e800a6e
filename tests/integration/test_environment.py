"""The installed `gitops` in the machines it meets: no git on PATH, a checkout another user owns (git's
safe.directory check), no HOME, a locale that is not UTF-8.  Each ends in gitops' own error lines or
works: never an internal error (exit 70)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.gitremotes import make_bare_remote
from tests.fixtures.services import GIT_ENV, commit_all, git

pytestmark = pytest.mark.integration

GIT_ISOLATED = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # no safe.directory of the host


def checkout(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "deploy.yaml").write_text("image: registry.example.com/team/api:1.0.0\n")
    (path / "Dockerfile").write_text("FROM scratch\n")
    commit_all(path, "first")
    return path


def error_lines(stderr: str, progress: bool = False) -> list[str]:
    """stderr, asserted to be one `error:` line and at most one `hint:` line (after `==> ` progress lines,
    with `progress`)."""
    lines = stderr.splitlines()
    while progress and lines and lines[0].startswith("==> "):
        del lines[0]
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, stderr
    assert len(lines) == 1 or lines[1].startswith("hint: "), stderr
    return lines


@pytest.mark.parametrize("verb", ["tag", "history"])
def test_without_git_on_path_gitops_says_so(gitops, tmp_path: Path, verb: str) -> None:
    """GitPython, imported where git is missing, raises an ImportError of ~700 characters: gitops' own
    error instead, exit 10."""
    repo = checkout(tmp_path / "repo")
    empty = tmp_path / "bin"
    empty.mkdir()
    args = ["tag"] if verb == "tag" else ["history", "--deploy-repo", str(repo)]
    for refresh in (None, "raise"):  # whatever the user set GitPython's switch to
        env = {"PATH": str(empty), **({"GIT_PYTHON_REFRESH": refresh} if refresh else {})}
        res = gitops(args, cwd=repo, env=env)
        assert res.returncode == 10, res.stderr
        assert error_lines(res.stderr) == ["error: git is not installed (no `git` on PATH)",
                                           "hint: install git (apt-get install git)"]


def test_a_git_on_path_that_cannot_be_run_is_named(gitops, tmp_path: Path) -> None:
    repo = checkout(tmp_path / "repo")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text("#!/bin/sh\n")  # not executable, for root too
    res = gitops(["tag"], cwd=repo, env={"PATH": str(bin_dir)})
    assert res.returncode == 10, res.stderr
    assert error_lines(res.stderr) == ["error: git cannot be run: Permission denied",
                                       "hint: check the `git` found on PATH (its permissions) or reinstall git"]


CONFIG_HINT = "hint: every git command reads git's configuration: fix the file it names (or the GIT_CONFIG_* variables)"


def test_a_checkout_whose_config_git_cannot_read_is_gits_failure_in_its_words(gitops, tmp_path: Path) -> None:
    """A bad line in the checkout's .git/config: exit 10 with git's reason (it was exit 4, "not a git
    checkout"); a directory that is in no repository stays exit 4."""
    repo = checkout(tmp_path / "repo")
    with (repo / ".git" / "config").open("a") as f:
        f.write("[core\n")
    line = len((repo / ".git" / "config").read_text().splitlines())
    for args in (["tag"], ["bump", "--deploy-repo", str(repo), "--image", "registry.example.com/team/api:2.0"]):
        res = gitops(args, cwd=repo, env=GIT_ENV)
        assert res.returncode == 10, res.stderr
        assert error_lines(res.stderr) == [
            f"error: git rev-parse in {'.' if args == ['tag'] else repo} failed (exit 128): fatal: bad config "
            f"line {line} in file .git/config", CONFIG_HINT]
    plain = tmp_path / "plain"
    plain.mkdir()
    res = gitops(["tag"], cwd=plain, env=GIT_ENV)
    assert res.returncode == 4, res.stderr
    assert error_lines(res.stderr)[0] == "error: .: not a git checkout"


@pytest.mark.parametrize("case", ["bad line", "include of a directory", "a directory"])
def test_a_global_config_git_cannot_read_is_gits_failure_in_its_words(gitops, tmp_path: Path, case: str) -> None:
    """GitPython runs `git version` when first imported and raises an ImportError when it fails, which it
    does when git cannot read the global config (exit 70, "internal error"); GIT_CONFIG_GLOBAL naming a
    directory failed only the first real command (exit 4, "not a git checkout").  Now exit 10, with
    git's reason and the file it names, for tag and bump alike."""
    repo = checkout(tmp_path / "repo")
    config = tmp_path / "global.gitconfig"
    if case == "bad line":
        config.write_text("[core\n")
        reason = f"fatal: bad config line 1 in file {config}"
    elif case == "include of a directory":
        config.write_text(f"[include]\n\tpath = {tmp_path}\n")
        reason = f"fatal: bad config line 2 in file {config} (warning: unable to access '{tmp_path}': Is a directory)"
    else:
        config = tmp_path
        reason = ("fatal: unknown error occurred while reading the configuration files (warning: unable to access "
                  f"'{tmp_path}': Is a directory)")
    env = {**GIT_ENV, "GIT_CONFIG_GLOBAL": str(config)}
    for args in (["tag"], ["bump", "--deploy-repo", str(repo), "--image", "registry.example.com/team/api:2.0"]):
        res = gitops(args, cwd=repo, env=env)
        assert res.returncode == 10, res.stderr
        lines = error_lines(res.stderr)
        assert lines[0].startswith("error: git ") and lines[0].endswith(f"failed (exit 128): {reason}"), lines
        assert lines[1] == CONFIG_HINT


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    """A checkout owned by another user (uid 4242, no passwd entry): git refuses it, as a CI container
    running as root refuses the runner's checkout."""
    if os.geteuid() != 0:
        pytest.skip("giving a checkout to another user needs root")
    repo = checkout(tmp_path / "foreign")
    for top, dirs, files in os.walk(repo):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, 4242, 4242)
    return repo


@pytest.mark.parametrize("args, where", [
    (["tag"], "."),
    (["tag"], "sub"),  # a subdirectory: git names the checkout's top
    (["build", "--image", "registry.example.com/team/api", "--tag", "t1"], "."),  # --tag: no checkout needed,
    # but this one is one: no image without its revision label
    (["history", "--deploy-repo", "{repo}"], ".."),
    (["rollback", "--deploy-repo", "{repo}", "--image", "registry.example.com/team/api", "--to", "0.9",
      "--dry-run"], ".."),
    # a bump or rollback that commits into the local checkout, and one that only edits it
    (["bump", "--deploy-repo", "{repo}", "--image", "registry.example.com/team/api:2.0"], ".."),
    (["bump", "--deploy-repo", "{repo}/sub", "--image", "registry.example.com/team/api:2.0", "--no-commit"], ".."),
    (["rollback", "--deploy-repo", "{repo}", "--image", "registry.example.com/team/api", "--to", "0.9"], ".."),
])
def test_a_checkout_git_refuses_as_another_users_says_so(gitops, foreign: Path, args: list[str],
                                                         where: str) -> None:
    (foreign / "sub").mkdir()
    res = gitops([a.format(repo=foreign) for a in args], cwd=foreign / where, env=GIT_ISOLATED)
    assert res.returncode == 10, res.stderr
    assert error_lines(res.stderr) == [
        f"error: {foreign}: git refuses this repository (\"dubious ownership\"): owned by uid 4242, gitops runs "
        "as root (uid 0)",
        f"hint: if you trust it: git config --global --add safe.directory {foreign} (in CI, as environment: "
        f"GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0={foreign})"]
    # the fix the hint names works
    trusted = {**GIT_ISOLATED, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
               "GIT_CONFIG_VALUE_0": str(foreign)}
    if args == ["tag"]:
        res = gitops(args, cwd=foreign / where, env=trusted)
        assert res.returncode == 0 and res.stdout.strip() == git(foreign, "-c", f"safe.directory={foreign}",
                                                                 "rev-parse", "--short=7", "HEAD"), res.stderr


def chown_tree(path: Path, uid: int = 4242) -> Path:
    for top, dirs, files in os.walk(path):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)
    return path


def local_origin(foreign: Path, origin: Path) -> Path:
    """A bare repository with the commits of `foreign`, made its origin (main tracking origin's), both
    owned by uid 4242."""
    git(origin.parent, "init", "-q", "--bare", str(origin))
    trusted = ("-c", f"safe.directory={foreign}")
    git(foreign, *trusted, "push", "-q", str(origin), "main")
    git(foreign, *trusted, "remote", "add", "origin", str(origin))
    git(foreign, *trusted, "fetch", "-q", "origin")
    git(foreign, *trusted, "branch", "-q", "-u", "origin/main")
    chown_tree(foreign)
    return chown_tree(origin)


def refusal_lines(where: Path, hint: str) -> list[str]:
    return [f"error: {where}: git refuses this repository (\"dubious ownership\"): owned by uid 4242, gitops runs "
            "as root (uid 0)", f"hint: if you trust it: git config --global --add safe.directory {where} {hint}"]


GLOBAL_ONLY = "(in CI too: run that first; git ignores GIT_CONFIG_* variables for a remote it reaches by path)"


def as_environment(*entries: tuple[str, str]) -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(entries))}
    for i, (key, value) in enumerate(entries):
        env.update({f"GIT_CONFIG_KEY_{i}": key, f"GIT_CONFIG_VALUE_{i}": value})
    return env


@pytest.mark.parametrize("verb", ["bump", "history", "sync", "bump a path", "history a path"])
def test_a_remote_git_refuses_as_another_users_is_trusted_by_the_global_config(gitops, foreign: Path,
                                                                               tmp_path: Path, verb: str) -> None:
    """A deploy repo reached by a file:// URL or a bare repository's path, that another user owns: git's
    upload-pack for it clears the GIT_CONFIG_* variables, so only the global config trusts it, and the hint
    says so."""
    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api\nspec:\n  containers:\n  - name: api\n" \
          "    image: registry.example.com/team/api:1.0.0\n"
    origin = chown_tree(make_bare_remote(tmp_path, {"deploy.yaml": pod}, name="origin.git").path)
    fake = Path(__file__).resolve().parents[1] / "fixtures" / "fake_kubectl.py"
    args = {"bump": ["bump", "--deploy-repo", f"file://{origin}", "--image", "registry.example.com/team/api:2.0",
                     "--dry-run"],
            "history": ["history", "--deploy-repo", f"file://{origin}"],
            # a bare repository's path is a remote too (told from a checkout before git would read it)
            "bump a path": ["bump", "--deploy-repo", "origin.git", "--image", "registry.example.com/team/api:2.0",
                            "--dry-run"],
            "history a path": ["history", "--deploy-repo", "./origin.git"],
            "sync": ["sync", "--once", "--repo", f"file://{origin}", "--path", "deploy.yaml", "--kubectl", str(fake),
                     "--cache-dir", str(tmp_path / "cache")]}[verb]
    env = {**GIT_ISOLATED, "FAKE_KUBECTL_LOG": str(tmp_path / "kubectl.log")}
    res = gitops(args, cwd=tmp_path, env=env)
    assert res.returncode == 10, res.stderr
    assert error_lines(res.stderr, progress=True) == refusal_lines(origin, GLOBAL_ONLY)
    # the environment form does not trust it (git's own rule, which the hint no longer offers)
    res = gitops(args, cwd=tmp_path, env={**env, **as_environment(("safe.directory", str(origin)))})
    assert res.returncode == 10
    assert error_lines(res.stderr, progress=True) == refusal_lines(origin, GLOBAL_ONLY)
    # the hint's command does
    env["GIT_CONFIG_GLOBAL"] = str(tmp_path / "gitconfig")
    subprocess.run(["git", "config", "--global", "--add", "safe.directory", str(origin)], env={**os.environ, **env},
                   check=True)
    res = gitops(args, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr


def test_a_checkout_and_its_local_origin_git_refuses_are_named_in_turn(gitops, foreign: Path,
                                                                       tmp_path: Path) -> None:
    """A checkout another user owns whose origin is a local path another user owns too: the checkout first,
    trusted by either form; then its origin, trusted by the global config only.  A GIT_CONFIG_* entry the
    user already has is added to, never replaced."""
    origin = local_origin(foreign, tmp_path / "origin.git")
    args = ["bump", "--deploy-repo", str(foreign), "--image", "registry.example.com/team/api:2.0"]
    env = {**GIT_ENV, **GIT_ISOLATED}
    res = gitops(args, cwd=tmp_path, env=env)
    assert res.returncode == 10 and error_lines(res.stderr) == refusal_lines(foreign, (
        f"(in CI, as environment: GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0={foreign})"))
    mine = ("user.useConfigOnly", "true")  # the user's own entry
    res = gitops(args, cwd=tmp_path, env={**env, **as_environment(mine)})
    assert res.returncode == 10 and error_lines(res.stderr) == refusal_lines(foreign, (
        "(in CI, as environment, add an entry after the 1 already set: GIT_CONFIG_COUNT=2 "
        f"GIT_CONFIG_KEY_1=safe.directory GIT_CONFIG_VALUE_1={foreign})"))
    # followed: the checkout is trusted, its origin is refused next
    res = gitops(args, cwd=tmp_path, env={**env, **as_environment(mine, ("safe.directory", str(foreign)))})
    assert res.returncode == 10
    assert error_lines(res.stderr, progress=True) == refusal_lines(origin, GLOBAL_ONLY)
    env["GIT_CONFIG_GLOBAL"] = str(tmp_path / "gitconfig")
    subprocess.run(["git", "config", "--global", "--add", "safe.directory", str(origin)], env={**os.environ, **env},
                   check=True)
    res = gitops(args, cwd=tmp_path, env={**env, **as_environment(mine, ("safe.directory", str(foreign)))})
    assert res.returncode == 0, res.stderr
    assert git(origin, "-c", f"safe.directory={origin}", "show", "main:deploy.yaml") == (
        "image: registry.example.com/team/api:2.0")


@pytest.mark.parametrize("verb", ["history", "rollback"])
def test_a_deploy_repo_that_is_no_checkout_names_deploy_repo(gitops, tmp_path: Path, verb: str) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    extra = ["--image", "registry.example.com/team/api", "--to", "0.9", "--dry-run"] if verb == "rollback" else []
    res = gitops([verb, "--deploy-repo", str(plain), *extra], cwd=tmp_path, env=GIT_ENV)
    assert res.returncode == 4, res.stderr
    assert error_lines(res.stderr) == [f"error: {plain}: not a git checkout",
                                       "hint: give --deploy-repo a checkout of the deploy repo, or its URL"]


def test_an_engine_socket_the_user_may_not_use_names_its_group(tmp_path: Path) -> None:
    """The engine's socket is there, but this user may not write it (srw-rw---- root:docker and the user
    not in the group): the hint is about access to it, not about starting the engine."""
    import socket

    from tests.fixtures.cli import GITOPS, gitops_env

    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    command = [str(GITOPS), "build", "--image", "registry.example.com/team/api", "--tag", "t1"]
    if os.geteuid() == 0:  # root without the capability to pass over file modes: as any other user
        os.chown(path, 4242, 4243)
        os.chmod(path, 0o660)
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
        expected = (f"hint: {path} is 4242:4243 srw-rw----: add this user to the group 4243 (`usermod -aG 4243 root`, "
                    "then log in again) or point DOCKER_HOST at a socket it may use")
    else:
        os.chmod(path, 0)
        expected = f"hint: {path} is "
    try:
        res = subprocess.run(command, cwd=app, env=gitops_env({"DOCKER_HOST": f"unix://{path}"}), text=True,
                             capture_output=True, timeout=60)
    finally:
        server.close()
    assert res.returncode == 7, res.stderr
    lines = error_lines(res.stderr)
    assert lines[0] == f"error: container engine unreachable at unix://{path} (DOCKER_HOST): permission denied"
    assert lines[1].startswith(expected) and "point DOCKER_HOST at a socket it may use" in lines[1], lines


def c_locale() -> dict[str, str]:
    """The environment of a POSIX locale without Python's UTF-8 mode: stdout and stderr are ASCII."""
    from tests.fixtures.cli import gitops_env

    env = {k: v for k, v in gitops_env(GIT_ENV).items() if not k.startswith(("LC_", "LANG", "PYTHONIO"))}
    return {**env, "LC_ALL": "C", "PYTHONUTF8": "0"}


def run_in_c_locale(args: list[str], cwd: Path) -> tuple[int, str, str]:
    from tests.fixtures.cli import GITOPS

    res = subprocess.run([str(GITOPS), *args], cwd=cwd, env=c_locale(), capture_output=True, timeout=120)
    return res.returncode, res.stdout.decode("ascii"), res.stderr.decode("ascii")  # nothing else was written


def test_an_ascii_locale_gets_every_verbs_output_escaped(tmp_path: Path) -> None:
    repo = tmp_path / "deploy"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "d.yaml").write_text("# Z\u00fcrich \u20ac\nimage: registry.example.com/team/api:1.0.0\n"
                                 "---\nimage: nginx:l\u00e4test\n", encoding="utf-8")
    git(repo, "add", "-A")
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=repo, check=True,
                   env={**os.environ, **GIT_ENV, "GIT_AUTHOR_NAME": "J\u00f6rg"})
    status, out, err = run_in_c_locale(["lint", "."], repo)
    assert status == 1, err
    assert out == ("d.yaml:4:8: GL004 invalid tag 'l\\xe4test': must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\n")
    status, out, err = run_in_c_locale(["bump", "--deploy-repo", ".", "--image", "registry.example.com/team/api:1.1.0",
                                        "--dry-run"], repo)
    assert status == 0, err
    assert " # Z\\xfcrich \\u20ac\n" in out and "+image: registry.example.com/team/api:1.1.0\n" in out
    status, out, err = run_in_c_locale(["history", "--deploy-repo", ".", "--image", "registry.example.com/team/api"],
                                       repo)
    assert status == 0, err
    assert "registry.example.com/team/api:1.0.0" in out and "J\\xf6rg <test@example.com>" in out


@pytest.fixture
def homeless_dir():
    """A directory of uid 4242's own, in a world-traversable place: access(2), which click and git use,
    checks the real uid without root's capabilities, and pytest's tmp_path is root's alone."""
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("running as a uid with no passwd entry needs root")
    path = Path(tempfile.mkdtemp(prefix="gitops-homeless-"))
    os.chown(path, 4242, 4242)
    yield path
    shutil.rmtree(path)


def run_homeless(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`gitops ARGS` with no HOME, as uid 4242, which has no passwd entry (a container's arbitrary --user);
    it keeps root's right to read and write any file, so that the venv (wherever it is) runs."""
    from tests.fixtures.cli import GITOPS, gitops_env

    caps = "+dac_override,+dac_read_search"
    full = {k: v for k, v in gitops_env(env).items() if k not in ("HOME", "XDG_CACHE_HOME", "DOCKER_CONFIG")}
    res = subprocess.run(["setpriv", "--reuid", "4242", "--regid", "4242", "--clear-groups", "--inh-caps", caps,
                          "--ambient-caps", caps, str(GITOPS), *args], cwd=cwd, env=full, capture_output=True,
                         text=True, timeout=120)
    return res.returncode, res.stdout, res.stderr


def test_without_a_home_directory_there_is_no_docker_config(homeless_dir: Path) -> None:
    (homeless_dir / "Dockerfile").write_text("FROM scratch\n")
    sock = homeless_dir / "none.sock"
    status, _, err = run_homeless(["build", "--image", "registry.example.com/team/api", "--tag", "t1"], homeless_dir,
                                  {"DOCKER_HOST": f"unix://{sock}"})  # the docker config is read before connecting
    assert status == 7, err
    assert error_lines(err)[0] == f"error: container engine unreachable at unix://{sock} (DOCKER_HOST): no such socket"


def test_without_a_home_directory_a_tilde_path_is_no_such_directory(homeless_dir: Path) -> None:
    status, _, err = run_homeless(["history", "--deploy-repo", "~/deploy"], homeless_dir)
    assert status == 2, err
    assert error_lines(err)[0] == "error: --deploy-repo '~/deploy': not a URL and no such directory"


def test_without_a_home_directory_sync_asks_for_a_cache_directory(homeless_dir: Path) -> None:
    bare = homeless_dir / "deploy.git"
    git(checkout(homeless_dir / "deploy"), "clone", "-q", "--bare", ".", str(bare))
    for top, dirs, files in os.walk(bare):  # the uid's own: git trusts it
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, 4242, 4242)
    status, _, err = run_homeless(["sync", "--repo", bare.as_uri(), "--dry-run"], homeless_dir)
    assert status == 2, err
    assert error_lines(err) == ["error: no cache directory: HOME is not set and uid 4242 has no passwd entry",
                                "hint: pass --cache-dir DIR (or set XDG_CACHE_HOME or HOME)"]
