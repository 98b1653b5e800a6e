"""`gitops history`: each change of an image's tag/digest in the deploy repo, newest first."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_cli import output
from gitops_cli.commands.options import (
    Branch,
    Container,
    DeployRepo,
    Paths,
    SshKey,
    check_output_format,
    require_deploy_repo,
)
from gitops_cli.settings import load_settings


def history(
    deploy_repo: DeployRepo = None,
    image: str | None = typer.Option(
        None, "--image", metavar="NAME", help="Only this image repository (default: every image)."),
    branch: Branch = None,
    path: Paths = [],
    container: Container = None,
    limit: int = typer.Option(20, "--limit", metavar="N", help="At most N changes (newest first)."),
    output_format: str = typer.Option("text", "--output", "-o", metavar="FORMAT", help="text or json."),
    ssh_key: SshKey = None,
) -> None:
    """List each change of an image's tag/digest in the deploy repo, newest first.

    Reads the `Image:`/`Source-Commit:` trailers that `gitops bump` writes, and the diffs of commits made
    by hand. A remote is cloned blobless and shallow, deepened only as far as needed. With --container, only
    that container's values (the history `rollback --container` reads).

    \b
    Example:
      gitops history --deploy-repo https://git.example.com/org/deploy.git --image team/api --limit 5
    """
    from gitops_cli.history import HistoryRequest, read_history
    from gitops_cli.yamledit.locate import pure_parser_forced

    check_output_format(output_format)
    pure_parser_forced()  # a bad GITOPS_YAML_PARSER is exit 2 before any work
    ref = repository_flag(image) if image else None
    settings = load_settings(Path("."), {"deploy_repo": deploy_repo, "branch": branch, "paths": path,
                                         "container": container}, app_flag=False)
    deploy = require_deploy_repo(settings.deploy_repo)
    result = read_history(HistoryRequest(deploy_repo=deploy, image=ref, branch=settings.branch,
                                         paths=settings.paths, limit=limit, ssh_key=ssh_key,
                                         names=settings.names, container=settings.container))
    if result.shallow_at is not None:
        from gitops_cli.history import SHALLOW_HINT, shallow_cut

        output.warn(f"{shallow_cut(result.shallow_at)}: older changes are not listed; {SHALLOW_HINT}")
    if output_format == "json":
        output.result_json({"repository": result.repository, "branch": result.branch,
                            "complete": result.complete, "shallow_at": result.shallow_at,
                            "entries": [e.to_json() for e in result.entries]})
        return
    output.info(f"{result.repository} ({result.branch}): {len(result.entries)} change(s), newest first")
    for e in result.entries:
        value = ",".join(_short(v) for v in e.values)
        value = f"{{{value}}}" if e.several else value  # several: `name:{v1,v1-debug}`
        source = f" source {e.source_commit[:12]}" if e.source_commit else ""
        rollback = f" rollback-of {e.rollback_of[:12]}" if e.rollback_of else ""
        # every field but the commit comes from the repository (an author, a trailer): one printable line
        output.result(output.printable(
            f"{e.date}  {e.name}:{value}  {e.commit[:12]}  {e.author}{source}{rollback}"))


def _short(value: str) -> str:
    """`tag@digest` with the digest cut to 12 hex digits (`-` for no tag: `-@sha256:...`)."""
    tag, at, digest = value.partition("@")
    return (tag or "-") + (f"@{digest[:19]}" if at else "")


def repository_flag(text: str, rollback: bool = False):  # type: ignore[no-untyped-def]
    """--image NAME: the repository, or exit 2 naming the flag.  A tag or digest given with it is exit 2,
    never dropped: history would list every value of the repository all the same, rollback (`rollback`:
    its hint) would read `NAME:TAG` as the target and go back to another value."""
    from gitops_cli.errors import InvalidReferenceError, UsageError
    from gitops_cli.imageref import parse

    try:
        ref = parse(text)
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(f"--image {text!r}: {exc.message}", hint=exc.hint) from None
    if ref.tag or ref.digest:
        name = ref.repository_only()
        target = f" --to {ref.tag}" if ref.tag else ""
        hint = (f"name the value to go back to with --to TAG or --steps N"
                f"{f' (here: --image {name}{target})' if target else ''}") if rollback else \
            f"history lists every value of the repository: --image {name}"
        raise UsageError(f"--image {text!r}: give the repository only ({name})", hint=hint)
    return ref.repository_only()
