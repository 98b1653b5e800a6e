"""The CLI surface: every verb is registered and its --help shows an example; errors map to exit codes."""

from __future__ import annotations

import pytest

from tests.fixtures.cli import run_gitops

VERBS = ["tag", "build", "test", "publish", "bump", "build-and-bump", "history", "rollback", "sync", "lint"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb: str) -> None:
    res = run_gitops([verb, "--help"])
    assert res.returncode == 0, res.stderr
    assert "Example:" in res.stdout and f"gitops {verb}" in res.stdout.split("Example:", 1)[1]


def test_version_and_unknown_verb() -> None:
    res = run_gitops(["--version"])
    assert res.returncode == 0 and res.stdout.startswith("gitops ")
    res = run_gitops(["frobnicate"])
    assert res.returncode == 2 and "frobnicate" in res.stderr


def test_bad_option_value_is_a_usage_error_without_traceback() -> None:
    res = run_gitops(["tag", "--length", "nine"])
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "--length" in res.stderr
