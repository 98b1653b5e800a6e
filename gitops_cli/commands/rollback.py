"""`gitops rollback`: set an image back to an earlier tag through the byte-exact bump path."""

from __future__ import annotations

import functools
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
    Paths,
    PushBranch,
    Retries,
    SshKey,
    check_output_format,
    checked_image,
    render_landed,
    require_deploy_repo,
)
from gitops_cli.settings import load_settings


def rollback(
    deploy_repo: DeployRepo = None,
    image: str | None = typer.Option(None, "--image", metavar="NAME", help="The image repository to roll back "
                                     "(default: `image` in [tool.gitops] / GITOPS_IMAGE)."),
    to: str | None = typer.Option(None, "--to", metavar="TAG", help="Roll back to this tag."),
    steps: int | None = typer.Option(None, "--steps", metavar="N",
                                     help="Roll back to the value N changes ago (default 1); consecutive "
                                          "history entries at one value are one change."),
    branch: Branch = None,
    path: Paths = [],
    container: Container = None,
    dry_run: DryRun = False,
    no_verify: bool = typer.Option(False, "--no-verify",
                                   help="Do not check that the target tag still exists in the registry."),
    author: Author = None,
    push_branch: PushBranch = None,
    retries: Retries = None,
    lock_wait: LockWait = None,
    output_format: str = typer.Option("text", "--output", "-o", metavar="FORMAT", help="text or json."),
    ssh_key: SshKey = None,
) -> None:
    """Roll an image back to an earlier tag: one commit `Roll back <repo> to <tag>`, pushed safely.

    The target is --to TAG or the value --steps N changes ago (default 1) in `gitops history`. The tag
    must still exist in the registry (--no-verify skips the check); digest-pinned references get the
    digest recorded in history, and references with no digest are not set to a tag that names another
    image now than the recorded one (exit 6). Like git revert, only the references the newest change set
    (at its value, in its files) go back; other environments are left as they are. A no-op when they are
    at the target already; exit 3 when there are none (their files were deleted since).

    \b
    Example:
      gitops rollback --deploy-repo https://git.example.com/org/deploy.git --image team/api
      gitops rollback --deploy-repo ../deploy --image team/api --to 3f2a9c1 --dry-run
      gitops rollback --steps 2          # image and deploy_repo from gitops.toml
    """
    from gitops_cli import registry
    from gitops_cli.commands.history import repository_flag
    from gitops_cli.errors import UsageError
    from gitops_cli.imageref import parse_repository
    from gitops_cli.rollback import RollbackRequest
    from gitops_cli.rollback import rollback as run_rollback
    from gitops_cli.yamledit.locate import pure_parser_forced

    check_output_format(output_format)
    pure_parser_forced()  # a bad GITOPS_YAML_PARSER is exit 2 before any work
    if to is not None and steps is not None:
        raise UsageError("--to and --steps exclude each other")
    if image is not None:  # the flag's own checks first: `--image NAME:TAG` says how to name the target
        repository_flag(image, rollback=True)
    settings = load_settings(Path("."), {"image": image, "deploy_repo": deploy_repo, "branch": branch,
                                         "paths": path, "container": container, "author": author,
                                         "push_branch": push_branch, "retries": retries,
                                         "lock_wait": lock_wait}, app_flag=False)
    if not settings.image:
        raise UsageError("--image is required (the repository to roll back)",
                         hint="or set image in [tool.gitops] / GITOPS_IMAGE")
    ref = checked_image(settings.image, settings.names, parse_repository)  # the setting as build reads it
    deploy = require_deploy_repo(settings.deploy_repo)

    @functools.cache
    def credentials(host: str) -> registry.Credentials | None:  # the one resolution, asked once per registry
        return registry.resolve_credentials(host, settings.registry_username, names=settings.names, flags=False)

    def check_tag(target):  # type: ignore[no-untyped-def]
        return registry.head_digest(target, credentials(registry.registry_host(target)), settings.insecure_registries)

    request = RollbackRequest(
        deploy_repo=deploy, image=ref, to=to, steps=steps if steps is not None else 1,
        branch=settings.branch, paths=settings.paths, container=settings.container, dry_run=dry_run,
        verify=not no_verify, author=settings.author, push_branch=settings.push_branch,
        retries=settings.retries, lock_wait=settings.lock_wait, ssh_key=ssh_key, names=settings.names,
    )
    resolver = registry.digest_resolver(settings.insecure_registries, settings.registry_username, settings.names)
    render_landed(lambda landed: run_rollback(request, check_tag=check_tag, landed=landed, resolve_digest=resolver),
                  lambda result: _render(result, output_format, dry_run))


def _render(result, output_format: str, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    bumped = result.bump
    if output_format == "json":
        data = bumped.to_json()
        data.update({"target": str(result.target), "rollback_of": result.current.commit})
        output.result_json(data)
        return
    if dry_run and bumped.edits:
        from gitops_cli.bump import unified_diff

        output.print_diff(unified_diff(bumped.edits))
    elif bumped.up_to_date:
        output.info("already up to date")  # stdout empty: no commit was made
    elif bumped.commit:
        output.result(bumped.commit)
