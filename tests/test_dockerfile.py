"""Dockerfile FROM / COPY --from parsing: values, skipped stages, ARG defaults and exact positions."""

from __future__ import annotations

import pytest

from gitops_cli.dockerfile import BuildkitSyntax, DockerImage, buildkit_only, copies_root_file, expand, parse_dockerfile


def images(text: str) -> list[DockerImage]:
    result = parse_dockerfile(text)
    assert result.error is None, result.error
    return result.images


def at(text: str, image: DockerImage) -> str:
    """The text at the image's reported position (line/column are 1-based)."""
    line = text.splitlines()[image.line - 1]
    return line[image.column - 1:image.column - 1 + len(image.raw)]


def test_simple_from_positions():
    text = "FROM nginx:1.27\nRUN true\nfrom   Alpine\n"
    got = images(text)
    assert [(i.value, i.line, i.column) for i in got] == [("nginx:1.27", 1, 6), ("Alpine", 3, 8)]
    assert got[0].end_column == 16
    assert all(at(text, i) == i.raw for i in got)


def test_platform_flag_and_stage_name():
    text = "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nFROM build\nFROM BUILD AS again\n"
    got = images(text)
    assert [(i.value, i.column, i.stage) for i in got] == [("golang:1.22", 32, "build")]


def test_stage_name_only_counts_after_its_definition():
    # `FROM app` before a stage named app is an image; afterwards it is the stage.
    got = images("FROM app\nFROM node:20 AS app\nFROM app\n")
    assert [(i.value, i.line) for i in got] == [("app", 1), ("node:20", 2)]


def test_scratch_skipped():
    assert images("FROM scratch\nFROM SCRATCH AS x\n") == []


def test_copy_from_image_but_not_stage_or_index():
    text = (
        "FROM golang:1.22 AS build\n"
        "FROM alpine:3.20\n"
        "COPY --from=build /out /out\n"
        "COPY --from=0 /out /out\n"
        "COPY --link --from=docker.io/library/busybox:latest /bin/sh /sh\n"
        "ADD --chown=1:1 x y\n"
        "COPY --from=Build /a /b\n"
    )
    got = [i for i in images(text) if i.kind == "copy-from"]
    assert [(i.value, i.line, i.column) for i in got] == [("docker.io/library/busybox:latest", 5, 20)]
    assert at(text, got[0]) == "docker.io/library/busybox:latest"


def test_arg_defaults_before_first_from():
    text = (
        "ARG REGISTRY=ghcr.io\n"
        'ARG BASE="${REGISTRY}/acme/base" TAG=1.2.3\n'
        "ARG VERSION\n"
        "FROM ${BASE}:${TAG}\n"
        "FROM alpine:${VERSION:-3.20}\n"
        "FROM app:${VERSION}\n"
        "FROM app:$VERSION\n"
        "ARG LATER=9\n"
        "FROM x:${LATER}\n"
    )
    got = images(text)
    assert [i.value for i in got] == [
        "ghcr.io/acme/base:1.2.3",
        "alpine:3.20",
        "app:${VERSION}",
        "app:$VERSION",
        "x:${LATER}",  # an ARG after the first FROM is stage-scoped: FROM cannot see it
    ]
    assert got[0].raw == "${BASE}:${TAG}" and got[0].column == 6
    assert [i.unresolved for i in got] == [(), (), ("VERSION",), ("VERSION",), ("LATER",)]


def test_expand_forms():
    args = {"SET": "v", "EMPTY": "", "NODEF": None}
    assert expand("${SET:-d}", args) == ("v", ())
    assert expand("${EMPTY:-d}", args) == ("d", ())
    assert expand("${EMPTY-d}", args) == ("", ())
    assert expand("${NODEF:-d}", args) == ("d", ())
    assert expand("${UNDECLARED-d}", args) == ("d", ())
    assert expand("${SET:+alt}", args) == ("alt", ())
    assert expand("${NODEF:+alt}", args) == ("", ())
    assert expand("${NODEF:?required}", args) == ("${NODEF:?required}", ("NODEF",))
    assert expand(r"a\$b", args) == ("a$b", ())
    assert expand("${SET:-${NODEF}}", args) == ("v", ())


def test_continuation_comments_and_crlf():
    text = (
        "FROM \\\r\n  # a comment inside the continuation\r\n\r\n"
        "  nginx:latest \\\r\n  AS web\r\nFROM web\r\n"
    )
    got = images(text)
    assert [(i.value, i.line, i.column, i.stage) for i in got] == [("nginx:latest", 4, 3, "web")]


def test_escape_directive_backtick():
    text = "# escape=`\nFROM `\n    mcr.microsoft.com/windows/servercore:ltsc2022\nRUN dir c:\\\n"
    got = images(text)
    want = [("mcr.microsoft.com/windows/servercore:ltsc2022", 3, 5)]
    assert [(i.value, i.line, i.column) for i in got] == want


def test_heredoc_bodies_are_not_instructions():
    text = (
        "FROM alpine:3.20\nRUN <<EOF\nFROM evil:latest\nEOF\n"
        "COPY <<-'END' /x\n\tFROM evil2\n\tEND\nFROM busybox:1.36\n"
    )
    assert [i.value for i in images(text)] == ["alpine:3.20", "busybox:1.36"]


def test_comments_and_indented_instructions():
    text = "# FROM commented:latest\n  FROM nginx:1 as base\n"
    assert [(i.value, i.column) for i in images(text)] == [("nginx:1", 8)]


def test_non_ascii_columns_count_characters():
    text = "LABEL x=é\nFROM  nginx:latest\n"
    assert [(i.line, i.column) for i in images(text)] == [(2, 7)]


@pytest.mark.parametrize(
    "text, line",
    [
        ("FROM\n", 1),
        ("RUN x\nFROM a b\n", 2),
        ("FROM a AS\n", 1),
        ("FROM a to b\n", 1),
        ("ARG X\nFROM app:${X\n", 2),
    ],
)
def test_syntax_errors_name_the_line(text, line):
    result = parse_dockerfile(text)
    assert result.error is not None
    assert result.error.line == line
    assert result.error.message


def test_empty_and_comment_only():
    assert images("") == []
    assert images("# just a comment\n\n") == []


@pytest.mark.parametrize(
    "instructions, copies",
    [
        ("COPY . /src/", True),
        ("COPY --chown=1:1 ./ /x", True),
        ('COPY [".", "/x"]', True),
        ('COPY --chmod=644 ["./", "/x"]', True),
        ("COPY .dockerignore /x", True),
        ("ADD .* /x/", True),
        ("COPY * /x/", True),
        ("COPY [^a]* /x/", True),
        ("COPY a b/.. /x/", True),  # b/.. is the whole context
        ("COPY $SRC /x", True),  # a variable: not known here
        ("copy \\\n  . /x", True),  # a continuation, lower case
        ("COPY app.sh /src/", False),
        ("COPY src/ /x/", False),
        ("COPY src/.dockerignore /x", False),  # another directory's file
        ("COPY [a-c]* /x/", False),
        ("COPY *\\.dockerignore /x/", True),  # `\` escapes, as in Go's filepath.Match
        ("COPY [!x]dockerignore /x/", False),  # Go's `[!x]` is "! or x", no negation
        ("COPY *[ /x/", True),  # malformed: what the engine does with it is not known here
        ("COPY --from=build . /x", False),  # another stage
        ("ADD https://example.com/a.tgz /x", False),
        ("RUN cp -r . /x", False),
        ("COPY <<EOF /x\n.\nEOF", False),  # a heredoc
    ],
)
def test_copies_root_file(instructions: str, copies: bool) -> None:
    assert copies_root_file(f"FROM base\n{instructions}\n", ".dockerignore") is copies


@pytest.mark.parametrize(("instructions", "found"), [
    ("RUN --mount=type=cache,target=/root/.cache make", BuildkitSyntax(2, "RUN --mount")),
    ("run --network=none make", BuildkitSyntax(2, "RUN --network")),
    ("COPY --chown=1:1 --from=build /a /b\nADD --chmod=644 a /b", BuildkitSyntax(3, "ADD --chmod")),
    ("COPY --link . /app", BuildkitSyntax(2, "COPY --link")),
    ("# a comment\n\nRUN <<EOF\necho --mount\nEOF", BuildkitSyntax(4, "RUN <<EOF (a heredoc)")),
    ("COPY <<-'EOT' /etc/x\n\thello\n\tEOT", BuildkitSyntax(2, "COPY <<-'EOT' (a heredoc)")),
    ("RUN echo a \\\n  && echo b --mount=x\nRUN --security=insecure x", BuildkitSyntax(4, "RUN --security")),
    ("RUN echo '<<EOF' --mount", None),  # no flag before the command, no heredoc word
    ('RUN ["sh", "-c", "cat <<EOF"]', None),  # the exec form has no heredocs
    ("COPY --chown=app --from=build /a /b\nONBUILD RUN --mount=type=cache,target=/x make", None),
    # `<<` in a quoted word, alone, or glued to a command is no heredoc for BuildKit either
    ("RUN printf '#!/bin/sh\\ncat <<EOF\\nhello\\nEOF\\n' > /bin/greet", None),
    ('RUN echo "use cat <<EOF"', None),
    ("RUN echo $(( 1 << SHIFT ))", None),
    ("RUN cat <<'EOF' > /x # a comment\nhello\nEOF", BuildkitSyntax(2, "RUN <<'EOF' (a heredoc)")),
    ("RUN 0<<EOF cat\nx\nEOF", BuildkitSyntax(2, "RUN 0<<EOF (a heredoc)")),
])
def test_buildkit_only(instructions: str, found: BuildkitSyntax | None) -> None:
    """The first instruction the legacy builder refuses and BuildKit builds, with its line."""
    assert buildkit_only(f"FROM base\n{instructions}\n") == found


def test_buildkit_only_looks_no_further_than_the_target_stage() -> None:
    """The legacy builder builds the stages up to --target's, in order: a later stage's BuildKit syntax is
    never built, an earlier stage's is."""
    text = ("FROM base AS deps\nRUN echo deps\nFROM base AS prod\nRUN echo prod\n"
            "FROM base AS dev\nRUN --mount=type=cache,target=/c echo dev\n")
    assert buildkit_only(text, target="prod") is None
    assert buildkit_only(text, target="PROD") is None  # stage names are matched without case
    assert buildkit_only(text, target="dev") == BuildkitSyntax(6, "RUN --mount")
    assert buildkit_only(text) == BuildkitSyntax(6, "RUN --mount")
    early = text.replace("RUN echo deps", "RUN --network=none echo deps")
    assert buildkit_only(early, target="prod") == BuildkitSyntax(2, "RUN --network")
