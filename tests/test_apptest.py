"""The default test command: `make test` when make itself finds a `test` target in the app's makefile.

make_targets reads GNU make's data base (pure); default_test_command asks the real make for it.  The cases
of makefiles make reads differently from their text (includes, variables, conditionals, ...) are driven
through the installed gitops in tests/integration/test_apptest.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gitops_cli import apptest
from gitops_cli.errors import CommandStartError, ConfigError
from tests.fixtures.procs import running


def database(files: str, before: str = "") -> str:
    """What `make -p` prints around the "# Files" section `files` (its entries, each after a blank line),
    after the makefile's own output `before`."""
    return (f"{before}# GNU Make 4.3\n# Built for x86_64-pc-linux-gnu\n\n"
            "# Make data base, printed on Fri Nov 27 14:18:08 2026\n\n# Variables\n\n"
            "# makefile (from 'Makefile', line 1)\nCHECK = test: unit\n# default\nMAKE = $(MAKE_COMMAND)\n\n"
            "# Implicit Rules\n\n%.o: %.c\n#  recipe to execute (built-in):\n\t$(COMPILE.c) $<\n\n"
            f"# Files\n{files}\n# files hash-table stats:\n# Load=8/1024=1%, Rehash=0, Collisions=0/27=0%\n"
            "# VPATH Search Paths\n\n# No 'vpath' search paths.\n\n"
            "# Finished Make data base on Fri Nov 27 14:18:08 2026\n\n")


STATUS = "#  Implicit rule search has not been done.\n#  Modification time never checked.\n"
RECIPE = "#  recipe to execute (from 'Makefile', line 2):\n"


@pytest.mark.parametrize("files, expected", [
    (f"\ntest:\n{STATUS}{RECIPE}\tpytest\n", {"test"}),
    (f"\ntest: unit lint\n{STATUS}", {"test"}),  # prerequisites, no recipe
    (f"\ntest: | unit\n{STATUS}", {"test"}),  # an order-only prerequisite
    (f"\ntest::\n{STATUS}{RECIPE}\ta\n\ntest::\n{STATUS}{RECIPE}\tb\n", {"test"}),  # double-colon rules
    (f"\n# Not a target:\ntest:\n{STATUS}", set()),  # a prerequisite without a rule
    # .PHONY: test (or an empty rule `test:`): nothing to do, `make test` does nothing and says so, status 0
    (f"\ntest:\n#  Phony target (prerequisite of .PHONY).\n{STATUS}\n.PHONY: test\n{STATUS}", {".PHONY"}),
    # target-specific variables only (make 4 prints them before the entry's rule line)
    (f"\n# makefile (from 'Makefile', line 4)\ntest: VAR = 1\n# Not a target:\ntest:\n{STATUS}", set()),
    (f"\n# makefile (from 'Makefile', line 4)\ntest: VAR = 1\ntest: unit\n{STATUS}", {"test"}),
    # a recipe's continuation line starts in the first column: it is no rule line
    (f"\nall:\n{STATUS}{RECIPE}\t@echo a \\\ntest: b\n\techo c\n", {"all"}),
    (f"\n.RECIPEPREFIX = >\ntest:\n{STATUS}{RECIPE}>pytest\n", {"test"}),
    (f"\nunit-test:\n{STATUS}{RECIPE}\tx\n\ntesting: x\n{STATUS}", {"unit-test", "testing"}),
    (f"\na:b:\n{STATUS}{RECIPE}\tx\n", {"a:b"}),  # a target with an escaped colon (a\\:b)
])
def test_make_targets_are_the_entries_with_a_rule_that_does_something(files: str, expected: set[str]) -> None:
    assert apptest.make_targets(database(files)) == expected


def test_make_targets_ignores_the_makefiles_own_output_before_the_data_base() -> None:
    """`$(info ...)` prints on stdout before the data base; a variable's value (`CHECK = test: unit`) is in
    the Variables section, a built-in pattern rule in Implicit Rules: none is a target."""
    before = "test: x\n\n# Make data base, printed on a lie\n\n# Files\n\ntest: x\n" + STATUS
    assert apptest.make_targets(database(f"\nall:\n{STATUS}{RECIPE}\tx\n", before=before)) == {"all"}


def test_make_targets_of_no_data_base_is_none() -> None:
    assert apptest.make_targets("") is None
    assert apptest.make_targets("make: invalid option -- 'p'\nusage: make [-BeikNnqrSstWwX]\n") is None


@pytest.mark.parametrize(("text", "found"), [
    ("test:\n\ttrue\n", True), ("lint test: deps\n", True), ("test::\n", True), ("unit test :\n", True),
    ("TESTS := test\n", False), ("X = test: b\n", False), ("# test:\n", False), ("\ttest: x\n", False),
    ("testing:\n", False), ("include tests.mk\n", False),
])
def test_names_target_reads_rule_lines_of_the_text(text: str, found: bool) -> None:
    """The fallback for a make that prints no data base: only rule lines count."""
    assert apptest.names_target(text, "test") is found


def app(tmp_path: Path, makefile: str, name: str = "Makefile") -> Path:
    repo = tmp_path / "app"
    repo.mkdir(exist_ok=True)
    (repo / name).write_text(makefile)
    return repo


def test_no_makefile_is_no_default(tmp_path: Path) -> None:
    assert apptest.default_test_command(tmp_path) is None


def test_make_runs_no_recipe_to_list_the_targets(tmp_path: Path) -> None:
    """make remakes an included makefile it has a rule for even under -n and -q: the rule did not run, and
    with no `test` target found without it the error says why."""
    repo = app(tmp_path, "include gen.mk\ngen.mk:\n\ttouch ran; printf 'test:\\n\\ttrue\\n' > gen.mk\n"
                         "Makefile: FORCE\n\t+touch ran-too\nFORCE:\n")
    with pytest.raises(ConfigError, match=r"Makefile: make would run a recipe \(to remake a makefile it "
                                          r"reads\) before it knows its targets") as info:
        apptest.default_test_command(repo)
    assert info.value.exit_code == 2 and "test_command" in (info.value.hint or "")
    assert sorted(p.name for p in repo.iterdir()) == ["Makefile"]  # nothing ran, nothing was written
    # a `test` target found without the recipe: `make test` (which runs it, as make does)
    (repo / "Makefile").write_text("-include gen.mk\ngen.mk:\n\ttouch ran\ntest:\n\ttrue\n")
    assert apptest.default_test_command(repo) == "make test"
    assert not (repo / "ran").exists()


def test_a_makefile_make_cannot_read_is_exit_2_with_makes_own_line(tmp_path: Path) -> None:
    repo = app(tmp_path, "test:\n    pytest\n")  # spaces, no tab
    with pytest.raises(ConfigError) as info:
        apptest.default_test_command(repo)
    assert info.value.exit_code == 2
    assert info.value.message == f"{repo}/Makefile: make cannot read it: Makefile:2: *** missing separator.  Stop."
    (repo / "Makefile").write_text("include missing.mk\ntest:\n\ttrue\n")  # `make test` fails there too
    with pytest.raises(ConfigError, match="make cannot read it: .*No rule to make target 'missing.mk'"):
        apptest.default_test_command(repo)


def test_a_makefile_that_takes_too_long_to_read_is_stopped(tmp_path: Path) -> None:
    """make and what its `$(shell ...)` started are stopped (its process group), exit 2."""
    repo = app(tmp_path, "X := $(shell echo $$$$ > shell.pid; exec sleep 600)\ntest:\n\ttrue\n")
    with pytest.raises(ConfigError, match=r"Makefile: make did not read it within 1 s") as info:
        apptest.default_test_command(repo, timeout=1)
    assert info.value.exit_code == 2
    pid = int((repo / "shell.pid").read_text())
    deadline = time.monotonic() + 30  # the signal sent to its group reaches the sleep in its own time
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid)  # stopped with make, not left to sleep on


def test_without_make_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` could not start on the host: exit 14 before any work, as documented; in an image it is
    the image's make that runs it, so `make test` is the default there still."""
    repo = app(tmp_path, "test:\n\ttrue\n")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(CommandStartError, match=r"Makefile: make is not on PATH: the default test command "
                                                r"'make test' cannot start") as info:
        apptest.resolve_test_command(repo, None, flag="--test-command")
    assert info.value.exit_code == 14 and "install make" in (info.value.hint or "")
    assert "--test-command" in (info.value.hint or "")
    assert apptest.resolve_test_command(repo, None, in_image=True) == "make test"
    assert apptest.resolve_test_command(repo, "pytest -q") == "pytest -q"


def test_gitops_own_secrets_stay_out_of_makes_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the makefile runs its `$(shell ...)` functions: they see what `make test` would see, less
    gitops' own secrets (the data base lists the environment too)."""
    monkeypatch.setenv("GITOPS_REGISTRY_PASSWORD", "s3cret")
    monkeypatch.setenv("GITOPS_GIT_TOKEN", "t0ken")
    monkeypatch.setenv("OTHER_VARIABLE", "kept")
    repo = app(tmp_path, "ifeq ($(GITOPS_REGISTRY_PASSWORD)$(GITOPS_GIT_TOKEN)$(OTHER_VARIABLE),kept)\n"
                         "test:\n\ttrue\nendif\n")
    assert apptest.default_test_command(repo) == "make test"


def test_resolve_test_command(tmp_path: Path) -> None:
    repo = app(tmp_path, "test:\n    pytest\n")  # make cannot read it: a configured command is not checked
    assert apptest.resolve_test_command(repo, "pytest -q") == "pytest -q"
    (repo / "Makefile").write_text("test:\n\ttrue\n")
    assert apptest.resolve_test_command(repo, None) == "make test"
    assert apptest.resolve_test_command(repo, "  ") == "make test"  # a blank command is none
    (repo / "Makefile").write_text("build:\n\ttrue\n")
    with pytest.raises(ConfigError, match="no test command") as info:
        apptest.resolve_test_command(repo, None)
    assert info.value.message.startswith(f"{repo}: no test command")
