"""Many `gitops bump` processes at once against one bare remote: every bump lands exactly once, linearly."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env, run_gitops
from tests.fixtures.gitremotes import SEED_IMAGES, DeployRemote, git, make_bare_remote

pytestmark = pytest.mark.integration


def _bump_all_at_once(url: str, tmp_path: Path, tag: str) -> list[tuple[str, subprocess.CompletedProcess]]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = gitops_env({"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    procs = []
    for name in SEED_IMAGES:
        cmd = [str(GITOPS), "bump", "--deploy-repo", url, "--image", f"{name}:{tag}", "--retries", "30"]
        procs.append((name, subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE)))
    results = []
    for name, proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((name, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)))
    return results


def _assert_every_bump_landed_once(remote: DeployRemote, results, url: str, tag: str, seed_head: str) -> None:
    for name, res in results:
        assert res.returncode == 0, f"{name}: {res.stderr}"
    commits = remote.log("%H %P|%s")
    new = commits[: len(commits) - 1]
    assert remote.git("rev-list", "--merges", "main").strip() == ""  # linear history, no merges
    assert commits[-1].startswith(seed_head)
    assert len(new) == len(SEED_IMAGES)  # exactly one commit per bump
    subjects = sorted(line.split("|", 1)[1] for line in new)
    assert subjects == sorted(f"Update {name} image to {name}:{tag}" for name in SEED_IMAGES)
    printed = {res.stdout.strip() for _, res in results}
    assert printed == {line.split()[0] for line in new}  # each process pushed the commit it reported
    retried = sum("push rejected" in res.stderr for _, res in results)
    assert retried > 0, "no process had to retry: the test did not exercise concurrency"
    _assert_every_image_at(url, tag)


def _assert_every_image_at(url: str, tag: str) -> None:
    """Nothing lost: every image is at its new tag in the final tree.  One dry run for all of them: an image
    found nowhere is exit 3, and one found at another value is a diff on stdout."""
    images = [arg for name in SEED_IMAGES for arg in ("--image", f"{name}:{tag}")]
    check = run_gitops(["bump", "--deploy-repo", url, *images, "--dry-run"])
    assert (check.returncode, check.stdout) == (0, ""), check.stdout + check.stderr
    assert "already up to date" in check.stderr


def test_concurrent_bumps_over_smart_http(tmp_path: Path, http_git_server) -> None:
    remote = make_bare_remote(tmp_path / "srv")
    seed_head = remote.head()
    server = http_git_server(tmp_path / "srv")
    url = server.url()
    results = _bump_all_at_once(url, tmp_path, "2.0.0")
    _assert_every_bump_landed_once(remote, results, url, "2.0.0", seed_head)


def test_concurrent_bumps_over_file_url(deploy_remote: DeployRemote, tmp_path: Path) -> None:
    seed_head = deploy_remote.head()
    results = _bump_all_at_once(deploy_remote.url, tmp_path, "3.1.4")
    _assert_every_bump_landed_once(deploy_remote, results, deploy_remote.url, "3.1.4", seed_head)


def test_concurrent_bumps_of_one_local_checkout_take_turns(tmp_path: Path) -> None:
    """Bumps of one LOCAL checkout used to edit, commit, push and reset in one work tree at once: commits held
    other runs' edits or reverted them, one run's reset wiped another's edits, `index.lock` failed runs, and
    runs that exited 0 had been undone.  They take turns on the checkout's lock now.  The test holds that
    lock first, so that every run is seen waiting for it (the progress line), then lets them all go."""
    remote = make_bare_remote(tmp_path / "srv")
    seed_head = remote.head()
    checkout = remote.clone(tmp_path / "co")
    env = gitops_env({"HOME": str(tmp_path / "home"), "GIT_CONFIG_NOSYSTEM": "1", "GITOPS_AUTHOR": "Bot <bot@x.org>"})
    (tmp_path / "home").mkdir()
    logs = {name: tmp_path / f"bump-{n}.err" for n, name in enumerate(SEED_IMAGES)}
    procs = {}
    held = os.open(checkout / ".git" / "gitops.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        for name in SEED_IMAGES:
            cmd = [str(GITOPS), "bump", "--deploy-repo", str(checkout), "--image", f"{name}:2.0.0"]
            procs[name] = subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE,
                                           stderr=logs[name].open("w"))
        deadline = time.monotonic() + 120
        while not all("waiting for another gitops run on" in log.read_text() for log in logs.values()):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs.values()), \
                {name: log.read_text() for name, log in logs.items()}
            time.sleep(0.05)
    finally:
        os.close(held)  # lets them go
    printed = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {logs[name].read_text()}"
        printed[name] = out.strip()
    commits = remote.log("%H %P|%s")
    assert commits[-1].startswith(seed_head) and len(commits) == len(SEED_IMAGES) + 1  # one commit per bump
    assert remote.git("rev-list", "--merges", "main").strip() == ""
    assert sorted(printed.values()) == sorted(line.split()[0] for line in commits[:-1])  # each run's own commit
    for line in commits[:-1]:  # each commit moves its own image only, to the new value: no revert
        sha, subject = line.split()[0], line.split("|", 1)[1]
        name = next(n for n in SEED_IMAGES if subject == f"Update {n} image to {n}:2.0.0")
        assert printed[name] == sha
        diff = remote.git("show", "--format=", "-U0", sha)
        changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
        assert changed and all(("2.0.0" in ln) == ln.startswith("+") for ln in changed), (subject, changed)
        assert not [ln for ln in changed for other in SEED_IMAGES if other != name and f"{other}:" in ln], changed
    _assert_every_image_at(remote.url, "2.0.0")
    assert git("status", "--porcelain", cwd=checkout) == ""
    assert git("rev-parse", "HEAD", cwd=checkout).strip() == remote.head()
