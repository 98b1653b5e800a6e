"""`gitops sync`: apply the deploy repo to the cluster (one pass, or a pass every --interval)."""

from __future__ import annotations

from pathlib import Path

import typer

from gitops_cli import output


def sync(
    repo: str | None = typer.Option(
        None, "--repo", metavar="URL|PATH",
        help="The deploy repo: URL (file://, https://, ssh://, git@host:path) or local path. "
        "Default: deploy_repo from the settings."),
    branch: str | None = typer.Option(
        None, "--branch", metavar="BRANCH", help="Branch to apply (default: the remote's default branch)."),
    paths: list[str] = typer.Option(
        [], "--path", metavar="DIR", help="Only this directory of the repo (repeatable)."),
    once: bool = typer.Option(False, "--once", help="Run one pass and exit (the default)."),
    interval: str | None = typer.Option(
        None, "--interval", metavar="DURATION",
        help="Run a pass every DURATION (30s, 5m, 1h) until stopped; passes never overlap."),
    prune: bool = typer.Option(
        False, "--prune",
        help="Delete objects this sync applied that left the repo (only objects carrying its labels)."),
    dry_run: bool = typer.Option(
        False, "--dry-run",
        help="Ask the API server to validate (kubectl --dry-run=server); change nothing, remember nothing."),
    kubectl: str = typer.Option("kubectl", "--kubectl", metavar="PATH", help="The kubectl executable."),
    context: str | None = typer.Option(
        None, "--context", metavar="NAME",
        help="kubeconfig context (default: kubectl's current context, or the in-cluster ServiceAccount)."),
    server_side: bool = typer.Option(
        True, "--server-side/--no-server-side",
        help="Server-side apply with field manager 'gitops' (default), or client-side apply."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", metavar="DIR",
        help="Cache for the fetched repo, the lock and the state (default $XDG_CACHE_HOME/gitops/sync, else "
             "~/.cache/gitops/sync)."),
    force: bool = typer.Option(False, "--force", help="Apply even when this commit was applied already."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show each object and what was ignored."),
) -> None:
    """Apply the Kubernetes objects of a deploy repo with one kubectl apply; print the applied commit.

    Fetches the branch into a cache (a pass on an unchanged commit does nothing), renders kustomization
    directories, applies Namespaces and CRDs first, and with --prune deletes what left the repo.
    Exits non-zero naming every object that failed. Two passes never overlap (a lock in the cache).

    \b
    Example:
      gitops sync --repo https://git.example.com/team/deploy.git --path apps --prune
      gitops sync --repo file:///srv/deploy.git --interval 5m --context kind-dev
    """
    from gitops_cli import sync as use_case
    from gitops_cli.errors import UsageError
    from gitops_cli.settings import load_settings
    from gitops_cli.yamledit.locate import pure_parser_forced

    pure_parser_forced()  # a bad GITOPS_YAML_PARSER is exit 2 before any work
    if once and interval is not None:
        raise UsageError("--once and --interval exclude each other")
    seconds = use_case.parse_interval(interval) if interval is not None else None
    if context is not None:
        try:
            context.encode("utf-8")  # a byte that is not UTF-8 arrives as a lone surrogate
        except UnicodeEncodeError:
            raise UsageError(f"--context {context!r}: not UTF-8 (a kubeconfig context's name is text)") from None
    settings = load_settings(Path.cwd(), {"deploy_repo": repo, "branch": branch, "paths": paths}, app_flag=False,
                             flag_names={"deploy_repo": "--repo"})
    if not settings.deploy_repo:
        raise UsageError("--repo is required (or deploy_repo in gitops.toml / GITOPS_DEPLOY_REPO)")
    opts = use_case.SyncOptions(
        repo=settings.deploy_repo, branch=settings.branch, paths=list(settings.paths), prune=prune,
        dry_run=dry_run, kubectl=kubectl, context=context, server_side=server_side, cache_dir=cache_dir,
        force=force, verbose=verbose, names=settings.names,
    )
    use_case.run_passes(opts, seconds, lambda res: output.result(res.commit))
