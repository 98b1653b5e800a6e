"""The Typer app: registers one function per verb and maps errors to messages and exit codes.

Each verb lives in gitops_cli/commands/<verb>.py: it parses options, calls a use case and renders the
result.  Command modules import heavy adapters (docker, git) inside their functions only, so that
`gitops --version` and `gitops lint` start fast.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Any, NoReturn

import typer

from gitops_cli import __version__, interrupts, output
from gitops_cli.commands.options import AppGroup, VerbCommand
from gitops_cli.errors import EXIT_WRITE_FAILED, WRITE_FAILURES, GitopsError, write_failure

app = typer.Typer(
    name="gitops",
    cls=AppGroup,
    help="Ship container images the GitOps way: immutable tags, safe publishes, byte-exact deploy-repo bumps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)

_state = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        output.result(f"gitops {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", envvar="GITOPS_DEBUG", help="Show tracebacks for unexpected errors."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """gitops: tag, build, test, publish and bump container images in a GitOps deploy repo.

    Results go to stdout, progress to stderr. Exit codes are listed in the README.
    """
    _state["debug"] = debug


# --- verbs (one line each; the functions live in gitops_cli/commands/) ---------------------------
from gitops_cli.commands import build as _build  # noqa: E402
from gitops_cli.commands import build_and_bump as _build_and_bump  # noqa: E402
from gitops_cli.commands import bump as _bump  # noqa: E402
from gitops_cli.commands import history as _history  # noqa: E402
from gitops_cli.commands import lint as _lint  # noqa: E402
from gitops_cli.commands import publish as _publish  # noqa: E402
from gitops_cli.commands import rollback as _rollback  # noqa: E402
from gitops_cli.commands import sync as _sync  # noqa: E402
from gitops_cli.commands import tag as _tag  # noqa: E402
from gitops_cli.commands import test as _test  # noqa: E402

app.command("tag", cls=VerbCommand)(_tag.tag)
app.command("build", cls=VerbCommand)(_build.build)
app.command("test", cls=VerbCommand)(_test.test)
app.command("publish", cls=VerbCommand)(_publish.publish)
app.command("bump", cls=VerbCommand)(_bump.bump)
app.command("build-and-bump", cls=_build_and_bump.BuildAndBumpCommand)(_build_and_bump.build_and_bump)
app.command("history", cls=VerbCommand)(_history.history)
app.command("rollback", cls=VerbCommand)(_rollback.rollback)
app.command("sync", cls=VerbCommand)(_sync.sync)
app.command("lint", cls=_lint.LintCommand)(_lint.lint)


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})  # what the option parser reads as true (GITOPS_DEBUG=on)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and turn errors into exit codes."""
    if argv is None:  # the console script (not a host process calling main() with its own handlers)
        interrupts.install()  # first (gitops_cli.entry did already): SIGTERM is handled like Ctrl-C
    # before the options are parsed (an error while the command is built); after, the option's own value
    debug = os.environ.get("GITOPS_DEBUG", "").strip().lower() in _TRUE or "--debug" in (
        argv if argv is not None else sys.argv[1:]
    )
    try:  # building the command is most of the start-up: an interrupt there is the one line too
        from gitops_cli.settings import register_secrets

        # masked from the first line on: a verb's option errors, its checks, its progress
        register_secrets(given=argv if argv is not None else sys.argv[1:])
        command = typer.main.get_command(app)
        _debug_after_the_verb(command)
        if argv is None:
            _guard_streams()
            from gitops_cli.git import ignore_repository_variables

            ignore_repository_variables()  # a git hook's GIT_DIR & co.: every command works on its own directory
        rv = command.main(args=argv, prog_name="gitops", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
        if code == INTERRUPTED:  # Typer turns KeyboardInterrupt (Ctrl-C, SIGTERM) into a returned 130
            _interrupted()
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:  # usage errors: bad flag, missing option, bad value
        show = getattr(exc, "show", None)
        if isinstance(getattr(exc, "message", None), str):  # click quotes a value with repr() too
            exc.message = output.repr_bytes(output.redact(exc.message))
        if show is not None:
            show()
        else:
            output.error(exc.format_message())
        code = exc.exit_code if exc.exit_code != 1 else 2
    except typer.Abort:
        output.error("aborted")
        code = INTERRUPTED
    except GitopsError as exc:  # an ordinary user error: its message and hint say it all, no traceback
        output.error(exc.message, exc.hint, exc.details)
        code = exc.exit_code
    except KeyboardInterrupt:  # raised outside Typer's handling (while the command is built, say)
        _interrupted()
        code = INTERRUPTED
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in WRITE_FAILURES:  # disk full, read-only FS, I/O error
            _write_failed(exc)
            code = EXIT_WRITE_FAILED
        elif isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a path given: invalid input
            name = str(exc.filename or "")
            output.error(f"{name[:80] + '...' if len(name) > 80 else name}: file name too long",
                         hint="a path's parts are at most 255 bytes")
            code = 2
        else:  # a bug: keep it to one line unless --debug
            if debug or _state["debug"]:  # redacted as every line is (a secret in a repr or a message)
                output.log_line(traceback.format_exc())
            output.error(
                f"internal error: {type(exc).__name__}: {exc}",
                hint="re-run with --debug for a traceback and report it",
            )
            code = 70
    _finish(argv, code)


class _ClosedOutput:
    """sys.stdout when descriptor 1 is closed (`gitops tag >&-`): a result written there is a write the
    system refused (exit 74), not an internal error."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed", "the output")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


class _ReaderGone:
    """sys.stdout or sys.stderr, so that a reader that goes away (`gitops history | head -1`: the pipe
    breaks) does not cut the verb short: from then on what is written there goes to /dev/null (the
    stream's descriptor is pointed at it; the test and build commands write there through gitops when it
    is a pipe, see apptest.run_command, so they get no SIGPIPE either), and the verb carries on to its own
    end and exit code.  A bump is never stopped half-way by its reader; `gitops history | head -1` exits 0."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()
            self._stream.flush()  # what was buffered goes to /dev/null now

    def _drop(self) -> None:
        output.reader_gone(self._stream.fileno())

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def _guard_streams() -> None:
    """Python's None for a closed stdout or stderr: stdout refuses writes (exit 74), stderr drops them
    (the exit code still tells).  Open ones write what their encoding cannot encode escaped (`\\xe4` under
    LC_ALL=C: output.escape_unencodable) and are guarded against their reader going away (_ReaderGone)."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    else:
        output.escape_unencodable(sys.stderr)
        sys.stderr = _ReaderGone(sys.stderr)  # type: ignore[assignment]
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()  # type: ignore[assignment]
    else:
        output.escape_unencodable(sys.stdout)
        sys.stdout = _ReaderGone(sys.stdout)  # type: ignore[assignment]


def _debug_after_the_verb(command: Any) -> None:
    """`gitops VERB ... --debug` works like `gitops --debug VERB ...` (the internal-error hint says
    "re-run with --debug"): every verb gets a hidden --debug flag."""
    from typer.core import TyperOption

    def enable(ctx: Any, param: Any, value: bool) -> None:
        if value:
            _state["debug"] = True

    for verb in getattr(command, "commands", {}).values():
        verb.params.append(TyperOption(param_decls=["--debug"], is_flag=True, default=False, hidden=True,
                                       expose_value=False, callback=enable,
                                       help="Show tracebacks for unexpected errors."))


INTERRUPTED = 130


def _interrupted() -> None:
    """The one line of an interrupt: which signal, and what the interrupted step left (a bump's push)."""
    try:
        output.error(interrupts.line())
    except OSError:
        pass


def _write_failed(exc: OSError, what: str | None = None) -> None:
    """One line for a write the system refused (the output or a file), if stderr can still take it."""
    try:
        output.error(write_failure(OSError(exc.errno, exc.strerror, what) if what else exc).message)
    except OSError:
        pass


def _finish(argv: list[str] | None, code: int) -> NoReturn:
    if argv is None:  # the console script (tests that pass argv keep the normal exit)
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown: with the docker SDK, GitPython and ruamel loaded,
    freeing every module costs ~50-60 ms per run.  What teardown does that matters is done first:
    stdout and stderr are flushed and the atexit handlers run (temp-dir finalizers among them).
    Threads still running are stopped with the process (the pipeline joins the ones that own files), and
    so is any child process still owned (none should be: git and the test command are waited for)."""
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError as exc:
            if exc.errno in WRITE_FAILURES and stream is sys.stdout and code == 0:  # the result was lost
                _write_failed(exc, "the output")
                code = EXIT_WRITE_FAILED
        except ValueError:  # a closed stream
            pass
    if code == INTERRUPTED:  # objects an interrupted step left in reference cycles own temp files:
        import gc  # collect them so their finalizers remove the files (os._exit skips teardown)

        gc.collect()
    interrupts.kill_all()
    atexit._run_exitfuncs()
    os._exit(code)
