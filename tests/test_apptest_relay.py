"""The relay of a test or build command's output (apptest._Relay, used when gitops' stderr is a pipe): once
the command has ended, join() returns only after everything the command wrote has been passed on."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from gitops_cli.apptest import _Relay


def test_join_waits_for_bytes_the_thread_has_taken_from_the_pipe_but_not_yet_counted(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """A relay thread that has read the command's bytes out of the pipe but not yet counted them (it waits
    for the interpreter's lock, as under load) held bytes that were neither in the pipe nor counted: join()
    returned at once and gitops exited without them (a CI log lost the test command's output)."""
    relay = _Relay()
    real_read = os.read

    def slow_read(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        if fd == relay._read_end and data:
            time.sleep(0.3)  # out of the pipe, not yet counted
        return data

    monkeypatch.setattr(os, "read", slow_read)
    proc = subprocess.Popen(["printf", "the command's output\n"], stdout=relay.write_end)
    relay.start()
    proc.wait()
    time.sleep(0.1)  # the thread has the bytes now
    relay.join()
    assert "the command's output\n" in capfd.readouterr().err
