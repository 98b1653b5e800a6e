"""`.dockerignore` as `DOCKER_BUILDKIT=0 docker build` (the docker CLI) applies it.

The expected answers are the docker CLI's (28.2, moby patternmatcher), checked against it: see
tests/integration/test_build_dockerignore.py, which builds contexts with both and compares.
"""

from __future__ import annotations

import os

import pytest

from gitops_cli import dockerignore
from gitops_cli.dockerignore import BuildContext, DockerignoreError, Line, excluding, read_patterns, removal, sent


def patterns(text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return [line.text for line in read_patterns(data)]


@pytest.mark.parametrize("text, expected", [
    ("# comment\n\n*.log\n   \n", ["*.log"]),
    (" # not a comment\n", ["# not a comment"]),  # `#` counts only at the start of the line
    ("a\r\nb\r\n", ["a", "b"]),  # CRLF
    ("a\rb\n", ["a\rb"]),  # a lone CR is no line break
    ("\ufeffa\n\ufeffb\n", ["a", "\ufeffb"]),  # a byte order mark only at the start of the file
    ("/secret\n./secret\nsecret/\n//a//b/\n", ["secret", "secret", "secret", "a/b"]),
    ("a/../b\n../x\n/../y\n.\n", ["b", "../x", "y", "."]),
    ("! /x\n!  y/\n", ["!x", "!y"]),
    ("\t a \x0b\n\x1ca\n", ["a", "\x1ca"]),  # Go's TrimSpace: \x1c is no space for it
    ("last line without newline", ["last line without newline"]),
    (b"caf\xe9\n", ["caf\udce9"]),  # not UTF-8: the invalid byte is kept
])
def test_read_patterns(text, expected) -> None:
    assert patterns(text) == expected


def test_read_patterns_keeps_line_numbers() -> None:
    assert read_patterns(b"# c\n\na\n!b\n") == [Line(3, "a"), Line(4, "!b")]


def test_a_line_docker_cannot_read_is_refused() -> None:
    assert patterns(b"a\n" + b"x" * 65535 + b"\n") == ["a", "x" * 65535]
    with pytest.raises(DockerignoreError, match="line 2: longer than 65535 bytes"):
        read_patterns(b"a\n" + b"x" * 65536 + b"\n")


@pytest.mark.parametrize("text, fragment", [
    ("a\n!\n", "line 2: a `!` with no pattern"),
    ("! \n", "line 1: a `!` with no pattern"),
    ("!/\n", "line 1: a `!` with no pattern"),
    ("[x\n", "line 1: `[x`: syntax error in pattern"),
    ("a\\\n", "line 1: `a\\`: syntax error in pattern"),
    ("[]a]\n", "syntax error in pattern"),
    ("b[a-]\n", "syntax error in pattern"),
])
def test_patterns_docker_refuses_are_exit_2(text, fragment) -> None:
    with pytest.raises(DockerignoreError, match=None) as raised:
        dockerignore.Matcher.of(read_patterns(text.encode()))
    assert fragment in str(raised.value) and raised.value.exit_code == 2


# pattern lines, path, whether `docker build` leaves the file out of the context
EXCLUDED = [
    # the audit's case: `\` escapes, `[^R]` is "not R" (Go regexp), `[!R]` is "! or R"
    ("a\\*b", "a*b", True), ("a\\*b", "axb", False),
    ("\\[x]", "[x]", True), ("q\\?", "q?", True), ("q\\?", "qq", False),
    ("[^R]*.md", "notes.md", True), ("[^R]*.md", "README.md", False),
    ("[!R]*.md", "README.md", True), ("[!R]*.md", "!x.md", True), ("[!R]*.md", "notes.md", False),
    ("*", "a", True), ("*", "a/b", True), ("*.md", "docs/a.md", False),
    ("?", "ab", False), ("?", "é", True),
    ("**/*.log", "a.log", True), ("**/*.log", "x/y/a.log", True), ("**", "x/y", True),
    ("foo/**", "foo/x", True), ("foo/**", "foobar", False),
    ("**foo", "barfoo", True), ("**foo", "x/barfoo", True),  # `**` first: a suffix match, as docker's
    ("a/**/b", "a/b", True), ("a/**/b", "a/x/y/b", True), ("a/**/b", "a/xb", False),
    ("/secret", "secret", True), ("./secret", "secret", True), ("secret", "x/secret", False),
    ("build/", "build/x/y", True), ("x/../y", "y", True), ("../x", "x", False),
    ("*.md\n!README.md", "README.md", False), ("*.md\n!README.md", "a.md", True),
    ("a\n!a/b", "a/b/c", False), ("a\n!a/b", "a/c", True),
    ("a\n!*/b", "a/b", True),  # the walk does not enter `a`: no exclusion pattern starts with it
    # patterns apply in their order whichever index finds them (a `**/name`, a plain-text start, the rest)
    ("a/bc\n!a/b*", "a/bc", False), ("**/foo\n!a/foo", "a/foo", False), ("!a/foo\n**/foo", "a/foo", True),
    ("a/*\n!*/b\nx*/**/b\n!a/b", "a/b", False),
    ("a[\\s\\S]", "ab", True), ("a[\\d\\D]b", "a/b", True),  # a class of every character: any one
    ("a\\d", "a5", True), ("a\\d", "ad", False),  # `\d` goes through to the regexp: a digit
    ("x{2}*", "xx", True), ("x{2}", "xx", False),  # `{}` go through to the regexp once it is one
    ("a+*", "a+b", True), ("a+*", "aab", False), ("(a)*", "(a)", True),
    ("a|z*", "zz", True), ("a|z*", "xa", False),
    ("[[:digit:]]*", "1x", True), ("[[:digit:]]*", "x1", False),
    ("\\x61*", "ab", True), ("\\Qa*\\E", "a[^/]*", True),
    ("b*\\", "bx$", True),  # a final `\` escapes the `$` docker appends
    ("x?y", "x\udcffy", True), ("x\udcffy", "x\udcffy", True), ("x\udcffy", "x\ufffdy", False),
    ("x\udcffy*", "x\ufffdy", True), ("x\udcffy*", "x\udcfey", True), ("x\udcffy*", "x\xe9y", False),
    ("Dockerfile", "Dockerfile", False), ("*", ".dockerignore", False),  # always sent (the engine removes them)
]


@pytest.mark.parametrize("lines, path, excluded", EXCLUDED)
def test_which_files_docker_leaves_out(lines, path, excluded) -> None:
    assert sent(path, read_patterns(lines.encode("utf-8", "surrogateescape"))) is not excluded


def test_a_regexp_that_does_not_compile_fails_only_when_used() -> None:
    lines = read_patterns(b"*\na\\q\n")  # `\q`: no escape Go's regexp knows; never used after `*` matched
    assert not sent("x", lines)
    with pytest.raises(DockerignoreError, match=r"line 2: `a\\q`: syntax error in pattern"):
        sent("x", read_patterns(b"# comment\na\\q\n"))
    with pytest.raises(DockerignoreError, match="gitops cannot match this pattern as docker does"):
        sent("x", read_patterns(b"\\pL*\n"))


@pytest.mark.parametrize("lines, name, removed", [
    ("", "Dockerfile", False),
    ("Dockerfile", "Dockerfile", True),
    ("*\n!Dockerfile", "Dockerfile", False),
    ("docker", "docker/Dockerfile", True),
    ("Dockerfil(e)", "Dockerfile", None),  # Docker 20.10 reads `(e)` as a group, later versions as text
    ("**ockerfile", "Dockerfile", None),  # later versions: a suffix match
    (".dockerignore", ".dockerignore", True),
    ("*.md", ".dockerignore", False),
    ("a\\q", "Dockerfile", None),  # does not compile: the engine keeps the file
])
def test_what_the_engine_removes_after_reading_it(lines, name, removed) -> None:
    assert removal(name, read_patterns(lines.encode())) is removed


def test_translated_classes_match_as_go_reads_names() -> None:
    """An invalid byte of a name is U+FFFD to Go: a lone surrogate here, in a class exactly when U+FFFD is."""
    negated = dockerignore.translate_re2("^x[^\ufffd]$")
    assert negated.search("xa") and not negated.search("x\udcff") and not negated.search("x\ufffd")
    assert dockerignore.translate_re2("^[\ud800-\udfff]$").search("\udc80") is None
    assert dockerignore.translate_re2("^a$").search("a\n") is None  # `$` is the end of the text only
    assert dockerignore.translate_re2("^[^/]*$").search("a\nb")  # a negated class matches \n (Perl flags)
    assert dockerignore.translate_re2("^\\s$").search("\x0b") is None  # Go's \s: no vertical tab
    for invalid in ("a**", "*a", "(a", "a)", "[z-a]", "\\8", "x{1001}", "[[:foo:]]"):
        with pytest.raises(dockerignore.PatternInvalid):
            dockerignore.translate_re2(invalid)


@pytest.mark.parametrize("pattern, name, matched", [
    ("*", ".hidden", True), ("*", "a/b", False), ("a\\*", "a*", True), ("a\\*", "ab", False),
    ("[^a]x", "bx", True), ("[!a]x", "!x", True), ("[!a]x", "bx", False), ("?", "\udcff", True),
    ("b*\\", "c", False),  # Go stops at the first chunk that does not match: the rest is not checked
    ("b*[", "bx", None), ("[a-", "a", None), ("a\\", "a", None),
])
def test_go_match(pattern, name, matched) -> None:
    assert dockerignore.go_match(pattern, name) is matched


def make_tree(root, files: list[bytes]) -> None:
    for name in files:
        path = os.path.join(os.fsencode(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not name.endswith(b"/"):
            open(path, "wb").close()


def test_selection_is_what_the_docker_cli_sends(tmp_path) -> None:
    """The audit's context: `docker build` (DOCKER_BUILDKIT=0) sends `Dockerfile README.md axb qq` and the
    `.dockerignore`; directories come with their entries, in Go's order (by name, as bytes)."""
    make_tree(tmp_path, [b"a*b", b"axb", b"[x]", b"q?", b"qq", b"README.md", b"notes.md", b"Dockerfile",
                         b".git/config", b"sub/\xff/x", b"sub/y"])
    (tmp_path / ".dockerignore").write_bytes(b".git\na\\*b\n\\[x]\nq\\?\n[^R]*.md\n")
    selection = BuildContext.load(str(tmp_path), None).selection()
    assert selection == [".dockerignore", "Dockerfile", "README.md", "axb", "qq", "sub", "sub/y", "sub/\udcff",
                         "sub/\udcff/x"]


def test_excluded_directories_are_entered_only_for_an_exclusion_inside(tmp_path) -> None:
    make_tree(tmp_path, [b"Dockerfile", b"a/b/c", b"a/d", b"e/f"])
    (tmp_path / ".dockerignore").write_bytes(b"a\ne\n!a/b\n")
    assert BuildContext.load(str(tmp_path), None).selection() == [".dockerignore", "Dockerfile", "a/b", "a/b/c"]


def test_a_dockerignore_that_is_not_utf8_is_read_as_docker_reads_it(tmp_path) -> None:
    make_tree(tmp_path, [b"Dockerfile", b"caf\xe9.txt", b"caf\xc3\xa9.txt", b"keep"])
    (tmp_path / ".dockerignore").write_bytes(b"# caf\xe9\ncaf\xe9.txt\n")
    assert BuildContext.load(str(tmp_path), None).selection() == [".dockerignore", "Dockerfile", "caf\xe9.txt",
                                                                  "keep"]


def test_a_dockerignore_that_cannot_be_read_is_exit_2(tmp_path) -> None:
    (tmp_path / ".dockerignore").mkdir()
    with pytest.raises(DockerignoreError, match=r"cannot read .*\.dockerignore: Is a directory"):
        BuildContext.load(str(tmp_path), None)


def test_the_dockerfile_is_found_as_docker_finds_it(tmp_path) -> None:
    make_tree(tmp_path, [b"docker/Dockerfile.prod"])
    (tmp_path / "Dockerfile").symlink_to("docker/Dockerfile.prod")
    assert BuildContext.load(str(tmp_path), None).dockerfile == "docker/Dockerfile.prod"  # links resolved
    outside = tmp_path.parent / "outside.Dockerfile"
    outside.write_text("FROM x\n")
    assert BuildContext.load(str(tmp_path), str(outside)).dockerfile is None


def test_excluding_names_the_lines_that_exclude_a_file() -> None:
    """The lines to drop for the engine to keep a file: its patterns and its directory's, not `!` lines."""
    lines = read_patterns(b"# docker init\n**/.git\n**/Dockerfile*\n!Dockerfile.keep\n**/.dockerignore\ndocker\n")
    assert [line.number for line in excluding("Dockerfile", lines)] == [3]
    assert [line.number for line in excluding(".dockerignore", lines)] == [5]
    assert [line.number for line in excluding("docker/Dockerfile.prod", lines)] == [3, 6]
    assert excluding("src/main.py", lines) == []


def test_patterns_compile_once_for_every_check_of_a_build(tmp_path) -> None:
    """A `.dockerignore` of many patterns: one matcher for its lines, each expression compiled once a
    process (re's own cache holds 512), in a form that compiles cheaply; every check of a build reuses them."""
    lines = [f"docs/gen{i}/**/*.md\n!keep{i}/*.bin\n**/cache{i}" for i in range(300)]
    (tmp_path / ".dockerignore").write_text("\n".join(lines) + "\n**/*.tmp\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    (tmp_path / "src" / "b.tmp").write_text("b")
    loaded = BuildContext.load(str(tmp_path), None)
    assert dockerignore.Matcher.of(loaded.lines) is dockerignore.Matcher.of(list(loaded.lines))
    assert loaded.selection() == [".dockerignore", "Dockerfile", "src", "src/a.txt"]
    assert loaded.removal("Dockerfile") is False and loaded.walk_keeps("Dockerfile")
    compiled = dockerignore.translate_re2.cache_info().currsize
    again = BuildContext.load(str(tmp_path), None)
    assert again.selection() == loaded.selection() and again.removal(".dockerignore") is False
    assert dockerignore.translate_re2.cache_info().currsize == compiled  # nothing compiled a second time
    assert dockerignore.translate_re2("^[^/]*$").pattern == "\\A(?:[^\\U0000002f])*\\Z"  # not every other character


@pytest.mark.parametrize("pattern, prefix", [
    ("docs/gen1/**/*.md", "docs/gen1/"), ("ab{2}", "a"), ("{2}a", ""), ("a+b", ""), ("x|y", ""),
    ("src/[a]b", "src/"), ("a\\*", "a"), ("\ufeffab", ""),
])
def test_a_pattern_is_tried_only_on_paths_starting_with_its_plain_text(pattern, prefix) -> None:
    assert dockerignore._literal_prefix(pattern) == prefix
