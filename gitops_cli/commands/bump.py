"""`gitops bump`: set the tag/digest of images in a deploy repo, byte-exact; one commit; safe push."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_cli import output
from gitops_cli.commands.options import (
    Author,
    Branch,
    Container,
    DeployRepo,
    DryRun,
    LockWait,
    Message,
    NoCommit,
    Paths,
    PushBranch,
    Retries,
    SshKey,
    check_output_format,
    render_landed,
    require_deploy_repo,
)
from gitops_cli.settings import load_settings


def bump(
    deploy_repo: DeployRepo = None,
    image: list[str] = typer.Option(
        [], "--image", metavar="NAME:TAG[@DIGEST]",
        help="NAME:TAG[@sha256:DIGEST] to set (may repeat: several images, one commit)."),
    branch: Branch = None,
    path: Paths = [],
    container: Container = None,
    message: Message = None,
    author: Author = None,
    push_branch: PushBranch = None,
    no_commit: NoCommit = False,
    dry_run: DryRun = False,
    output_format: str = typer.Option(
        "text", "--output", "-o", metavar="FORMAT",
        help="text or json (every change with file, line, column, old, new)."),
    retries: Retries = None,
    lock_wait: LockWait = None,
    ssh_key: SshKey = None,
) -> None:
    """Bump image tags/digests in a deploy repo: byte-exact edit, one commit, push without force.

    Changes only the tag/digest characters of each matching reference (container images, kustomize
    images:, Helm image maps); comments, quotes and layout stay.  A push rejected because the remote moved
    is re-applied on the new head and retried.  HTTPS token: GITOPS_GIT_TOKEN (or GITHUB_TOKEN /
    CI_JOB_TOKEN for their own hosts); SSH: --ssh-key.  stdout: the commit SHA (nothing when already up to date).

    \b
    Example:
      gitops bump --deploy-repo https://git.example.com/org/deploy.git \\
          --image registry.example.com/team/api:3f2a9c1
      gitops bump --deploy-repo ../deploy --image team/api:3f2a9c1 --no-commit
      gitops bump --deploy-repo git@github.com:org/deploy.git --ssh-key ~/.ssh/deploy \\
          --image team/api:3f2a9c1 --image team/worker:3f2a9c1 --push-branch bump/3f2a9c1 --dry-run
    """
    from gitops_cli.bump import BumpRequest
    from gitops_cli.bump import bump as run_bump
    from gitops_cli.errors import InvalidReferenceError
    from gitops_cli.imageref import parse_tagged
    from gitops_cli.registry import digest_resolver
    from gitops_cli.yamledit.locate import pure_parser_forced

    check_output_format(output_format)
    pure_parser_forced()  # a bad GITOPS_YAML_PARSER is exit 2 before any work
    images = []
    for text in image:  # exit 2 before anything is cloned
        try:
            images.append(parse_tagged(text))
        except InvalidReferenceError as exc:
            raise InvalidReferenceError(f"--image {text!r}: {exc.message}", hint=exc.hint) from None
    settings = load_settings(Path("."), {
        "deploy_repo": deploy_repo, "branch": branch, "paths": path, "container": container,
        "message": message, "author": author, "push_branch": push_branch, "retries": retries,
        "lock_wait": lock_wait,
    }, app_flag=False)
    deploy = require_deploy_repo(settings.deploy_repo)
    request = BumpRequest(
        deploy_repo=deploy, images=images, branch=settings.branch, paths=settings.paths,
        container=settings.container, message=settings.message, author=settings.author,
        push_branch=settings.push_branch, commit=not no_commit, dry_run=dry_run, retries=settings.retries,
        lock_wait=settings.lock_wait, ssh_key=ssh_key, names=settings.names,
    )
    resolver = digest_resolver(settings.insecure_registries, settings.registry_username, settings.names)
    render_landed(lambda landed: run_bump(request, resolve_digest=resolver, landed=landed),
                  lambda result: _render(result, output_format, dry_run))


def _render(result, output_format: str, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    from gitops_cli.bump import unified_diff

    if output_format == "json":
        output.result_json(result.to_json())
        return
    for edit in result.edits:
        for change in edit.changes:
            output.info(f"{output.printable(edit.path)}:{change.line}:{change.column}: {change.old} -> {change.new}")
    if dry_run and result.edits:
        output.print_diff(unified_diff(result.edits))
    elif result.up_to_date:
        output.info("already up to date")  # stdout empty: no commit was made
    elif result.commit:
        where = f"pushed to {result.push_branch}" if result.pushed else "committed (not pushed: no remote)"
        output.info(f"{len(result.changes)} change(s) in {len(result.edits)} file(s); {where}")
        output.result(result.commit)
    else:
        for edit in result.edits:  # one line each, as `git diff --name-only` writes them
            output.result(output.quoted_path(edit.path))
