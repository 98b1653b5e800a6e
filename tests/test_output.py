"""Messages on stderr: every error is one `error:` line (plus at most one `hint:` line), whatever the
values in it hold; no control character from user input reaches the terminal; secrets stay masked."""

from __future__ import annotations

import pytest

from gitops_cli import output
from gitops_cli.errors import BuildError, UsageError


@pytest.fixture(autouse=True)
def plain(monkeypatch, secrets_restored):
    monkeypatch.setenv("NO_COLOR", "1")  # the plain path: what a log or a pipe gets


@pytest.mark.parametrize("raw, shown", [
    ("plain text", "plain text"),
    ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("a\tb", "a\\tb"),
    ("5\x1b[2J", "5\\x1b[2J"),  # clear screen
    ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # set the window title
    ("\x9b2J", "\\x9b2J"),  # C1 CSI
    ("a\x00b\x7f", "a\\x00b\\x7f"),
    ("line\u2028sep", "line\\u2028sep"),
    ("x\udcffy", "x\\xffy"),  # a byte that is not UTF-8 (surrogateescape)
    ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),  # printable Unicode stays
    ("C:\\path\\x41", "C:\\path\\x41"),  # backslashes stay: printable(printable(t)) == printable(t)
])
def test_printable(raw: str, shown: str) -> None:
    assert output.printable(raw) == shown
    assert output.printable(shown) == shown


@pytest.mark.parametrize("path, quoted", [
    ("apps/api.yaml", "apps/api.yaml"),
    ("u 3", "u 3"),  # git quotes no blank
    ("caf\u00e9.yaml", "caf\u00e9.yaml"),  # printable Unicode stays (core.quotePath=false)
    ("e\x1b[31mred\nx.yaml", '"e\\033[31mred\\nx.yaml"'),
    ('q"\\.yaml', '"q\\"\\\\.yaml"'),
    ("\a\b\t\v\f\r\x7f", '"\\a\\b\\t\\v\\f\\r\\177"'),
    ("x\x9b2J\u2028", '"x\\302\\2332J\\342\\200\\250"'),  # C1 CSI, line separator: UTF-8 bytes
    ("x\udcffy", '"x\\377y"'),  # a byte that is not UTF-8 (surrogateescape): the byte itself
])
def test_quoted_path_as_git_quotes_a_file_name(path: str, quoted: str) -> None:
    assert output.quoted_path(path) == quoted
    assert output.quoted_path(path, always=True) == (quoted if quoted.startswith('"') else f'"{quoted}"')


def test_an_error_is_one_line_and_its_hint_another(capsys) -> None:
    output.error("--interval 5\x1b[2J\nm: expected a duration", hint="use\n30s")
    err = capsys.readouterr().err
    assert err == "error: --interval 5\\x1b[2J\\nm: expected a duration\nhint: use\\n30s\n"
    assert "\x1b" not in err


def test_warnings_and_steps_are_one_line(capsys) -> None:
    output.warn("a\nb\x1b[31m")
    output.step("Cloning file:///x\ny")
    assert capsys.readouterr().err == "warning: a\\nb\\x1b[31m\n==> Cloning file:///x\\ny\n"


def test_info_keeps_its_lines_but_no_control_characters(capsys) -> None:
    output.info("tag   x\nimage \x1b[2Jy")
    assert capsys.readouterr().err == "tag   x\nimage \\x1b[2Jy\n"


def test_a_quoted_value_shows_a_byte_that_is_not_utf8_as_the_byte(capsys) -> None:
    """repr() writes such a byte (surrogateescape) as `\\udcff`: messages show `\\xff`, as printable()
    shows the byte unquoted; the text `\\udcff` itself (repr doubles its backslash) stays."""
    value = "echo \udcff\udcc3\udcbc; \\udcff \u00fc"
    output.error(f"{value!r} failed", hint=f"not {value!r}")
    output.warn(f"{value!r}")
    output.step(f"Running {value!r}")
    output.info(f"ran {value!r}\nagain")
    shown = "'echo \\xff\\xc3\\xbc; \\\\udcff \u00fc'"
    assert capsys.readouterr().err.splitlines() == [
        f"error: {shown} failed", f"hint: not {shown}", f"warning: {shown}", f"==> Running {shown}",
        f"ran {shown}", "again"]
    assert output.repr_bytes(repr("\udc80\\\udcff\ud800")) == "'\\x80\\\\\\xff\\ud800'"  # no byte: kept


def test_secrets_are_masked_before_escaping(capsys) -> None:
    output.register_secret("s3cr\net-token")  # a secret holding a line break
    output.register_secret("pa'ss\\w")  # and one that repr() writes escaped
    output.error(f"push to https://u:s3cr\net-token@h failed; user {'pa' + chr(39) + 'ss' + chr(92) + 'w'!r}")
    err = capsys.readouterr().err
    assert err == "error: push to https://u:***@h failed; user \"***\"\n"


def test_a_build_failures_log_lines_come_before_its_one_error_line(capsys) -> None:
    exc = BuildError("image build failed at [2/2] RUN x", hint="fix it",
                     details=("last log lines:", "  out\x1b[2J", "  fatal"))
    output.error(exc.message, exc.hint, exc.details)
    assert capsys.readouterr().err.splitlines() == [
        "last log lines:", "  out\\x1b[2J", "  fatal", "error: image build failed at [2/2] RUN x", "hint: fix it"]


def test_on_a_terminal_too(monkeypatch, capsys) -> None:
    """With colours (rich): still one line each, the escape sequence shown, not sent."""
    from rich.console import Console

    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(output, "is_interactive", lambda stream=None: True)
    monkeypatch.setattr(output, "_err_console", Console(stderr=True, force_terminal=True, no_color=True,
                                                        highlight=False, soft_wrap=True, emoji=False))
    output.error(str(UsageError("--kubectl 'kube\nctl\x1b[2J': not found")), hint="[b]x[/b]")
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "\x1b[2J" not in err
    assert "kube\\nctl\\x1b[2J" in err and "[b]x[/b]" in err


def _stdout_on_a_terminal(code: str, no_color: str) -> str:
    """What `python -c code` writes to a pseudo-terminal that is its stdout (TERM=xterm)."""
    import os
    import pty
    import subprocess
    import sys

    from tests.fixtures.cli import gitops_env

    env = {**gitops_env(), "TERM": "xterm", "COLUMNS": "100", "NO_COLOR": no_color}
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer is gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    return seen.decode()


def test_no_color_on_a_terminal_sends_no_escape_sequence_in_the_summary() -> None:
    """NO_COLOR with stdout on a TTY: the summary table had no colours but still bold keys and an
    italic title (rich's no_color leaves the other styles)."""
    code = ("from gitops_cli import pipeline\nfrom gitops_cli.commands.build_and_bump import _render\n"
            "r = pipeline.PipelineResult(tag='abc1234')\nr.steps[0].status = 'ok'\n_render(r, 'text')\n")
    plain = _stdout_on_a_terminal(code, "1")
    assert "abc1234" in plain and "\x1b[" not in plain, repr(plain)
    assert "\x1b[" in _stdout_on_a_terminal(code, "")  # the styles without NO_COLOR


def test_a_stream_writes_what_its_encoding_cannot_encode_escaped() -> None:
    """LC_ALL=C gives Python ASCII streams: what they cannot encode is escaped as printable() escapes
    (a byte that is not UTF-8, kept as a lone surrogate, as `\\xff`), never an UnicodeEncodeError."""
    import io

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    output.escape_unencodable(stream)
    stream.write("nginx:l\u00e4test \u20ac \U0001f600 \udcff ok\n")
    stream.flush()
    assert raw.getvalue() == b"nginx:l\\xe4test \\u20ac \\U0001f600 \\xff ok\n"
    latin = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    output.escape_unencodable(latin)
    latin.write("\u00e4\u20ac")  # what latin-1 has is written as it is
    latin.flush()
    assert latin.buffer.getvalue() == b"\xe4\\u20ac"  # type: ignore[attr-defined]


@pytest.mark.parametrize("raw, shown", [
    ("\udcc3\udca9.yaml", "\u00e9.yaml"),  # `é.yaml` read under an ASCII file system encoding
    ("bad\udcff.yaml", "bad\\xff.yaml"),  # a byte that is not UTF-8: as printable() writes it
    ("\udcc3\udca9\udcff", "\u00e9\\xff"), ("a\udcc3", "a\\xc3"),  # a UTF-8 sequence cut short
    ("\udced\udca0\udc80", "\\xed\\xa0\\x80"),  # UTF-8's encoding of a surrogate is no UTF-8
    ("x\ud800y", "x\\ud800y"),  # a lone surrogate that stands for no byte
    ("caf\u00e9 \u65e5 \U0001f600", "caf\u00e9 \u65e5 \U0001f600"),  # decoded text stays as it is
    ("a\nb \\x41", "a\nb \\x41"),  # JSON escapes the rest itself; a backslash stays
])
def test_json_str_holds_no_lone_surrogate(raw: str, shown: str) -> None:
    assert output.json_str(raw) == shown


def test_json_text_is_strict_json_for_every_string_in_it() -> None:
    """Keys, nested values and values JSON has no type for (a Path: its str()) alike."""
    import json
    from pathlib import Path

    text = output.json_text({"d\udcff": [("\udcc3\udca9",), {"p": Path("/x/\udcc3\udca9")}, 1, None]})
    assert json.loads(text) == {"d\\xff": [["\u00e9"], {"p": "/x/\u00e9"}, 1, None]}
    text.encode("ascii")  # as before: non-ASCII as \\u escapes, fine for any stdout encoding


ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}


def _strict_strings(data: object) -> list[str]:
    """Every string in parsed JSON, checked to be one a strict reader takes (no lone surrogate: Python's
    json.loads takes `"\\udcc3"`, most other readers refuse it or replace it)."""
    if isinstance(data, dict):
        return [s for key, value in data.items() for s in (*_strict_strings(key), *_strict_strings(value))]
    if isinstance(data, list):
        return [s for value in data for s in _strict_strings(value)]
    if isinstance(data, str):
        data.encode("utf-8")  # UnicodeEncodeError for a lone surrogate
        return [data]
    return []


@pytest.mark.integration
def test_json_output_under_an_ascii_locale_has_the_file_names_not_surrogates(gitops, tmp_path) -> None:
    """Under PYTHONUTF8=0 LC_ALL=C (file system encoding ASCII) `lint --format json|sarif` and `history
    --output json` wrote `é.yaml` as "\\udcc3\\udca9.yaml" (and a branch given as `brä` so), which strict
    JSON readers refuse.  Now `é.yaml`, and a byte that is not UTF-8 as `\\xff`, as the text output shows
    it; git's user.name, decoded as UTF-8 already, stays as it is."""
    import json
    import os
    import subprocess

    from tests.fixtures.services import GIT_ENV

    repo = tmp_path / "deploy"
    (repo / "apps").mkdir(parents=True)
    names = [os.fsdecode(b"apps/\xc3\xa9.yaml"), os.fsdecode(b"apps/bad\xff.yaml")]
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_NAME": "J\u00e9"}
    subprocess.run(["git", "init", "-q", "-b", "br\u00e4"], cwd=repo, env=env, check=True)
    for tag in ("v1", "v2"):
        for name in names:  # and a finding for lint
            (repo / name).write_text(f"image: team/app:{tag}\n---\nimage: nginx:latest\n")
        subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", tag], cwd=repo, env=env, check=True)
    want = ["apps/bad\\xff.yaml", "apps/\u00e9.yaml"]  # sorted

    res = gitops(["lint", "--format", "json", "apps"], cwd=repo, env=ASCII_LOCALE)
    assert res.returncode == 1, res.stderr
    found = json.loads(res.stdout)["findings"]
    _strict_strings(found)
    assert sorted(f["path"] for f in found) == want

    res = gitops(["lint", "--format", "sarif", "apps"], cwd=repo, env=ASCII_LOCALE)
    assert res.returncode == 1, res.stderr
    _strict_strings(json.loads(res.stdout))

    res = gitops(["history", "--deploy-repo", ".", "--branch", "br\u00e4", "--image", "team/app", "--output",
                  "json"], cwd=repo, env=ASCII_LOCALE)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    _strict_strings(data)
    assert data["branch"] == "br\u00e4"
    assert [(e["tag"], sorted(e["files"]), e["author"].split(" <")[0]) for e in data["entries"]] == [
        ("v2", want, "J\u00e9"), ("v1", want, "J\u00e9")]
