"""`gitops build-and-bump`: tag -> test -> build -> publish -> bump in one command, safe to re-run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from gitops_cli import output
from gitops_cli.commands.options import (
    AllowDirty,
    AllowMutableTag,
    AllowOverwrite,
    Author,
    Branch,
    BuildArgs,
    BuildImage,
    CacheFrom,
    Container,
    Context,
    DeployRepo,
    Dockerfile,
    Labels,
    Length,
    LockWait,
    Message,
    Network,
    NoCache,
    NoCommit,
    PasswordStdin,
    Paths,
    Prefix,
    Pull,
    PushBranch,
    Repo,
    Retries,
    Sha,
    SshKey,
    Tag,
    Target,
    Username,
    VerbCommand,
    absolute,
    check_output_format,
    given_options,
    require_build_image,
    require_deploy_repo,
)
from gitops_cli.errors import EXIT_WRITE_FAILED, GitopsError
from gitops_cli.settings import load_settings


def build_and_bump(
    image: BuildImage = None,
    deploy_repo: DeployRepo = None,
    repo: Repo = Path("."),
    # tag
    tag: Tag = None,
    length: Length = None,
    prefix: Prefix = None,
    sha: Sha = None,
    allow_dirty: AllowDirty = False,
    # test
    test_command: str | None = typer.Option(None, "--test-command", metavar="COMMAND",
                                            help="Test command (default: test_command, else `make test` "
                                            "when make finds a test target in the Makefile)."),
    # build
    context: Context = None,
    file: Dockerfile = None,
    build_arg: BuildArgs = [],
    label: Labels = [],
    target: Target = None,
    network: Network = None,
    cache_from: CacheFrom = [],
    pull: Pull = False,
    no_cache: NoCache = False,
    rebuild: bool = typer.Option(False, "--rebuild", help="Test, build and publish even when the registry "
                                 "already has the tag for this commit."),
    # publish
    allow_overwrite: AllowOverwrite = False,
    allow_mutable_tag: AllowMutableTag = None,
    username: Username = None,
    password_stdin: PasswordStdin = False,
    # bump
    branch: Branch = None,
    path: Paths = [],
    container: Container = None,
    message: Message = None,
    author: Author = None,
    push_branch: PushBranch = None,
    no_commit: NoCommit = False,
    retries: Retries = None,
    lock_wait: LockWait = None,
    ssh_key: SshKey = None,
    # results
    output_format: str = typer.Option("text", "--output", "-o", metavar="FORMAT",
                                      help="text (a table on a TTY) or json."),
    dotenv: Path | None = typer.Option(None, "--dotenv", metavar="FILE",
                                       help="Also write TAG, IMAGE, DIGEST, DEPLOY_COMMIT to this dotenv "
                                       "file (GitLab artifacts:reports:dotenv)."),
) -> None:
    """Tag, test, build, publish and bump the deploy repo; stop at the first failure.

    Re-running on the same commit is safe and fast: when the registry already has the tag for this
    commit and the same build inputs (labels org.opencontainers.image.revision and
    dev.gitops-cli.build-inputs), build and push are skipped, and the tests
    too when the image records that they passed before it was built (label
    dev.gitops-cli.tested-command); the bump reports "already up to date".  The bump never moves
    the deploy repo back to an older commit of this app (when the checkout has both commits): the
    image is published and the bump skipped, with a warning.  A dirty tree is refused.  In a CI
    pull-request build whose checkout is a merge commit, the run is refused (check out the PR head
    or pass --sha).  Step outputs tag, image, digest and deploy-commit are
    appended to $GITHUB_OUTPUT when set, and written to --dotenv FILE (both paths are checked before
    any work; written after the run, also after a failure or an interrupt, with what is known).  A
    --dotenv file an earlier run left is removed first: in the checkout, it is never taken for an
    untracked file nor sent to the build (list it in .gitignore for the other verbs).

    \b
    Example:
      gitops build-and-bump --image registry.example.com/team/app \\
          --deploy-repo https://git.example.com/org/deploy.git --path apps/app
      gitops build-and-bump -o json --dotenv gitops.env   # image, deploy_repo from gitops.toml
    """
    from gitops_cli import pipeline, registry
    from gitops_cli.bump import BumpRequest
    from gitops_cli.imageref import parse_repository

    github_output = _github_output()
    result = pipeline.PipelineResult()
    files_checked = False
    mode = None  # of the --dotenv file an earlier run left, for the new one
    try:
        # first: the password is masked (output.register_secret) in whatever is printed from here on; one
        # that cannot be read is bad input like any other, refused once the output files are prepared
        refused: GitopsError | None = None
        try:
            password = registry.read_password(sys.stdin) if password_stdin else None
        except GitopsError as exc:
            password, refused = None, exc
        # the output files are checked before any work (exit 2), and a --dotenv file an earlier run left
        # is removed: a run that stops early never leaves stale values, and the file is not in the checkout
        # while it is checked, hashed and sent as the build context (pipeline.reset_output_file)
        mode = pipeline.prepare_output_files(github_output, dotenv)
        files_checked = True
        if refused is not None:
            raise refused
        check_output_format(output_format)
        from gitops_cli.engine import push_stall
        from gitops_cli.yamledit.locate import pure_parser_forced

        push_stall()  # a bad GITOPS_PUSH_STALL_TIMEOUT is exit 2 before any work
        pure_parser_forced()  # and so is a bad GITOPS_YAML_PARSER (the bump step reads YAML)
        settings = load_settings(repo, {
            "image": image, "deploy_repo": deploy_repo, "tag_length": length, "tag_prefix": prefix,
            "test_command": test_command, "context": absolute(context), "dockerfile": absolute(file),
            "build_args": build_arg, "labels": label, "allow_mutable_tag": allow_mutable_tag,
            "registry_username": username, "branch": branch, "paths": path, "container": container,
            "message": message, "author": author, "push_branch": push_branch, "retries": retries,
            "lock_wait": lock_wait,
        })
        image_name = require_build_image(settings.image, settings.names)
        deploy = require_deploy_repo(settings.deploy_repo)
        name = parse_repository(image_name)
        creds = registry.resolve_credentials(registry.registry_host(name), settings.registry_username, password,
                                             names=settings.names)
        request = pipeline.PipelineRequest(
            image=image_name, repo=repo, tag=tag, sha=sha, tag_length=settings.tag_length,
            tag_prefix=settings.tag_prefix, allow_dirty=allow_dirty, test_command=settings.test_command,
            build_options={
                "context": settings.context, "dockerfile": settings.dockerfile, "build_args": settings.build_args,
                "labels": settings.labels, "target": target, "network": network, "cache_from": cache_from,
                "pull": pull, "no_cache": no_cache, "build_command": settings.build_command,
            },
            rebuild=rebuild, creds=creds, allow_overwrite=allow_overwrite,
            allow_mutable_tag=settings.allow_mutable_tag, mutable_tags=tuple(settings.mutable_tags),
            insecure=tuple(settings.insecure_registries), names=settings.names,
            bump=BumpRequest(
                deploy_repo=deploy, images=(), branch=settings.branch, paths=settings.paths,
                container=settings.container, message=settings.message, author=settings.author,
                push_branch=settings.push_branch, commit=not no_commit, retries=settings.retries,
                lock_wait=settings.lock_wait, ssh_key=ssh_key, names=settings.names,
            ),
        )
        result = pipeline.run(request)  # an interrupt is recorded in result (re-raised below)
    except GitopsError as exc:  # before the pipeline: bad input or configuration
        # the outputs, empty, as after any failure (unless the output files themselves were refused)
        errors = pipeline.write_outputs(result.outputs(), github_output, dotenv, mode) if files_checked else []
        if output_format == "json":
            output.result_json(pipeline.PipelineResult(error=exc).to_json())
        for error in errors:
            output.error(error.message)
        raise

    errors = pipeline.write_outputs(result.outputs(), github_output, dotenv, mode)
    own_error = result.error
    if own_error is None and errors:  # the run's result says how it ends: exit 74, the file named
        result.error = errors.pop(0)
    _render(result, output_format)
    for error in errors:  # reported; the run's own failure keeps its exit code
        output.error(error.message)
    if result.interrupted:
        raise KeyboardInterrupt
    if result.error is not None:
        raise result.error


class BuildAndBumpCommand(VerbCommand):
    """build-and-bump's command: options its parser refuses (an unknown flag, `--length abc`) are bad input
    found before the first step, as any other: the output files are prepared and get the empty outputs
    (a --dotenv file never keeps a previous run's values), when the --dotenv value itself can be read."""

    def refused(self, ctx: Any, args: list[str]) -> None:
        from gitops_cli import pipeline

        given = given_options(self, ctx, args).get("dotenv")
        dotenv = Path(given) if isinstance(given, str) and given else None  # `--dotenv ""` names no file
        github_output = _github_output()
        try:
            mode = pipeline.prepare_output_files(github_output, dotenv)
        except GitopsError as exc:  # a file that cannot be written: the run's own error says so, once fixed
            if exc.exit_code == EXIT_WRITE_FAILED:  # a file that may keep stale values: said now
                output.error(exc.message)
            return
        for error in pipeline.write_outputs(pipeline.PipelineResult().outputs(), github_output, dotenv, mode):
            output.error(error.message)


def _github_output() -> str | None:
    return os.environ.get("GITHUB_OUTPUT", "").strip() or None


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

        plain = output.no_color()  # NO_COLOR: no colour, and no bold or italic either
        pipeline.render_rich(result, Console(no_color=plain, color_system=None if plain else "auto",
                                             highlight=False, emoji=False))
    else:
        output.result(pipeline.render_plain(result))
