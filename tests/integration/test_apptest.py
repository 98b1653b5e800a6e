"""`gitops test` on the host and inside the built image."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.fixtures.services import commit_all, sample_app

pytestmark = pytest.mark.integration


def test_passing_tests_default_to_make_test(gitops, app_repo: Path) -> None:
    res = gitops(["test"], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    assert "running sample tests" in res.stderr  # live output on stderr
    assert "'make test'" in res.stderr
    assert res.stdout == ""


def test_failing_tests_propagate_their_status(gitops, tmp_path: Path, base_image: str) -> None:
    repo = sample_app(tmp_path / "app", test_status=3)
    res = gitops(["test"], cwd=repo)
    # make reports the recipe's failure with its own status 2
    assert res.returncode == 2, res.stderr
    assert "running sample tests" in res.stderr
    assert "tests failed: 'make test' exited with status 2" in res.stderr


def test_configured_test_command_and_its_exact_status(gitops, app_repo: Path) -> None:
    (app_repo / "gitops.toml").write_text('test_command = "sh test.sh && exit 42"\n')
    commit_all(app_repo, "custom test command")
    res = gitops(["test"], cwd=app_repo)
    assert res.returncode == 42
    assert "running sample tests" in res.stderr


def test_command_flag_wins_over_config(gitops, app_repo: Path) -> None:
    (app_repo / "gitops.toml").write_text('test_command = "exit 9"\n')
    res = gitops(["test", "--command", "echo from-flag"], cwd=app_repo)
    assert res.returncode == 0
    assert "from-flag" in res.stderr


def test_a_command_the_shell_does_not_find_is_its_status_127(gitops, tmp_path: Path) -> None:
    """As the README's exit codes say: `gitops test` passes the shell's 127 on (only build-and-bump makes it
    14), and the `tests failed` line names it."""
    res = gitops(["test", "--command", "nosuchcmd-gitops"], cwd=tmp_path)
    assert res.returncode == 127, res.stderr
    assert "tests failed: 'nosuchcmd-gitops' exited with status 127 (host)" in res.stderr


def test_gitops_own_secrets_never_reach_the_test_and_build_commands(gitops, app_repo: Path) -> None:
    """Their output goes to the log unmasked: a test suite dumping its environment must not print them."""
    env = {"GITOPS_REGISTRY_USERNAME": "alice", "GITOPS_REGISTRY_PASSWORD": "s3cretPassw0rd",
           "GITOPS_GIT_TOKEN": "ghp_TokenValue12345", "OTHER_VARIABLE": "kept"}
    dump = 'echo "pw=$GITOPS_REGISTRY_PASSWORD tok=$GITOPS_GIT_TOKEN user=$GITOPS_REGISTRY_USERNAME $OTHER_VARIABLE"'
    res = gitops(["test", "--command", dump], cwd=app_repo, env=env)
    assert res.returncode == 0, res.stderr
    assert "pw= tok= user=alice kept" in res.stderr
    (app_repo / "gitops.toml").write_text(f"build_command = '{dump} && exit 3'\n")
    commit_all(app_repo, "a build command that prints its environment")
    res = gitops(["build", "--image", "gitops-test/app"], cwd=app_repo, env=env)
    assert res.returncode == 5 and "pw= tok= user=alice kept" in res.stderr, res.stderr


def test_no_test_command_is_a_config_error(gitops, tmp_path: Path) -> None:
    repo = tmp_path / "bare"
    repo.mkdir()
    (repo / "Makefile").write_text("build:\n\ttrue\n")
    res = gitops(["test"], cwd=repo)
    assert res.returncode == 2
    assert "no test command" in res.stderr and "test_command" in res.stderr
    # a blank one is none (it ran nothing and said "tests passed")
    for blank in (["--command", "   "], []):
        res = gitops(["test", *blank], cwd=repo, env={} if blank else {"GITOPS_TEST_COMMAND": " \t"})
        assert res.returncode == 2 and "no test command" in res.stderr, res.stderr


@pytest.fixture
def built(gitops, app_repo: Path) -> str:
    res = gitops(["build", "--image", "gitops-test/app"], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()[0]


def test_in_image_pass(gitops, app_repo: Path, built: str) -> None:
    res = gitops(["test", "--in-image", built, "--command", "sh /app/test.sh && cat /app/built.txt"],
                 cwd=app_repo)
    assert res.returncode == 0, res.stderr
    assert "running sample tests" in res.stderr and "built in image" in res.stderr


def test_in_image_fail_keeps_status(gitops, app_repo: Path, built: str) -> None:
    res = gitops(["test", "--in-image", built, "--command", "echo failing in image; exit 7"], cwd=app_repo)
    assert res.returncode == 7
    assert "failing in image" in res.stderr


def test_in_image_has_no_network(gitops, app_repo: Path, built: str) -> None:
    # only the loopback interface exists inside the container
    res = gitops(["test", "--in-image", built, "--command", "ls /sys/class/net"], cwd=app_repo)
    assert res.returncode == 0, res.stderr
    listed = res.stderr.split("(network none)")[1].split("tests passed")[0].split()
    assert listed == ["lo"]


def test_the_example_sample_app_tests_in_its_image(gitops, tmp_path: Path, base_image: str) -> None:
    """examples/sample-app as a user tries it: its test command `make test` could not run in its image (busybox
    has no make), and ran in `/`, not where the Dockerfile copies the tests.  Its image's WORKDIR holds them
    now, and its test_command runs on the host and in the image alike.  (The example's base image, which
    `make demo` makes, is this session's busybox base image here: the FROM line is the one line changed.)"""
    from tests.fixtures.services import TEST_LABEL, TEST_LABEL_VALUE, git

    app = tmp_path / "sample-app"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "sample-app", app,
                    ignore=shutil.ignore_patterns("build"))
    dockerfile = app / "Dockerfile"
    text = dockerfile.read_text()
    assert "FROM gitops-demo/busybox:1.36\n" in text
    dockerfile.write_text(text.replace("FROM gitops-demo/busybox:1.36\n",
                                       f"FROM {base_image}\nLABEL {TEST_LABEL}={TEST_LABEL_VALUE}\n"))
    git(app, "init", "-q", "-b", "main")
    commit_all(app, "the example sample app")
    res = gitops(["build", "--image", "gitops-test/sample-app"], cwd=app)
    assert res.returncode == 0, res.stderr
    built = res.stdout.splitlines()[0]
    for where in ([], ["--in-image", built]):
        res = gitops(["test", *where], cwd=app)
        assert res.returncode == 0, (where, res.stderr)
        assert "ok - greeting" in res.stderr and "tests passed: " in res.stderr


def test_in_image_missing_image(gitops, app_repo: Path, docker_engine) -> None:
    res = gitops(["test", "--in-image", "gitops-test/absent:nope", "--command", "true"], cwd=app_repo)
    assert res.returncode == 2
    assert "gitops-test/absent:nope not found" in res.stderr


def test_in_image_invalid_reference(gitops, app_repo: Path) -> None:
    res = gitops(["test", "--in-image", "Bad/Name:1"], cwd=app_repo)
    assert res.returncode == 2
    assert "lowercase" in res.stderr


def test_a_reader_gone_does_not_kill_the_test_command(app_repo: Path, tmp_path: Path) -> None:
    """`gitops test 2>&1 | head -1`: the command wrote to gitops' stderr itself, got SIGPIPE once the
    reader left, and its tests "failed" with status 141 (build-and-bump then stopped).  Its output now goes
    through gitops, which drops it once the reader is gone: the command runs to its end."""
    import subprocess

    from tests.fixtures.cli import GITOPS, gitops_env

    done = tmp_path / "done"
    command = f"sleep 0.3; i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; touch {done}"
    res = subprocess.run(["bash", "-c", f"{GITOPS} test --command '{command}' 2>&1 | head -1; "
                          "echo \"status=${PIPESTATUS[0]}\""], capture_output=True, text=True, cwd=app_repo,
                         env=gitops_env(), timeout=120)
    assert res.stdout.splitlines()[-1] == "status=0", res.stdout + res.stderr
    assert done.exists()  # the command ran to its end


def test_a_slow_reader_gets_all_of_the_commands_output_before_gitops_own_lines(app_repo: Path,
                                                                              tmp_path: Path) -> None:
    """The relay waited 0.5 s for the command's last output: a reader slower than that lost the end of it
    (the part that says why the tests failed), and gitops' own line was spliced into the middle of one."""
    import subprocess
    import sys

    from tests.fixtures.cli import GITOPS, gitops_env

    slow = tmp_path / "slow.py"
    slow.write_text("import sys, time\nwhile b := sys.stdin.buffer.read(4096):\n"
                    "    sys.stdout.buffer.write(b); sys.stdout.flush(); time.sleep(0.05)\n")
    command = "seq 1 60000; echo LAST-LINE; exit 1"
    res = subprocess.run(["bash", "-c", f"{GITOPS} test --command '{command}' 2>&1 | {sys.executable} {slow}; "
                          "echo \"status=${PIPESTATUS[0]}\""], capture_output=True, text=True, cwd=app_repo,
                         env=gitops_env(), timeout=180)
    lines = res.stdout.splitlines()
    assert lines[-1] == "status=1", res.stdout[-500:] + res.stderr
    numbers = [ln for ln in lines if ln.isdigit()]
    assert numbers == [str(i) for i in range(1, 60001)]  # all of it, in order, none spliced
    assert lines.index("LAST-LINE") < next(i for i, ln in enumerate(lines) if ln.startswith("error: tests failed"))


def test_a_process_the_command_leaves_writing_does_not_hold_gitops(app_repo: Path, tmp_path: Path) -> None:
    """The relay waits for what the command wrote, not for what a process it left running keeps writing
    (a server started by the tests and not stopped): gitops goes on once the command's own output is out."""
    import subprocess

    from tests.fixtures.cli import GITOPS, gitops_env

    command = "(i=0; while [ $i -lt 300 ]; do echo bg$i; i=$((i+1)); sleep 0.1; done) & echo fg-done"
    res = subprocess.run(["bash", "-c", f"{GITOPS} test --command '{command}' 2>&1 | cat"], capture_output=True,
                         text=True, cwd=app_repo, env=gitops_env(), timeout=60)
    assert "fg-done" in res.stdout and "tests passed" in res.stdout
    assert "bg299" not in res.stdout, res.stdout[-300:]  # gitops did not wait for the loop's last line (30 s on)


# The default test command: `make test` when make itself finds a `test` target in the app's makefile, as it
# reads it (not its text: that missed targets make finds, and took for targets words that are none).
RAN = "\t@echo ran the tests\n"
MAKEFILE_CASES = {
    # found by make, missed in the text
    "include": ({"Makefile": "include tests.mk\n", "tests.mk": "test:\n" + RAN}, True),
    "-include": ({"Makefile": "-include tests.mk\nbuild:\n", "tests.mk": "test:\n" + RAN}, True),
    "variable": ({"Makefile": "T := test\n$(T):\n" + RAN}, True),
    "eval": ({"Makefile": "$(foreach t,test,$(eval $(t): ; @echo ran the tests))\n"}, True),
    "static pattern": ({"Makefile": "CHECKS := test\n$(CHECKS): %: %.sh\n\t@sh $<\n",
                        "test.sh": "echo ran the tests\n"}, True),
    "GNUmakefile": ({"GNUmakefile": "include Makefile\n", "Makefile": "test:\n" + RAN}, True),
    # found both ways
    "goal conditional": ({"Makefile": "ifeq ($(MAKECMDGOALS),test)\ntest:\n" + RAN + "endif\n"}, True),
    "makefile": ({"makefile": "test:\n" + RAN}, True),
    "double-colon": ({"Makefile": "test::\n" + RAN + "test::\n\t@true\n"}, True),
    "several targets": ({"Makefile": "lint test: deps\n" + RAN + "deps:\n"}, True),
    "conditional": ({"Makefile": "FAST := 1\nifdef FAST\ntest:\n" + RAN + "endif\n"}, True),
    # no `test` target for make, one in the text
    "false conditional": ({"Makefile": "ifeq (0,1)\ntest:\n\tfalse\nendif\nbuild:\n"}, False),
    "recipe line": ({"Makefile": "build:\n\t@echo a \\\ntest: b\n"}, False),
    "variable line": ({"Makefile": "X = a \\\ntest: b\nbuild:\n"}, False),
    "define": ({"Makefile": "define RULE\ntest:\n\tfalse\nendef\nbuild:\n"}, False),
    "target-specific variable": ({"Makefile": "test: VERBOSE = 1\nbuild:\n"}, False),
    "empty rule": ({"Makefile": ".PHONY: test\ntest:\nbuild:\n"}, False),  # `make test` does nothing
    # none either way
    "only .PHONY": ({"Makefile": ".PHONY: test\nbuild:\n"}, False),
    "GNUmakefile first": ({"GNUmakefile": "build:\n", "Makefile": "test:\n" + RAN}, False),
    "variable value": ({"Makefile": "TESTS := test\nbuild:\n"}, False),
    "pattern rule": ({"Makefile": "%:\n\t@echo ran $@\n"}, False),  # an implicit rule: not a `test` target
}


@pytest.mark.parametrize("case", MAKEFILE_CASES)
def test_the_default_test_command_is_make_test_when_make_finds_a_test_target(gitops, tmp_path: Path,
                                                                              case: str) -> None:
    files, found = MAKEFILE_CASES[case]
    app = tmp_path / "app"
    app.mkdir()
    for name, text in files.items():
        (app / name).write_text(text)
    res = gitops(["test", "--repo", str(app)])
    if found:
        assert res.returncode == 0, res.stderr
        assert "ran the tests" in res.stderr and "tests passed: 'make test'" in res.stderr
    else:
        assert res.returncode == 2, res.stderr
        assert f"error: {app}: no test command" in res.stderr and "Running" not in res.stderr
    assert sorted(p.name for p in app.iterdir()) == sorted(files)  # nothing written


def test_make_runs_no_recipe_while_it_lists_the_targets(gitops, tmp_path: Path) -> None:
    """GNU make remakes an included makefile it has a rule for, even under -n and -q: not here."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Makefile").write_text("include gen.mk\ngen.mk:\n\ttouch ran; printf 'test:\\n\\ttrue\\n' > gen.mk\n")
    res = gitops(["test", "--repo", str(app)])
    assert res.returncode == 2
    assert (f"error: {app}/Makefile: make would run a recipe (to remake a makefile it reads) before it knows its "
            "targets; gitops runs none to look for a `test` target") in res.stderr
    assert "hint: set test_command" in res.stderr
    assert sorted(p.name for p in app.iterdir()) == ["Makefile"]


def test_without_make_the_default_test_command_cannot_start(gitops, tmp_path: Path) -> None:
    """`make test` would fail in the shell with 127, reported as the tests' own status: exit 14 instead,
    as for a test command that cannot start."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Makefile").write_text("test:\n" + RAN)
    (tmp_path / "bin").mkdir()
    res = gitops(["test", "--repo", str(app)], env={"PATH": str(tmp_path / "bin")})
    assert res.returncode == 14, res.stderr
    assert f"error: {app}/Makefile: make is not on PATH: the default test command 'make test' cannot start" \
        in res.stderr
    assert "hint: install make, or set test_command" in res.stderr


OLD_MAKE = """#!/bin/sh
# GNU make 3.81 (macOS' /usr/bin/make): no --eval, so no data base for gitops; it runs recipes as make does
for arg in "$@"; do
    case $arg in --eval=*) echo "make: unrecognized option '$arg'" >&2; exit 2 ;; esac
done
exec {make} "$@"
"""


@pytest.mark.parametrize(("makefile", "found"), [("test:\n" + RAN, True), ("include tests.mk\nbuild:\n", False)])
def test_a_make_that_prints_no_data_base_leaves_it_to_the_makefiles_text(gitops, tmp_path: Path, makefile: str,
                                                                         found: bool) -> None:
    """A laptop's make 3.81 keeps the default `make test` of a makefile with a `test:` rule line (it was
    exit 2 there); what only make finds (an include) is not found without make's data base."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Makefile").write_text(makefile)
    (app / "tests.mk").write_text("test:\n" + RAN)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text(OLD_MAKE.format(make=shutil.which("make")))
    (bin_dir / "make").chmod(0o755)
    res = gitops(["test", "--repo", str(app)], env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    if found:
        assert res.returncode == 0, res.stderr
        assert "ran the tests" in res.stderr and "tests passed: 'make test'" in res.stderr
    else:
        assert res.returncode == 2, res.stderr
        assert f"error: {app}: no test command" in res.stderr
