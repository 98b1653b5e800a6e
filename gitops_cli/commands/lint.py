"""`gitops lint`: report mutable, missing and invalid image tags in manifests and Dockerfiles."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from gitops_cli import output
from gitops_cli.commands.options import VerbCommand
from gitops_cli.errors import UsageError


class LintCommand(VerbCommand):
    """`gitops lint`'s command: an argument that starts with `-` but is no option of lint and names an
    existing file (`-x.yaml`) is a path.  pre-commit passes the staged files after the hook's own args with
    no `--` between them, so such a file broke the whole batch ("No such option: -x").  A misspelled
    option (no such file) is still the parser's usage error."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, paths_apart(args, self.get_params(ctx)))


def paths_apart(args: Sequence[str], params: Sequence[Any]) -> list[str]:
    """`args` with the files among them whose names look like options moved after a `--`, with the other
    paths (in their order); `args` as they are when there is none."""
    takes_value = {name: not (param.is_flag or param.count) for param in params
                   if param.param_type_name == "option" for name in (*param.opts, *param.secondary_opts)}
    options: list[str] = []
    paths: list[str] = []
    dashed = False
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            paths.extend(rest)
            break
        name = arg.split("=", 1)[0]
        if arg.startswith("-") and len(arg) > 1 and (name in takes_value or not os.path.lexists(arg)):
            options.append(arg)
            if takes_value.get(name) and "=" not in arg:
                value = next(rest, None)
                if value is None:  # the parser says what is missing
                    return list(args)
                options.append(value)
        else:
            dashed = dashed or arg.startswith("-")
            paths.append(arg)
    return [*options, "--", *paths] if dashed else list(args)


def lint(
    paths: list[str] | None = typer.Argument(
        None, metavar="[PATH]...", show_default=False,
        help="Files or directories (recursive: *.yaml, *.yml, Kustomization, Dockerfile*, Containerfile*, "
             "*.Dockerfile, *.Containerfile, ...). "
             "Default: the current directory.",
    ),
    fmt: str | None = typer.Option(
        None, "--format", metavar="text|json|github|sarif",
        help="Output format (default text; github when GITHUB_ACTIONS=true).",
    ),
    fail_level: str | None = typer.Option(
        None, "--fail-level", metavar="error|warning",
        help="Exit 1 when a finding of this severity or worse exists (default error).",
    ),
    require_digest: bool = typer.Option(
        False, "--require-digest", help="Also report references without a digest (GL005).",
    ),
) -> None:
    """Lint image references: latest, missing or branch-like tags, invalid references, placeholders.

    Looks at image keys, kustomization images:, Helm values image maps, Dockerfile FROM and
    COPY --from. Findings go to stdout as PATH:LINE:COL: GLxxx message; the summary to stderr.
    Exit 0: clean; 1: findings at or above --fail-level (or unparseable files); 2: usage error.
    Silence one finding with a `# gitops-lint: ignore=GL001 [reason]` comment on its line or the line
    above. `${VAR:-default}` in YAML is checked with its default.

    \b
    Example:
      gitops lint deploy/ Dockerfile
      deploy/app/deployment.yaml:21:18: GL001 image 'nginx:latest' uses the tag 'latest'; ...
      gitops lint --format sarif . > gitops-lint.sarif
    """
    from gitops_cli import __version__
    from gitops_cli import lint as rules
    from gitops_cli.settings import load_settings
    from gitops_cli.yamledit.locate import pure_parser_forced

    pure_parser_forced()  # a bad GITOPS_YAML_PARSER is exit 2 before any work
    settings = load_settings(Path.cwd(), app_flag=False)
    origin = _table_origin(settings.sources.get("lint", "config"), settings.table)
    config = rules.config_from_settings(settings.lint, extra_mutable_tags=settings.mutable_tags,
                                        require_digest=require_digest, origin=origin)
    if fmt is not None and fmt not in rules.FORMATS:
        raise UsageError(f"--format: {fmt!r} is not one of {', '.join(rules.FORMATS)}")
    if fail_level is not None and fail_level not in rules.SEVERITIES:
        raise UsageError(f"--fail-level: {fail_level!r} is not one of {', '.join(rules.SEVERITIES)}")
    fmt = fmt or config.format or ("github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text")
    level = fail_level or config.fail_level

    report = rules.lint_paths(paths or [], config)
    rendered = rules.render(report, fmt, __version__)
    if rendered:
        output.result(rendered.rstrip("\n"), trusted=True)  # masked before it was formatted (rules.render)
    output.info(rules.summary(report))
    if report.failed(level):
        raise typer.Exit(1)


def _table_origin(source: str, where: str) -> str:
    """The lint table as written in the file it came from, for messages: `gitops.toml [lint]` (the settings
    at the top level of a gitops.toml), else `... [tool.gitops.lint]` (pyproject.toml, or [tool.gitops] in
    gitops.toml).  `where`: Settings.table."""
    if Path(source).name == "gitops.toml" and where == "at the top level":
        return f"{source} [lint]"
    return f"{source} [tool.gitops.lint]"
