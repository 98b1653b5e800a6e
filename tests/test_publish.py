"""Pure decisions of `gitops publish` and the small pure helpers of build."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gitops_cli import build, publish
from gitops_cli.errors import InvalidReferenceError, RefusedError, UsageError
from gitops_cli.imageref import parse
from gitops_cli.registry import Manifest

REF = parse("127.0.0.1:5000/team/app:3f2a9c1")
CONFIG = "sha256:" + "c" * 64
OTHER = "sha256:" + "d" * 64
MANIFEST = Manifest(digest="sha256:" + "a" * 64,
                    media_type="application/vnd.docker.distribution.manifest.v2+json",
                    data={"config": {"digest": CONFIG}, "layers": []})
LOCAL = {
    "Id": CONFIG,
    "RepoDigests": [],
    "Os": "linux",
    "Architecture": "amd64",
    "RootFS": {"Type": "layers", "Layers": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
    "Config": {"Env": ["PATH=/bin"], "Cmd": ["/app/app.sh"], "Labels": {"a": "b"}, "Entrypoint": None,
               "Image": "sha256:whatever", "WorkingDir": ""},
}
REMOTE_CONFIG = {
    "os": "linux",
    "architecture": "amd64",
    "created": "2030-01-01T00:00:00Z",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
    "config": {"Env": ["PATH=/bin"], "Cmd": ["/app/app.sh"], "Labels": {"a": "b"}, "Image": "sha256:other"},
}


def no_fetch(digest: str) -> dict:
    raise AssertionError("the config blob should not be needed")


def test_same_by_config_digest() -> None:
    assert publish.same_image(LOCAL, REF, MANIFEST, no_fetch)


def test_same_by_repo_digest_even_for_index() -> None:
    index = Manifest(digest="sha256:" + "e" * 64, media_type="application/vnd.oci.image.index.v1+json",
                     data={"manifests": []})
    local = {**LOCAL, "Id": OTHER, "RepoDigests": [f"127.0.0.1:5000/team/app@{index.digest}"]}
    assert publish.same_image(local, REF, index, no_fetch)
    other_repo = {**local, "RepoDigests": [f"127.0.0.1:5000/team/other@{index.digest}"]}
    assert not publish.same_image(other_repo, REF, index, no_fetch)


def test_same_by_content_ignores_timestamps_and_history() -> None:
    local = {**LOCAL, "Id": OTHER}
    assert publish.same_image(local, REF, MANIFEST, lambda d: REMOTE_CONFIG)


@pytest.mark.parametrize(
    "change",
    [
        {"rootfs": {"diff_ids": ["sha256:" + "1" * 64]}},
        {"architecture": "arm64"},
        {"config": {**REMOTE_CONFIG["config"], "Env": ["PATH=/bin", "MODE=debug"]}},
        {"config": {**REMOTE_CONFIG["config"], "Labels": {"a": "c"}}},
        {"config": {**REMOTE_CONFIG["config"], "Entrypoint": ["/bin/sh"]}},
    ],
)
def test_different_content(change: dict) -> None:
    local = {**LOCAL, "Id": OTHER}
    assert not publish.same_image(local, REF, MANIFEST, lambda d: {**REMOTE_CONFIG, **change})


def test_empty_layers_never_same_by_content() -> None:
    local = {**LOCAL, "Id": OTHER, "RootFS": {"Layers": []}}
    assert not publish.same_content(local, {**REMOTE_CONFIG, "rootfs": {"diff_ids": []}})


@pytest.mark.parametrize("tag", ["latest", "main", "MASTER", "stable", "1.0-snapshot"])
def test_mutable_tags_refused(tag: str) -> None:
    with pytest.raises(RefusedError, match="mutable tag"):
        publish.check_publishable(REF.with_tag(tag))
    publish.check_publishable(REF.with_tag(tag), allow_mutable_tag=True)


def test_configured_mutable_tags() -> None:
    with pytest.raises(RefusedError):
        publish.check_publishable(REF.with_tag("qa"), mutable_tags=["qa"])
    publish.check_publishable(REF.with_tag("qa"))


def test_parse_image_needs_a_tag_and_no_digest() -> None:
    assert publish.parse_image("127.0.0.1:5000/app:1").tag == "1"
    with pytest.raises(InvalidReferenceError):
        publish.parse_image("127.0.0.1:5000/app")
    with pytest.raises(UsageError, match="NAME:TAG"):
        publish.parse_image("127.0.0.1:5000/app@sha256:" + "a" * 64)


def test_pinned() -> None:
    result = publish.PublishResult(ref=REF, digest=MANIFEST.digest, pushed=True)
    assert result.pinned == f"127.0.0.1:5000/team/app:3f2a9c1@{MANIFEST.digest}"


# --- build helpers -----------------------------------------------------------------------------------
def test_parse_pairs() -> None:
    assert build.parse_pairs(["A=1", "B=", "C=x=y"], "build_args") == {"A": "1", "B": "", "C": "x=y"}
    with pytest.raises(UsageError, match="--label 'novalue': expected KEY=VALUE"):
        build.parse_pairs(["novalue"], "labels")
    with pytest.raises(UsageError):
        build.parse_pairs(["=v"], "labels")


def test_created_time_sources(tmp_path) -> None:
    assert build.created_time(None, None, {"SOURCE_DATE_EPOCH": "0"}) == "1970-01-01T00:00:00Z"
    now = build.created_time(None, None, {})
    parsed = datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 60


def test_created_time_of_a_signed_commit_under_log_show_signature(tmp_path, monkeypatch) -> None:
    """`git show -s --format=%cI` printed the signature check first: ValueError, exit 70, for `gitops build`."""
    import subprocess

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp_path / "allowed").write_text("a@example.com " + key.with_suffix(".pub").read_text())
    repo = tmp_path / "app"

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout

    repo.mkdir()
    git("init", "--quiet")
    for k, v in (("user.name", "A"), ("user.email", "a@example.com"), ("gpg.format", "ssh"),
                 ("user.signingKey", str(key)), ("log.showSignature", "true"),
                 ("gpg.ssh.allowedSignersFile", str(tmp_path / "allowed"))):
        git("config", "--global", k, v)
    git("commit", "--quiet", "-S", "--allow-empty", "-m", "signed")
    sha = git("rev-parse", "HEAD").strip()
    assert "Good" in git("show", "-s", "--format=%cI", sha)
    committed = git("-c", "log.showSignature=false", "show", "-s", "--format=%cI", sha).strip()
    assert build.created_time(repo, sha, {}) == build.rfc3339(datetime.fromisoformat(committed))


@pytest.mark.parametrize("epoch", ["abc", "1.5e9", "-1", "99999999999999", "１２"])
def test_created_time_refuses_a_source_date_epoch_that_is_not_whole_seconds(epoch) -> None:
    with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH") as info:
        build.created_time(None, None, {"SOURCE_DATE_EPOCH": epoch})
    assert info.value.exit_code == 2


def test_created_time_is_commit_time(tmp_path) -> None:
    import os
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_COMMITTER_DATE": "2021-06-01T12:00:00+02:00"}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=tmp_path, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True)
    sha = head.stdout.strip()
    assert build.created_time(tmp_path, sha, {}) == "2021-06-01T10:00:00Z"
    labels = build.oci_labels(tmp_path, sha, "v1", {})
    assert labels == {"org.opencontainers.image.revision": sha, "org.opencontainers.image.source": "",
                      "org.opencontainers.image.created": "2021-06-01T10:00:00Z",
                      "org.opencontainers.image.version": "v1"}  # no origin remote: an empty source label
