"""`%YAML` and `%TAG` directives: read alike by libyaml and the pure-Python parser (locate, splice, lint),
kept byte for byte by a bump; a version gitops does not read, and any other failure inside a parser, is
a syntax error at a line, never an exception."""

from __future__ import annotations

import pytest

from gitops_cli import lint
from gitops_cli.imageref import parse as parse_ref
from gitops_cli.yamledit import YamlSyntaxError, locate, update_images
from gitops_cli.yamledit.locate import _Parsed, _ParserFailure, parse


@pytest.fixture(params=["default", "python"])
def parser(request, monkeypatch) -> str:
    """Each test runs with libyaml (when installed: the default) and with GITOPS_YAML_PARSER=python."""
    if request.param == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    else:
        monkeypatch.delenv("GITOPS_YAML_PARSER", raising=False)
    return request.param


POD = "spec:\n  containers:\n  - name: a\n    image: team/app:v1\n  - {name: b, image: team/app:v1}\n"


def _tagged(tag: str) -> str:
    """POD with a tag on its first image value."""
    return POD.replace("image: team/app:v1\n  -", f"image: {tag} team/app:v1\n  -")


# (header, body): the body is POD as the header's document(s) hold it
DIRECTIVES = [
    ("%YAML 1.2\n---\n", POD),
    ("%YAML 1.1\n---\n", POD),
    ("%YAML 1.2 # a comment\n%TAG !e! tag:example.com,2000:\n---\n", POD),
    ("\ufeff%YAML 1.2\n---\n", POD),
    ("%TAG ! tag:example.com,2000:app/\n--- !pod\n", _tagged("!img")),
    ("%TAG !e! tag:e.com,2000:\n---\n", _tagged("!e!x").replace("team/app:v1\n  -", "'team/app:v1'\n  -")),
    ("%TAG !e! tag:e.com,2000:\n---\n", _tagged("!<tag:e.com,2000:x>")),
]


def _refs(text: str) -> list[tuple]:
    result = locate(text)
    assert result.error is None, result.error
    return [(r.kind, r.value, r.path, r.doc, r.line, r.column, r.container) for r in result.references]


@pytest.mark.parametrize(("header", "body"), DIRECTIVES)
def test_directives_are_read_as_without_them(parser, header, body):
    plain = _refs(body.replace("!e!", "!ee"))  # the same text with a local tag where a %TAG handle was used
    shift = header.count("\n")
    assert [(*r[:4], r[4] + shift, *r[5:]) for r in plain] == _refs(header + body)
    assert len(plain) == 2  # the flow one: `{image: team/app:v1}` is a string in YAML 1.2 (libyaml refuses it)


@pytest.mark.parametrize(("header", "body"), DIRECTIVES)
def test_a_bump_keeps_the_directive_lines_byte_for_byte(parser, header, body):
    text = header + body
    new, changes = update_images(text, [parse_ref("team/app:v2")], filename="f.yaml")
    assert new == text.replace("team/app:v1", "team/app:v2")
    assert [c.line for c in changes] == [4 + header.count("\n"), 5 + header.count("\n")]


MULTI = """\
%YAML 1.2
%TAG !e! tag:e.com,2000:
---
image: !e!x team/app:v1
...
%YAML 1.1
---
{name: b, image: team/app:v1}
...
---
image: team/app:v1
"""


def test_each_document_has_its_own_directives_and_both_parsers_agree(monkeypatch):
    def snapshot() -> tuple:
        events = [(e.kind, e.start, e.value, e.style, e.anchor) for e in parse(MULTI).events]
        new, _ = update_images(MULTI, [parse_ref("team/app:v2")], filename="f.yaml")
        return _refs(MULTI), events, new, lint.lint_text("f.yaml", MULTI, lint.config_from_settings({}))

    default = snapshot()
    assert [(r[3], r[4]) for r in default[0]] == [(0, 4), (1, 8), (2, 11)]
    assert [e[1] for e in default[1] if e[0] == "D"] == [MULTI.index("---"), MULTI.index("---\n{"), MULTI.rindex("---")]
    assert default[2] == MULTI.replace("team/app:v1", "team/app:v2")
    monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    assert snapshot() == default


UNREAD = [
    ("%YAML 2.0\n---\nimage: team/app:v1\n", 1, "%YAML 2.0"),     # another major version: the spec refuses it
    ("%YAML 1.3\n---\nimage: team/app:v1\n", 1, "%YAML 1.3"),     # a newer minor one: the spec warns
    ("%YAML 1.0\n---\nimage: team/app:v1\n", 1, "%YAML 1.0"),
    ("%YAML 1.11\n---\nimage: team/app:v1\n", 1, "%YAML 1.11"),
    ("image: team/app:v0\n...\n%TAG !e! tag:e:\n%YAML 1.3\n---\nimage: team/app:v1\n", 4, "%YAML 1.3"),
    ("\ufeff%YAML 2.0\n---\n{image: team/app:v1}\n", 1, "%YAML 2.0"),
    ("%YAML\t1.3\n---\nimage: team/app:v1\n", 1, "%YAML 1.3"),      # a tab between its parts (libyaml reads it)
    ("\ufeff%YAML \t2.0\r---\r{image: team/app:v1}\r", 1, "%YAML 2.0"),
]


@pytest.mark.parametrize(("text", "line", "directive"), UNREAD)
def test_a_yaml_version_gitops_does_not_read_is_an_error_at_its_line(parser, text, line, directive):
    result = locate(text)
    assert result.references == [] and result.error is not None
    assert (result.error.line, result.error.column) == (line, 1)
    assert result.error.message == f"{directive}: gitops reads YAML 1.1 and 1.2 only"
    with pytest.raises(YamlSyntaxError, match=f"line {line}, column 1: {directive}: "):
        update_images(text, [parse_ref("team/app:v2")], filename="f.yaml")
    (finding,) = lint.lint_text("f.yaml", text, lint.config_from_settings({}))
    assert (finding.line, finding.column, finding.rule, finding.severity) == (line, 1, "GL000", "error")
    assert finding.message == f"YAML does not parse: {directive}: gitops reads YAML 1.1 and 1.2 only"


@pytest.mark.parametrize("text", [
    "image: team/app:v1\nnote: |\n  %YAML 2.0\n",
    "image: team/app:v1\nnote: \"a\n  %YAML 2.0\"\n",
    "image: team/app:v1  # %YAML 2.0\n",
])
def test_yaml_text_that_only_looks_like_a_directive_is_not_one(parser, text):
    assert [r[1] for r in _refs(text)] == ["team/app:v1"]


@pytest.mark.parametrize(("text", "line"), [
    ("%YAML 1.2\n%YAML 1.2\n---\na: 1\n", 2),       # twice in one document
    ("%TAG !e! a:\n%TAG !e! b:\n---\na: 1\n", 2),
    ("%TAG !e! a:\n---\na: !f!x 1\n", 3),            # an undeclared handle
    ("%YAML 1.2\nimage: team/app:v1\n", 2),          # directives without `---`
    ("%YAML 1.2.3\n---\na: 1\n", 1),
])
def test_a_malformed_directive_is_a_syntax_error_at_its_line_with_either_parser(parser, text, line):
    result = locate(text)
    assert result.error is not None and result.error.line == line


def test_other_directives_are_ignored_with_either_parser(parser):
    """YAML reserves them; libyaml refuses the text, the pure parser ignores them as the spec asks."""
    text = "%FOO bar baz\n---\nimage: team/app:v1\n"
    assert [(r[1], r[4]) for r in _refs(text)] == [("team/app:v1", 3)]


def test_a_failure_inside_libyaml_falls_back_to_the_pure_parser(parser):
    """libyaml cannot take a lone surrogate (UnicodeEncodeError, not a YAMLError): the text is read again
    with the pure parser, which reports where the bad character is, with either parser."""
    result = locate("a: 1\nimage: team/app:v1\nb: 'x\ud800'\n")
    assert result.error is not None and (result.error.line, result.error.column) == (3, 6)
    assert "#xd800" in result.error.message


def test_a_failure_inside_the_pure_parser_is_reported_where_its_events_end():
    """Any exception from inside a parser is about the text: _events wraps it, and parse makes it an error at
    the line where the events given before it end.  Shown on a text ruamel's pure parser itself fails on
    (it asserts on a %YAML version it does not know), skipping the version check parse does first."""
    text = "a: 1\n...\n%YAML 1.3\n---\nimage: team/app:v1\n"
    with pytest.raises(_ParserFailure, match="^AssertionError: version minor part") as caught:
        _Parsed(text, pure=True)
    assert caught.value.offset == text.index("...") + 3  # the end of the first document
