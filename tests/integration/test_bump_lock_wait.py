"""The wait for a local deploy checkout's lock (`--lock-wait`, `GITOPS_LOCK_WAIT`, `lock_wait`): the installed
`gitops bump` and `gitops rollback` against a real checkout whose lock another process (this test) holds with
the product's own flock (gitops_cli.filelock, which writes the holder's pid in the lock file)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitops_cli import filelock
from tests.fixtures.cli import GITOPS, gitops_env, run_gitops
from tests.fixtures.gitremotes import DeployRemote, git, make_bare_remote

pytestmark = pytest.mark.integration

API = "registry.example.com/team/api"
FILES = {"apps/api/deployment.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      containers:
        - name: api
          image: {API}:1.0.0  # pinned by the pipeline
"""}


def _checkout(tmp_path: Path) -> tuple[DeployRemote, Path, dict[str, str]]:
    remote = make_bare_remote(tmp_path / "srv", FILES)
    checkout = remote.clone(tmp_path / "co")
    (tmp_path / "home").mkdir()
    env = {"HOME": str(tmp_path / "home"), "GIT_CONFIG_NOSYSTEM": "1", "GITOPS_AUTHOR": "Bot <bot@example.com>"}
    return remote, checkout, env


def _released_while_waiting(cmd: list[str], lock: Path, log: Path, env: dict[str, str],
                            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `cmd` while this process holds `lock`; once it says it is waiting for the lock, release it."""
    with filelock.exclusive(lock), log.open("w") as err:
        proc = subprocess.Popen(cmd, env=gitops_env(env), cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=err)
        while "waiting for another gitops run on" not in log.read_text():
            assert proc.poll() is None, f"exited {proc.returncode} before waiting for the lock: {log.read_text()}"
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    out, _ = proc.communicate(timeout=300)  # the lock was released above: it goes on
    return subprocess.CompletedProcess(cmd, proc.returncode, out, log.read_text())


def test_a_wait_of_0_is_exit_16_at_once_naming_the_checkout_and_the_holder(tmp_path: Path) -> None:
    """The 5-minute wait had no setting: a CI job that would rather fail than wait could not say so."""
    remote, checkout, env = _checkout(tmp_path)
    head = remote.head()
    lock = checkout / ".git" / "gitops.lock"
    with filelock.exclusive(lock):
        bumped = run_gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "--lock-wait", "0"],
                            env=env)
        rolled = run_gitops(["rollback", "--deploy-repo", str(checkout), "--image", API, "--to", "0.9.0",
                             "--no-verify"], env={**env, "GITOPS_LOCK_WAIT": "0"})
    for res, setting in ((bumped, "--lock-wait 0"), (rolled, "GITOPS_LOCK_WAIT=0")):
        assert res.returncode == 16, res.stderr
        assert res.stdout == ""
        assert "waiting for" not in res.stderr
        error = res.stderr.splitlines()[0]
        assert error == (f"error: another gitops run on {checkout} (pid {os.getpid()}) holds its lock {lock} "
                         f"(not waited for: {setting}); nothing was changed"), res.stderr
        assert "--lock-wait SECONDS" in res.stderr  # the hint: how to wait
    assert remote.head() == head
    assert git("status", "--porcelain", cwd=checkout) == ""
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == head

    bad = run_gitops(["bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"],
                     env={**env, "GITOPS_LOCK_WAIT": "-1"})
    assert (bad.returncode, bad.stderr) == (2, "error: GITOPS_LOCK_WAIT=-1: must be 0 or more\n")
    assert remote.head() == head


def test_a_lock_released_during_the_wait_lets_the_bump_and_the_rollback_through(tmp_path: Path) -> None:
    remote, checkout, env = _checkout(tmp_path)
    lock = checkout / ".git" / "gitops.lock"
    bump = [str(GITOPS), "bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0", "--lock-wait", "120"]
    res = _released_while_waiting(bump, lock, tmp_path / "bump.err", env)
    assert res.returncode == 0, res.stderr
    assert f"waiting for another gitops run on {checkout} (pid {os.getpid()}) to finish, 120 s at most" in res.stderr
    assert res.stdout.strip() == remote.head() == git("rev-parse", "HEAD", cwd=checkout).strip()
    assert f"image: {API}:2.0.0  # pinned" in remote.show("apps/api/deployment.yaml").decode()

    settings = tmp_path / "app"  # the wait from the settings file of the directory gitops runs in
    settings.mkdir()
    (settings / "gitops.toml").write_text("lock_wait = 60\n")
    rollback = [str(GITOPS), "rollback", "--deploy-repo", str(checkout), "--image", API, "--no-verify"]
    res = _released_while_waiting(rollback, lock, tmp_path / "rollback.err", env, cwd=settings)
    assert res.returncode == 0, res.stderr
    assert "to finish, 60 s at most" in res.stderr
    assert res.stdout.strip() == remote.head()
    assert remote.log("%s")[0] == f"Roll back {API} to 1.0.0"
    assert f"image: {API}:1.0.0  # pinned" in remote.show("apps/api/deployment.yaml").decode()
    assert git("status", "--porcelain", cwd=checkout) == ""
