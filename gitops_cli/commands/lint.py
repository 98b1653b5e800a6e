"""`gitops lint`: report mutable, missing and invalid image tags in manifests and Dockerfiles."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from gitops_cli import output
from gitops_cli.errors import UsageError


def lint(
    paths: list[str] | None = typer.Argument(
        None, metavar="PATH", show_default=False,
        help="Files or directories (recursive: *.yaml, *.yml, Dockerfile*, *.Dockerfile, Containerfile). "
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
        output.result(rendered.rstrip("\n"))
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
