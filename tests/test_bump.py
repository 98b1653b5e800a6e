"""gitops_cli.bump: request validation, commit message, diff rendering (pure parts of the use case)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gitops_cli.bump import BumpRequest, FileEdit, render_message, unified_diff, validate
from gitops_cli.ci import CIInfo
from gitops_cli.errors import UsageError
from gitops_cli.imageref import parse

API = parse("registry.example.com/team/api:2.0.0")
WORKER = parse("registry.example.com/team/worker:2.0.0")
NO_CI = CIInfo(None, None, None)


@dataclass
class FakeChange:  # the fields of yamledit.Change the message needs
    old: str
    new: str
    line: int = 1
    column: int = 1


def test_default_message_one_image() -> None:
    msg = render_message([API], [], None, NO_CI)
    assert msg == (
        "Update registry.example.com/team/api image to registry.example.com/team/api:2.0.0\n\n"
        "Image: registry.example.com/team/api:2.0.0\n"
    )


def test_default_message_several_images_and_ci_trailers() -> None:
    info = CIInfo("github", "f" * 40, "https://github.com/org/app/actions/runs/9")
    msg = render_message([API, WORKER], [], None, info)
    subject, body, trailers = msg.split("\n\n")
    assert subject == "Update 2 images"
    assert body.splitlines() == [
        "Update registry.example.com/team/api image to registry.example.com/team/api:2.0.0",
        "Update registry.example.com/team/worker image to registry.example.com/team/worker:2.0.0",
    ]
    assert trailers.splitlines() == [
        "Image: registry.example.com/team/api:2.0.0",
        "Image: registry.example.com/team/worker:2.0.0",
        "Source-Commit: " + "f" * 40,
        "CI-Run: https://github.com/org/app/actions/runs/9",
    ]


def test_message_template_fields() -> None:
    digest = "sha256:" + "a" * 64
    image = parse(f"registry.example.com/team/api:2.0.0@{digest}")
    edits = [FileEdit("a.yaml", "", "", [FakeChange("registry.example.com/team/api:1.0.0", str(image))],
                      [image.normalized_name])]
    msg = render_message([image], edits, "deploy {repository} {tag} ({digest}) was {old}; {image}", NO_CI)
    assert msg.splitlines()[0] == (
        f"deploy registry.example.com/team/api 2.0.0 ({digest}) was "
        f"registry.example.com/team/api:1.0.0; {image}"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": []}, "--image is required"),
        ({"images": [API, parse("registry.example.com/team/api:3")]}, "given twice"),
        ({"retries": -1}, "--retries"),
        ({"author": "nobody"}, "--author"),
        ({"message": "bump {nope}"}, "unknown placeholder {nope}"),
        ({"message": "bump {image"}, "--message"),
        ({"message": "  "}, "empty"),
        ({"push_branch": "bad..name"}, "--push-branch"),
        ({"branch": "-x"}, "--branch"),
    ],
)
def test_validate_rejects(kwargs: dict, match: str) -> None:
    request = BumpRequest(**{"deploy_repo": "file:///x.git", "images": [API], **kwargs})
    with pytest.raises(UsageError, match=match):
        validate(request)


def test_validate_accepts() -> None:
    validate(BumpRequest("file:///x.git", [API, WORKER], message="{image} {old}", author="A <a@b.c>",
                         push_branch="bump/api-2.0.0"))


def test_unified_diff_keeps_missing_final_newline_and_crlf() -> None:
    edits = [
        FileEdit("a.yaml", "image: x:1\nname: a", "image: x:2\nname: a", []),
        FileEdit("b.yaml", "k: v\r\nimage: y:1\r\n", "k: v\r\nimage: y:2\r\n", []),
    ]
    diff = unified_diff(edits)
    assert "diff --git a/a.yaml b/a.yaml\n--- a/a.yaml\n+++ b/a.yaml\n" in diff
    assert "-image: x:1\n+image: x:2\n name: a\n\\ No newline at end of file\n" in diff
    assert "-image: y:1\r\n+image: y:2\r\n" in diff
