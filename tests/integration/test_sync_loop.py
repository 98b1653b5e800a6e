"""`gitops sync --interval`, the operator loop: a pass that fails for what a commit to the deploy repo holds
or for a condition of the moment is reported (as a single pass reports it) and retried by the next pass;
only the command line's own errors end the loop at once.  Stopped (SIGTERM), it exits 130.  The installed
command against real bare repos over file:// and the fake kubectl (see tests/integration/test_sync.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
from tests.fixtures.gitremotes import DeployRemote, make_bare_remote
from tests.fixtures.procs import stop_process
from tests.integration.test_sync import FAKE, FILES, Kube, push, sync

pytestmark = pytest.mark.integration

WAIT = 90.0  # seconds a loop has to show a line before the test gives up (a guard, not a measurement)


@pytest.fixture
def kube(tmp_path: Path) -> Kube:
    return Kube(tmp_path)


@pytest.fixture
def remote(tmp_path: Path) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes", FILES)


class Loop:
    """`gitops sync --interval 1s ARGS` running, its stdout and stderr lines collected as they come."""

    def __init__(self, kube: Kube, cache: Path, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [str(GITOPS), "sync", "--kubectl", str(FAKE), "--cache-dir", str(cache), "--interval", "1s", *args]
        self.proc = subprocess.Popen(cmd, env=gitops_env({**kube.env, **(env or {})}), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, lines: list[str], line: str, times: int = 1, since: int = 0) -> None:
        """Until `line` is among `lines[since:]` `times` times; fails naming what the loop said if it ends first."""
        deadline = time.monotonic() + WAIT
        with self._changed:
            while lines[since:].count(line) < times:
                assert self.proc.poll() is None or any(r.is_alive() for r in self._readers), self.said()
                left = deadline - time.monotonic()
                assert left > 0, f"no {line!r} x{times}: {self.said()}"
                self._changed.wait(min(left, 1.0))

    def stop(self) -> int:
        """SIGTERM, as a pod's termination sends it; the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=WAIT)
        for reader in self._readers:
            reader.join(timeout=WAIT)
        return code

    def said(self) -> str:
        return f"exit {self.proc.poll()}, stdout {self.out!r}, stderr {self.err!r}"


@pytest.fixture
def loops():
    started: list[Loop] = []
    yield started
    for loop in started:
        stop_process(loop.proc)


def errors(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith("error:")]


def test_interval_runs_passes_until_stopped(remote, kube, tmp_path, loops):
    """A pass every interval: a new commit is applied by the next one, the passes in between are no-ops.
    (Read with a deadline: a loop that printed nothing blocked this test for good.)"""
    loops.append(loop := Loop(kube, tmp_path / "cache", "--repo", remote.url))
    loop.wait_for(loop.out, remote.head())
    new = push(remote, tmp_path, {"cluster/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                        "  name: extra\n"})
    loop.wait_for(loop.out, new)
    assert len(kube.calls("apply")) == 2  # the passes in between were no-ops
    assert loop.stop() == 130


def test_a_path_a_commit_deletes_is_reported_each_pass_and_applied_again_when_it_is_back(remote, kube, tmp_path,
                                                                                          loops):
    """A --path the fetched commit no longer has ended the loop (exit 2, as a bad flag): an operator stopped
    by a commit to the deploy repo.  Now each pass says so, as a single pass does, and the loop goes on."""
    loops.append(loop := Loop(kube, tmp_path / "cache", "--repo", remote.url, "--path", "cluster"))
    loop.wait_for(loop.out, remote.head())
    gone = push(remote, tmp_path, {}, remove=("cluster/crd.yaml", "cluster/00-config.yaml"))
    once = sync(kube, tmp_path / "once", "--repo", remote.url, "--path", "cluster", "--once")
    assert once.returncode == 2 and errors(once.stderr.splitlines()) == [
        "error: --path 'cluster': does not exist in the repository"], once.stderr
    loop.wait_for(loop.err, errors(once.stderr.splitlines())[0], times=2)  # two passes: the loop went on
    assert loop.proc.poll() is None
    back = push(remote, tmp_path, {"cluster/again.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                         "  name: again\n"})
    loop.wait_for(loop.out, back)
    assert gone not in loop.out
    assert "again" in [d["metadata"]["name"] for d in kube.applied_docs()]
    assert loop.stop() == 130
    assert loop.err[-1] == "error: interrupted (SIGTERM)"


def test_a_remote_directory_gone_for_a_while_is_reported_and_the_loop_goes_on(remote, kube, tmp_path, loops):
    """A file:// repo whose directory is gone (a mount lost, a repo moved) was exit 2 and ended the loop; a
    condition of the moment, like an https remote unreachable, it is now reported and retried."""
    loops.append(loop := Loop(kube, tmp_path / "cache", "--repo", remote.url))
    loop.wait_for(loop.out, remote.head())
    aside = remote.path.with_name("moved.git")
    remote.path.rename(aside)
    try:
        line = f"error: --repo '{remote.url}': no such directory"
        loop.wait_for(loop.err, line, times=2)
    finally:
        aside.rename(remote.path)
    new = push(remote, tmp_path, {"cluster/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n"})
    loop.wait_for(loop.out, new)
    assert loop.stop() == 130


def test_every_failure_a_commit_brings_is_reported_and_the_next_commit_applied(remote, kube, tmp_path, loops):
    """A file that does not parse, an object defined twice, a failed kustomize, an object the cluster refuses,
    no objects at all: each pass reports it, and the commit that fixes it is applied by the next pass."""
    loops.append(loop := Loop(kube, tmp_path / "cache", "--repo", remote.url,
                              env={"FAKE_KUBECTL_FAIL": "configmap/refused"}))
    loop.wait_for(loop.out, remote.head())
    everything = [path for path in FILES if path != "values.yaml"]
    steps = [
        ({"cluster/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n"}, (),
         "error: cluster/broken.yaml:4: not valid YAML: mapping values are not allowed here"),
        ({"cluster/twice.yaml": FILES["cluster/00-config.yaml"].split("---")[0]}, ("cluster/broken.yaml",),
         "error: ConfigMap shop/settings is defined twice: in cluster/00-config.yaml and in cluster/twice.yaml"),
        ({"apps/bad/kustomization.yaml": "resources: [nope.yaml]\n"}, ("cluster/twice.yaml",),
         "error: apps/bad: kubectl kustomize failed"),
        ({"cluster/refused.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: refused\n"},
         ("apps/bad/kustomization.yaml",), "error: 1 of 6 objects failed to apply: ConfigMap refused "
                                           "(cluster/refused.yaml)"),
        ({}, (*everything, "cluster/refused.yaml"), "error: no Kubernetes objects in . at "),
    ]
    for files, remove, line in steps:
        commit = push(remote, tmp_path, files, remove=remove)
        seen = len(loop.err)
        deadline = time.monotonic() + WAIT
        while sum(ln.startswith(line) for ln in loop.err[seen:]) < 2:  # two passes: the loop went on
            assert loop.proc.poll() is None and time.monotonic() < deadline, (line, loop.said())
            time.sleep(0.1)
        assert commit not in loop.out
    fixed = push(remote, tmp_path, FILES)
    loop.wait_for(loop.out, fixed)
    assert loop.stop() == 130


def test_the_command_lines_own_errors_end_the_loop_at_once(remote, kube, tmp_path):
    """Bad flags are exit 2 before any pass (nothing fetched); a kubectl that cannot be started ends it too."""
    (tmp_path / "a-file").write_text("")
    for args, line in (
        (["--path", "../etc"], "error: --path '../etc': outside the repository"),
        (["--path", ""], "error: --path '': empty value; give a value, or leave the option out"),
        (["--branch", "main@{1}"], "error: --branch 'main@{1}': not a valid branch name"),
        (["--repo", (tmp_path / "nowhere.git").as_uri()],
         f"error: --repo '{(tmp_path / 'nowhere.git').as_uri()}': no such directory"),
        (["--cache-dir", str(tmp_path / "a-file")], "error: sync cache "),
    ):
        res = subprocess.run([str(GITOPS), "sync", "--kubectl", str(FAKE), "--cache-dir", str(tmp_path / "cache"),
                              "--repo", remote.url, "--interval", "1s", *args], env=gitops_env(kube.env),
                             text=True, capture_output=True, timeout=120)
        assert res.returncode == 2, (args, res.stderr)
        assert errors(res.stderr.splitlines())[0].startswith(line), res.stderr
        assert "fetching" not in res.stderr
    bad_env = subprocess.run([str(GITOPS), "sync", "--kubectl", str(FAKE), "--cache-dir", str(tmp_path / "cache"),
                              "--repo", remote.url, "--interval", "1s"],
                             env=gitops_env({**kube.env, "GIT_CONFIG_COUNT": "x"}), text=True, capture_output=True,
                             timeout=120)  # git's environment, which every git of every pass would refuse
    assert bad_env.returncode == 2, bad_env.stderr
    assert errors(bad_env.stderr.splitlines()) == ["error: GIT_CONFIG_COUNT='x': not a number"]
    assert "fetching" not in bad_env.stderr
    missing = subprocess.run([str(GITOPS), "sync", "--kubectl", str(tmp_path / "no-kubectl"), "--cache-dir",
                              str(tmp_path / "cache"), "--repo", remote.url, "--interval", "1s"],
                             env=gitops_env(kube.env), text=True, capture_output=True, timeout=120)
    assert missing.returncode == 14 and "kubectl not found" in missing.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_a_full_cache_is_reported_each_pass_and_the_pass_after_space_is_freed_applies(remote, kube, tmp_path,
                                                                                      small_fs, loops):
    fs = small_fs("cache-fs")
    loops.append(loop := Loop(kube, fs.root / "cache", "--repo", remote.url, "--path", "cluster"))
    loop.wait_for(loop.out, remote.head())
    seen = len(loop.err)
    fs.fill(0)
    new = push(remote, tmp_path, {f"cluster/more-{i}.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                  f"  name: m{i}\ndata:\n  x: \"{'y' * 2000}\"\n" for i in range(20)})
    deadline = time.monotonic() + WAIT
    while len([ln for ln in errors(loop.err[seen:]) if "No space left on device" in ln]) < 2:
        assert loop.proc.poll() is None and time.monotonic() < deadline, loop.said()
        time.sleep(0.1)
    fs.empty()
    loop.wait_for(loop.out, new)
    assert loop.stop() == 130


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")
def test_a_read_only_cache_file_system_at_the_start_is_reported_each_pass_until_it_is_writable(remote, kube,
                                                                                              tmp_path, small_fs,
                                                                                              loops):
    """A write the system refuses is exit 74 for one pass (not exit 2: no flag is wrong), and for the loop a
    condition of the moment like a full disk: the check of the command line before the first pass made the
    missing cache directory, and a read-only (or full) file system there ended the loop at once, exit 74.
    Now each pass reports it, and the first pass after the file system is writable again applies."""
    fs = small_fs("cache-fs")
    subprocess.run(["mount", "-o", "remount,ro", str(fs.root)], check=True)
    cache = fs.root / "cache"
    once = subprocess.run([str(GITOPS), "sync", "--kubectl", str(FAKE), "--cache-dir", str(cache), "--repo",
                           remote.url, "--once"], env=gitops_env(kube.env), text=True, capture_output=True, timeout=120)
    line = f"error: cannot write {cache}: Read-only file system"
    assert once.returncode == 74 and errors(once.stderr.splitlines()) == [line], once.stderr
    loops.append(loop := Loop(kube, cache, "--repo", remote.url))
    loop.wait_for(loop.err, line, times=2)  # two passes: the loop went on
    assert loop.out == []
    subprocess.run(["mount", "-o", "remount,rw", str(fs.root)], check=True)
    loop.wait_for(loop.out, remote.head())
    assert loop.stop() == 130
