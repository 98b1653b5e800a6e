"""Interrupts: Ctrl-C (SIGINT) and SIGTERM (how CI systems cancel a job) end a run with exit 130.

    install()          the console script: SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C
                       does, so finally blocks run and temporary files are removed; a second SIGTERM ends
                       the process at once (the child processes it owns are killed first)
    with held() as e:  a section an interrupt does not cut short (a bump's push and its bookkeeping):
                       the interrupt sets `e` and is raised when the section ends; a second one ends the
                       process at once
    own(proc, group)   a child process (git, kubectl, the app's test command) to kill before an exit at once;
    stop(proc, group)  ending a child (its process group): SIGTERM, then SIGKILL after a grace

Signals are handled in the main thread only: held() does nothing elsewhere, and nothing before install()
(a host process calling cli.main with its own handlers keeps them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_GRACE = 5.0  # seconds a stopped child (and its group) has between SIGTERM and SIGKILL

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state: dict[str, Any] = {"installed": False, "depth": 0, "name": None, "detail": None}
_held: list[int] = []  # signals received inside held() sections, raised when the outermost one ends
_pending = threading.Event()  # set while _held is not empty
_children: dict[int, bool] = {}  # pid -> its own process group


class Interrupted(KeyboardInterrupt):
    """An interrupt that ended a step after part of its work took effect or was checked: `detail` (one
    line, no secrets) says what; the "interrupted" error line ends with it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        _state["detail"] = detail


def install() -> None:
    """SIGTERM (and Ctrl-C, unless ignored: a background job of a non-interactive shell) raise
    KeyboardInterrupt in the main thread, except inside held() sections; a second SIGTERM ends the
    process at once."""
    if _state["installed"] or threading.current_thread() is not threading.main_thread():
        return  # once: gitops_cli.entry installs them first, cli.main again (for `python -m`, say)
    signal.signal(signal.SIGTERM, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_signal)
    _state["installed"] = True


def signalled() -> str | None:
    """"SIGTERM" once a SIGTERM was raised as KeyboardInterrupt (None for Ctrl-C, or none yet)."""
    name: str | None = _state["name"]
    return name


def detail() -> str | None:
    """What the last Interrupted said (None when no step said anything)."""
    text: str | None = _state["detail"]
    return text


def line() -> str:
    """The one line of an interrupt: "interrupted", the signal when it was SIGTERM, and what the interrupted
    step left (a bump's push), when it said."""
    name, said = signalled(), detail()
    return "interrupted" + (f" ({name})" if name else "") + (f": {said}" if said else "")


def _on_signal(signum: int, frame: object) -> None:
    if _state["depth"]:  # inside held(): noted, raised when the section ends
        if _held:  # a second interrupt: no more waiting
            _exit_at_once(signum)
        _held.append(signum)
        _pending.set()
        return
    _raise(signum)


def _raise(signum: int) -> None:
    if signum == signal.SIGTERM:
        _state["name"] = "SIGTERM"
        signal.signal(signal.SIGTERM, _at_once)  # a second SIGTERM ends the process at once
    raise KeyboardInterrupt


def _at_once(signum: int, frame: object) -> None:
    _exit_at_once(signum)


def _exit_at_once(signum: int) -> None:
    """Kill the children still running (no grace), then die of the signal as if it were not handled."""
    kill_all()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


class held:  # noqa: N801 - used as `with interrupts.held() as stopping:`
    """A section an interrupt does not cut short.  Inside it, an interrupt (Ctrl-C, SIGTERM) sets the
    event `as` gives, for the code there to wind up (a push given time to finish); KeyboardInterrupt is
    raised when the outermost section ends (whatever else the section raised), and a second interrupt
    ends the process at once.  Cheap (no system call): git.run holds one while it starts git, so that an
    interrupt never falls between the start and the moment the process is owned."""

    __slots__ = ("_active",)

    def __init__(self) -> None:
        self._active = False

    def __enter__(self) -> threading.Event:
        if _state["installed"] and threading.current_thread() is threading.main_thread():
            self._active = True
            _state["depth"] += 1
        return _pending

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if not self._active:
            return
        self._active = False
        _state["depth"] -= 1
        if _state["depth"] or not _held:
            return
        signum = signal.SIGTERM if signal.SIGTERM in _held else _held[0]
        _held.clear()
        _pending.clear()
        if kind is not None and issubclass(kind, KeyboardInterrupt):  # the section raised its own
            if signum == signal.SIGTERM:
                _state["name"] = "SIGTERM"
                signal.signal(signal.SIGTERM, _at_once)
            return
        _raise(signum)


@contextmanager
def owning(start: Callable[[], subprocess.Popen[Any]], group: bool) -> Iterator[subprocess.Popen[Any]]:
    """A child started by `start()` and owned while the block runs: an interrupt while it starts is raised
    once it is owned; however the block ends, a child still running is stopped (stop: its group when
    `group`), and it is disowned."""
    proc: subprocess.Popen[Any] | None = None
    try:
        with held():
            proc = start()
            own(proc, group=group)
        yield proc
    except BaseException:
        if proc is not None and proc.returncode is None:
            stop(proc, group=group)
        raise
    finally:
        if proc is not None:
            disown(proc)


def has_controlling_terminal() -> bool:
    """A developer's shell (whatever stdin is), not a CI job: a child then stays in gitops' process group,
    where Ctrl-C reaches it and it may use the terminal; without one it gets a group of its own, stopped
    whole (what it started too) when gitops is interrupted.  See apptest.run_command, kube.run."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal
        return False
    os.close(fd)
    return True


def own(proc: subprocess.Popen[Any], group: bool) -> None:
    """Kill `proc` (its process group when `group`) before an exit at once, until disown()."""
    _children[proc.pid] = group


def disown(proc: subprocess.Popen[Any]) -> None:
    _children.pop(proc.pid, None)


def kill_all() -> None:
    """SIGKILL every owned child (its group): nothing it started outlives gitops."""
    for pid, group in list(_children.items()):
        _send(pid, group, signal.SIGKILL)
    _children.clear()


def stop(proc: subprocess.Popen[Any], group: bool, grace: float = STOP_GRACE) -> None:
    """End a child: SIGTERM to it (its process group when `group`: what it started too), SIGKILL after
    `grace` seconds; interrupted again while waiting, SIGKILL at once.  The child is reaped."""
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        _send(proc.pid, group, signum)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except BaseException:
            _send(proc.pid, group, signal.SIGKILL)
            raise


def _send(pid: int, group: bool, signum: int) -> None:
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):  # gone already (a reused id is not ours to signal)
        pass
