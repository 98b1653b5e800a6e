"""Options shared by several verbs, declared once (`build-and-bump` takes those of tag/build/publish/bump),
and the command classes that parse them.

Each alias is `Annotated[type, typer.Option(...)]`; a verb gives the default:  `repo: Repo = Path(".")`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from gitops_cli.settings import Names

T = TypeVar("T")


class _ParserContext:
    """click's option parser raises some usage errors without the command's context (a flag without its
    value: `gitops tag --length`; a value given to a flag: `--allow-dirty=x`), and a usage error without
    one is shown as its `Error:` line alone.  Here they get the command's context, so every usage error
    shows the same block: `Usage: ...`, `Try 'gitops VERB -h' for help.`, `Error: ...`.  Before it is
    shown, the verb deals with what the refused arguments name (`refused`).  The parser refuses an empty
    value of any option too (refuse_empty_values: one `error:` line, exit 2), and calls `refused` then."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from gitops_cli.errors import UsageError

        given = list(args)  # the parser consumes the list
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc, no-any-return]
        except typer.TyperException as exc:  # click's UsageError and its kinds carry `ctx` and `cmd`
            usage: Any = exc
            if hasattr(usage, "ctx") and usage.ctx is None:
                usage.ctx, usage.cmd = ctx, ctx.command
            self.refused(ctx, given)
            raise
        except UsageError:  # an empty value
            self.refused(ctx, given)
            raise

    def make_parser(self, ctx: Any) -> Any:
        """The command's parser, whose values, as given (strings, before any conversion: `Path("")` is `.`),
        are checked by refuse_empty_values, unless an eager option (`--help`) is among them."""
        parser = super().make_parser(ctx)  # type: ignore[misc]
        parse = parser.parse_args

        def parse_args(args: list[str]) -> Any:
            values, rest, order = parse(args)
            if not ctx.resilient_parsing and not any(getattr(param, "is_eager", False) for param in order):
                refuse_empty_values(ctx.command.get_params(ctx), values)
            return values, rest, order

        parser.parse_args = parse_args
        return parser

    def refused(self, ctx: Any, args: list[str]) -> None:
        """Called with the arguments the parser refused (a usage error, exit 2), before it is shown."""


class VerbCommand(_ParserContext, TyperCommand):
    """A verb's command (see _ParserContext).  A verb whose bad input has effects of its own (the
    output files of build-and-bump) overrides `refused`, reading the options with `given_options`."""


class AppGroup(_ParserContext, TyperGroup):
    """The `gitops` command itself, whose options (`--version`, `--debug`) come before the verb."""

    def refused(self, ctx: Any, args: list[str]) -> None:
        """`gitops --bogus VERB ARGS`: the verb's arguments are refused with it (none of gitops' own
        options takes a value, so the first argument naming a verb is the verb)."""
        for at, arg in enumerate(args):
            command = self.commands.get(arg)
            if command is not None:
                if isinstance(command, _ParserContext):
                    command.refused(type(ctx)(command, parent=ctx, info_name=arg), args[at + 1:])
                return


def refuse_empty_values(params: Any, given: dict[str, Any]) -> None:
    """Exit 2 for an option given an empty value (`--path ""`, `--in-image "$UNSET"`): no option of gitops
    takes one (but the flags of settings.EMPTY_ALLOWED: `--prefix ""`), and taking it as "not given", "the
    whole repository" or "the current directory" (Path("") is `.`) would do what was not asked, silently.
    Every option of every verb, as given (before conversion); an argument (lint's PATH) is the verb's."""
    from gitops_cli.errors import UsageError
    from gitops_cli.settings import EMPTY_ALLOWED, FLAGS, empty_value

    allowed = {FLAGS.flag(key) for key in EMPTY_ALLOWED}
    for param in params:
        if param.param_type_name != "option" or param.is_flag or param.count or param.name not in given:
            continue
        values = given[param.name]
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if flag not in allowed and "" in (values if isinstance(values, list | tuple) else [values]):
            raise UsageError(empty_value(f"{flag} ''"), hint="a shell variable that is empty or unset gives one")


def given_options(command: Any, ctx: Any, args: list[str]) -> dict[str, Any]:
    """The options `args` give `command`, as its parser reads them (a repeated option: its last value), read
    again after the parser refused them: unknown options are passed over, reading stops at a malformed one
    (a flag given a value, a value missing at the end), values are the strings given (not converted), and
    no default is filled in."""
    scratch = type(ctx)(command, parent=ctx.parent, info_name=ctx.info_name, resilient_parsing=True,
                        ignore_unknown_options=True)
    values, _, _ = command.make_parser(scratch).parse_args(args=list(args))
    return dict(values)


# --- the app checkout and its tag -----------------------------------------------------------------------
Repo = Annotated[Path, typer.Option("--repo", help="The app checkout (default: current directory).")]
Length = Annotated[int | None, typer.Option(
    "--length", help="Short SHA length, 7..40 (default 7; git lengthens it when ambiguous).")]
Prefix = Annotated[str | None, typer.Option("--prefix", help="Text put before the SHA, e.g. 'v1-'.")]
Sha = Annotated[str | None, typer.Option(
    "--sha", help="Use this commit instead of HEAD (e.g. the PR head SHA in CI).")]
AllowDirty = Annotated[bool, typer.Option(
    "--allow-dirty", help="Tag a dirty tree as <sha>-dirty-<hash> (local runs only).")]
Tag = Annotated[str | None, typer.Option("--tag", help="Tag (default: the derived tag, see `gitops tag`).")]

# --- build ----------------------------------------------------------------------------------------------
BuildImage = Annotated[str | None, typer.Option(
    "--image", help="Repository to build, without tag, e.g. registry.example.com/team/app "
    "(or `image` in [tool.gitops]).")]
Context = Annotated[Path | None, typer.Option("--context", help="Build context (default: the checkout).")]
Dockerfile = Annotated[Path | None, typer.Option(
    "--file", "-f", help="Dockerfile (default: CONTEXT/Dockerfile).")]
BuildArgs = Annotated[list[str], typer.Option(
    "--build-arg", metavar="K[=V]",
    help="Build argument KEY=VALUE, or KEY to take its value from the environment (repeatable).")]
Labels = Annotated[list[str], typer.Option(
    "--label", metavar="K=V", help="Extra image label KEY=VALUE (repeatable).")]
Target = Annotated[str | None, typer.Option("--target", help="Build this stage of a multi-stage Dockerfile.")]
Network = Annotated[str | None, typer.Option("--network", help="Network for RUN steps (e.g. none, host).")]
CacheFrom = Annotated[list[str], typer.Option(
    "--cache-from", metavar="REF", help="Image to use as cache source (repeatable).")]
Pull = Annotated[bool, typer.Option("--pull/--no-pull", help="Always try to pull newer base images.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not use the layer cache.")]

# --- publish --------------------------------------------------------------------------------------------
AllowOverwrite = Annotated[bool, typer.Option(
    "--allow-overwrite", help="Push even when the tag already names a different image in the registry.")]
AllowMutableTag = Annotated[bool | None, typer.Option(
    "--allow-mutable-tag", help="Allow `latest` and branch-like tags (main, dev, stable, ...).")]
Username = Annotated[str | None, typer.Option("--username", help="Registry user (with --password-stdin).")]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the registry password from stdin.")]

# --- the deploy repo ------------------------------------------------------------------------------------
DeployRepo = Annotated[str | None, typer.Option(
    "--deploy-repo", metavar="URL|PATH",
    help="Deploy repo: file://, https://, ssh://, git@host:path, or a local checkout path.")]
Branch = Annotated[str | None, typer.Option(
    "--branch", metavar="BRANCH", help="Branch of the deploy repo (default: the remote's default branch).")]
Paths = Annotated[list[str], typer.Option(
    "--path", metavar="DIR", help="Only look under this directory of the repo (may repeat).")]
Container = Annotated[str | None, typer.Option(
    "--container", metavar="NAME", help="Only containers with this name.")]
Message = Annotated[str | None, typer.Option(
    "--message", metavar="TEMPLATE",
    help="Commit message template: {image} {repository} {tag} {digest} {old} (the previous value(s): v1, "
         "v1@sha256:..., @sha256:...).")]
Author = Annotated[str | None, typer.Option(
    "--author", metavar='"NAME <EMAIL>"',
    help="Commit author (default: GITOPS_AUTHOR, git config, gitops-cli <gitops-cli@localhost>).")]
PushBranch = Annotated[str | None, typer.Option(
    "--push-branch", metavar="BRANCH", help="Push to this (new) branch, e.g. for a review.")]
NoCommit = Annotated[bool, typer.Option("--no-commit", help="Only patch the files of a local checkout.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the diff; change nothing anywhere.")]
Retries = Annotated[int | None, typer.Option(
    "--retries", metavar="N", help="Re-apply and push again this many times when the remote moved (default 10).")]
LockWait = Annotated[int | None, typer.Option(
    "--lock-wait", metavar="SECONDS",
    help="Wait this long for another bump or rollback of the same local checkout to end (default 300; 0: do "
         "not wait).")]
SshKey = Annotated[Path | None, typer.Option(
    "--ssh-key", metavar="PATH", help="Private key for ssh:// and git@host: remotes.")]


def absolute(path: Path | None) -> str | None:
    """Path flags are relative to the current directory (config values are relative to the checkout)."""
    return str(path.resolve()) if path is not None else None


def check_output_format(value: str) -> None:
    from gitops_cli.errors import UsageError

    if value not in ("text", "json"):
        raise UsageError(f"--output {value!r}: expected text or json")


def require_deploy_repo(value: str | None) -> str:
    """The deploy repo from flag/env/config, or exit 2 saying how to give it."""
    from gitops_cli.errors import UsageError

    if not value:
        raise UsageError("--deploy-repo is required (URL or local checkout; or deploy_repo in [tool.gitops])")
    return value


def require_build_image(value: str | None, names: Names) -> str:
    """The repository to build from flag/env/config, or exit 2 saying how to give it, or naming where an
    invalid one came from (settings.Names)."""
    from gitops_cli.errors import UsageError
    from gitops_cli.imageref import parse_repository

    if not value:
        raise UsageError("--image is required (the repository to build, without tag)",
                         hint="or set image in [tool.gitops] / GITOPS_IMAGE")
    checked_image(value, names, parse_repository, engine=True)
    return value


def render_landed(run: Callable[[Callable[[Any], None]], Any], render: Callable[[Any], None]) -> None:
    """Run a bump-like use case and render its result.  `run(landed)` calls `landed(result)` once its push
    went through: interrupted after that, the result is rendered (the commit is on the remote), then the
    interrupt goes on (exit 130)."""
    landed: list[Any] = []
    try:
        result = run(landed.append)
    except KeyboardInterrupt:
        if landed:
            render(landed[0])
        raise
    render(result)


def checked_image(value: str, names: Names, parse: Callable[[str], T], engine: bool = False) -> T:
    """`parse(value)` of the `image` setting: an invalid reference is exit 2 naming its source; with `engine`
    (the verb gives it to the container engine), so is one the engine would refuse (engine.check_reference)."""
    from gitops_cli.errors import InvalidReferenceError

    try:
        ref = parse(value)
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(f"{names('image', value)}: {exc.message}", hint=exc.hint) from None
    if engine:
        from gitops_cli import engine as adapter
        from gitops_cli.imageref import ImageRef

        assert isinstance(ref, ImageRef)
        adapter.check_reference(ref, names("image", value))
    return ref
