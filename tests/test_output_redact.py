"""output.redact: registered secrets never printed; short ones not masked inside unrelated words;
trusted results printed as is."""

from __future__ import annotations

import pytest

from gitops_cli import output

pytestmark = pytest.mark.usefixtures("secrets_restored")


def test_long_secret_is_masked_anywhere() -> None:
    output.register_secret("s3cr3t-token")
    assert output.redact("https://x:s3cr3t-token@h/ and s3cr3t-tokenXYZ") == "https://x:***@h/ and ***XYZ"


def test_a_secret_that_starts_another_masks_no_part_of_the_longer_one() -> None:
    """Two secrets, one the start of the other (a token, and the same token with a suffix): the longer is
    masked whole, not left as `***-rest`."""
    output.register_secret("abcdefgh")
    output.register_secret("abcdefgh-rest")
    assert output.redact("token abcdefgh-rest and abcdefgh") == "token *** and ***"


def test_short_secret_is_masked_only_as_a_whole_word() -> None:
    output.register_secret("app")
    output.register_secret("sha256")
    text = "pushed 127.0.0.1:5000/a3/sample-app:fixed1@sha256:abc (sha256 digest)"
    assert output.redact(text) == "pushed 127.0.0.1:5000/a3/sample-app:fixed1@sha256:abc (sha256 digest)"
    assert output.redact("password app given") == "password *** given"
    assert output.redact("GITOPS_REGISTRY_PASSWORD=app") == "GITOPS_REGISTRY_PASSWORD=***"
    assert output.redact("'sha256'") == "'***'"


def test_short_secret_in_a_urls_credentials_is_masked() -> None:
    output.register_secret("pw1x")
    assert output.redact("https://user:pw1x@host/x.git") == "https://user:***@host/x.git"
    assert output.redact("https://pw1x@host/x.git (a token as user)") == "https://***@host/x.git (a token as user)"
    assert output.redact("https://h/x?token=pw1x&a=1 and ?t=pw1x") == "https://h/x?token=***&a=1 and ?t=***"
    for tail in ("#frag", ")", ".", "/", "'"):
        assert output.redact(f"(see https://h/x?token=pw1x{tail}") == f"(see https://h/x?token=***{tail}"
    assert output.redact("pw1x-tool:pw1xy@h") == "pw1x-tool:pw1xy@h"  # other words: kept


def test_a_short_secret_equal_to_a_tag_is_not_masked_in_an_image_reference() -> None:
    output.register_secret("dev")
    assert output.redact("pushed reg.io/app:dev@sha256:abc") == "pushed reg.io/app:dev@sha256:abc"


def test_too_short_values_are_not_secrets() -> None:
    output.register_secret("ab")
    assert output.redact("ab cab") == "ab cab"


def test_trusted_result_is_printed_as_is(capsys) -> None:
    output.register_secret("fixed1-secret")
    output.result("r/a:fixed1-secret", trusted=True)
    output.result("r/a:fixed1-secret")
    output.result_json({"ref": "fixed1-secret"}, trusted=True)
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == ["r/a:fixed1-secret", "r/a:***"]
    assert '"ref": "fixed1-secret"' in out
