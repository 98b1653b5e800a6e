"""Interrupting `gitops`: SIGTERM (a CI cancel) and Ctrl-C end a build with one line and exit 130, and
leave no temporary file behind (the build-context tar); --debug shows tracebacks only for bugs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
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
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert out == ""
    assert "error: interrupted" in err and "Traceback" not in err
    assert os.listdir(tmpdir) == []  # no build-context tarball left behind


def test_debug_shows_no_traceback_for_user_errors(gitops, tmp_path: Path) -> None:
    res = gitops(["--debug", "tag"], cwd=tmp_path)
    assert res.returncode == 4, res.stderr
    assert "not a git checkout" in res.stderr and "Traceback" not in res.stderr
