"""Interrupting `gitops`: SIGTERM (a CI cancel) and Ctrl-C end a build with one line and exit 130, and
leave no temporary file behind (the build-context tar); --debug shows tracebacks only for bugs."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
from tests.fixtures.procs import stop_process
from tests.fixtures.services import BASE_IMAGE, TEST_LABEL, TEST_LABEL_VALUE, sample_app

pytestmark = pytest.mark.integration

SLOW = f"FROM {BASE_IMAGE}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\nRUN sleep 30\n"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_build_cleans_up_and_exits_130(tmp_path: Path, base_image: str, signum) -> None:
    repo = sample_app(tmp_path / "app", dockerfile=SLOW)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen([str(GITOPS), "build", "--image", "gitops-test/slow", "--network", "none"],
                            cwd=repo, env=gitops_env({"TMPDIR": str(tmpdir)}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        while "RUN sleep 30" not in seen:  # the context is uploaded; the engine runs the slow step
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen += proc.stderr.readline()
        assert os.listdir(tmpdir), "the build-context tar should exist while the build runs"
        proc.send_signal(signum)
        err = proc.stderr.read()  # to the end: the process exits
        out = proc.stdout.read()
        proc.wait(timeout=30)
    finally:
        stop_process(proc)  # when an assertion failed first
    assert proc.returncode == 130, err
    assert out == ""
    assert "error: interrupted" in err and "Traceback" not in err
    assert os.listdir(tmpdir) == []  # no build-context tarball left behind


def test_debug_shows_no_traceback_for_user_errors(gitops, tmp_path: Path) -> None:
    res = gitops(["--debug", "tag"], cwd=tmp_path)
    assert res.returncode == 4, res.stderr
    assert "not a git checkout" in res.stderr and "Traceback" not in res.stderr


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for a reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_sigterm_during_the_tests_ends_what_the_test_command_started(tmp_path: Path) -> None:
    """A CI cancel (SIGTERM) reaches gitops alone: the test command's whole process group is ended too,
    not only its shell (a `sleep` it started would otherwise outlive the run)."""
    repo = sample_app(tmp_path / "app")
    pidfile = tmp_path / "sleep.pid"
    command = f"sleep 60 & echo $! > {pidfile}; wait"
    proc = subprocess.Popen([str(GITOPS), "test", "--command", command], cwd=repo, env=gitops_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # no controlling terminal: a CI job's
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        sleeper = int(pidfile.read_text())
        assert _alive(sleeper)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)  # when an assertion failed first
    assert proc.returncode == 130, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(sleeper):  # leave nothing running, then fail
        os.kill(sleeper, signal.SIGKILL)
        pytest.fail(f"the test command's child {sleeper} outlived gitops")


def test_on_a_terminal_the_test_command_may_use_it_whatever_stdin_is(tmp_path: Path) -> None:
    """With a controlling terminal (a developer's shell; stdin redirected, e.g. `--password-stdin`), the
    test command stays in gitops' process group: a background group touching the terminal is stopped."""
    script = shutil.which("script")
    assert script, "util-linux `script` is not installed (bsdutils)"
    repo = sample_app(tmp_path / "app")
    inner = f"{shlex.quote(str(GITOPS))} test --command 'stty -F /dev/tty -echo; echo terminal-ok' </dev/null"
    res = subprocess.run([script, "-qec", inner, "/dev/null"], cwd=repo, env=gitops_env(), capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "terminal-ok" in res.stdout
