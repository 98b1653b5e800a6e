"""`gitops build` against the real Docker Engine."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from gitops_cli import engine
from tests.fixtures.services import (
    AUTH_PASSWORD,
    AUTH_USER,
    DOCKERFILE,
    TEST_LABEL_VALUE,
    Registry,
    commit_all,
    credential_helpers,
    git,
    sample_app,
)

pytestmark = pytest.mark.integration


def labels_of(engine, ref: str) -> dict[str, str]:
    return engine.inspect_image(ref)["Config"]["Labels"]


LEGACY = {"DOCKER_BUILDKIT": "0"}
BUILDERS = pytest.mark.parametrize("builder", [{}, LEGACY], ids=["buildkit", "legacy"])


@BUILDERS
def test_build_prints_ref_and_id_and_sets_oci_labels(gitops, app_repo: Path, docker_engine, builder) -> None:
    git(app_repo, "remote", "add", "origin", "https://ci-bot:hunter2-token@git.example.com/team/app.git")
    sha = git(app_repo, "rev-parse", "HEAD")
    res = gitops(["build", "--image", "gitops-test/app", "--label", "team=payments"], cwd=app_repo, env=builder)
    assert res.returncode == 0, res.stderr
    ref, image_id = res.stdout.splitlines()
    assert ref == f"gitops-test/app:{sha[:7]}"
    assert image_id.startswith("sha256:") and docker_engine.inspect_image(ref)["Id"] == image_id
    labels = labels_of(docker_engine, ref)
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/team/app.git"
    assert labels["org.opencontainers.image.version"] == sha[:7]
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["team"] == "payments"
    assert "hunter2" not in res.stdout + res.stderr
    if not builder:  # BuildKit: labels are image metadata, no builder step; the steps are [N/M] lines
        assert "builder: BuildKit\n" in res.stderr
        assert "==> [3/3] RUN chmod 755 /app/app.sh" in res.stderr and "LABEL" not in res.stderr
        return
    assert "builder: legacy (DOCKER_BUILDKIT=0)" in res.stderr
    assert "Step 4/" in res.stderr  # live build log goes to stderr
    # all labels in ONE builder step (the build API's labels would be one LABEL step each)
    label_steps = [ln for ln in res.stderr.splitlines() if " : LABEL " in ln]
    assert len(label_steps) == 2 and "Step 6/6 : LABEL" in label_steps[1]  # the Dockerfile's own, then ours
    assert '"org.opencontainers.image.revision"="' + sha in label_steps[1] and '"team"="payments"' in label_steps[1]


def test_rebuild_of_same_commit_gives_same_image_id(gitops, app_repo: Path) -> None:
    first = gitops(["build", "--image", "gitops-test/app"], cwd=app_repo)
    second = gitops(["build", "--image", "gitops-test/app"], cwd=app_repo)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == second.stdout  # deterministic labels: the cache reproduces the image


def test_a_given_tag_is_not_stopped_by_bad_tag_settings(gitops, app_repo: Path) -> None:
    """`--tag X` uses neither tag_length nor tag_prefix: a bad one of them is no reason to refuse it."""
    res = gitops(["build", "--image", "gitops-test/app", "--tag", "manual1"], cwd=app_repo,
                 env={"GITOPS_TAG_LENGTH": "3", "GITOPS_TAG_PREFIX": "-bad"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "gitops-test/app:manual1"
    res = gitops(["build", "--image", "gitops-test/app"], cwd=app_repo, env={"GITOPS_TAG_LENGTH": "3"})
    assert res.returncode == 2 and "GITOPS_TAG_LENGTH=3: must be between 7 and 40" in res.stderr


def test_build_command_runs_first(gitops, app_repo: Path) -> None:
    (app_repo / "gitops.toml").write_text('build_command = "make build"\n')
    commit_all(app_repo, "configure build command")
    res = gitops(["build", "--image", "gitops-test/app", "--tag", "v1-explicit"], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "gitops-test/app:v1-explicit"
    assert (app_repo / "build-output.txt").read_text() == "app build ran\n"


def test_a_build_command_that_changes_the_checkout_stops_before_the_image(gitops, app_repo: Path,
                                                                           docker_engine) -> None:
    """The tree is checked before the build command; one that then rewrites a tracked file (npm install
    and its lock file) or leaves an untracked one would put into the image what the revision label does
    not name: refused (exit 4, naming them); ignored outputs are fine."""
    image = f"gitops-test/changed-{app_repo.parent.name.lower()}"  # this test's own: the engine is shared
    res = gitops(["build", "--image", image, "--tag", "changed"], cwd=app_repo,
                 env={"GITOPS_BUILD_COMMAND": "echo x >> app.sh; touch new.lock; make build"})
    assert res.returncode == 4, res.stderr
    assert ("the build command 'echo x >> app.sh; touch new.lock; make build' changed the working tree after it "
            "was tagged changed: app.sh, new.lock;") in res.stderr
    assert docker_engine.images(name=image) == []

    # --allow-dirty: the state checked is the one the image is built from, so it must not change either
    res = gitops(["build", "--image", image, "--allow-dirty"], cwd=app_repo,
                 env={"GITOPS_BUILD_COMMAND": "echo y >> app.sh"})
    assert res.returncode == 4, res.stderr
    assert "the build command 'echo y >> app.sh' changed the uncommitted state tagged" in res.stderr
    assert docker_engine.images(name=image) == []


def test_failing_build_command_stops_before_the_image(gitops, app_repo: Path, docker_engine) -> None:
    res = gitops(["build", "--image", "gitops-test/app", "--tag", "nobuild"], cwd=app_repo,
                 env={"GITOPS_BUILD_COMMAND": "echo compiling; exit 4"})
    assert res.returncode == 5
    assert "build command 'echo compiling; exit 4' failed with exit status 4" in res.stderr
    assert "compiling" in res.stderr
    assert docker_engine.images(name="gitops-test/app:nobuild") == []


def test_the_build_command_is_shown_as_it_is_run(gitops, app_repo: Path) -> None:
    """Its progress line shows the command itself (backslashes not doubled as repr doubles them), only a
    control character in it escaped; the command fails here, so no image is built."""
    (app_repo / "gitops.toml").write_text("build_command = 'grep \"a\\|b\" no-such-file;\texit 4'\n")
    commit_all(app_repo, "a build command with a backslash and a tab")
    res = gitops(["build", "--image", "gitops-test/app", "--tag", "shown-as-run"], cwd=app_repo)
    assert res.returncode == 5, res.stderr
    assert '==> Running the build command: grep "a\\|b" no-such-file;\\texit 4\n' in res.stderr


@BUILDERS
def test_failing_build_names_step_and_last_lines(gitops, tmp_path: Path, base_image: str, builder) -> None:
    failing_step = 'RUN echo "compiling module x" && echo "fatal: missing symbol" >&2 && exit 3\n'
    broken = DOCKERFILE.replace('CMD ["/app/app.sh"]', failing_step + 'CMD ["/app/app.sh"]')
    repo = sample_app(tmp_path / "app", dockerfile=broken)
    res = gitops(["build", "--image", "gitops-test/broken"], cwd=repo, env=builder)
    assert res.returncode == 5, res.stderr
    lines = res.stderr.splitlines()
    error, hint = lines[-2:]  # one error line and its hint end the output; the step's last lines come first
    assert error.startswith("error: ") and hint.startswith("hint: ")
    if builder:
        assert "image build failed at Step 5/7 : RUN echo" in error
        assert "returned a non-zero code: 3" in error
    else:
        assert "image build failed at [4/4] RUN echo" in error and "exit code: 3" in error
    last = lines[len(lines) - 1 - lines[::-1].index("last log lines:"):-2]
    assert any("compiling module x" in ln for ln in last) and any("fatal: missing symbol" in ln for ln in last)
    assert all(ln.startswith("  ") for ln in last[1:])
    assert res.stdout == ""
    assert "Traceback" not in res.stderr


def test_build_args_target_file_and_context(gitops, tmp_path: Path, base_image: str, docker_engine) -> None:
    multi = (
        f"FROM {base_image} AS base\nARG GREETING\nRUN echo \"$GREETING\" > /greeting\n"
        f"FROM base AS final\nLABEL stage=final\n"
    )
    repo = sample_app(tmp_path / "app", extra_files={"docker/Multi.dockerfile": multi})
    res = gitops(["build", "--image", "gitops-test/multi", "--file", "docker/Multi.dockerfile",
                  "--build-arg", "GREETING=hello from arg", "--target", "base", "--network", "none",
                  "--label", f"gitops.test={TEST_LABEL_VALUE}"], cwd=repo)
    assert res.returncode == 0, res.stderr
    ref = res.stdout.splitlines()[0]
    labels = docker_engine.inspect_image(ref)["Config"]["Labels"]
    assert "stage" not in labels  # --target base stopped before the final stage
    # the labels are on the target stage, not on the (unbuilt) last one
    assert labels["gitops.test"] == TEST_LABEL_VALUE and labels["org.opencontainers.image.version"] == ref[-7:]
    assert labels["org.opencontainers.image.revision"] == git(repo, "rev-parse", "HEAD")
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "cat", "/greeting"],
                         capture_output=True, text=True)
    assert out.stdout == "hello from arg\n"


def test_labels_with_odd_characters_and_dockerignore(gitops, tmp_path: Path, base_image: str,
                                                    docker_engine) -> None:
    """Quotes, `$` and backslashes survive the LABEL line; .dockerignore still applies; the generated
    Dockerfile is not copied into the image; a rebuild is a cache hit (same image id)."""
    dockerfile = DOCKERFILE.replace("COPY app.sh test.sh /app/", "COPY . /ctx/\nCOPY app.sh test.sh /app/")
    repo = sample_app(tmp_path / "app", dockerfile=dockerfile,
                      extra_files={".dockerignore": "secret.txt\n.git\n", "secret.txt": "s3cret\n"})
    odd = 'say "hi" to $HOME and ${USER} \\ `now`'
    args = ["build", "--image", "gitops-test/odd", "--label", f"odd={odd}", "--build-arg", "X=1"]
    first, second = gitops(args, cwd=repo), gitops(args, cwd=repo)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "builder: BuildKit\n" in first.stderr  # BuildKit takes the tar as sent: gitops left out secret.txt
    assert first.stdout == second.stdout
    ref = first.stdout.splitlines()[0]
    assert docker_engine.inspect_image(ref)["Config"]["Labels"]["odd"] == odd
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "ls", "-A", "/ctx"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    copied = set(out.stdout.split())
    assert {"Dockerfile", "app.sh", "Makefile"} <= copied
    assert not {"secret.txt", ".git", ".gitops-build.Dockerfile"} & copied


def test_legacy_builder_copies_the_users_own_dockerignore(gitops, tmp_path: Path, base_image: str) -> None:
    """The legacy builder's labelled Dockerfile is left out through the tar's `.dockerignore`, which then
    has one more line.  When `COPY .` copies a `.dockerignore` that does not exclude itself, the labels
    go through the build API instead (a step each), so the image holds the user's file byte for byte;
    without such a COPY, they stay one LABEL step."""
    ignore = "# keep out\r\nsecret.txt\r\n.git"  # CRLF, no final newline: the bytes must survive as written
    dockerfile = DOCKERFILE.replace("COPY app.sh test.sh /app/", "COPY . /ctx/\nCOPY app.sh test.sh /app/")
    repo = sample_app(tmp_path / "app", dockerfile=dockerfile,
                      extra_files={".dockerignore": ignore, "secret.txt": "s3cret\n"})
    res = gitops(["build", "--image", "gitops-test/own-ignore"], cwd=repo, env={"DOCKER_BUILDKIT": "0"})
    assert res.returncode == 0, res.stderr
    ref = res.stdout.splitlines()[0]
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "cat", "/ctx/.dockerignore"],
                         capture_output=True)
    assert out.returncode == 0 and out.stdout == ignore.encode(), out
    assert not {"secret.txt", ".git", ".gitops-build.Dockerfile"} & ls_ctx(ref)
    assert sum(" : LABEL " in ln for ln in res.stderr.splitlines()) > 2  # the API's labels, one step each

    plain = sample_app(tmp_path / "plain", extra_files={".dockerignore": ignore, "secret.txt": "s3cret\n"})
    res = gitops(["build", "--image", "gitops-test/own-ignore", "--tag", "plain"], cwd=plain,
                 env={"DOCKER_BUILDKIT": "0"})
    assert res.returncode == 0, res.stderr
    assert sum(" : LABEL " in ln for ln in res.stderr.splitlines()) == 2  # the Dockerfile's own, then ours


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--image", "Gitops-Test/App"], "must be lowercase"),
        (["--image", "gitops-test/app:tag"], "without tag or digest"),
        (["--image", "gitops-test/app", "--tag", "x" * 129], "longer than 128"),
        (["--image", "gitops-test/app", "--tag", "bad/tag"], "invalid tag"),
        (["--image", "gitops-test/app", "--build-arg", "=VALUE"], "'=VALUE': expected KEY=VALUE or KEY"),
        (["--image", "gitops-test/app", "--label", "org.opencontainers.image.revision=0123"],
         "--label 'org.opencontainers.image.revision=0123': gitops sets the label org.opencontainers.image.revision "
         "itself: it is the commit built"),
        (["--image", "gitops-test/app", "--label", "dev.gitops-cli.tested-command=make test"],
         "gitops sets the label dev.gitops-cli.tested-command itself"),
        (["--image", "gitops-test/app", "--target", "x\udcff"], "--target 'x\\xff': not a build stage name"),
        (["--image", "gitops-test/app", "--target", "-x"], "not a build stage name"),
        (["--image", "gitops-test/app", "--network", "x\udcff"], "not a network name"),
        (["--image", "gitops-test/app", "--network", "my net"], "not a network name"),
    ],
)
def test_invalid_input_exits_2_before_any_work(gitops, tmp_path: Path, args, fragment) -> None:
    repo = sample_app(tmp_path / "app", extra_files={"gitops.toml": 'build_command = "touch ran.txt"\n'})
    res = gitops(["build", *args], cwd=repo)
    assert res.returncode == 2, res.stderr
    assert fragment in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.startswith("error:")]) == 1
    assert not (repo / "ran.txt").exists()


def test_dirty_tree_refused(gitops, app_repo: Path) -> None:
    (app_repo / "app.sh").write_text("#!/bin/sh\necho changed\n")
    res = gitops(["build", "--image", "gitops-test/app"], cwd=app_repo)
    assert res.returncode == 4
    assert "app.sh" in res.stderr


def test_changes_git_status_does_not_show_are_refused(gitops, app_repo: Path, docker_engine) -> None:
    """A file marked skip-worktree with local content, an executable bit under core.fileMode=false: git
    status is clean, but the engine would copy both into an image labelled as the commit.  Exit 4,
    before the engine is used; the index keeps its flags."""
    git(app_repo, "update-index", "--skip-worktree", "test.sh")
    (app_repo / "test.sh").write_text("LOCAL-CREDS\n")
    git(app_repo, "config", "core.fileMode", "false")
    (app_repo / "Dockerfile").chmod(0o755)
    assert git(app_repo, "status", "--porcelain") == ""
    image = f"gitops-test/hidden-{app_repo.parent.name.lower()}"
    for verb in (["tag"], ["build", "--image", image]):
        res = gitops(verb, cwd=app_repo)
        assert res.returncode == 4, res.stderr
        assert "must name one source state: Dockerfile, test.sh" in res.stderr
    assert docker_engine.images(name=image) == []
    assert git(app_repo, "ls-files", "-v", "test.sh") == "S test.sh"


def test_engine_unreachable_is_one_clear_line(gitops, app_repo: Path, tmp_path: Path) -> None:
    sock = tmp_path / "no-engine.sock"
    res = gitops(["build", "--image", "gitops-test/app"], cwd=app_repo, env={"DOCKER_HOST": f"unix://{sock}"})
    assert res.returncode == 7
    assert f"container engine unreachable at unix://{sock} (DOCKER_HOST)" in res.stderr
    assert "hint:" in res.stderr and "Traceback" not in res.stderr



def test_a_credential_helper_that_is_not_installed_does_not_stop_the_build(gitops, app_repo: Path,
                                                                           tmp_path: Path) -> None:
    """A Docker Desktop config (`credsStore: desktop`) on a runner without the helper: the SDK asks every
    helper for a build's registry credentials; as `docker build`, gitops warns and builds without them."""
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text('{"credsStore": "gitops-test-no-such-helper"}')
    res = gitops(["build", "--image", "gitops-test/app", "--tag", "helperless"], cwd=app_repo,
                 env={"DOCKER_CONFIG": str(config), **LEGACY})
    assert res.returncode == 0, res.stderr
    assert (f"warning: {config / 'config.json'}: credential helper docker-credential-gitops-test-no-such-helper "
            "failed (not installed); going on without the docker config's credentials, as docker does\n"
            ) in res.stderr and "internal error" not in res.stderr
    assert res.stdout.splitlines()[0] == "gitops-test/app:helperless"
    # BuildKit (the base image is in the engine: nothing to pull) asks no helper at all
    res = gitops(["build", "--image", "gitops-test/app", "--tag", "helperless"], cwd=app_repo,
                 env={"DOCKER_CONFIG": str(config)})
    assert res.returncode == 0, res.stderr
    assert "builder: BuildKit\n" in res.stderr and "warning" not in res.stderr
    subprocess.run(["docker", "image", "rm", "gitops-test/app:helperless"], capture_output=True, check=False)


def test_legacy_builder_gives_a_base_images_onbuild_copy_the_users_own_dockerignore(gitops, tmp_path: Path,
                                                                                    base_image: str) -> None:
    """A base image's `ONBUILD COPY . /onb/` runs as part of the build: the labels then go through the
    build API, so the copy is the user's `.dockerignore`, as with `docker build` (not the tar's, with
    the line naming the labelled Dockerfile)."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "Dockerfile").write_text(f"FROM {base_image}\nONBUILD COPY . /onb/\n")
    subprocess.run(["docker", "build", "-q", "-t", "builder-gitops-test/onbase:1", str(base)], check=True,
                   capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "Dockerfile").write_text("FROM builder-gitops-test/onbase:1\n")
    (repo / ".dockerignore").write_text("secret\n")
    commit_all(repo)
    try:
        res = gitops(["build", "--image", "builder-gitops-test/onbuild", "--tag", "t"], cwd=repo, env=LEGACY)
        assert res.returncode == 0, res.stderr
        out = subprocess.run(["docker", "run", "--rm", "--network", "none", "builder-gitops-test/onbuild:t", "cat",
                              "/onb/.dockerignore"], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout == "secret\n", out
    finally:
        for ref in ("builder-gitops-test/onbuild:t", "builder-gitops-test/onbase:1"):
            subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)


def ls_ctx(ref: str) -> set[str]:
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", ref, "ls", "-A", "/ctx"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_a_dockerignore_that_excludes_the_dockerfile_gets_the_legacy_builder(gitops, tmp_path: Path,
                                                                           base_image: str) -> None:
    """BuildKit without a client session takes the context tar as it is, and the tar must hold the
    Dockerfile: `COPY .` would copy what .dockerignore excludes.  So gitops builds such a context with
    the legacy builder, and refuses DOCKER_BUILDKIT=1 for it."""
    dockerfile = DOCKERFILE.replace("COPY app.sh test.sh /app/", "COPY . /ctx/\nCOPY app.sh test.sh /app/")
    repo = sample_app(tmp_path / "app", dockerfile=dockerfile, extra_files={".dockerignore": "Dockerfile\n.git\n"})
    res = gitops(["build", "--image", "gitops-test/ignored"], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert "builder: legacy (.dockerignore excludes the Dockerfile (Dockerfile))" in res.stderr
    copied = ls_ctx(res.stdout.splitlines()[0])
    assert "app.sh" in copied and not {"Dockerfile", ".git"} & copied

    forced = gitops(["build", "--image", "gitops-test/ignored", "--tag", "forced"], cwd=repo,
                    env={"DOCKER_BUILDKIT": "1"})
    assert forced.returncode == 2, forced.stderr
    assert "DOCKER_BUILDKIT=1, but BuildKit cannot build this context: .dockerignore excludes the Dockerfile" \
        in forced.stderr
    bogus = gitops(["build", "--image", "gitops-test/ignored"], cwd=repo, env={"DOCKER_BUILDKIT": "yes"})
    assert bogus.returncode == 2 and "DOCKER_BUILDKIT='yes': expected a boolean (1 or 0)" in bogus.stderr


def test_buildkit_only_syntax_with_a_dockerignore_that_keeps_buildkit_out_is_exit_2(gitops, tmp_path: Path,
                                                                                    base_image: str) -> None:
    """A `docker init` project: `.dockerignore` excludes the Dockerfile and itself, so gitops cannot give
    BuildKit the context, and the legacy builder cannot build `RUN --mount`.  Refused before the build,
    naming the line and the `!` lines to end `.dockerignore` with, with and without DOCKER_BUILDKIT=1 (whose
    hint no longer sends the user to the legacy builder); with those lines it builds with BuildKit."""
    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "f").write_text("from the bind mount\n")
    (repo / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN --mount=type=cache,target=/root/.cache --mount=type=bind,source=f,target=/tmp/f "
        "cat /tmp/f > /f\n")
    (repo / ".dockerignore").write_text("**/.git\n**/Dockerfile*\n**/.dockerignore\n")
    ran = tmp_path / "ran"
    (repo / "gitops.toml").write_text(f'build_command = "touch {ran}"\n')
    commit_all(repo)
    drop = "hint: end .dockerignore with `!Dockerfile` and `!.dockerignore`, and gitops builds with BuildKit "
    res = gitops(["build", "--image", "builder-gitops-test/docker-init"], cwd=repo)
    assert res.returncode == 2, res.stderr
    assert ("error: Dockerfile line 2: RUN --mount needs BuildKit, and gitops can build this only with the legacy "
            "builder: .dockerignore excludes the Dockerfile (Dockerfile)\n" + drop) in res.stderr
    assert "Step 1/" not in res.stderr and res.stdout == ""
    # refused before any work: before `gitops build`'s build command, before build-and-bump's tests
    res = gitops(["build", "--image", "builder-gitops-test/docker-init"], cwd=repo)
    assert res.returncode == 2 and "RUN --mount needs BuildKit" in res.stderr and not ran.exists(), res.stderr
    deploy = tmp_path / "deploy.git"
    git(tmp_path, "init", "-q", "--bare", str(deploy))
    res = gitops(["build-and-bump", "--image", "builder-gitops-test/docker-init", "--deploy-repo", f"file://{deploy}",
                  "--test-command", f"touch {ran}"], cwd=repo)
    assert res.returncode == 2 and "RUN --mount needs BuildKit" in res.stderr and not ran.exists(), res.stderr
    assert "Running the tests" not in res.stderr and "Tag " not in res.stderr
    forced = gitops(["build", "--image", "builder-gitops-test/docker-init"], cwd=repo, env={"DOCKER_BUILDKIT": "1"})
    assert forced.returncode == 2, forced.stderr
    assert "(and the legacy builder cannot build Dockerfile line 2: RUN --mount)\n" + drop in forced.stderr
    assert "legacy builder)" not in forced.stderr  # no "unset DOCKER_BUILDKIT (gitops then uses the legacy builder)"

    (repo / ".dockerignore").write_text("**/.git\n**/Dockerfile*\n**/.dockerignore\n!Dockerfile\n!.dockerignore\n")
    commit_all(repo)
    # asked for the legacy builder: the line it would fail at
    legacy = gitops(["build", "--image", "builder-gitops-test/docker-init"], cwd=repo, env={"DOCKER_BUILDKIT": "0"})
    assert legacy.returncode == 2 and not ran.exists(), legacy.stderr
    assert ("error: Dockerfile line 2: RUN --mount needs BuildKit, and DOCKER_BUILDKIT=0 asks for the legacy builder\n"
            "hint: unset DOCKER_BUILDKIT (or set it to 1)") in legacy.stderr
    res = gitops(["build", "--image", "builder-gitops-test/docker-init", "--tag", "kept"], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert "builder: BuildKit\n" in res.stderr
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "builder-gitops-test/docker-init:kept",
                          "cat", "/f"], capture_output=True, text=True)
    assert out.stdout == "from the bind mount\n"
    subprocess.run(["docker", "image", "rm", "builder-gitops-test/docker-init:kept"], capture_output=True, check=False)


def test_builder_choice_on_the_engine(tmp_path: Path, base_image: str, docker_engine) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\nCOPY . /ctx\n")
    choose = lambda **kw: engine.choose_builder(docker_engine, context=str(tmp_path), dockerfile=None,  # noqa: E731
                                                environ={}, **kw)
    assert choose() == engine.Builder(True)
    assert choose(network="host") == choose(network="none") == engine.Builder(True)
    assert choose(network="my-net") == engine.Builder(
        False, "--network my-net: BuildKit runs steps only on the host network or none")
    assert choose(cache_from=["app:1"]).why == "--cache-from (the legacy builder takes local images as its cache)"
    assert engine.choose_builder(docker_engine, context=str(tmp_path), dockerfile=None,
                                 environ={"DOCKER_BUILDKIT": "0"}) == engine.Builder(False, "DOCKER_BUILDKIT=0")


def test_a_base_image_pulled_with_docker_config_credentials_gets_the_legacy_builder(
    gitops, tmp_path: Path, base_image: str, auth_registry: Registry, docker_engine
) -> None:
    """BuildKit without a client session pulls without credentials; the legacy builder sends the docker
    config's.  A base image that must come from a registry the docker config has credentials for is
    built with the legacy builder, which pulls it."""
    auth = {"username": AUTH_USER, "password": AUTH_PASSWORD}
    base = auth_registry.image("team/base")
    docker_engine.tag(base_image, base, "1")
    for _ in docker_engine.push(base, tag="1", auth_config=auth, stream=True, decode=True):
        pass
    docker_engine.remove_image(f"{base}:1")
    config = tmp_path / "docker-config"
    config.mkdir()
    token = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    repo = sample_app(tmp_path / "app", dockerfile=DOCKERFILE.replace(f"FROM {base_image}", f"FROM {base}:1"))
    res = gitops(["build", "--image", "gitops-test/private-base"], cwd=repo, env={"DOCKER_CONFIG": str(config)})
    try:
        assert res.returncode == 0, res.stderr
        assert (f"builder: legacy ({base}:1 is pulled with the docker config's credentials for "
                f"{auth_registry.host}, which BuildKit without a client session would not send)") in res.stderr
        assert AUTH_PASSWORD not in res.stdout + res.stderr
        # now in the engine: nothing to pull, BuildKit
        again = gitops(["build", "--image", "gitops-test/private-base", "--tag", "again"], cwd=repo,
                       env={"DOCKER_CONFIG": str(config)})
        assert again.returncode == 0 and "builder: BuildKit\n" in again.stderr, again.stderr
    finally:
        for ref in (f"{base}:1", res.stdout.split("\n")[0], "gitops-test/private-base:again"):
            subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)


def test_the_legacy_builders_credentials_come_from_helpers_gitops_runs(gitops, tmp_path: Path, base_image: str,
                                                                      auth_registry: Registry, docker_engine) -> None:
    """The legacy builder gets every registry's credentials (X-Registry-Config), which the docker SDK
    gathered by running the docker config's credential helpers itself: a failing helper's stderr went
    straight to gitops' stderr (escape sequences, a secret, every line), before gitops' own warning
    without its words.  gitops runs them now: the credentials still reach the builder (a credsStore's
    list and get), and a failing helper is one warning with its first line, escaped and redacted."""
    auth = {"username": AUTH_USER, "password": AUTH_PASSWORD}
    base = auth_registry.image("team/helper-base")
    docker_engine.tag(base_image, base, "1")
    for _ in docker_engine.push(base, tag="1", auth_config=auth, stream=True, decode=True):
        pass
    docker_engine.remove_image(f"{base}:1")
    helpers = {
        "gitops-test-store": f"""read server
case "$1" in
  list) echo '{{"{auth_registry.host}": "{AUTH_USER}"}}' ;;
  get) [ "$server" = "{auth_registry.host}" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}
       echo '{{"ServerURL": "'$server'", "Username": "{AUTH_USER}", "Secret": "{AUTH_PASSWORD}"}}' ;;
  *) exit 3 ;;
esac
""",
        "gitops-test-locked": ("cat >/dev/null\n"
                               f"printf 'keychain \\033[31mlocked for {AUTH_PASSWORD}\\n(second line)\\n' >&2\n"
                               "exit 1\n"),
    }
    config, env = credential_helpers(tmp_path, {
        "credsStore": "gitops-test-store", "credHelpers": {"other.gitops-test.invalid": "gitops-test-locked"}},
        helpers)
    repo = sample_app(tmp_path / "app", dockerfile=DOCKERFILE.replace(f"FROM {base_image}", f"FROM {base}:1"))
    res = gitops(["build", "--image", "gitops-test/helper-base"], cwd=repo, env={**env, **LEGACY})
    try:
        assert res.returncode == 0, res.stderr
        assert "builder: legacy (DOCKER_BUILDKIT=0)\n" in res.stderr
        lines = [ln for ln in res.stderr.splitlines() if "locked" in ln or "credential" in ln or "second" in ln]
        assert lines == [f"warning: {config / 'config.json'}: credential helper docker-credential-gitops-test-locked "
                         "failed (keychain \\x1b[31mlocked for ***); going on without the docker config's credentials, "
                         "as docker does"], res.stderr
        assert "\x1b" not in res.stderr and AUTH_PASSWORD not in res.stdout + res.stderr
    finally:
        for ref in (f"{base}:1", res.stdout.split("\n")[0]):
            subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)


@BUILDERS
def test_network_default_is_the_engines_default_network(gitops, tmp_path: Path, base_image: str, docker_engine,
                                                      builder) -> None:
    """`--network default` builds as without --network: on an engine without its `bridge` network
    (dockerd --bridge=none) BuildKit's RUN steps get none, as the legacy builder's; passed on as it is,
    BuildKit failed with "network bridge not found"."""
    import uuid

    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo {uuid.uuid4().hex}\n")  # never cached
    commit_all(repo)
    res = gitops(["build", "--image", "builder-gitops-test/network", "--tag", "default", "--network", "default"],
                 cwd=repo, env=builder)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "builder-gitops-test/network:default"
    docker_engine.remove_image("builder-gitops-test/network:default")


def test_legacy_step_output_that_looks_like_a_step_is_no_heading(gitops, tmp_path: Path, base_image: str) -> None:
    """Only the legacy builder's own step lines are headings and the failing step; a step's output is
    shown as it is, ` ---> ` lines included."""
    import uuid

    repo = tmp_path / "app"
    repo.mkdir()
    git(repo, "init", "-q")
    fake = f"Step 7/9 : RUN fake{uuid.uuid4().hex[:8]}"  # never cached
    (repo / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo '{fake}'; echo ' ---> abc'; exit 3\n")
    commit_all(repo)
    res = gitops(["build", "--image", "builder-gitops-test/fake-step", "--tag", "f"], cwd=repo, env=LEGACY)
    assert res.returncode == 5, res.stderr
    lines = res.stderr.splitlines()
    assert f"==> {fake}" not in lines and fake in lines and " ---> abc" in lines
    assert "error: image build failed at Step 2/3 : RUN echo" in res.stderr  # then the LABEL step


def test_an_engine_without_buildkit_gets_the_legacy_builder(gitops, app_repo: Path, tmp_path: Path,
                                                           docker_engine) -> None:
    from tests.fixtures.engine_proxy import engine_proxy

    sock = tmp_path / "engine.sock"
    with engine_proxy(sock, refuse_buildkit=True) as seen:
        env = {"DOCKER_HOST": f"unix://{sock}"}
        res = gitops(["build", "--image", "gitops-test/app", "--tag", "no-buildkit"], cwd=app_repo, env=env)
        assert res.returncode == 0, res.stderr
        assert ("warning: the engine cannot build with BuildKit (buildkit not supported by daemon); using the "
                "legacy builder") in res.stderr
        assert "Step 1/" in res.stderr and res.stdout.splitlines()[0] == "gitops-test/app:no-buildkit"
        builds = [line for line in seen if line.startswith("POST") and "/build?" in line]
        assert len(builds) == 2 and "version=2" in builds[0] and "version=2" not in builds[1]

        forced = gitops(["build", "--image", "gitops-test/app", "--tag", "no-buildkit-forced"], cwd=app_repo,
                        env={**env, "DOCKER_BUILDKIT": "1"})
    assert forced.returncode == 5, forced.stderr
    assert ("error: DOCKER_BUILDKIT=1, but the engine cannot build with BuildKit: buildkit not supported by "
            "daemon") in forced.stderr
    assert docker_engine.images(name="gitops-test/app:no-buildkit-forced") == []
    docker_engine.remove_image("gitops-test/app:no-buildkit")


@BUILDERS
def test_a_full_tmpdir_does_not_stop_the_build(gitops, app_repo: Path, tmp_path: Path, docker_engine,
                                               builder) -> None:
    """The context tar is made while it is sent, not written to TMPDIR first: a TMPDIR with no room for it
    (64 KiB for a 256 KiB file) was exit 74; nothing of the build goes there now."""
    (app_repo / "big.bin").write_bytes(os.urandom(256 * 1024))
    commit_all(app_repo, "a big file")
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)], check=True)
    try:
        res = gitops(["build", "--image", "gitops-test/app", "--tag", "full-tmpdir"], cwd=app_repo,
                     env={"TMPDIR": str(tiny), **builder})
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[0] == "gitops-test/app:full-tmpdir" and list(tiny.iterdir()) == []
    finally:
        subprocess.run(["umount", str(tiny)], check=False)
        subprocess.run(["docker", "image", "rm", "gitops-test/app:full-tmpdir"], capture_output=True, check=False)


def _sysfs_file(kind: str) -> str:
    """A kernel file whose size (4096) is not what a read gives: `eio`, one whose read fails (Input/output
    error) after it opened; `short`, one that reads shorter; `unreadable`, one that even root may not open
    for reading (write-only).  The test is skipped without one."""
    import glob

    pattern = {"eio": "/sys/devices/system/*/power/autosuspend_delay_ms",
               "short": "/sys/kernel/mm/transparent_hugepage/enabled",
               "unreadable": "/sys/bus/*/rescan"}[kind]
    for path in sorted(glob.glob(pattern)):
        try:
            fd = os.open(path, os.O_RDONLY)
        except PermissionError:
            if kind == "unreadable":
                return path
            continue
        except OSError:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            if kind == "eio":
                return path
            continue
        finally:
            os.close(fd)
        if kind == "short" and 0 < len(data) < os.stat(path).st_size:
            return path
    pytest.skip(f"no kernel file for the {kind} case here")


@BUILDERS
def test_a_context_file_without_read_permission_is_exit_2_before_any_build_request(gitops, tmp_path: Path,
                                                                                 base_image: str, builder) -> None:
    """The context walk opens every file first (as the docker CLI's): a file that may not be read is refused
    before gitops sends the engine a build request, whichever builder."""
    from tests.fixtures.engine_proxy import engine_proxy

    repo = sample_app(tmp_path / "app", extra_files={".gitignore": "key.pem\n"})
    bad = repo / "key.pem"
    bad.write_bytes(b"")
    subprocess.run(["mount", "--bind", _sysfs_file("unreadable"), str(bad)], check=True)
    sock = tmp_path / "engine.sock"
    try:
        with engine_proxy(sock) as seen:
            res = gitops(["build", "--image", "gitops-test/unreadable"], cwd=repo,
                         env={"DOCKER_HOST": f"unix://{sock}", **builder})
    finally:
        subprocess.run(["umount", str(bad)], check=False)
    assert res.returncode == 2, res.stderr
    assert res.stderr.endswith("error: no permission to read key.pem in the build context\n"), res.stderr
    assert seen and not [line for line in seen if "/build" in line], seen  # the engine was asked, not to build


@BUILDERS
@pytest.mark.parametrize("kind, error", [
    ("eio", "cannot read data/bad.bin: Input/output error"),
    ("short", "data/bad.bin changed while it was being sent (it shrank: "),
], ids=["read-error", "shrank"])
def test_a_context_file_that_fails_while_it_is_sent_stops_the_build(gitops, tmp_path: Path, base_image: str,
                                                                    docker_engine, builder, kind, error) -> None:
    """The context is sent while it is read: a file whose read fails, or that is shorter than its header
    says (tarfile would have written a short member), after 3 MB of the context went to the engine, is
    gitops' own exit 2 naming it; the request is cut off, and the engine builds and tags nothing."""
    repo = sample_app(tmp_path / "app", extra_files={".gitignore": "data/bad.bin\n"})
    (repo / "data").mkdir()
    (repo / "data" / "a-first.bin").write_bytes(os.urandom(3_000_000))
    commit_all(repo, "data")
    bad = repo / "data" / "bad.bin"
    bad.write_bytes(b"")
    subprocess.run(["mount", "--bind", _sysfs_file(kind), str(bad)], check=True)
    try:
        res = gitops(["build", "--image", "gitops-test/cut-context", "--tag", kind], cwd=repo, env=builder)
    finally:
        subprocess.run(["umount", str(bad)], check=False)
    assert res.returncode == 2, res.stderr
    line = res.stderr[res.stderr.index("error: "):].splitlines()[0]
    assert line.startswith(f"error: build context {repo}: {error}"), res.stderr
    assert "Traceback" not in res.stderr and "lost the container engine" not in res.stderr
    assert docker_engine.images(name=f"gitops-test/cut-context:{kind}") == []


def test_a_dockerfile_symlink_whose_target_is_ignored_builds_with_the_legacy_builder(gitops, tmp_path: Path,
                                                                                    base_image: str) -> None:
    """BuildKit reads the Dockerfile from the context tar, where .dockerignore left the link's target out."""
    repo = sample_app(tmp_path / "app", extra_files={"docker/Dockerfile.prod": DOCKERFILE,
                                                     ".dockerignore": "docker\n.git\n"})
    (repo / "Dockerfile").unlink()
    (repo / "Dockerfile").symlink_to("docker/Dockerfile.prod")
    commit_all(repo, "the Dockerfile is a link")
    res = gitops(["build", "--image", "gitops-test/linked"], cwd=repo)
    assert res.returncode == 0, res.stderr
    assert "builder: legacy (the Dockerfile is a symbolic link" in res.stderr
    subprocess.run(["docker", "image", "rm", res.stdout.splitlines()[0]], capture_output=True, check=False)


@BUILDERS
def test_an_engine_that_goes_away_during_the_build_is_exit_7(gitops, tmp_path: Path, base_image: str,
                                                            builder) -> None:
    """The connection breaks in the middle of the build's answer (the engine died): one line, exit 7,
    as for an engine that is not there, and no temporary file left behind."""
    from tests.fixtures.engine_proxy import engine_proxy

    slow = DOCKERFILE.replace('CMD ["/app/app.sh"]', 'RUN echo one && sleep 1 && echo two\nCMD ["/app/app.sh"]')
    repo = sample_app(tmp_path / "app", dockerfile=slow)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    sock = tmp_path / "engine.sock"
    with engine_proxy(sock, cut_builds_after=600):
        res = gitops(["build", "--image", "gitops-test/cut", "--no-cache"], cwd=repo,
                     env={"DOCKER_HOST": f"unix://{sock}", "TMPDIR": str(scratch), **builder})
    assert res.returncode == 7, res.stderr
    assert "error: lost the container engine during the build: the connection broke" in res.stderr
    assert "internal error" not in res.stderr and list(scratch.iterdir()) == []
