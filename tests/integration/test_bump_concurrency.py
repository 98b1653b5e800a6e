"""Many `gitops bump` processes at once against one bare remote: every bump lands exactly once, linearly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env, run_gitops
from tests.fixtures.gitremotes import SEED_IMAGES, DeployRemote, make_bare_remote

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
    for name in SEED_IMAGES:  # nothing lost: every image is at its new tag in the final tree
        check = run_gitops(["bump", "--deploy-repo", url, "--image", f"{name}:{tag}", "--dry-run"])
        assert (check.returncode, check.stdout) == (0, ""), (name, check.stdout)
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
