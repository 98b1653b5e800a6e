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


@pytest.mark.parametrize("secret", ["Pässwört-2024!", 'pa"ss\\word-2024', "tab\tbed-secret", "日本語のパスワード"])
def test_json_masks_every_string_before_it_is_encoded(capsys, secret: str) -> None:
    """The JSON text was masked after json.dumps had escaped `"`, `\\`, control and non-ASCII characters
    (`ä` as `\\u00e4`): such a secret no longer matched and was printed in clear.  Every key and value is
    masked first."""
    import json

    output.register_secret(secret)
    output.result_json({"error": f"--prefix '{secret}': bad", secret: [secret, (1, f"x {secret} y")]})
    out = capsys.readouterr().out
    assert json.loads(out) == {"error": "--prefix '***': bad", "***": ["***", [1, "x *** y"]]}
    assert secret not in json.loads(out.replace("***", "")).__repr__()
    assert json.dumps(secret)[1:-1] not in out and json.dumps(secret, ensure_ascii=False)[1:-1] not in out


def test_a_line_made_printable_or_quoted_before_it_is_masked_is_masked(capsys) -> None:
    """printable() writes a tab as `\\t`, quoted_path() a `"` as `\\"`: a line escaped before it reaches
    result/info (history's lines, bump's file names) still has its secret masked."""
    output.register_secret("tab\tbed-secret")
    output.register_secret('quo"ted-secret')
    output.result(output.printable("author tab\tbed-secret"))
    output.result(output.quoted_path('apps/quo"ted-secret.yaml'))
    assert capsys.readouterr().out.splitlines() == ["author ***", '"apps/***.yaml"']


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif"])
def test_lint_formats_mask_secrets_before_they_encode_them(fmt: str) -> None:
    """lint's formats encode a finding's strings (GitHub's `%3A`, SARIF's percent-encoded URI, JSON's
    escapes, the text's `\\t`): masked before, a secret with such a character is never in the output."""
    from urllib.parse import quote

    from gitops_cli import lint

    secret = "Pä:ss\tw,ort-2024"
    output.register_secret(secret)
    finding = lint.Finding(path=f"apps/{secret}/deploy.yaml", line=1, column=1, rule="GL001",
                           severity="error", message=f"image 'r/{secret}:latest' uses the tag 'latest'",
                           image=f"r/{secret}:latest")
    text = lint.render(lint.Report([finding], 1), fmt, "1.0")
    assert "***" in text
    for form in (secret, output.printable(secret), quote(secret), secret.encode("unicode_escape").decode(),
                 "P\\u00e4", "Pä%3Ass", "P%C3%A4"):
        assert form not in text, form
