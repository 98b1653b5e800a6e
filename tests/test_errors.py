"""Exit codes: every error class has a documented code, and the README's table is EXIT_CODES."""

from __future__ import annotations

import re
from pathlib import Path

from gitops_cli import errors

README = Path(__file__).resolve().parents[1] / "README.md"


def _error_classes() -> list[type[errors.GitopsError]]:
    out = []
    for obj in vars(errors).values():
        if isinstance(obj, type) and issubclass(obj, errors.GitopsError):
            out.append(obj)
    return out


def test_every_error_class_has_a_documented_exit_code() -> None:
    for cls in _error_classes():
        assert cls.exit_code in errors.EXIT_CODES, cls.__name__


def test_distinct_failures_have_distinct_codes() -> None:
    codes = {cls.exit_code for cls in _error_classes() if cls is not errors.GitopsError}
    # engine, registry, registry auth, git, git auth, exhausted retries, verification are all different
    wanted = [errors.EngineUnavailableError, errors.RegistryError, errors.RegistryAuthError, errors.GitError,
              errors.GitAuthError, errors.PushRetriesExhaustedError, errors.VerificationError]
    assert len({c.exit_code for c in wanted}) == len(wanted)
    assert codes <= set(errors.EXIT_CODES)


def test_readme_exit_code_table_matches() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.MULTILINE))
    assert {int(k): v for k, v in rows.items()} == errors.EXIT_CODES
