"""`gitops publish` against the real engine and a real `docker-registry` (plain and htpasswd)."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.services import (
    AUTH_PASSWORD,
    AUTH_USER,
    BASE_IMAGE,
    TEST_LABEL,
    TEST_LABEL_VALUE,
    Registry,
    credential_helpers,
    free_port,
    git,
    sample_app,
)

pytestmark = pytest.mark.integration

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


def build(gitops, repo: Path, image: str, *extra: str, env: dict[str, str] | None = None) -> str:
    res = gitops(["build", "--image", image, *extra], cwd=repo, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[0]


def registry_digest(reg: Registry, path: str, tag: str) -> str:
    req = urllib.request.Request(f"{reg.url}/v2/{path}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": MANIFEST_ACCEPT})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["Docker-Content-Digest"]


def test_publish_then_republish_is_skipped(gitops, app_repo: Path, registry: Registry) -> None:
    ref = build(gitops, app_repo, registry.image())
    first = gitops(["publish", "--image", ref], cwd=app_repo)
    assert first.returncode == 0, first.stderr
    name_tag, digest = first.stdout.strip().split("@")
    assert name_tag == ref and digest.startswith("sha256:")
    assert registry_digest(registry, "team/app", ref.split(":")[-1]) == digest
    assert "Pushed" in first.stderr  # per-layer progress, plain lines off a TTY

    again = gitops(["publish", "--image", ref], cwd=app_repo)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert "already published" in again.stderr and "Pushing" not in again.stderr


def test_publish_derives_the_tag(gitops, app_repo: Path, registry: Registry) -> None:
    ref = build(gitops, app_repo, registry.image())
    res = gitops(["publish", "--image", registry.image()], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(ref + "@sha256:")


def test_cached_rebuild_counts_as_same_image(gitops, app_repo: Path, registry: Registry) -> None:
    ref = build(gitops, app_repo, registry.image())
    first = gitops(["publish", "--image", ref], cwd=app_repo)
    assert build(gitops, app_repo, registry.image()) == ref
    again = gitops(["publish", "--image", ref], cwd=app_repo)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "already published" in again.stderr


def test_uncached_rebuild_with_identical_layers_counts_as_same(
    gitops, tmp_path: Path, registry: Registry, base_image: str, docker_engine
) -> None:
    """Rule 3 (same layers and runtime config, other timestamps) on a metadata-only image.  The legacy
    builder: BuildKit makes the very same image again (same id)."""
    metadata_only = (f"FROM {BASE_IMAGE}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\nENV MODE=prod\n"
                     'CMD ["/bin/sh", "-c", "echo hello"]\n')
    repo = sample_app(tmp_path / "app", dockerfile=metadata_only)
    ref = build(gitops, repo, registry.image(), env={"DOCKER_BUILDKIT": "0"})
    first_id = docker_engine.inspect_image(ref)["Id"]
    first = gitops(["publish", "--image", ref], cwd=repo)
    assert first.returncode == 0, first.stderr
    build(gitops, repo, registry.image(), "--no-cache", env={"DOCKER_BUILDKIT": "0"})
    assert docker_engine.inspect_image(ref)["Id"] != first_id  # new timestamps, new config digest
    again = gitops(["publish", "--image", ref], cwd=repo)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert "already published" in again.stderr


def test_uncached_rebuild_with_new_file_layers_is_refused(
    gitops, app_repo: Path, registry: Registry, docker_engine
) -> None:
    """The legacy builder stamps new mtimes into rebuilt layers: not provably the same image."""
    ref = build(gitops, app_repo, registry.image())
    first = gitops(["publish", "--image", ref], cwd=app_repo)
    assert first.returncode == 0, first.stderr
    build(gitops, app_repo, registry.image(), "--no-cache")
    again = gitops(["publish", "--image", ref], cwd=app_repo)
    assert again.returncode == 6
    assert "refusing to overwrite" in again.stderr


def test_overwrite_refused_names_both_digests(gitops, tmp_path: Path, registry: Registry, base_image: str,
                                              docker_engine) -> None:
    repo = sample_app(tmp_path / "app")
    ref = build(gitops, repo, registry.image(), "--tag", "release-1")
    first = gitops(["publish", "--image", ref], cwd=repo)
    assert first.returncode == 0, first.stderr
    published = first.stdout.strip().split("@")[1]

    sample_app(repo, version="2")  # new commit, different content, same explicit tag
    build(gitops, repo, registry.image(), "--tag", "release-1")
    local_id = docker_engine.inspect_image(ref)["Id"]
    refused = gitops(["publish", "--image", ref], cwd=repo)
    assert refused.returncode == 6, refused.stderr
    assert published in refused.stderr and local_id in refused.stderr
    assert refused.stdout == ""
    assert registry_digest(registry, "team/app", "release-1") == published

    forced = gitops(["publish", "--image", ref, "--allow-overwrite"], cwd=repo)
    assert forced.returncode == 0, forced.stderr
    new_digest = forced.stdout.strip().split("@")[1]
    assert new_digest != published
    assert registry_digest(registry, "team/app", "release-1") == new_digest


@pytest.mark.parametrize("tag", ["latest", "main", "Stable", "dev"])
def test_mutable_tags_refused(gitops, app_repo: Path, registry: Registry, tag: str) -> None:
    res = gitops(["publish", "--image", f"{registry.image()}:{tag}"], cwd=app_repo)
    assert res.returncode == 6
    assert "mutable tag" in res.stderr and "--allow-mutable-tag" in res.stderr


def test_mutable_tag_allowed_with_flag(gitops, app_repo: Path, registry: Registry) -> None:
    build(gitops, app_repo, registry.image(), "--tag", "latest")
    res = gitops(["publish", "--image", f"{registry.image()}:latest", "--allow-mutable-tag"], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"{registry.image()}:latest@sha256:")


@pytest.mark.parametrize(
    "image, fragment",
    [
        ("127.0.0.1:5000/Team/App:1", "lowercase"),
        ("127.0.0.1:5000/team/app:" + "t" * 129, "longer than 128"),
        ("127.0.0.1:5000/team/app:bad!tag", "invalid"),
        ("127.0.0.1:5000/team/app@sha256:" + "a" * 64, "NAME:TAG"),
    ],
)
def test_invalid_image_exits_2(gitops, app_repo: Path, image: str, fragment: str) -> None:
    res = gitops(["publish", "--image", image], cwd=app_repo, env={"DOCKER_HOST": "unix:///nonexistent"})
    assert res.returncode == 2, res.stderr  # rejected before contacting the engine
    assert fragment in res.stderr


def test_registry_down(gitops, app_repo: Path, docker_engine) -> None:
    port = free_port()  # nothing listens there
    ref = build(gitops, app_repo, f"127.0.0.1:{port}/team/app")
    res = gitops(["publish", "--image", ref], cwd=app_repo)
    assert res.returncode == 8
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and f"http://127.0.0.1:{port}/v2/team/app/manifests/" in errors[0]
    assert "Connection refused" in errors[0]
    assert "Traceback" not in res.stderr


def test_a_registry_that_stops_answering_uploads_ends_the_push(gitops, app_repo: Path, registry: Registry) -> None:
    """The engine has no timeout of its own: a push to a registry that accepts the connection and never
    answers an upload hung until the CI job's own timeout.  With no word from the engine for
    GITOPS_PUSH_STALL_TIMEOUT seconds it is given up: exit 8, nothing published."""
    from tests.fixtures.registry_proxy import hanging_uploads

    with hanging_uploads(registry.host) as stuck:
        ref = build(gitops, app_repo, f"{stuck}/team/app")
        # a push that is never given up hangs: TimeoutExpired
        res = gitops(["publish", "--image", ref], cwd=app_repo, env={"GITOPS_PUSH_STALL_TIMEOUT": "3"}, timeout=120)
        bad = gitops(["publish", "--image", ref], cwd=app_repo, env={"GITOPS_PUSH_STALL_TIMEOUT": "0"})
    assert res.returncode == 8, res.stderr
    assert "no word from the engine for 3 s: the push is stuck (a registry that stopped answering" in res.stderr
    assert "Traceback" not in res.stderr
    with pytest.raises(urllib.error.HTTPError):  # nothing published
        registry_digest(registry, "team/app", ref.split(":")[-1])
    assert bad.returncode == 2 and "GITOPS_PUSH_STALL_TIMEOUT='0'" in bad.stderr
    # checked before any work, also when nothing is pushed (the registry is gone now: exit 8 otherwise)
    res = gitops(["publish", "--image", ref], cwd=app_repo, env={"GITOPS_PUSH_STALL_TIMEOUT": "abc"})
    assert res.returncode == 2 and "GITOPS_PUSH_STALL_TIMEOUT='abc'" in res.stderr
    res = gitops(["build-and-bump", "--image", f"{stuck}/team/app", "--deploy-repo", str(app_repo)],
                 cwd=app_repo, env={"GITOPS_PUSH_STALL_TIMEOUT": "abc"})
    assert res.returncode == 2 and "GITOPS_PUSH_STALL_TIMEOUT='abc'" in res.stderr and "Running" not in res.stderr


def test_a_push_given_up_leaves_the_engines_upload_until_the_registry_ends_it(gitops, app_repo: Path,
                                                                              registry: Registry) -> None:
    """Giving up closes gitops' request to the engine, but the engine's upload stays open (Docker Engine
    20.10 does not cancel an upload request under way), and a re-run joins it: the error said nothing of
    it, and the README's "the push is given up" promised a fresh start.  Once the registry side ends the
    connection, a re-run starts afresh and goes through."""
    import time

    from tests.fixtures.registry_proxy import stuck_uploads

    with stuck_uploads(registry.host) as proxy:
        ref = build(gitops, app_repo, f"{proxy.host}/team/app")
        env = {"GITOPS_PUSH_STALL_TIMEOUT": "3"}
        res = gitops(["publish", "--image", ref], cwd=app_repo, env=env, timeout=120)
        assert res.returncode == 8, res.stderr
        assert ("hint: the engine keeps its upload open until the registry ends it, and a re-run waits on that "
                "upload again: fix the registry (or what is in front of it), or restart the engine\n") in res.stderr
        uploads = proxy.uploads
        assert uploads >= 1 and len(proxy.held) == uploads
        again = gitops(["publish", "--image", ref], cwd=app_repo, env=env, timeout=120)
        assert again.returncode == 8, again.stderr
        assert proxy.uploads == uploads  # no upload of its own: it joined the engine's stuck one
        proxy.release()  # the registry (a load balancer's idle timeout) ends the held connections
        time.sleep(1)
        res = gitops(["publish", "--image", ref], cwd=app_repo, env={"GITOPS_PUSH_STALL_TIMEOUT": "60"}, timeout=120)
        assert res.returncode == 0, res.stderr
        assert proxy.uploads > uploads
        assert res.stdout == f"{ref}@{registry_digest(registry, 'team/app', ref.split(':')[-1])}\n"


def test_image_not_built(gitops, app_repo: Path, registry: Registry, docker_engine) -> None:
    res = gitops(["publish", "--image", f"{registry.image()}:neverbuilt"], cwd=app_repo)
    assert res.returncode == 2
    assert "not found in the container engine" in res.stderr and "gitops build" in res.stderr


# --- htpasswd registry -------------------------------------------------------------------------------
def assert_no_password(*outputs: str) -> None:
    for text in outputs:
        assert AUTH_PASSWORD not in text
        assert base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode() not in text


def test_auth_registry_password_stdin(gitops, app_repo: Path, auth_registry: Registry) -> None:
    ref = build(gitops, app_repo, auth_registry.image())
    res = gitops(["publish", "--image", ref, "--username", AUTH_USER, "--password-stdin"], cwd=app_repo,
                 input=AUTH_PASSWORD + "\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(ref + "@sha256:")
    again = gitops(["publish", "--image", ref, "--username", AUTH_USER, "--password-stdin"], cwd=app_repo,
                   input=AUTH_PASSWORD + "\n")
    assert again.returncode == 0 and "already published" in again.stderr
    assert_no_password(res.stdout, res.stderr, again.stdout, again.stderr)


def test_auth_registry_env_credentials(gitops, app_repo: Path, auth_registry: Registry) -> None:
    ref = build(gitops, app_repo, auth_registry.image())
    res = gitops(["publish", "--image", ref], cwd=app_repo,
                 env={"GITOPS_REGISTRY_USERNAME": AUTH_USER, "GITOPS_REGISTRY_PASSWORD": AUTH_PASSWORD})
    assert res.returncode == 0, res.stderr
    assert_no_password(res.stdout, res.stderr)


def test_auth_registry_docker_config(gitops, app_repo: Path, auth_registry: Registry, tmp_path: Path) -> None:
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    auth = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {auth_registry.host: {"auth": auth}}}))
    ref = build(gitops, app_repo, auth_registry.image())
    res = gitops(["publish", "--image", ref], cwd=app_repo, env={"DOCKER_CONFIG": str(config_dir)})
    assert res.returncode == 0, res.stderr
    assert_no_password(res.stdout, res.stderr)


def test_auth_registry_bad_password(gitops, app_repo: Path, auth_registry: Registry) -> None:
    ref = build(gitops, app_repo, auth_registry.image())
    wrong = AUTH_PASSWORD + "-wrong"
    res = gitops(["publish", "--image", ref, "--username", AUTH_USER, "--password-stdin"], cwd=app_repo,
                 input=wrong)
    assert res.returncode == 9, res.stderr
    assert "authentication failed" in res.stderr and AUTH_USER in res.stderr
    assert wrong not in res.stdout + res.stderr
    assert_no_password(res.stdout, res.stderr)


def test_auth_registry_without_credentials(gitops, app_repo: Path, auth_registry: Registry,
                                           tmp_path: Path) -> None:
    ref = build(gitops, app_repo, auth_registry.image())
    res = gitops(["publish", "--image", ref], cwd=app_repo, env={"DOCKER_CONFIG": str(tmp_path / "none")})
    assert res.returncode == 9
    assert "no credentials found" in res.stderr and "--password-stdin" in res.stderr


def test_source_label_and_revision_survive_publish(gitops, app_repo: Path, registry: Registry) -> None:
    """The config blob in the registry carries the OCI labels set at build time."""
    sha = git(app_repo, "rev-parse", "HEAD")
    ref = build(gitops, app_repo, registry.image())
    res = gitops(["publish", "--image", ref], cwd=app_repo)
    digest = res.stdout.strip().split("@")[1]
    req = urllib.request.Request(f"{registry.url}/v2/team/app/manifests/{digest}",
                                 headers={"Accept": MANIFEST_ACCEPT})
    with urllib.request.urlopen(req, timeout=10) as resp:
        config_digest = json.load(resp)["config"]["digest"]
    with urllib.request.urlopen(f"{registry.url}/v2/team/app/blobs/{config_digest}", timeout=10) as resp:
        labels = json.load(resp)["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == sha


def test_push_progress_bars_on_a_terminal_and_plain_lines_with_no_color(gitops, app_repo: Path,
                                                                        registry: Registry) -> None:
    """Per-layer bars (rich) on a terminal; with NO_COLOR set, the plain per-layer lines instead."""
    from tests.fixtures.cli import run_gitops_tty

    ref = build(gitops, app_repo, registry.image())
    status, out, terminal = run_gitops_tty(["publish", "--image", ref], cwd=app_repo)
    assert status == 0, terminal
    assert out.startswith(f"{ref}@sha256:")
    assert "\x1b[?25l" in terminal and "\u2501" in terminal  # a live display: cursor hidden, bar drawn
    ref2 = build(gitops, app_repo, registry.image("team/plain"))  # another repository: pushed (mounted) again
    status, out, terminal = run_gitops_tty(["publish", "--image", ref2], cwd=app_repo, env={"NO_COLOR": "1"})
    assert status == 0, terminal
    assert "\x1b" not in terminal and "\u2501" not in terminal and ": Preparing\r\n" in terminal  # per layer


@pytest.mark.parametrize("password", ["app", "sha256"])
def test_short_password_does_not_corrupt_the_result(gitops, app_repo: Path, registry: Registry,
                                                     password: str) -> None:
    """A short password that is a word of the image reference or of the digest: the result line is
    built from trusted values and printed as is."""
    ref = build(gitops, app_repo, registry.image("a3/sample-app"), "--tag", "fixed1")
    env = {"GITOPS_REGISTRY_USERNAME": "u", "GITOPS_REGISTRY_PASSWORD": password}
    res = gitops(["publish", "--image", ref], cwd=app_repo, env=env)
    assert res.returncode == 0, res.stderr
    digest = registry_digest(registry, "a3/sample-app", "fixed1")
    assert res.stdout == f"{ref}@{digest}\n"
    assert "***" not in res.stderr  # nor are messages mangled inside words


def test_a_credential_helper_that_is_not_installed_does_not_stop_a_publish(gitops, app_repo: Path,
                                                                           registry: Registry,
                                                                           tmp_path: Path) -> None:
    """`credsStore: desktop` copied onto a CI runner without the helper: as `docker push`, gitops warns
    and pushes without the docker config's credentials (this registry needs none)."""
    ref = build(gitops, app_repo, registry.image())
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text('{"credsStore": "gitops-test-no-such-helper"}')
    res = gitops(["publish", "--image", ref], cwd=app_repo, env={"DOCKER_CONFIG": str(config)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(ref + "@sha256:")
    # one warning (the look-up's; the push gets the credentials gitops resolved: none), in gitops' words
    warnings = [ln for ln in res.stderr.splitlines() if "credential" in ln]
    assert warnings == [f"warning: {config / 'config.json'}: credential helper docker-credential-gitops-test-no-such-"
                        "helper failed (not installed); going on without the docker config's credentials, as docker "
                        "does"], res.stderr
    assert "lost the container engine" not in res.stderr and "UserWarning" not in res.stderr
    assert "StoreError(" not in res.stderr


def test_a_failing_credential_helper_is_one_warning_with_its_reason(gitops, app_repo: Path, registry: Registry,
                                                                    tmp_path: Path) -> None:
    """A helper that fails (`keychain locked` on its stderr, exit 1) was skipped silently by the look-up,
    and the SDK's push then ran it again: its raw stderr on gitops' stderr, then a warning with an empty
    reason (`exited with "".`)."""
    ref = build(gitops, app_repo, registry.image())
    config, env = credential_helpers(tmp_path, {"credsStore": "gitops-test-locked"}, {
        "gitops-test-locked": "cat >/dev/null\nprintf 'keychain \\033[31mlocked\\n(second line)\\n' >&2\nexit 1\n"})
    res = gitops(["publish", "--image", ref], cwd=app_repo, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(ref + "@sha256:")
    lines = [ln for ln in res.stderr.splitlines() if "locked" in ln or "credential" in ln]
    assert lines == [f"warning: {config / 'config.json'}: credential helper docker-credential-gitops-test-locked "
                     "failed (keychain \\x1b[31mlocked); going on without the docker config's credentials, as "
                     "docker does"], res.stderr
    assert "\x1b" not in res.stderr and "second line" not in res.stderr


def test_a_credential_helper_that_floods_is_one_warning_for_a_build_and_a_publish(gitops, app_repo: Path,
                                                                                  registry: Registry,
                                                                                  tmp_path: Path) -> None:
    """A helper writing far more than any credentials (64 MB here; `yes` would never stop) was read whole
    into memory: a publish then stopped on its "malformed output" (exit 9), and a legacy build (when the
    docker SDK still ran it) failed with an internal error.  Each is now a helper that failed: one warning, and
    the run goes on without the docker config's credentials (this registry needs none)."""
    config, env = credential_helpers(tmp_path, {"credsStore": "gitops-test-floods"}, {
        "gitops-test-floods": "cat >/dev/null\nyes credentials | head -c 64000000\n"})
    warning = (f"warning: {config / 'config.json'}: credential helper docker-credential-gitops-test-floods failed "
               "(it wrote more than 1 MiB); going on without the docker config's credentials, as docker does")
    ref = build(gitops, app_repo, registry.image(), env={**env, "DOCKER_BUILDKIT": "0"})
    res = gitops(["publish", "--image", ref], cwd=app_repo, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(ref + "@sha256:")
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("warning")] == [warning], res.stderr
    res = gitops(["build", "--image", registry.image(), "--tag", "floods"], cwd=app_repo,
                 env={**env, "DOCKER_BUILDKIT": "0"})
    assert res.returncode == 0, res.stderr
    assert "builder: legacy (DOCKER_BUILDKIT=0)\n" in res.stderr
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("warning")] == [warning], res.stderr


# --- two publishes of one tag at once ------------------------------------------------------------------
def build_image(docker_engine, ref: str, extra: str, nocache: bool = False) -> str:
    """Build `ref` FROM the base image (labelled for the session's clean-up); its image id."""
    import io

    dockerfile = f"FROM {BASE_IMAGE}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\n{extra}\n"
    for line in docker_engine.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True, nocache=nocache,
                                    decode=True):
        assert "error" not in line, line
    return str(docker_engine.inspect_image(ref)["Id"])


def publish_at_once(cwd: Path, refs: list[str], *extra: str) -> list[subprocess.CompletedProcess]:
    from tests.fixtures.cli import GITOPS, gitops_env

    procs = [subprocess.Popen([str(GITOPS), "publish", "--image", ref, *extra], cwd=cwd, env=gitops_env(), text=True,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for ref in refs]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


@pytest.mark.parametrize("overwrite", [False, True], ids=["free-tag", "allow-overwrite"])
def test_two_publishes_of_one_tag_at_once_exactly_one_wins(gitops, docker_engine, base_image: str,
                                                           registry: Registry, tmp_path: Path,
                                                           overwrite: bool) -> None:
    """Two publishes of different images to one tag, both finding it free (or, with --allow-overwrite,
    naming a third image), both pushing: both exited 0, each printing its own digest, while the tag named
    only one (a bump of the other pinned a digest the tag does not name).  The registry has no
    compare-and-swap; each publish reads the tag back after its push: exactly one succeeds, the one the
    tag names, and the other is refused (exit 6) naming it.  The proxy makes the race certain: both
    manifests land before either push is answered (same registry, two names: 127.0.0.1 and localhost)."""
    from tests.fixtures.registry_proxy import manifest_barrier

    extra = []
    if overwrite:  # the tag names another image before
        earlier = f"{registry.host}/race/pub:t1"
        build_image(docker_engine, earlier, "LABEL v=earlier")
        first = gitops(["publish", "--image", earlier], cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        extra = ["--allow-overwrite"]
    with manifest_barrier(registry.host) as proxy:
        port = proxy.host.rsplit(":", 1)[1]
        refs = [f"{proxy.host}/race/pub:t1", f"localhost:{port}/race/pub:t1"]
        for ref, value in zip(refs, "ab", strict=True):
            build_image(docker_engine, ref, f"LABEL v={value}")
        results = publish_at_once(tmp_path, refs, *extra)
        assert len(proxy.order) == 2, proxy.order  # the race happened: both manifests landed, then the answers
    tagged = registry_digest(registry, "race/pub", "t1")
    won = [(ref, res) for ref, res in zip(refs, results, strict=True) if res.returncode == 0]
    lost = [(ref, res) for ref, res in zip(refs, results, strict=True) if res.returncode != 0]
    assert len(won) == 1 and len(lost) == 1, [(r.returncode, r.stderr) for r in results]
    assert won[0][1].stdout == f"{won[0][0]}@{tagged}\n"
    ref, res = lost[0]
    assert res.returncode == 6 and res.stdout == "", res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: another publish of {ref} won the race: the tag names "
                                                     f"{tagged}, not this run's sha256:"), res.stderr
    assert ("the last push wins" in res.stderr) == overwrite
    assert "Traceback" not in res.stderr


def test_two_publishes_of_the_same_image_at_once_both_report_the_tags_digest(docker_engine, base_image: str,
                                                                             registry: Registry,
                                                                             tmp_path: Path) -> None:
    """The same content built twice (other timestamps, so other digests), published at once: the
    publish whose push the tag does not name has still published the same image (as a later publish
    would say "already published"), so both succeed, and both print the digest the tag names."""
    from tests.fixtures.registry_proxy import manifest_barrier

    with manifest_barrier(registry.host) as proxy:
        port = proxy.host.rsplit(":", 1)[1]
        refs = [f"{proxy.host}/race/same:t1", f"localhost:{port}/race/same:t1"]
        ids = {build_image(docker_engine, ref, "ENV MODE=prod", nocache=True) for ref in refs}
        assert len(ids) == 2  # two images: their manifests' digests differ
        results = publish_at_once(tmp_path, refs)
        assert len(proxy.order) == 2, proxy.order
    tagged = registry_digest(registry, "race/same", "t1")
    assert [res.returncode for res in results] == [0, 0], [res.stderr for res in results]
    assert [res.stdout for res in results] == [f"{ref}@{tagged}\n" for ref in refs]
    assert sum("pushed the same image at the same time" in res.stderr for res in results) == 1
