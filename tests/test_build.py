"""build: the build arguments and labels as given (docker's forms), the labels gitops sets, the Dockerfile
a context builds from."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from gitops_cli import output
from gitops_cli.build import (
    OWN_LABELS,
    USER_LABELS,
    _resolve_paths,
    oci_labels,
    parse_build_args,
    user_labels,
)
from gitops_cli.errors import UsageError
from gitops_cli.pipeline import build_inputs
from gitops_cli.settings import Names


def test_a_build_arg_without_value_takes_the_environments_as_a_secret(secrets_restored) -> None:
    env = {"TOKEN": "s3cret-token-value", "EMPTY": ""}
    args = parse_build_args(["A=1", "TOKEN", "UNSET", "EMPTY", "B=x=y", " C =", "D=2", "D"], environ=env)
    # as docker: K=V as given (the value may hold `=`, the key is trimmed); K alone: the environment's
    # value, set-but-empty too; K unset: not given, so the Dockerfile's default applies; the last one wins
    assert args.values == {"A": "1", "TOKEN": "s3cret-token-value", "EMPTY": "", "B": "x=y", "C": ""}
    assert args.from_env == {"TOKEN", "UNSET", "EMPTY", "D"}
    assert output.redact("token s3cret-token-value") == "token ***"
    # recorded without the environment's values; K=V pairs as before (the hash of published images stands)
    assert args.recorded() == [("A", "1"), ("B", "x=y"), ("C", ""), ("D", None), ("EMPTY", None),
                               ("TOKEN", None), ("UNSET", None)]
    assert parse_build_args(["A=1", "B=2"], environ={}).recorded() == sorted({"A": "1", "B": "2"}.items())


def test_a_build_arg_from_the_environment_is_masked_only_when_its_name_says_it_is_a_secret(secrets_restored) -> None:
    """`--build-arg GIT_SHA` / `VERSION` are common: masking them turned the commit and the tag into *** in every
    message and in the JSON result.  A name that says secret (token, password, key, ...) is masked."""
    sha, version = "0123456789abcdef0123456789abcdef01234567", "1.2.3-rc.4"
    env = {"GIT_SHA": sha, "VERSION": version, "NPM_TOKEN": "npm-tok-value", "db_password": "pw-value-123",
           "SSH_PRIVATE_KEY": "-----BEGIN KEY-----"}
    args = parse_build_args(["GIT_SHA", "VERSION", "NPM_TOKEN", "db_password", "SSH_PRIVATE_KEY"], environ=env)
    assert args.values == env
    assert output.redact(f"commit {sha}, tag {version}") == f"commit {sha}, tag {version}"
    assert output.redact("npm-tok-value pw-value-123 -----BEGIN KEY-----") == "*** *** ***"


@pytest.mark.parametrize("item", ["=x", "", " =x", "="])
def test_a_build_arg_without_a_key_is_refused_naming_it(item: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_build_args(["A=1", item], environ={})
    assert exc.value.message == f"--build-arg {item!r}: expected KEY=VALUE or KEY (its value from the environment)"


def test_the_environments_value_is_not_part_of_the_build_inputs(tmp_path: Path, monkeypatch,
                                                                secrets_restored) -> None:
    """A per-job token (`--build-arg CI_JOB_TOKEN`) changes each run: it must not make every re-run
    "another build"; the names given are recorded, a K=V value is."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    monkeypatch.setenv("JOB_TOKEN", "job-token-1111")
    first = build_inputs(tmp_path, {"build_args": ["JOB_TOKEN"]})
    monkeypatch.setenv("JOB_TOKEN", "job-token-2222")
    assert build_inputs(tmp_path, {"build_args": ["JOB_TOKEN"]}) == first
    assert build_inputs(tmp_path, {"build_args": ["JOB_TOKEN=job-token-2222"]}) != first
    assert build_inputs(tmp_path, {}) != first
    recorded = dict(item.split("=") for item in first.split(";"))["build-args"]
    assert recorded == hashlib.sha256(json.dumps([["JOB_TOKEN", None]]).encode()).hexdigest()[:16]


def test_labels_gitops_sets_are_refused_but_source_and_version(tmp_path: Path) -> None:
    for key in USER_LABELS:
        assert user_labels([f"{key}=x", "team=web"]) == {key: "x", "team": "web"}
    refused = [key for key in OWN_LABELS if key not in USER_LABELS]
    assert refused == ["org.opencontainers.image.revision", "org.opencontainers.image.created",
                       "dev.gitops-cli.tested-command", "dev.gitops-cli.build-inputs"]
    for key in refused:
        with pytest.raises(UsageError) as exc:
            user_labels(["team=web", f"{key}=x"])
        assert exc.value.message.startswith(f"--label '{key}=x': gitops sets the label {key} itself: ")
    config = tmp_path / "gitops.toml"
    with pytest.raises(UsageError, match=f"^{config}: labels entry 'org.opencontainers.image.revision=abc': "):
        user_labels(["org.opencontainers.image.revision=abc"],
                    Names(sources={"labels": str(config)}))
    with pytest.raises(UsageError, match="^--label 'NOEQ': expected KEY=VALUE$"):
        user_labels(["NOEQ"])


def test_every_label_gitops_owns_is_set_empty_when_unknown(tmp_path: Path) -> None:
    """Outside a commit and without an origin: revision and source are "", never left to the base image."""
    labels = oci_labels(None, None, "abc1234-dirty-0011", {"SOURCE_DATE_EPOCH": "0"})
    assert labels == {"org.opencontainers.image.revision": "", "org.opencontainers.image.source": "",
                      "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
                      "org.opencontainers.image.version": "abc1234-dirty-0011"}


def test_a_context_without_dockerfile_builds_from_a_lowercase_dockerfile(tmp_path: Path) -> None:
    """As the docker CLI: `dockerfile` when there is no `Dockerfile` (not even a dangling symlink)."""
    (tmp_path / "dockerfile").write_text("FROM scratch\n")
    assert _resolve_paths(tmp_path, ".", None) == (tmp_path.resolve(), "dockerfile")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert _resolve_paths(tmp_path, ".", None) == (tmp_path.resolve(), None)
    (tmp_path / "Dockerfile").unlink()
    os.symlink("missing", tmp_path / "Dockerfile")
    with pytest.raises(UsageError, match="Dockerfile: no such file$"):
        _resolve_paths(tmp_path, ".", None)
    (tmp_path / "Dockerfile").unlink()
    (tmp_path / "dockerfile").unlink()
    with pytest.raises(UsageError, match="Dockerfile: no such file$"):
        _resolve_paths(tmp_path, ".", None)
    # the build inputs read the file that is built
    (tmp_path / "dockerfile").write_text("FROM scratch\n")
    lower = build_inputs(tmp_path, {})
    (tmp_path / "dockerfile").write_text("FROM scratch\nLABEL x=1\n")
    assert dict(i.split("=") for i in lower.split(";"))["dockerfile"] != dict(
        i.split("=") for i in build_inputs(tmp_path, {}).split(";"))["dockerfile"]


@pytest.mark.parametrize(("origin", "source"), [
    ("ci-bot:hunter2secret@git.example.com:org/app.git", "ci-bot@git.example.com:org/app.git"),
    ("ci-bot:hun@ter2secret@git.example.com:org/app.git", "ci-bot@git.example.com:org/app.git"),
    ("git@git.example.com:org/app.git", "git@git.example.com:org/app.git"),
    ("https://ci-bot:hunter2secret@git.example.com/org/app.git?t=x", "https://git.example.com/org/app.git"),
    ("https://ci-bot:hunter2 secret@git.example.com/org/app.git", "https://git.example.com/org/app.git"),
])
def test_the_source_label_has_no_password_of_the_origin(tmp_path: Path, origin: str, source: str) -> None:
    """An scp-like origin with a password (`user:pass@host:path`) went into the image's source label as it
    was (git.strip_credentials keeps scp-like forms), and a URL's password with a blank too: dropped, as
    --deploy-repo drops them from its messages."""
    from tests.fixtures.gitremotes import git

    git("init", "--quiet", str(tmp_path))
    git("remote", "add", "origin", origin, cwd=tmp_path)
    labels = oci_labels(tmp_path, None, "v1", {"SOURCE_DATE_EPOCH": "0"})
    assert labels["org.opencontainers.image.source"] == source
