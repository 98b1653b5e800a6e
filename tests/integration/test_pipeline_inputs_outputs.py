"""`gitops build-and-bump`: build inputs in the re-run check, the output files, exit codes of failing
tests, the CI tag rule's corner cases and interrupts (real engine, registry and deploy repo)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env
from tests.fixtures.gitremotes import DeployRemote, make_bare_remote
from tests.fixtures.procs import stop_process
from tests.fixtures.services import DOCKERFILE, Registry, git, sample_app
from tests.integration.test_pipeline import (
    GITOPS_TOML,
    PATH,
    config_labels,
    deploy_files,
    run,
    steps,
    tags,
)

pytestmark = pytest.mark.integration

FLAVOURED = DOCKERFILE + "ARG FLAVOR=plain\nLABEL flavor=$FLAVOR\n"
INPUTS = "dev.gitops-cli.build-inputs"


@pytest.fixture
def remote(tmp_path: Path, registry: Registry) -> DeployRemote:
    return make_bare_remote(tmp_path / "remotes", deploy_files(registry.image(PATH)))


@pytest.fixture
def app(tmp_path: Path, base_image: str) -> Path:
    return sample_app(tmp_path / "app", dockerfile=FLAVOURED, extra_files={"gitops.toml": GITOPS_TOML})


# --- 1. the build inputs are part of "already published for this source state" -----------------------


def test_other_build_inputs_for_the_same_commit_are_refused(gitops, app: Path, registry: Registry,
                                                            remote: DeployRemote) -> None:
    image = registry.image(PATH)
    first = run(gitops, app, image, remote, "--build-arg", "FLAVOR=debug", "-o", "json")
    assert first.returncode == 0, first.stderr
    tag = json.loads(first.stdout)["tag"]
    labels = config_labels(registry, tag)
    assert labels["flavor"] == "debug" and labels[INPUTS].startswith("dockerfile=")
    assert "debug" not in labels[INPUTS]  # hashes only: no build argument's value is disclosed

    # another build argument for the same commit: the tag would name another image -> refused, no work
    other = run(gitops, app, image, remote, "--build-arg", "FLAVOR=release")
    assert other.returncode == 6, other.stderr
    assert "other build inputs (differs: build-args)" in other.stderr and "--allow-overwrite" in other.stderr
    assert "already published for this commit" not in other.stderr
    assert "running sample tests" not in other.stderr and "tag      failed" in other.stderr
    missing = run(gitops, app, image, remote, "--build-arg", "FLAVOR=debug", "--target", "nonexist")
    assert missing.returncode == 6 and "differs: target" in missing.stderr
    assert config_labels(registry, tag)["flavor"] == "debug" and len(remote.log()) == 2

    # the same inputs: the re-run is still a no-op
    same = run(gitops, app, image, remote, "--build-arg", "FLAVOR=debug", "-o", "json")
    assert same.returncode == 0, same.stderr
    assert steps(json.loads(same.stdout))["build"] == "skipped"

    # --allow-overwrite: rebuilt and published over it
    forced = run(gitops, app, image, remote, "--build-arg", "FLAVOR=release", "--allow-overwrite", "-o", "json")
    assert forced.returncode == 0, forced.stderr
    data = json.loads(forced.stdout)
    assert data["built"] and data["pushed"] and config_labels(registry, tag)["flavor"] == "release"


# --- 2, 3, 7. the output files -------------------------------------------------------------------------


def test_bad_output_paths_are_refused_before_any_work(gitops, app: Path, registry: Registry,
                                                      remote: DeployRemote, tmp_path: Path) -> None:
    image = registry.image(PATH)
    dotenv_dir = tmp_path / "envdir"
    dotenv_dir.mkdir()
    for extra, env, words in (
        (["--dotenv", str(tmp_path / "nodir" / "x.env")], None, "no such directory"),
        (["--dotenv", str(dotenv_dir)], None, "is a directory"),
        ([], {"GITHUB_OUTPUT": "/nonexistent/out"}, "$GITHUB_OUTPUT /nonexistent/out: no such directory"),
    ):
        res = run(gitops, app, image, remote, *extra, "-o", "json", env=env)
        assert res.returncode == 2, res.stderr
        assert words in res.stderr and "internal error" not in res.stderr
        data = json.loads(res.stdout)  # JSON for a failure before the pipeline too
        assert data["ok"] is False and words in data["error"] and data["exit_code"] == 2
        assert "running sample tests" not in res.stderr
    assert list(dotenv_dir.iterdir()) == [] and tags(registry) == [] and len(remote.log()) == 1


def test_failure_before_the_pipeline_prints_json(gitops, app: Path, tmp_path: Path) -> None:
    github_output, dotenv = tmp_path / "github-output", tmp_path / "gitops.env"
    github_output.write_text("earlier=step\n")
    res = gitops(["build-and-bump", "--deploy-repo", str(tmp_path), "-o", "json", "--dotenv", str(dotenv)],
                 cwd=app, env={"GITHUB_OUTPUT": str(github_output)})
    assert res.returncode == 2
    data = json.loads(res.stdout)
    assert data["ok"] is False and "--image" in data["error"] and data["failed_step"] is None
    assert [s["status"] for s in data["steps"]] == ["not run"] * 5
    assert res.stderr.startswith("error: ") and "--image" in res.stderr
    # the outputs, empty, as after a failure in a step (they were not written at all)
    assert dotenv.read_text() == "TAG=\nIMAGE=\nDIGEST=\nDEPLOY_COMMIT=\n"
    assert github_output.read_text() == "earlier=step\ntag=\nimage=\ndigest=\ndeploy-commit=\n"


def test_one_file_for_github_output_and_dotenv_is_refused_before_any_work(
        gitops, app: Path, registry: Registry, remote: DeployRemote, tmp_path: Path) -> None:
    """The dotenv file is replaced: it would drop what was appended to $GITHUB_OUTPUT (silently)."""
    same = tmp_path / "same"
    same.write_text("previous=1\n")
    link = tmp_path / "link"
    link.symlink_to(same)
    hard = tmp_path / "hard"
    hard.hardlink_to(same)
    for dotenv in (same, link, hard):
        res = run(gitops, app, registry.image(PATH), remote, "--dotenv", str(dotenv),
                  env={"GITHUB_OUTPUT": str(same)})
        assert res.returncode == 2, res.stderr
        assert f"--dotenv {dotenv}: is $GITHUB_OUTPUT too" in res.stderr
        assert same.read_text() == "previous=1\n" and tags(registry) == [] and len(remote.log()) == 1


def test_output_files_symlink_fifo_append_and_stale_values(gitops, app: Path, registry: Registry,
                                                           remote: DeployRemote, tmp_path: Path) -> None:
    image = registry.image(PATH)
    out = tmp_path / "out"
    out.mkdir()
    real = out / "real.env"
    real.write_text("OLD=1\n")
    real.chmod(0o640)
    link = out / "link.env"
    link.symlink_to(real)
    github_output = out / "github-output"
    github_output.write_text("earlier=step")  # no final newline: the first output gets a line of its own
    res = run(gitops, app, image, remote, "--dotenv", str(link), env={"GITHUB_OUTPUT": str(github_output)})
    assert res.returncode == 0, res.stderr
    assert link.is_symlink() and real.read_text().startswith("TAG=") and "OLD" not in real.read_text()
    assert (real.stat().st_mode & 0o777) == 0o640  # the file's mode is kept
    assert github_output.read_text().startswith("earlier=step\ntag=")  # appended, as GitHub expects
    assert sorted(p.name for p in out.iterdir()) == ["github-output", "link.env", "real.env"]  # no temp file

    # a FIFO (`--dotenv >(cat)`) is written in place
    fifo = out / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    res = run(gitops, app, image, remote, "--dotenv", str(fifo))
    reader.join(timeout=60)
    assert res.returncode == 0, res.stderr
    assert got and got[0].startswith("TAG=") and "DIGEST=sha256:" in got[0] and fifo.exists()

    # a failed run (refused at the tag step) leaves no stale values from the successful one
    (app / "app.sh").write_text("#!/bin/sh\necho dirty\n")
    res = run(gitops, app, image, remote, "--dotenv", str(link))
    assert res.returncode == 4, res.stderr
    assert real.read_text() == "TAG=\nIMAGE=\nDIGEST=\nDEPLOY_COMMIT=\n"


def test_a_dotenv_file_in_the_checkout_is_output_never_source(gitops, registry: Registry, remote: DeployRemote,
                                                               tmp_path: Path, base_image: str) -> None:
    """GitLab takes artifacts only from the checkout: `--dotenv gitops.env` there.  A re-run in the same
    checkout (a Jenkins workspace, GIT_CLEAN_FLAGS none, a local re-run) finds the file the first run
    wrote: it is that run's output, not source, so it is neither an untracked file (exit 4) nor in the
    image (a Dockerfile that copies the whole context, rebuilt: the same image)."""
    app = sample_app(tmp_path / "whole", dockerfile=DOCKERFILE + "COPY . /ctx/\n",
                     extra_files={"gitops.toml": GITOPS_TOML})
    image = registry.image(PATH)
    first = run(gitops, app, image, remote, "--dotenv", "gitops.env", "-o", "json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    dotenv = app / "gitops.env"
    written = f"TAG={data['tag']}\nIMAGE={data['image']}\nDIGEST={data['digest']}\nDEPLOY_COMMIT="
    assert dotenv.read_text() == f"{written}{data['deploy_commit']}\n"

    again = run(gitops, app, image, remote, "--dotenv", "gitops.env", "--rebuild", "-o", "json")
    assert again.returncode == 0, again.stderr
    rebuilt = json.loads(again.stdout)
    assert rebuilt["built"] and not rebuilt["pushed"] and rebuilt["digest"] == data["digest"]  # the same image
    ref = f"{image}:{data['tag']}"
    listing = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "ls", "-A", "/ctx"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert "app.sh" in listing and "gitops.env" not in listing
    assert dotenv.read_text() == f"{written}\n"  # already up to date: no deploy commit

    # `gitops tag` alone knows nothing of it: an untracked file, named, with the way out; ignored, it is fine
    alone = gitops(["tag"], cwd=app)
    assert alone.returncode == 4 and "source state: gitops.env" in alone.stderr and ".gitignore" in alone.stderr
    (app / ".git" / "info" / "exclude").write_text("gitops.env\n")
    assert gitops(["tag"], cwd=app).stdout.strip() == data["tag"]

    # a tracked file at that path is the user's: its removal is a change of the tree (exit 4, named)
    git(app, "add", "--force", "gitops.env")
    git(app, "commit", "--quiet", "-m", "track gitops.env")
    tracked = run(gitops, app, image, remote, "--dotenv", "gitops.env")
    assert tracked.returncode == 4 and "source state: gitops.env" in tracked.stderr, tracked.stderr
    assert "running sample tests" not in tracked.stderr and len(remote.log()) == 2


def test_a_refused_write_is_exit_74_after_the_result_and_never_masks_a_failure(
        gitops, app: Path, registry: Registry, remote: DeployRemote, tmp_path: Path) -> None:
    image = registry.image(PATH)
    assert Path("/dev/full").is_char_device()  # the environment's device (never replaced by a run)
    res = run(gitops, app, image, remote, "--dotenv", "/dev/full", "-o", "json")
    assert res.returncode == 74, res.stderr
    data = json.loads(res.stdout)  # the result says how the run ends (it said "ok": true, exit 0)
    assert data["ok"] is False and data["exit_code"] == 74 and data["failed_step"] is None
    assert data["error"] == "cannot write /dev/full: No space left on device" and data["deploy_commit"]
    assert res.stderr.count("cannot write /dev/full: No space left on device") == 1
    assert Path("/dev/full").is_char_device() and "internal error" not in res.stderr

    # the bump fails (exit 10): a refused output write does not turn it into another code
    down = make_bare_remote(tmp_path / "gone", deploy_files(image))
    url = down.url
    import shutil

    shutil.rmtree(down.path)
    down.path.mkdir()  # an empty directory: not a repository, the clone fails
    res = gitops(["build-and-bump", "--image", image, "--deploy-repo", url, "--dotenv", "/dev/full",
                  "-o", "json"], cwd=app)
    assert res.returncode == 10, res.stderr
    data = json.loads(res.stdout)
    assert data["failed_step"] == "bump" and "cannot write /dev/full" in res.stderr


# --- 4. failing tests: the step's documented codes ----------------------------------------------------


def test_failing_tests_exit_1_or_14_with_the_raw_status_kept(gitops, tmp_path: Path, base_image: str,
                                                             registry: Registry, remote: DeployRemote) -> None:
    app = sample_app(tmp_path / "failing", test_status=3, extra_files={"gitops.toml": GITOPS_TOML})
    image = registry.image(PATH)
    res = run(gitops, app, image, remote, "-o", "json")  # make exits 2 ("invalid input" in the table)
    assert res.returncode == 1, res.stderr
    data = json.loads(res.stdout)
    assert data["test_status"] == 2 and "exited with status 2" in data["error"] and data["exit_code"] == 1
    res = run(gitops, app, image, remote, "--test-command", "no-such-test-runner-xyz", "-o", "json")
    assert res.returncode == 14, res.stderr
    data = json.loads(res.stdout)
    assert data["test_status"] == 127 and "status 127" in data["error"] and "not found" in res.stderr
    assert tags(registry) == [] and len(remote.log()) == 1
    direct = gitops(["test"], cwd=app)  # `gitops test` keeps passing the raw status through
    assert direct.returncode == 2


# --- 5, 6, 9. the CI tag rule ----------------------------------------------------------------------------


def test_source_commit_override_is_for_the_trailer_only(gitops, app: Path, registry: Registry,
                                                        remote: DeployRemote, tmp_path: Path) -> None:
    image = registry.image(PATH)
    head = git(app, "rev-parse", "HEAD")
    other = "b" * 40
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": head}}}))
    pr = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": "e" * 40,
          "GITHUB_EVENT_PATH": str(event)}
    # (b) the merge commit checked out, the override naming it: still refused
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "f" * 40}}}))
    res = run(gitops, app, image, remote, env={**pr, "GITHUB_SHA": head, "GITOPS_SOURCE_COMMIT": head})
    assert res.returncode == 2 and "merge commit" in res.stderr and tags(registry) == []
    # (a) the PR head checked out, the override naming another commit: not refused; the trailer has it
    event.write_text(json.dumps({"pull_request": {"head": {"sha": head}}}))
    res = run(gitops, app, image, remote, env={**pr, "GITOPS_SOURCE_COMMIT": other})
    assert res.returncode == 0, res.stderr
    assert f"Source-Commit: {other}\n" in remote.message()
    # (c) a push build: the override reaches the trailer, the warning is about the CI's own commit only
    sample_app(app, version="2", dockerfile=FLAVOURED, extra_files={"gitops.toml": GITOPS_TOML})
    head2 = git(app, "rev-parse", "HEAD")
    res = run(gitops, app, image, remote, env={"GITHUB_ACTIONS": "true", "GITHUB_SHA": head2,
                                               "GITOPS_SOURCE_COMMIT": other})
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr and f"Source-Commit: {other}\n" in remote.message()


def test_jenkins_pr_build_on_an_agent_merge_is_refused_sha_warns(gitops, app: Path, registry: Registry,
                                                                remote: DeployRemote) -> None:
    image = registry.image(PATH)
    git(app, "checkout", "-q", "-b", "feature")
    sample_app(app, version="feature", dockerfile=FLAVOURED, extra_files={"gitops.toml": GITOPS_TOML})
    pr_head = git(app, "rev-parse", "HEAD")
    git(app, "checkout", "-q", "main")
    (app / "other.txt").write_text("target moved\n")
    git(app, "add", "other.txt")
    git(app, "commit", "-q", "-m", "target branch moved")
    git(app, "merge", "-q", "--no-ff", "-m", "Merge PR-5", "feature")
    merge = git(app, "rev-parse", "HEAD")
    env = {"JENKINS_URL": "https://ci.example/", "CHANGE_ID": "5", "BRANCH_NAME": "PR-5", "GIT_COMMIT": merge}
    res = run(gitops, app, image, remote, env=env)
    assert res.returncode == 2, res.stderr
    assert "merge commit" in res.stderr and "--sha" in res.stderr and tags(registry) == []
    # --sha names the build: accepted, with a warning that the image is built from HEAD's tree
    res = run(gitops, app, image, remote, "--sha", pr_head, "-o", "json", env=env)
    assert res.returncode == 0, res.stderr
    assert f"--sha names {pr_head[:12]} but the checkout is {merge[:12]}" in res.stderr
    assert json.loads(res.stdout)["sha"] == pr_head
    # a branch build of a merge commit is an ordinary commit
    res = run(gitops, app, image, remote, env={"JENKINS_URL": "https://ci.example/", "BRANCH_NAME": "main",
                                               "GIT_COMMIT": merge})
    assert res.returncode == 0, res.stderr


# --- 8. an interrupt after publish still reports what completed ---------------------------------------


def test_interrupt_after_publish_writes_the_outputs(app: Path, registry: Registry, tmp_path: Path) -> None:
    image = registry.image(PATH)
    dotenv = tmp_path / "gitops.env"
    github_output = tmp_path / "github-output"
    with socket.socket() as server:  # a deploy repo that never answers: the run waits at the bump step
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/deploy.git"
        proc = subprocess.Popen(
            [str(GITOPS), "build-and-bump", "--image", image, "--deploy-repo", url, "-o", "json",
             "--dotenv", str(dotenv)], cwd=app, env=gitops_env({"GITHUB_OUTPUT": str(github_output)}),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not tags(registry) and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            time.sleep(1.5)  # the publish step ends; the bump step waits for the clone
            assert proc.poll() is None
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            stop_process(proc)  # when an assertion failed first
    assert proc.returncode == 130, stderr
    data = json.loads(stdout)
    assert data["pushed"] and data["digest"] and data["exit_code"] == 130
    assert steps(data) == {"tag": "ok", "test": "ok", "build": "ok", "publish": "ok", "bump": "failed"}
    assert data["error"] == "interrupted" and data["failed_step"] == "bump"
    assert f"DIGEST={data['digest']}\n" in dotenv.read_text()
    assert f"digest={data['digest']}\n" in github_output.read_text()


def test_a_full_tmpdir_does_not_fail_the_build_step(
        gitops, app: Path, registry: Registry, remote: DeployRemote, tmp_path: Path) -> None:
    """The context tar went to TMPDIR: a full one failed the build step with exit 74.  It is made while it
    is sent now, so the build step does not write to TMPDIR at all: the image is built and published."""
    import subprocess

    (app / "big.bin").write_bytes(os.urandom(256 * 1024))
    git(app, "add", "big.bin")
    git(app, "commit", "--quiet", "-m", "a big file")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)], check=True)
    try:
        res = run(gitops, app, registry.image(PATH), remote, "-o", "json", env={"TMPDIR": str(tiny)})
    finally:
        subprocess.run(["umount", str(tiny)], check=False)
    data = json.loads(res.stdout)
    # the bump's clone goes to TMPDIR: it is the step that fails, exit 74 naming TMPDIR (bump's own case)
    assert res.returncode == 74, res.stderr
    assert steps(data) == {"tag": "ok", "test": "ok", "build": "ok", "publish": "ok", "bump": "failed"}
    assert data["failed_step"] == "bump" and "(TMPDIR, where a deploy repo's clone goes) is full" in data["error"]
    assert "Traceback" not in res.stderr
