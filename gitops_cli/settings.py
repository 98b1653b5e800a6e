"""Settings: defaults < `[tool.gitops]` in pyproject.toml or `gitops.toml` < `GITOPS_*` env < flags.

One mechanism for every verb.  A verb passes the flags the user gave (None = not given) and the
directory whose configuration applies (the app checkout for tag/build/test/publish; the current
directory otherwise).  `gitops.toml` holds the keys at its top level (or under `[tool.gitops]`);
pyproject.toml holds them under `[tool.gitops]`.  When both files exist, gitops.toml wins.

Keys use snake_case in files (dashes are accepted too) and GITOPS_<KEY> in the environment
(GITOPS_TEST_COMMAND, GITOPS_TAG_LENGTH, ...).  List values in the environment are comma-separated.
Secrets (registry password, git token) are never read from files: only from the environment or stdin.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from gitops_cli.errors import ConfigError


@dataclass
class Settings:
    # app / image
    image: str | None = None
    build_command: str | None = None
    test_command: str | None = None
    context: str = "."
    dockerfile: str | None = None
    tag_length: int = 7
    tag_prefix: str = ""
    build_args: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    allow_mutable_tag: bool = False
    mutable_tags: list[str] = field(default_factory=list)
    # deploy repo
    deploy_repo: str | None = None
    branch: str | None = None
    paths: list[str] = field(default_factory=list)
    container: str | None = None
    message: str | None = None
    author: str | None = None
    push_branch: str | None = None
    retries: int = 10
    # registry / misc
    registry_username: str | None = None
    insecure_registries: list[str] = field(default_factory=list)
    # sub-tables, e.g. [tool.gitops.lint]
    lint: dict[str, Any] = field(default_factory=dict)
    # where each value came from: "default", a file path, "env GITOPS_X" or "flag"
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)


_SECRET_KEYS = {"registry_password", "git_token", "password", "token"}
_FIELD_TYPES: dict[str, Any] = {}


def _field_types() -> dict[str, Any]:
    if not _FIELD_TYPES:
        hints = get_type_hints(Settings)
        for f in fields(Settings):
            if f.name != "sources":
                _FIELD_TYPES[f.name] = hints[f.name]
    return _FIELD_TYPES


def _base_kind(tp: Any) -> str:
    text = str(tp)
    if tp is bool:
        return "bool"
    if tp is int:
        return "int"
    if "list" in text:
        return "list"
    if "dict" in text:
        return "dict"
    return "str"


def _coerce(key: str, value: Any, origin: str) -> Any:
    kind = _base_kind(_field_types()[key])
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off", ""}:
            return False
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind == "list":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
    elif kind == "dict":
        if isinstance(value, dict):
            return dict(value)
    elif isinstance(value, str):
        return value
    raise ConfigError(f"{origin}: invalid value for {key!r}: {value!r} (expected {kind})")


def find_config_file(directory: Path) -> tuple[Path, dict[str, Any]] | None:
    """The [tool.gitops] table that applies to `directory` (gitops.toml first, then pyproject.toml)."""
    for name in ("gitops.toml", "pyproject.toml"):
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        table = data.get("tool", {}).get("gitops")
        if table is None and name == "gitops.toml":
            table = {k: v for k, v in data.items() if k != "tool"}
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [tool.gitops] must be a table")
            return path, table
    return None


def load_settings(
    directory: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, the config file in `directory`, GITOPS_* variables and flags (None = not given)."""
    env = os.environ if environ is None else environ
    settings = Settings()
    types = _field_types()
    for key in types:
        settings.sources[key] = "default"

    found = find_config_file(Path(directory or ".").resolve())
    if found is not None:
        path, table = found
        for raw_key, value in table.items():
            key = raw_key.replace("-", "_")
            if key in _SECRET_KEYS:
                raise ConfigError(
                    f"{path}: {raw_key!r} must not be stored in a file",
                    hint="pass secrets through the environment (GITOPS_REGISTRY_PASSWORD, GITOPS_GIT_TOKEN)",
                )
            if key not in types:
                raise ConfigError(f"{path}: unknown setting {raw_key!r} in [tool.gitops]")
            setattr(settings, key, _coerce(key, value, str(path)))
            settings.sources[key] = str(path)

    for key in types:
        if _base_kind(types[key]) == "dict":
            continue
        var = f"GITOPS_{key.upper()}"
        if var in env:
            setattr(settings, key, _coerce(key, env[var], f"environment variable {var}"))
            settings.sources[key] = f"env {var}"

    for key, value in (flags or {}).items():
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        if key not in types:
            raise KeyError(f"unknown setting {key!r}")  # programming error, not user input
        setattr(settings, key, _coerce(key, list(value) if isinstance(value, tuple) else value, "flag"))
        settings.sources[key] = "flag"
    return settings
