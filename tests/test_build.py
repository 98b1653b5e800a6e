"""build: the build arguments and labels as given (docker's forms), the labels gitops sets, the Dockerfile
a context builds from."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_cli.build import (
    OWN_LABELS,
    USER_LABELS,
    oci_labels,
    user_labels,
)
from gitops_cli.errors import UsageError
from gitops_cli.settings import Names


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
