"""The console script `gitops`: interrupts are handled from its first moment, before the app is imported.

Importing the Typer app (typer, click, the verbs) and building its command takes most of gitops' start-up;
an interrupt then (Ctrl-C, a CI job cancelled at once) must end the run as any other does: one line, exit
130 -- not a traceback (SIGINT's default) or a silent death (SIGTERM's).  interrupts.install() runs here
first; the imports stay lazy (gitops_cli.cli imports what each verb needs inside it)."""

from __future__ import annotations


def main() -> None:
    from gitops_cli import interrupts

    interrupts.install()
    try:
        from gitops_cli import cli
    except KeyboardInterrupt:
        import os

        from gitops_cli import output

        try:
            output.error(interrupts.line())
        except OSError:
            pass
        os._exit(130)
    cli.main()
