"""Interrupting `gitops`: SIGTERM (a CI cancel) and Ctrl-C end a build with one line and exit 130, and
leave no temporary file behind (the build-context tar); --debug shows tracebacks only for bugs."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
from tests.fixtures.procs import running, stop_process
from tests.fixtures.services import BASE_IMAGE, TEST_LABEL, TEST_LABEL_VALUE, sample_app

pytestmark = pytest.mark.integration

# each build's slow step is its own (a nonce in the command): a step a cancelled build still finished in
# the engine would otherwise be cached, and a later build would pass it at once, its tar already closed
SLOW = f"FROM {BASE_IMAGE}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\nRUN sleep 30 # {{nonce}}\n"


def _start_slow_build(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    """`gitops build` of a Dockerfile whose last step sleeps 30 s, with its own empty TMPDIR; returns
    once the engine runs that step (the context tar is uploaded)."""
    repo = sample_app(tmp_path / "app", dockerfile=SLOW.format(nonce=secrets.token_hex(8)))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = subprocess.Popen([str(GITOPS), "build", "--image", "gitops-test/slow", "--network", "none"],
                            cwd=repo, env=gitops_env({"TMPDIR": str(tmpdir), **env}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = ""
    while "RUN sleep 30" not in seen:  # a build that never gets there: pytest's timeout
        line = proc.stderr.readline()
        if not line:
            stop_process(proc)
            pytest.fail(f"gitops ended before the slow step ran: {seen}")
        seen += line
    return proc, tmpdir


def _open_files(proc: subprocess.Popen) -> list[str]:
    """What each descriptor of `proc` names (for an assertion's message)."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for fd in sorted(os.listdir(f"/proc/{proc.pid}/fd"), key=int):
            with contextlib.suppress(OSError):
                found.append(f"{fd} -> {os.readlink(f'/proc/{proc.pid}/fd/{fd}')}")
    return found


def _unnamed_files(proc: subprocess.Popen, directory: Path) -> list[str]:
    """The files in `directory` that the running `proc` holds open and that have no name there (O_TMPFILE,
    or removed since they were opened): /proc shows them as `DIR/#INODE (deleted)` or `DIR/NAME (deleted)`."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for fd in os.listdir(f"/proc/{proc.pid}/fd"):
            with contextlib.suppress(OSError):  # a descriptor closed meanwhile
                target = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                if target.startswith(f"{directory}/") and target.endswith(" (deleted)"):
                    found.append(target)
    if proc.poll() is not None:  # a zombie has no descriptors
        pytest.fail(f"gitops ended during the slow step (exit {proc.returncode}): {proc.stderr.read()}")
    return found


@pytest.mark.timeout(300)  # a build that never reaches its slow step, or never ends
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_build_cleans_up_and_exits_130(tmp_path: Path, base_image: str, signum) -> None:
    proc, tmpdir = _start_slow_build(tmp_path, {})
    try:
        # the build context is made while it is sent: nothing of it in TMPDIR, named or not
        unnamed = _unnamed_files(proc, tmpdir)
        assert unnamed == [], (unnamed, _open_files(proc))
        assert os.listdir(tmpdir) == []
        proc.send_signal(signum)
        err = proc.stderr.read()  # to the end: the process exits
        out = proc.stdout.read()
        proc.wait(timeout=30)
    finally:
        stop_process(proc)  # when an assertion failed first
    assert proc.returncode == 130, err
    assert out == ""
    assert "error: interrupted" in err and "Traceback" not in err
    assert os.listdir(tmpdir) == []


@pytest.mark.timeout(300)
def test_a_build_killed_with_sigkill_leaves_no_context_tar_behind(tmp_path: Path, base_image: str) -> None:
    """kill -9 (the OOM killer, a CI runner ending the job) runs no cleanup: the build-context tar, a copy
    of the source, was left in TMPDIR under a temp name.  It is not written anywhere now (made while it
    is sent).  The legacy builder here, as the test above has the default one (BuildKit)."""
    proc, tmpdir = _start_slow_build(tmp_path, {"DOCKER_BUILDKIT": "0"})
    try:
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode == -signal.SIGKILL  # killed during the build
    assert os.listdir(tmpdir) == []


def test_debug_shows_no_traceback_for_user_errors(gitops, tmp_path: Path) -> None:
    res = gitops(["--debug", "tag"], cwd=tmp_path)
    assert res.returncode == 4, res.stderr
    assert "not a git checkout" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.timeout(120)  # a test command that never starts its sleep
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
        while not (pidfile.exists() and pidfile.read_text().strip()):
            if proc.poll() is not None:
                pytest.fail(f"gitops ended before the test command started its sleep: {proc.stderr.read()}")
            time.sleep(0.05)
        sleeper = int(pidfile.read_text())
        assert running(sleeper)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)  # when an assertion failed first
    assert proc.returncode == 130, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while running(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running(sleeper):  # leave nothing running, then fail
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


# --- an interrupt while git runs: no git process outlives gitops, and the report is the remote's truth ------

API = "registry.example.com/team/api"


def _descendants(pid: int) -> dict[int, str]:
    """The processes below `pid` (pid -> command line), read from /proc."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):  # ended meanwhile
            continue
        children.setdefault(ppid, []).append(int(entry.name))
        commands[int(entry.name)] = command
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = commands[child]
            todo.append(child)
    return found


def _wait_for_descendant(proc: subprocess.Popen, word: str, timeout: float = 120) -> dict[int, str]:
    """gitops' process tree once a process of it runs a command line holding `word` (e.g. the hook's sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        tree = _descendants(proc.pid)
        if any(word in command for command in tree.values()):
            return tree
        if proc.poll() is not None:
            pytest.fail(f"gitops ended (exit {proc.returncode}) before any process of it ran {word!r}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {word!r} below gitops after {timeout:g} s: {tree}")
        time.sleep(0.02)


def _assert_all_ended(processes: dict[int, str], timeout: float = 10) -> None:
    """Every one of `processes` ends soon (they are gitops' children: they must not outlive it)."""
    deadline = time.monotonic() + timeout
    while any(running(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {pid: command for pid, command in processes.items() if running(pid)}
    for pid in left:  # leave nothing running, then fail
        os.kill(pid, signal.SIGKILL)
    assert not left, f"outlived gitops: {left}"


def _slow_remote(where: Path, seconds: int, files: dict[str, str] | None = None):
    """A bare deploy repo whose pre-receive hook takes `seconds`: a push in progress for that long."""
    from tests.fixtures.gitremotes import make_bare_remote

    remote = make_bare_remote(where, files)
    hook = remote.path / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nsleep {seconds}\n")
    hook.chmod(0o755)
    return remote


def _runs_git(command: str, verb: str) -> bool:
    """Is the process command line `git [-c K=V]... VERB ...`?  (gitops gives git options before the verb.)"""
    args = command.split()
    while len(args) > 2 and args[1] == "-c":
        del args[1:3]
    return len(args) > 1 and args[0].endswith("git") and args[1] == verb


def _interrupt_during_the_push(command: list[str], cwd: Path, env: dict[str, str], signum: int,
                               seconds: int, again: bool = False) -> tuple[subprocess.Popen, str, str, dict]:
    """Run gitops, signal its PID alone (not its group: a CI runner's cancel) while the deploy repo's
    pre-receive hook (`sleep SECONDS`) runs; (process, stdout, stderr, its process tree then)."""
    proc = subprocess.Popen(command, cwd=cwd, env=gitops_env(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        tree = _wait_for_descendant(proc, f"sleep {seconds}")
        assert any(_runs_git(c, "push") or "send-pack" in c for c in tree.values()), tree
        time.sleep(0.5)
        proc.send_signal(signum)
        if again:
            time.sleep(0.5)
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)  # when an assertion failed first
    return proc, out, err, tree


@pytest.mark.parametrize(("signum", "seconds"), [(signal.SIGTERM, 2), (signal.SIGINT, 2), (signal.SIGTERM, 60)],
                         ids=["sigterm-push-finishes", "sigint-push-finishes", "sigterm-push-stopped"])
def test_interrupted_push_of_a_bump_reports_what_the_remote_has(tmp_path: Path, signum, seconds) -> None:
    """An interrupt during the push: the push gets 4 s to finish (its own report is the only sure word),
    else it is stopped, with the receive-pack and hook it started, and the remote branch read.  Exit 130,
    no git process and no temp dir left, and the report is what the remote has."""
    remote = _slow_remote(tmp_path / "remotes", seconds)
    before = remote.head()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc, out, err, tree = _interrupt_during_the_push(
        [str(GITOPS), "bump", "-o", "json", "--deploy-repo", remote.url, "--image", f"{API}:2.0.0"], tmp_path,
        {"TMPDIR": str(scratch)}, signum, seconds)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    _assert_all_ended(tree)  # git push, the receive-pack and the hook's sleep alike
    assert os.listdir(scratch) == []  # the clone the push ran from is gone only now
    now = remote.head()
    name = " (SIGTERM)" if signum == signal.SIGTERM else ""
    if seconds < 4:  # within the grace: the push finished, and the commit is reported
        assert now != before
        data = json.loads(out)
        assert data["commit"] == now and data["pushed"] is True
        assert f"error: interrupted{name}: {now[:12]} was pushed to {remote.url} (main) before it stopped" in err
    else:  # stopped: the remote was not changed, and nothing claims a commit
        assert now == before and out == ""
        assert f"error: interrupted{name}: the push of " in err
        assert f"was stopped after 4 s; {remote.url} (main) was not changed" in err
        time.sleep(1)
        assert remote.head() == before  # nothing lands afterwards either


def test_a_second_sigterm_during_the_push_ends_gitops_and_its_git_at_once(tmp_path: Path) -> None:
    remote = _slow_remote(tmp_path / "remotes", 60)
    before = remote.head()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc, _, err, tree = _interrupt_during_the_push(
        [str(GITOPS), "bump", "--deploy-repo", remote.url, "--image", f"{API}:2.0.0"], tmp_path,
        {"TMPDIR": str(scratch)}, signal.SIGTERM, 60, again=True)
    assert proc.returncode == -signal.SIGTERM, err  # died of the second SIGTERM, not after the push's grace (130)
    assert "error: interrupted" not in err  # no message: killed by it (the shell's 143)
    _assert_all_ended(tree)  # killed with it (the hook sleeps 60 s)
    assert remote.head() == before
    assert [p.name[:12] for p in scratch.iterdir()] == ["gitops-bump-"]  # left behind...
    res = subprocess.run([str(GITOPS), "tag", "--allow-dirty"], cwd=_dirty_checkout(tmp_path / "app"),
                         env=gitops_env({"TMPDIR": str(scratch)}), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert list(scratch.iterdir()) == []  # ...until the next gitops run that makes a temp dir


def _dirty_checkout(where: Path) -> Path:
    """A checkout with an uncommitted change: `gitops tag --allow-dirty` there makes a temp dir (its index)."""
    repo = sample_app(where)
    (repo / "app.sh").write_text("#!/bin/sh\necho changed\n")
    return repo


def _clones(scratch: Path) -> set[Path]:
    return {p for p in scratch.iterdir() if p.name.startswith("gitops-bump-")}


def test_the_clone_of_a_killed_bump_is_removed_by_the_next_run_and_a_running_ones_kept(tmp_path: Path) -> None:
    """kill -9 (the OOM killer, a CI runner killing the job) runs no cleanup: the clone, which may hold
    secrets, stays in TMPDIR until the next gitops run that makes a temp dir removes it, as nothing holds
    its lock any more; the clone of a bump still running (its lock held) is kept."""
    remote = _slow_remote(tmp_path / "remotes", 60)
    before = remote.head()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = gitops_env({"TMPDIR": str(scratch)})
    command = [str(GITOPS), "bump", "--deploy-repo", remote.url, "--image", f"{API}:2.0.0"]

    def start() -> subprocess.Popen:
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    running = start()
    killed = None
    orphans: dict[int, str] = {}
    try:
        _wait_for_descendant(running, "sleep 60")  # its push waits for the hook
        (kept,) = _clones(scratch)
        killed = start()
        orphans = _wait_for_descendant(killed, "sleep 60")
        (left,) = _clones(scratch) - {kept}
        assert (left / "deploy" / ".git").is_dir()
        killed.kill()  # SIGKILL: no code of gitops runs
        killed.communicate(timeout=30)
        for pid in orphans:  # its git push, receive-pack and hook, which SIGKILL does not end
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _assert_all_ended(orphans, timeout=5)
        assert _clones(scratch) == {kept, left}  # the killed run's clone is still there

        res = subprocess.run([str(GITOPS), "history", "--deploy-repo", remote.url, "-o", "json"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert not left.exists()  # removed by the next run
        assert (kept / "deploy" / ".git").is_dir() and running.poll() is None  # in use: kept
        assert _clones(scratch) == {kept}
    finally:
        for proc in (running, killed):
            if proc is not None:
                stop_process(proc)
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _, err = running.communicate(timeout=30)
    assert running.returncode == 130, err  # the SIGTERM stop_process sent: its clone removed as usual
    assert list(scratch.iterdir()) == []
    assert remote.head() == before


def test_sigterm_during_a_clone_ends_git_and_its_transport(tmp_path: Path) -> None:
    """Not only the push: an interrupted clone (its ssh transport never answers) ends with gitops too."""
    pidfile = tmp_path / "transport.pid"
    transport = tmp_path / "fake-ssh"
    transport.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    transport.chmod(0o755)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.Popen([str(GITOPS), "bump", "--deploy-repo", "ssh://git@127.0.0.1/deploy.git", "--image",
                             f"{API}:2.0.0"], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=gitops_env({"GIT_SSH_COMMAND": str(transport), "TMPDIR": str(scratch)}))
    try:
        tree = _wait_for_descendant(proc, "sleep 60", timeout=30)
        assert any(_runs_git(c, "clone") for c in tree.values()), tree
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted (SIGTERM)" and "Traceback" not in err
    _assert_all_ended(tree)
    assert os.listdir(scratch) == []


@pytest.mark.parametrize("seconds", [2, 60], ids=["push-finishes", "push-stopped"])
def test_interrupted_push_of_build_and_bump_writes_outputs_the_remote_agrees_with(
        tmp_path: Path, base_image: str, registry, seconds) -> None:
    """build-and-bump: the summary, the JSON and the --dotenv outputs name the deploy commit exactly
    when the remote has it."""
    from tests.integration.test_pipeline import GITOPS_TOML, PATH, deploy_files

    image = registry.image(PATH)
    remote = _slow_remote(tmp_path / "remotes", seconds, deploy_files(image))
    before = remote.head()
    app = sample_app(tmp_path / "app", extra_files={"gitops.toml": GITOPS_TOML})
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    dotenv = tmp_path / "gitops.env"
    proc, out, err, tree = _interrupt_during_the_push(
        [str(GITOPS), "build-and-bump", "--image", image, "--deploy-repo", remote.url, "-o", "json",
         "--dotenv", str(dotenv)], app, {"TMPDIR": str(scratch)}, signal.SIGTERM, seconds)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    _assert_all_ended(tree)
    assert [p for p in os.listdir(scratch) if p.startswith("gitops-bump-")] == []
    now = remote.head()
    data = json.loads(out)
    values = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert data["exit_code"] == 130 and data["failed_step"] == "bump" and data["digest"] and data["pushed"]
    if seconds < 4:
        assert now != before
        assert data["deploy_commit"] == now and data["bump"]["pushed"] is True
        assert values["DEPLOY_COMMIT"] == now
        assert data["error"] == f"interrupted: {now[:12]} was pushed to {remote.url} (main) before it stopped"
    else:
        assert now == before
        assert data["deploy_commit"] is None and data["bump"] is None
        assert values["DEPLOY_COMMIT"] == ""
        assert data["error"].startswith("interrupted: the push of ")
        assert data["error"].endswith(f"was stopped after 4 s; {remote.url} (main) was not changed")
        time.sleep(1)
        assert remote.head() == before
    assert values["DIGEST"] == data["digest"]
    assert err.strip().splitlines()[-1] == f"error: interrupted (SIGTERM): {data['error'].split(': ', 1)[1]}"


@pytest.mark.parametrize("seconds", [2, 60], ids=["push-finishes", "push-stopped"])
def test_interrupted_push_from_a_local_checkout_keeps_it_consistent_with_origin(tmp_path: Path, seconds) -> None:
    """A local checkout keeps a bump its origin has (it is origin's head), and is reset to where it was
    when origin does not have it: never a commit that is not on origin, never a pushed one taken back."""
    remote = _slow_remote(tmp_path / "remotes", seconds)
    before = remote.head()
    checkout = remote.clone(tmp_path / "checkout")
    proc, out, err, tree = _interrupt_during_the_push(
        [str(GITOPS), "bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], tmp_path, {},
        signal.SIGTERM, seconds)
    assert proc.returncode == 130, err
    _assert_all_ended(tree)
    local = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=checkout, capture_output=True, text=True).stdout
    assert status == ""
    if seconds < 4:
        assert remote.head() != before and local == remote.head() and out.strip() == local
        assert "reset to" not in err
    else:
        assert remote.head() == before and local == before and out == ""
        assert f"reset to {before[:12]}, where it was before the bump (the bump was not pushed)" in err


@pytest.mark.timeout(180)  # a sync that never reaches its apply
def test_sigterm_during_a_sync_ends_kubectl_and_what_it_started(tmp_path: Path) -> None:
    """A CI cancel while kubectl applies: kubectl is stopped with its process group (an exec credential
    plugin it started, here a `sleep`), as git and the test command are: nothing applies after gitops."""
    import sys

    from tests.fixtures.gitremotes import make_bare_remote

    fake = Path(__file__).resolve().parents[1] / "fixtures" / "fake_kubectl.py"
    remote = make_bare_remote(tmp_path / "remotes", {
        "cluster/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"})
    pidfile = tmp_path / "plugin.pid"
    kubectl = tmp_path / "kubectl"  # the fake kubectl, whose apply waits on a plugin that never answers
    kubectl.write_text(f'#!/bin/sh\ncase " $* " in *" apply "*) sleep 600 & echo $! > {pidfile}; wait; exit 1;; esac\n'
                       f'exec {sys.executable} {fake} "$@"\n')
    kubectl.chmod(0o755)
    proc = subprocess.Popen([str(GITOPS), "sync", "--kubectl", str(kubectl), "--cache-dir", str(tmp_path / "cache"),
                             "--repo", remote.url], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,  # no terminal: a CI job's
                            env=gitops_env({"FAKE_KUBECTL_LOG": str(tmp_path / "kubectl.log")}))
    try:
        while not (pidfile.exists() and pidfile.read_text().strip()):
            if proc.poll() is not None:
                pytest.fail(f"gitops ended before kubectl apply ran: {proc.communicate()[1]}")
            time.sleep(0.05)
        plugin = int(pidfile.read_text())
        assert running(plugin)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)  # when an assertion failed first
    assert proc.returncode == 130, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    _assert_all_ended({plugin: "sleep 600 (kubectl's plugin)"})


_BLOCK_AT_START = '''
import os, sys, time
from pathlib import Path

ready = Path(os.environ["BLOCK_READY"])


def block():
    ready.write_text("ready")
    time.sleep(30)


if os.environ["BLOCK_AT"] == "import":  # while the app (typer, click, the verbs) is imported
    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name == "gitops_cli.cli":
                block()
            return None

    sys.meta_path.insert(0, Finder())
else:  # while its command is built (typer.main.get_command)
    import typer.main

    real = typer.main.get_command

    def get_command(app):
        block()
        return real(app)

    typer.main.get_command = get_command
'''


def _start_held(tmp_path: Path, sitecustomize: str, argv: list[str], ready: Path,
                env: dict[str, str]) -> subprocess.Popen:
    """`gitops ARGV` (in tmp_path, its own session) with `sitecustomize` on its PYTHONPATH, which holds it at
    a chosen point and then creates `ready`; returns once `ready` exists (an assertion if gitops ended or
    60 s passed first)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(sitecustomize)
    proc = subprocess.Popen([str(GITOPS), *argv], cwd=tmp_path, env=gitops_env({"PYTHONPATH": str(shim), **env}),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not ready.exists():
        stop_process(proc)
        pytest.fail(f"gitops was not held where the test holds it: {proc.communicate(timeout=30)}")
    return proc


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("where", ["import", "command"])
def test_an_interrupt_during_start_up_is_the_one_line_and_exit_130(tmp_path: Path, signum, where) -> None:
    """The app's import and the building of its command are most of the start-up: an interrupt there (held
    there by a sitecustomize of this test) ends gitops as any other does, not with a traceback (SIGINT) or
    no message (SIGTERM's default, 143)."""
    ready = tmp_path / "ready"
    proc = _start_held(tmp_path, _BLOCK_AT_START, ["tag"], ready, {"BLOCK_AT": where, "BLOCK_READY": str(ready)})
    try:
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        stop_process(proc)
    name = " (SIGTERM)" if signum == signal.SIGTERM else ""
    assert (proc.returncode, out, err) == (130, "", f"error: interrupted{name}\n")


def _gated_remote(where: Path):
    """A bare deploy repo whose pre-receive hook writes `where/receiving` and then waits (60 s at most) for
    `where/gate`: a server's push in progress until the test opens the gate."""
    from tests.fixtures.gitremotes import make_bare_remote

    remote = make_bare_remote(where)
    hook = remote.path / "hooks" / "pre-receive"
    receiving, gate = where / "receiving", where / "gate"
    hook.write_text(f"#!/bin/sh\ntouch '{receiving}'\nn=0\n"
                    f"while [ ! -e '{gate}' ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done\n")
    hook.chmod(0o755)
    return remote, receiving, gate


def _sigterm_once_receiving(command: list[str], cwd: Path, receiving: Path,
                            again: bool = False) -> subprocess.CompletedProcess:
    """Run gitops and SIGTERM it (its PID alone) once the server's hook runs (`again`: twice)."""
    proc = subprocess.Popen(command, cwd=cwd, env=gitops_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not receiving.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert receiving.exists(), proc.communicate(timeout=30)
        proc.send_signal(signal.SIGTERM)
        if again:
            time.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _lands(remote, before: str) -> str:
    """The remote's branch once it moves from `before` (a server still applying a push)."""
    deadline = time.monotonic() + 60
    while remote.head() == before and time.monotonic() < deadline:
        time.sleep(0.1)
    return remote.head()


def test_a_push_to_a_server_stopped_midway_is_not_said_to_have_failed(tmp_path: Path, http_git_server) -> None:
    """Stopping git push does not stop the server's receive-pack: a branch not moved yet may still move
    (it does here, once the hook ends), so the line says the push was not applied as of now, not that the
    remote was not changed."""
    remote, receiving, gate = _gated_remote(tmp_path / "remotes")
    url = http_git_server(tmp_path / "remotes").url()
    before = remote.head()
    res = _sigterm_once_receiving([str(GITOPS), "bump", "--deploy-repo", url, "--image", f"{API}:2.0.0"], tmp_path,
                                  receiving)
    assert res.returncode == 130 and res.stdout == "", res.stderr
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: interrupted (SIGTERM): the push of "), res.stderr
    assert line.endswith(f"was stopped after 4 s; not applied to {url} (main) as of now; the server may still "
                         "apply it"), res.stderr
    assert "was not changed" not in res.stderr
    gate.touch()
    landed = _lands(remote, before)
    assert landed != before and line.split("the push of ")[1].startswith(landed[:12])


def test_a_local_checkout_whose_servers_push_was_stopped_gets_the_bump_once_it_lands(
        tmp_path: Path, http_git_server, gitops) -> None:
    """A local checkout with an HTTP origin: reset to where it was, without claiming the bump was not pushed
    (the warning names the commit, which stays in the reflog); once the server applies it, the next bump
    moves the checkout to it and is already up to date."""
    remote, receiving, gate = _gated_remote(tmp_path / "remotes")
    url = http_git_server(tmp_path / "remotes").url()
    before = remote.head()
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "--quiet", url, str(checkout)], check=True)
    command = [str(GITOPS), "bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"]
    res = _sigterm_once_receiving(command, tmp_path, receiving)
    assert res.returncode == 130, res.stderr
    sha = res.stderr.split("the push of ")[1][:12]
    assert "(the bump was not pushed)" not in res.stderr
    assert (f"reset to {before[:12]}, where it was before the bump; whether origin has the bump commit {sha} is "
            "unknown") in res.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    assert head == before
    reflog = subprocess.run(["git", "reflog", "--format=%H"], cwd=checkout, capture_output=True, text=True).stdout
    assert any(line.startswith(sha) for line in reflog.splitlines())
    gate.touch()
    landed = _lands(remote, before)
    assert landed.startswith(sha)
    again = gitops(command[1:], cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == "" and "already up to date" in again.stderr, again.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    assert head == landed


def test_a_bump_killed_by_a_second_sigterm_in_a_local_checkout_is_undone_by_the_next_run(tmp_path: Path,
                                                                                          gitops) -> None:
    """A second SIGTERM during the push ends gitops at once, before it can reset the checkout: its bump
    commit, not on origin, is left there.  The next bump finds the marker the killed run left, resets the
    commit that origin does not have (a warning names it), and bumps."""
    remote, receiving, gate = _gated_remote(tmp_path / "remotes")
    before = remote.head()
    checkout = remote.clone(tmp_path / "checkout")
    command = [str(GITOPS), "bump", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"]
    res = _sigterm_once_receiving(command, tmp_path, receiving, again=True)
    assert res.returncode == -signal.SIGTERM, res.stderr
    left = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    assert left != before and remote.head() == before  # the killed run's commit, not on origin
    gate.touch()
    again = gitops(command[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (f"reset to {before[:12]}, where it was before an earlier gitops run was killed during its bump: its "
            f"commit {left[:12]} is not on origin/main") in again.stderr
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    assert head == remote.head() == again.stdout.strip() != before
    assert subprocess.run(["git", "status", "--porcelain"], cwd=checkout, capture_output=True,
                          text=True).stdout == ""


_HOLD_A_WRITE = '''
import os, time
from pathlib import Path

import gitops_cli.yamledit as yamledit

real, calls = yamledit.write_atomic, []


def write_atomic(path, text, **kwargs):
    calls.append(path)
    if len(calls) == int(os.environ["HOLD_AT"]):  # files written before this one: HOLD_AT - 1
        Path(os.environ["HOLD_READY"]).touch()
        deadline = time.monotonic() + 60
        while not Path(os.environ["HOLD_GO"]).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return real(path, text, **kwargs)


yamledit.write_atomic = write_atomic
'''


def test_an_interrupted_no_commit_bump_leaves_every_file_as_it_was(tmp_path: Path) -> None:
    """--no-commit has no commit to reset to: an interrupt while it writes (held there, after 5 of 20 files,
    by a sitecustomize of this test) puts the files written back, and the line says so."""
    checkout = tmp_path / "checkout"
    files = {f"apps/app{n:02}.yaml": f"image: {API}:1.0.0  # app {n}\n" for n in range(20)}
    for rel, text in files.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = _start_held(tmp_path, _HOLD_A_WRITE,
                       ["bump", "--no-commit", "--deploy-repo", str(checkout), "--image", f"{API}:2.0.0"], ready,
                       {"HOLD_AT": "6", "HOLD_READY": str(ready), "HOLD_GO": str(go)})
    try:
        proc.send_signal(signal.SIGTERM)
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    assert proc.returncode == 130 and out == "", err
    assert err.strip().splitlines()[-1] == ("error: interrupted (SIGTERM): no file was changed (the 6 written were "
                                            "put back as they were)")
    assert {p.relative_to(checkout).as_posix(): p.read_text() for p in checkout.rglob("*") if p.is_file()} == files
