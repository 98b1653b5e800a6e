"""`gitops tag`: print the immutable tag for the app checkout."""

from __future__ import annotations

from pathlib import Path

from gitops_cli import output
from gitops_cli.commands.options import AllowDirty, Length, Prefix, Repo, Sha
from gitops_cli.settings import load_settings


def tag(
    repo: Repo = Path("."),
    length: Length = None,
    prefix: Prefix = None,
    allow_dirty: AllowDirty = False,
    sha: Sha = None,
) -> None:
    """Print the immutable tag (short commit SHA) for the checkout; refuse a dirty tree.

    \b
    Example:
      TAG=$(gitops tag)                 # 3f2a9c1
      gitops tag --allow-dirty          # 3f2a9c1-dirty-5e0c1a7b (local runs)
      gitops tag --sha "$PR_HEAD_SHA"   # CI checked out a merge commit
    """
    from gitops_cli.tagging import derive_tag

    settings = load_settings(repo, {"tag_length": length, "tag_prefix": prefix})
    info = derive_tag(repo, length=settings.tag_length, prefix=settings.tag_prefix,
                      allow_dirty=allow_dirty, sha=sha)
    output.result(info.tag, trusted=True)
