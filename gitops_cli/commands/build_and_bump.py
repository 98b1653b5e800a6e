"""`gitops build-and-bump`: tag -> test -> build -> publish -> bump in one command, safe to re-run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from gitops_cli import output
from gitops_cli.settings import load_settings


def _absolute(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


def build_and_bump(
    image: str | None = typer.Option(None, "--image", help="Repository to build, without tag, e.g. "
                                     "registry.example.com/team/app (or `image` in [tool.gitops])."),
    deploy_repo: str | None = typer.Option(
        None, "--deploy-repo", metavar="URL|PATH",
        help="Deploy repo: file://, https://, ssh://, git@host:path, or a local checkout path."),
    repo: Path = typer.Option(Path("."), "--repo", help="The app checkout (default: current directory)."),
    # tag
    tag: str | None = typer.Option(None, "--tag", help="Tag (default: the derived tag, see `gitops tag`)."),
    length: int | None = typer.Option(None, "--length", help="Short SHA length, 7..40 (default 7; git "
                                      "lengthens it when ambiguous)."),
    prefix: str | None = typer.Option(None, "--prefix", help="Text put before the SHA, e.g. 'v1-'."),
    sha: str | None = typer.Option(None, "--sha", help="Use this commit instead of HEAD (e.g. the PR head "
                                   "SHA in CI)."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Tag a dirty tree as <sha>-dirty-<hash> "
                                     "(local runs only)."),
    # test
    test_command: str | None = typer.Option(None, "--test-command", metavar="COMMAND",
                                            help="Test command (default: test_command, else `make test` "
                                            "when the Makefile has a test target)."),
    # build
    context: Path | None = typer.Option(None, "--context", help="Build context (default: the checkout)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Dockerfile (default: CONTEXT/Dockerfile)."),
    build_arg: list[str] = typer.Option([], "--build-arg", metavar="K=V",
                                         help="Build argument KEY=VALUE (repeatable)."),
    label: list[str] = typer.Option([], "--label", metavar="K=V",
                                     help="Extra image label KEY=VALUE (repeatable)."),
    target: str | None = typer.Option(None, "--target", help="Build this stage of a multi-stage Dockerfile."),
    network: str | None = typer.Option(None, "--network", help="Network for RUN steps (e.g. none, host)."),
    cache_from: list[str] = typer.Option([], "--cache-from", metavar="REF",
                                          help="Image to use as cache source (repeatable)."),
    pull: bool = typer.Option(False, "--pull/--no-pull", help="Always try to pull newer base images."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not use the layer cache."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build and publish even when the registry already "
                                 "has the tag for this commit."),
    # publish
    allow_overwrite: bool = typer.Option(False, "--allow-overwrite", help="Push even when the tag already "
                                         "names a different image in the registry."),
    allow_mutable_tag: bool | None = typer.Option(None, "--allow-mutable-tag", help="Allow `latest` and "
                                                  "branch-like tags (main, dev, stable, ...)."),
    username: str | None = typer.Option(None, "--username", help="Registry user (with --password-stdin)."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the registry password "
                                        "from stdin."),
    # bump
    branch: str | None = typer.Option(
        None, "--branch", metavar="BRANCH", help="Branch to bump (default: the remote's default branch)."),
    path: list[str] = typer.Option(
        [], "--path", metavar="DIR", help="Only look under this directory of the repo (may repeat)."),
    container: str | None = typer.Option(
        None, "--container", metavar="NAME", help="Only containers with this name."),
    message: str | None = typer.Option(
        None, "--message", metavar="TEMPLATE",
        help="Commit message template: {image} {repository} {tag} {digest} {old}."),
    author: str | None = typer.Option(
        None, "--author", metavar='"NAME <EMAIL>"',
        help="Commit author (default: GITOPS_AUTHOR, git config, gitops-cli <gitops-cli@localhost>)."),
    push_branch: str | None = typer.Option(
        None, "--push-branch", metavar="BRANCH", help="Push to this (new) branch, e.g. for a review."),
    no_commit: bool = typer.Option(False, "--no-commit", help="Only patch the files of a local checkout."),
    retries: int | None = typer.Option(
        None, "--retries", metavar="N",
        help="Re-apply and push again this many times when the remote moved (default 10)."),
    ssh_key: Path | None = typer.Option(
        None, "--ssh-key", metavar="PATH", help="Private key for ssh:// and git@host: remotes."),
    # results
    output_format: str = typer.Option("text", "--output", "-o", metavar="FORMAT",
                                      help="text (a table on a TTY) or json."),
    dotenv: Path | None = typer.Option(None, "--dotenv", metavar="FILE",
                                       help="Also write TAG, IMAGE, DIGEST, DEPLOY_COMMIT to this dotenv "
                                       "file (GitLab artifacts:reports:dotenv)."),
) -> None:
    """Tag, test, build, publish and bump the deploy repo; stop at the first failure.

    Re-running on the same commit is safe and fast: when the registry already has the tag for this
    commit (its org.opencontainers.image.revision label), build and push are skipped and the bump
    reports "already up to date".  A dirty tree is refused.  In a CI pull-request build whose checkout
    is a merge commit, the run is refused (check out the PR head or pass --sha).  Step outputs tag,
    image, digest and deploy-commit go to $GITHUB_OUTPUT when set, and to --dotenv FILE.

    \b
    Example:
      gitops build-and-bump --image registry.example.com/team/app \\
          --deploy-repo https://git.example.com/org/deploy.git --path apps/app
      gitops build-and-bump -o json --dotenv gitops.env   # image, deploy_repo from gitops.toml
    """
    from gitops_cli import pipeline, registry
    from gitops_cli.bump import BumpRequest
    from gitops_cli.errors import UsageError

    if output_format not in ("text", "json"):
        raise UsageError(f"--output {output_format!r}: expected text or json")
    password = registry.read_password(sys.stdin) if password_stdin else None
    settings = load_settings(repo, {
        "image": image, "deploy_repo": deploy_repo, "tag_length": length, "tag_prefix": prefix,
        "test_command": test_command, "context": _absolute(context), "dockerfile": _absolute(file),
        "build_args": build_arg, "labels": label, "allow_mutable_tag": allow_mutable_tag,
        "registry_username": username, "branch": branch, "paths": path, "container": container,
        "message": message, "author": author, "push_branch": push_branch, "retries": retries,
    })
    if not settings.image:
        raise UsageError("--image is required (the repository to build, without tag)",
                         hint="or set image in [tool.gitops] / GITOPS_IMAGE")
    if not settings.deploy_repo:
        raise UsageError("--deploy-repo is required (URL or local checkout; or deploy_repo in [tool.gitops])")
    from gitops_cli.imageref import parse_repository

    name = parse_repository(settings.image)
    creds = registry.resolve_credentials(registry.registry_host(name), settings.registry_username, password)
    request = pipeline.PipelineRequest(
        image=settings.image, repo=repo, tag=tag, sha=sha, tag_length=settings.tag_length,
        tag_prefix=settings.tag_prefix, allow_dirty=allow_dirty, test_command=settings.test_command,
        build_options={
            "context": settings.context, "dockerfile": settings.dockerfile, "build_args": settings.build_args,
            "labels": settings.labels, "target": target, "network": network, "cache_from": cache_from,
            "pull": pull, "no_cache": no_cache, "build_command": settings.build_command,
        },
        rebuild=rebuild, creds=creds, allow_overwrite=allow_overwrite,
        allow_mutable_tag=settings.allow_mutable_tag, mutable_tags=tuple(settings.mutable_tags),
        insecure=tuple(settings.insecure_registries),
        bump=BumpRequest(
            deploy_repo=settings.deploy_repo, images=(), branch=settings.branch, paths=settings.paths,
            container=settings.container, message=settings.message, author=settings.author,
            push_branch=settings.push_branch, commit=not no_commit, retries=settings.retries, ssh_key=ssh_key,
        ),
    )
    result = pipeline.run(request)

    if result.tag is not None:  # what is known, also after a failure (e.g. published but not bumped)
        outputs = result.outputs()
        github_output = os.environ.get("GITHUB_OUTPUT", "").strip()
        if github_output:
            pipeline.write_github_output(github_output, outputs)
        if dotenv is not None:
            pipeline.write_dotenv(dotenv, outputs)
    _render(result, output_format)
    if result.error is not None:
        raise result.error


def _render(result, output_format: str) -> None:  # type: ignore[no-untyped-def]
    from gitops_cli import pipeline

    if output_format == "json":
        output.result_json(result.to_json())
        return
    if not result.ok:  # the summary of what ran goes with the error, on stderr
        output.info(pipeline.render_plain(result))
        return
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        from rich.console import Console

        pipeline.render_rich(result, Console(no_color=output.no_color(), highlight=False, emoji=False))
    else:
        output.result(pipeline.render_plain(result))
