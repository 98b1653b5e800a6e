"""Shared test configuration.

Fixture modules (one owner each):
- tests.fixtures.cli          run the installed `gitops` command
- tests.fixtures.services     Docker Engine, registry (plain and htpasswd), offline base images
- tests.fixtures.gitremotes   bare repos over file://, git smart HTTP (git http-backend), sshd
- tests.fixtures.tls          a CA and certificates made with openssl; a CONNECT proxy
- tests.fixtures.filesystems  immutable files, read-only bind mounts, small tmpfs mounts (root only)
"""

pytest_plugins = [
    "tests.fixtures.cli",
    "tests.fixtures.tls",  # before services, which imports it
    "tests.fixtures.services",
    "tests.fixtures.gitremotes",
    "tests.fixtures.filesystems",
]


import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

# A test runner started in the background by a shell without job control (`make test &` in a script,
# nohup) inherits SIGINT ignored, and so would every `gitops` the tests start: gitops, like any program,
# keeps an inherited SIG_IGN (interrupts.install), so the tests that interrupt a run with SIGINT would
# see it run to the end. The runner's own handler is not inherited (exec resets it to the default).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Bytecode is cached during the tests even where the environment says not to (PYTHONDONTWRITEBYTECODE, set
# on some CI machines and containers): the suite starts `gitops` some 950 times, and each start
# would compile the modules it imports from the editable install's sources anew (~0.1 s of CPU a run), and
# pytest would rewrite the tests' asserts anew in every run.  The caches go to __pycache__ (ignored by git,
# and by the tests that copy the tree), as Python's default; the tests' subprocesses inherit the setting.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    sys.dont_write_bytecode = False


@pytest.fixture
def secrets_restored():
    """The secrets output.register_secret learned during a test are forgotten after it."""
    from gitops_cli import output

    saved, patterns = set(output._secrets), dict(output._short_patterns)
    yield
    output._secrets.clear()
    output._secrets.update(saved)
    output._short_patterns.clear()
    output._short_patterns.update(patterns)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """tempfile's directory for this test only (tempfile.tempdir): what gitops leaves there is this test's."""
    import tempfile

    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where
