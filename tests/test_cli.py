"""The CLI surface: every verb is registered and its --help shows an example; errors map to exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.cli import GITOPS, gitops_env, run_gitops

VERBS = ["tag", "build", "test", "publish", "bump", "build-and-bump", "history", "rollback", "sync", "lint"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb: str) -> None:
    res = run_gitops([verb, "--help"])
    assert res.returncode == 0, res.stderr
    assert "Example:" in res.stdout and f"gitops {verb}" in res.stdout.split("Example:", 1)[1]


README = Path(__file__).resolve().parents[1] / "README.md"
_OPTION_RE = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def _help_options(verb: str) -> set[str]:
    """The options `gitops VERB --help` lists (long and short names, both of a --x/--no-x pair)."""
    res = run_gitops([verb, "--help"], env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    names: set[str] = set()
    for line in res.stdout.split("\nOptions:\n", 1)[1].splitlines():
        declared = re.match(r"  (-\S.*?)(?: {2,}|$)", line)  # `  -o, --output FORMAT   text or json ...`
        if declared:
            names.update(_OPTION_RE.findall(declared.group(1)))
    return names - {"-h", "--help"}


def _readme_section(verb: str) -> str:
    """The README's `## ` section whose heading names `gitops VERB` (history and rollback share one)."""
    sections = re.split(r"^## ", README.read_text(encoding="utf-8"), flags=re.MULTILINE)
    found = [s for s in sections if f"`gitops {verb}`" in s.split("\n", 1)[0]]
    assert len(found) == 1, verb
    return found[0]


def _invocations(verb: str, section: str) -> list[str]:
    """The synopses and examples of `verb` in its section: each `gitops VERB ...` line with its
    continuation lines (after a trailing `\\`, or a synopsis' next line starting with `[`)."""
    found: list[list[str]] = []
    going = False
    for line in section.splitlines():
        text = line.strip()
        if re.match(rf"gitops {re.escape(verb)}( |$)", text):
            found.append([text])
            going = True
        elif going and text and (found[-1][-1].endswith("\\") or text.startswith("[")):
            found[-1].append(text)
        else:
            going = False
    return [" ".join(lines) for lines in found]


def _named(option: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


@pytest.mark.parametrize("verb", VERBS)
def test_every_option_of_a_verb_is_in_its_readme_section_and_its_synopsis_has_no_other(verb: str) -> None:
    """The README's section of each verb names every option its --help lists (a synopsis of the verb
    names them all, build-and-bump's list of the options it takes, each under the verb it comes from),
    and its synopses and examples name no option the verb does not have (rollback's `[...bump options]`
    promised --message and --no-commit; publish's --tag and --repo, history's --ssh-key and --limit,
    rollback's --output were missing)."""
    options = _help_options(verb)
    section = _readme_section(verb)
    assert [o for o in sorted(options) if not _named(o, section)] == []
    invocations = _invocations(verb, section)
    assert invocations, f"no synopsis or example of gitops {verb}"
    for line in invocations:
        assert sorted(set(_OPTION_RE.findall(line)) - options) == [], line
    if verb != "build-and-bump":  # the first invocation is the synopsis: every option
        assert [o for o in sorted(options) if not _named(o, invocations[0])] == []
        return
    taken = re.search(r"Takes the options of (.*?);", section, flags=re.DOTALL)
    assert taken is not None
    groups = re.findall(r"`([a-z-]+)`\s+\(`([^`]*)`\)", taken.group(1))
    assert {name for name, _ in groups} == {"tag", "test", "build", "publish", "bump"}
    for name, listed in groups:
        of_verb = set() if name == "test" else _help_options(name)  # test's --command is --test-command here
        assert sorted(set(_OPTION_RE.findall(listed)) - of_verb - {"--test-command"}) == [], name


def test_help_texts_give_the_defaults_and_sources_the_readme_gives() -> None:
    """sync's --cache-dir default left out $XDG_CACHE_HOME, and publish's credentials the config file's
    registry_username, which the README and the code use."""
    sync_help = " ".join(run_gitops(["sync", "--help"]).stdout.split())
    assert "(default $XDG_CACHE_HOME/gitops/sync, else ~/.cache/gitops/sync)" in sync_help
    publish_help = " ".join(run_gitops(["publish", "--help"]).stdout.split())
    assert "the registry user (--username, GITOPS_REGISTRY_USERNAME or registry_username in the config file)" \
        in publish_help


def test_version_and_unknown_verb() -> None:
    res = run_gitops(["--version"])
    assert res.returncode == 0 and res.stdout.startswith("gitops ")
    res = run_gitops(["frobnicate"])
    assert res.returncode == 2 and "frobnicate" in res.stderr


def test_bad_option_value_is_a_usage_error_without_traceback() -> None:
    res = run_gitops(["tag", "--length", "nine"])
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "--length" in res.stderr


def test_json_output_masks_a_secret_json_would_escape(tmp_path: Path) -> None:
    """`-o json` showed a non-ASCII token in clear, as `P\\u00e4ssw\\u00f6rt-2024!`: the JSON text was masked
    after json.dumps had escaped it."""
    import json

    secret = "Pässwört-2024!"
    res = run_gitops(["build-and-bump", "--image", "audit/x", "--deploy-repo", str(tmp_path), "--prefix", secret,
                      "-o", "json"], cwd=tmp_path, env={"GITOPS_GIT_TOKEN": secret})
    assert res.returncode == 2, res.stderr
    assert json.loads(res.stdout)["error"].startswith("--prefix '***': ")
    assert "ssw" not in res.stdout + res.stderr


@pytest.mark.parametrize(("args", "usage", "error"), [
    (["tag", "--length"], "gitops tag [OPTIONS]", "Option '--length' requires an argument."),
    (["bump", "--image"], "gitops bump [OPTIONS]", "Option '--image' requires an argument."),
    (["lint", "--format"], "gitops lint [OPTIONS] [PATH]...", "Option '--format' requires an argument."),
    (["tag", "--allow-dirty=x"], "gitops tag [OPTIONS]", "Option '--allow-dirty' does not take a value."),
    (["--version=x"], "gitops [OPTIONS] COMMAND [ARGS]...", "Option '--version' does not take a value."),
])
def test_a_flag_without_its_value_gets_the_whole_usage_block(args: list[str], usage: str, error: str) -> None:
    """click's parser raises these without the command's context, which left only the `Error:` line; the
    README promises the same block as for an unknown flag."""
    res = run_gitops(args)
    assert res.returncode == 2 and res.stdout == ""
    command = usage.split(" [", 1)[0]
    assert res.stderr == f"Usage: {usage}\nTry '{command} -h' for help.\n\nError: {error}\n"


@pytest.mark.parametrize("args", [
    ["build-and-bump", "--dotenv", "DOTENV", "--length", "abc"],
    ["build-and-bump", "--length", "abc", "--dotenv", "DOTENV"],  # the value after the refused one
    ["build-and-bump", "--dotenv", "DOTENV", "--bogus", "x"],
    ["build-and-bump", "--dotenv=DOTENV", "extra"],
    ["build-and-bump", "--dotenv", "OTHER", "--dotenv", "DOTENV", "--length"],  # the last given, as the parser
    ["--bogus", "build-and-bump", "--dotenv", "DOTENV"],  # refused by gitops itself, before the verb
])
def test_a_usage_error_of_build_and_bump_leaves_no_stale_outputs(args: list[str], tmp_path: Path) -> None:
    """What the parser rejects is bad input found before the first step, as any other: the step outputs
    are written, empty (the README: a --dotenv file never keeps a previous run's values)."""
    dotenv, other, github_output = tmp_path / "gitops.env", tmp_path / "other.env", tmp_path / "github-output"
    dotenv.write_text("TAG=old\nIMAGE=x:old\nDIGEST=sha256:old\nDEPLOY_COMMIT=old\n")
    dotenv.chmod(0o640)
    github_output.write_text("earlier=step\n")
    given = [{"DOTENV": str(dotenv), "--dotenv=DOTENV": f"--dotenv={dotenv}", "OTHER": str(other)}.get(a, a)
             for a in args]
    res = run_gitops(given, cwd=tmp_path, env={"GITHUB_OUTPUT": str(github_output)})
    assert res.returncode == 2 and res.stdout == "" and "Usage: gitops " in res.stderr, res.stderr
    assert "error:" not in res.stderr  # the usage error alone
    assert dotenv.read_text() == "TAG=\nIMAGE=\nDIGEST=\nDEPLOY_COMMIT=\n" and (dotenv.stat().st_mode & 0o777) == 0o640
    assert github_output.read_text() == "earlier=step\ntag=\nimage=\ndigest=\ndeploy-commit=\n"
    assert not other.exists()


def test_a_usage_error_leaves_a_dotenv_value_it_cannot_read_and_other_verbs_alone(tmp_path: Path) -> None:
    dotenv = tmp_path / "gitops.env"
    for args in (["build-and-bump", "--bogus", "--dotenv"],  # no value: nothing is named
                 ["build-and-bump", "--dotenv", str(tmp_path / "nodir" / "x.env"), "--bogus"],  # cannot be written
                 ["--bogus", "tag", "--dotenv", str(dotenv)]):  # no option of tag
        dotenv.write_text("TAG=old\n")
        res = run_gitops(args, cwd=tmp_path)
        assert res.returncode == 2 and "Usage: gitops " in res.stderr and "error:" not in res.stderr, res.stderr
        assert dotenv.read_text() == "TAG=old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gitops.env"]


@pytest.mark.parametrize("args", [["lint", "."], ["bump", "--deploy-repo", "deploy", "--image", "team/app:v2"],
                                  ["history", "--deploy-repo", "deploy"], ["sync", "--repo", "deploy"],
                                  ["rollback", "--deploy-repo", "deploy", "--image", "team/app"],
                                  ["build-and-bump", "--image", "team/app", "--deploy-repo", "deploy"]])
def test_a_bad_gitops_yaml_parser_is_exit_2_before_any_work_for_every_verb_reading_yaml(args, tmp_path) -> None:
    """GITOPS_YAML_PARSER=bogus was taken as the default parser without a word."""
    (tmp_path / "app.yaml").write_text("image: team/app:latest\n")
    res = run_gitops(args, cwd=tmp_path, env={"GITOPS_YAML_PARSER": "bogus"})
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr == ("error: GITOPS_YAML_PARSER='bogus': expected python (the pure-Python parser) or no value "
                          "(libyaml when installed)\n")
    res = run_gitops(["lint", "app.yaml"], cwd=tmp_path, env={"GITOPS_YAML_PARSER": "python"})
    assert res.returncode == 1 and "GL001" in res.stdout


@pytest.mark.parametrize("args", [["tag", "--repo", "x" * 256], ["bump", "--deploy-repo", "x" * 256,
                                                                   "--image", "a/b:c", "--dry-run"],
                                  ["build", "--image", "x/y", "--file", "x" * 256]])
def test_a_path_part_too_long_for_the_system_is_exit_2(args: list[str], tmp_path) -> None:
    """ENAMETOOLONG from a path the user gave: invalid input, one line, not an internal error."""
    res = run_gitops(args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert "file name too long" in res.stderr and "internal error" not in res.stderr
    assert len(res.stderr.splitlines()) <= 2


def test_a_sync_context_that_is_not_utf8_is_exit_2_before_any_work(tmp_path) -> None:
    res = run_gitops(["sync", "--repo", str(tmp_path / "none"), "--context", "x\udcff", "--dry-run"], cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr == "error: --context 'x\\xff': not UTF-8 (a kubeconfig context's name is text)\n"


def test_closed_stdout_is_exit_74_and_closed_stderr_keeps_the_exit_code(tmp_path) -> None:
    """Python gives None for a closed descriptor: the result write was an internal error, and the
    teardown's flush of None a traceback with exit 1."""
    import subprocess

    for redirect, code in ((">&-", 74), ("2>&-", 2), (">&- 2>&-", 2)):
        args = "tag --length 3" if code == 2 else "--version"
        res = subprocess.run(["bash", "-c", f"{GITOPS} {args} {redirect}"], capture_output=True, text=True,
                             cwd=tmp_path, env=gitops_env())
        assert res.returncode == code, (redirect, res.stderr)
        assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    res = subprocess.run(["bash", "-c", f"{GITOPS} --version >&-"], capture_output=True, text=True,
                         env=gitops_env())
    assert res.stderr == "error: cannot write the output: standard output is closed\n"


def test_console_exit_skips_teardown_but_flushes_and_runs_atexit_handlers(tmp_path) -> None:
    """main() from the console script ends with os._exit (no module teardown): buffered output must be
    written, atexit handlers (temp-dir finalizers) must run, and the exit code must be kept."""
    import subprocess
    import sys

    code = (
        "import atexit, sys, tempfile\n"
        "from gitops_cli import cli\n"
        "left = tempfile.TemporaryDirectory(dir=sys.argv[1])\n"  # never cleaned up explicitly
        "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
        "sys.stdout = open(sys.stdout.fileno(), 'w', buffering=1 << 20, closefd=False)\n"  # fully buffered
        "sys.argv = ['gitops', *sys.argv[2:]]\n"
        "cli.main()\n"
    )
    for args, status in ((["--version"], 0), (["tag", "--length", "nine"], 2)):
        res = subprocess.run([sys.executable, "-c", code, str(tmp_path), *args], capture_output=True, text=True)
        assert res.returncode == status, res.stderr
        assert "atexit ran" in res.stderr
        assert list(tmp_path.iterdir()) == []  # the finalizer removed the temp dir
        if status == 0:
            assert res.stdout.startswith("gitops ")


def test_closed_stdout_pipe_is_not_an_error() -> None:
    """`gitops history | head -1`: the reader went away before gitops wrote.  Buffered or not, no
    'Exception ignored' noise, no traceback, and the verb's own exit code (click's handler made it 1)."""
    import subprocess

    for unbuffered in ("1", ""):
        env = {**gitops_env(), "PYTHONUNBUFFERED": unbuffered}
        proc = subprocess.Popen([str(GITOPS), "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # long before the interpreter is up and writes
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=30) == 0 and err == "", err


def test_a_reader_gone_mid_output_keeps_the_verbs_exit_code(tmp_path) -> None:
    """`gitops lint 2>&1 | head -1` with more output than a pipe holds: the first line is read, the rest
    is dropped, and the exit code is lint's own (0: warnings only), not a failed write's (click's handler
    made it 1)."""
    import subprocess

    for i in range(2000):  # ~130 bytes of warning per file: four times what a 64 KiB pipe holds
        (tmp_path / f"pod{i:04d}.yaml").write_text("kind: Pod\nspec:\n  containers:\n"
                                                   "  - image: ${REGISTRY}/app:1.0.0\n")
    res = subprocess.run(["bash", "-c", f"{GITOPS} lint . 2>&1 | head -1; echo \"status=${{PIPESTATUS[0]}}\""],
                         capture_output=True, text=True, cwd=tmp_path, env=gitops_env(), timeout=120)
    lines = res.stdout.splitlines()
    assert lines[0].startswith("pod0000.yaml:4:") and "GL006" in lines[0], res.stdout
    assert lines[-1] == "status=0", res.stderr
    assert res.stderr == ""


def test_output_that_cannot_be_written_is_exit_74_not_an_internal_error() -> None:
    """stdout on a full disk (/dev/full): one line naming the failure and exit 74 (EX_IOERR), buffered or
    not, instead of "internal error ... report it" (exit 70) or Python's "Exception ignored" (exit 120)."""
    import subprocess

    for unbuffered in ("1", ""):
        env = {**gitops_env(), "PYTHONUNBUFFERED": unbuffered}
        with open("/dev/full", "w") as full:
            res = subprocess.run([str(GITOPS), "--version"], stdout=full, stderr=subprocess.PIPE, text=True,
                                 env=env)
        assert res.returncode == 74, res.stderr
        assert res.stderr == "error: write failed: No space left on device\n"


SPINNER = "\u280b"  # the first frame of rich's "dots" spinner


def _status_under_a_terminal(no_color: bool) -> str:
    import sys

    from tests.fixtures.cli import run_on_tty

    code = "from gitops_cli import output\nwith output.status('Cloning x'):\n    pass\noutput.step('done')\n"
    status, _, terminal = run_on_tty([sys.executable, "-c", code], env={"NO_COLOR": "1"} if no_color else None,
                                     timeout=30)
    assert status == 0, terminal
    return terminal


def test_status_spinner_only_on_a_terminal_without_no_color() -> None:
    """The issue's rule: no progress bars or spinners when NO_COLOR is set (or off a terminal)."""
    live = _status_under_a_terminal(no_color=False)
    assert f"{SPINNER}\x1b[0m Cloning x" in live and "\x1b[?25l" in live  # drawn, cursor hidden
    assert live.index("Cloning x") < live.index("done")  # erased before the next line
    plain = _status_under_a_terminal(no_color=True)
    assert plain.replace("\r\n", "\n") == "==> done\n"  # no spinner, no escape sequence


def test_debug_traceback_for_a_bug_is_redacted_and_none_for_user_errors() -> None:
    """--debug: a traceback for an unexpected error (a bug), with secrets masked as on every other line;
    none for an ordinary user error (its message and hint are the whole story)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gitops_cli import cli, output\n"
        "from gitops_cli.errors import UsageError\n"
        "output.register_secret('s3cr3t-value-9')\n"
        "@cli.app.command('boom')\n"
        "def boom() -> None:\n"
        "    raise RuntimeError('token s3cr3t-value-9 rejected')\n"
        "@cli.app.command('usage')\n"
        "def usage() -> None:\n"
        "    raise UsageError('bad flag')\n"
        "sys.argv = ['gitops', '--debug', *sys.argv[1:]]\n"
        "cli.main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code, "boom"], capture_output=True, text=True, env=gitops_env())
    assert res.returncode == 70, res.stderr
    assert "Traceback" in res.stderr and "RuntimeError: token *** rejected" in res.stderr
    assert "s3cr3t-value-9" not in res.stderr
    res = subprocess.run([sys.executable, "-c", code, "usage"], capture_output=True, text=True, env=gitops_env())
    assert res.returncode == 2 and res.stderr == "error: bad flag\n"
    # after the verb too, as the internal-error hint puts it ("re-run with --debug")
    after = code.replace("'--debug', *sys.argv[1:]", "*sys.argv[1:], '--debug'")
    res = subprocess.run([sys.executable, "-c", after, "boom"], capture_output=True, text=True, env=gitops_env())
    assert res.returncode == 70 and "Traceback" in res.stderr, res.stderr
    # GITOPS_DEBUG in every spelling the option takes (`on` was taken, and showed no traceback)
    plain = code.replace("'--debug', *sys.argv[1:]", "*sys.argv[1:]")
    for value, shown in (("on", True), ("y", True), ("T", True), ("1", True), ("off", False), ("0", False)):
        env = {**gitops_env(), "GITOPS_DEBUG": value}
        res = subprocess.run([sys.executable, "-c", plain, "boom"], capture_output=True, text=True, env=env)
        assert res.returncode == 70 and ("Traceback" in res.stderr) is shown, (value, res.stderr)


def test_debug_is_taken_after_every_verb() -> None:
    for verb in ("tag", "build", "test", "publish", "bump", "build-and-bump", "history", "rollback", "sync", "lint"):
        res = run_gitops([verb, "--debug", "--help"])
        assert res.returncode == 0, (verb, res.stderr)
        assert "--debug" not in res.stdout  # hidden: the root option is the documented one


def _value_options() -> list[tuple[str, str]]:
    """(verb, option) for every option of every verb that takes a value (its long name)."""
    import typer

    from gitops_cli.cli import app

    command = typer.main.get_command(app)
    return [(verb, next(o for o in param.opts if o.startswith("--")))
            for verb, cmd in command.commands.items() for param in cmd.params
            if param.param_type_name == "option" and not param.is_flag and not param.count]


@pytest.mark.parametrize(("verb", "option"), _value_options())
def test_no_option_takes_an_empty_value(verb: str, option: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """An empty value was taken as "not given" (`--author ""`, `test --command ""`, `publish --username ""`),
    the current directory (`--repo ""`, `sync --cache-dir ""`: Path("") is `.`), the whole deploy repo (`bump
    --path ""` bumped every environment) or the host (`test --in-image ""` ran the tests there, exit 0).
    Every option of every verb refuses one, exit 2 naming it, before any work; `--prefix ""` is the empty
    prefix (the default), which overrides a file's."""
    from gitops_cli.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([verb, option, ""])
    err = capsys.readouterr().err
    if option == "--prefix":
        assert "empty value" not in err and "--prefix" not in err
        return
    assert exit_.value.code == 2
    assert err.splitlines() == [f"error: {option} '': empty value; give a value, or leave the option out",
                                "hint: a shell variable that is empty or unset gives one"]
    assert list(tmp_path.iterdir()) == []  # nothing done
    with pytest.raises(SystemExit) as exit_:  # `--option=` too
        main([verb, f"{option}=", "--help"] if option != "--help" else [verb])
    assert exit_.value.code == 0  # --help wins, as it does over other bad values
