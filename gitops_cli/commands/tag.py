"""`gitops tag`: print the immutable tag for the app checkout."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_cli import output
from gitops_cli.settings import load_settings


def tag(
    repo: Path = typer.Option(Path("."), "--repo", help="The app checkout (default: current directory)."),
    length: int | None = typer.Option(None, "--length", help="Short SHA length, 7..40 (default 7; git "
                                      "lengthens it when ambiguous)."),
    prefix: str | None = typer.Option(None, "--prefix", help="Text put before the SHA, e.g. 'v1-'."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Tag a dirty tree as <sha>-dirty-<hash> "
                                     "(local runs only)."),
    sha: str | None = typer.Option(None, "--sha", help="Use this commit instead of HEAD (e.g. the PR head "
                                   "SHA in CI)."),
) -> None:
    """Print the immutable tag (short commit SHA) for the checkout; refuse a dirty tree.

    Example:  TAG=$(gitops tag)   ->  3f2a9c1
    """
    from gitops_cli.tagging import derive_tag

    settings = load_settings(repo, {"tag_length": length, "tag_prefix": prefix})
    info = derive_tag(repo, length=settings.tag_length, prefix=settings.tag_prefix,
                      allow_dirty=allow_dirty, sha=sha)
    output.result(info.tag)
