"""Settings: defaults < `[tool.gitops]` in pyproject.toml or `gitops.toml` < `GITOPS_*` env < flags.

One mechanism for every verb.  A verb passes the flags the user gave (None = not given) and the
directory whose configuration applies (the app directory for tag/build/test/publish: --repo, default
the current directory; the current directory otherwise).  Only that directory's file is read: a
directory is an app of its own, and a parent's settings (its Dockerfile, its build command) would build
another app.  A config file in a parent directory, up to the top of the git work tree, is named in a
warning when the directory has none (`cd sub && gitops tag` would otherwise give another tag length
without a word).  `gitops.toml` holds the keys at its top level or under
`[tool.gitops]`, not both (refused); pyproject.toml holds them under `[tool.gitops]`.  In one
directory gitops.toml wins over pyproject.toml; either name that is no file (a directory, a dangling
symlink, a FIFO) is refused, not passed over.  Paths in a file (`context`, `dockerfile`, a `deploy_repo`
that is a relative local path) are relative to the file's directory; in GITOPS_* variables relative to the
app checkout (`deploy_repo`: the CWD); flags relative to the CWD.

Keys use snake_case in files (dashes are accepted too) and GITOPS_<KEY> in the environment
(GITOPS_TEST_COMMAND, GITOPS_TAG_LENGTH, ...).  List values in the environment are comma-separated.  A
blank variable is not set (CI systems export unset variables as empty ones); an empty value in a file or a
flag is refused (EMPTY_ALLOWED's excepted), and so is one setting spelled twice in a file (`tag-length`
and `tag_length`).  An unknown key in a file is refused; an unknown GITOPS_* variable (but those read
elsewhere: OTHER_VARIABLES) is named in a warning.

Only the value that wins is used and checked, and only when the verb reads it: a bad value is kept in
Settings.refused and raised when its setting is read, so a setting the verb does not use never stops it;
a bad value a higher source overrides is named in a warning.
Secrets (registry password, git token) are never read from files: only from the environment or stdin.
Every secret of the settings is masked in gitops' output from a run's first line on (register_secrets).

A message about a bad value names where it came from (Names, `settings.names`, carried by the requests
made from the settings): `--retries -1`, `GITOPS_RETRIES=-1` or `/app/gitops.toml: retries = -1`,
whichever module checks it.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from gitops_cli.errors import ConfigError


def home_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """The user's home directory as `~` means it: HOME, else the passwd entry's; None when there is
    neither (no HOME and a uid with no passwd entry, as a container run with an arbitrary --user has)."""
    env = os.environ if environ is None else environ
    if env.get("HOME"):
        return Path(env["HOME"])
    import pwd

    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        return None


def expand_user(path: str | Path) -> Path:
    """`path` with a leading `~` expanded (see home_directory); kept as written when there is no home
    directory (Path.expanduser raises then), so that the caller's "no such file" names it."""
    return Path(os.path.expanduser(path))


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
    lock_wait: int = 300  # seconds a bump or rollback of a local checkout waits for another one's lock
    # registry / misc
    registry_username: str | None = None
    insecure_registries: list[str] = field(default_factory=list)
    # sub-tables, e.g. [tool.gitops.lint]
    lint: dict[str, Any] = field(default_factory=dict)
    # where each value came from: "default", a file path, "env GITOPS_X" or "flag"
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # how messages name a value: by its source (see Names); requests made from these settings carry it
    names: Names = field(default_factory=lambda: Names(), repr=False, compare=False)
    # settings whose value is not valid: reading one raises its error (naming the value's source), so
    # only a verb that uses the setting is stopped by it (load_settings)
    refused: dict[str, ConfigError] = field(default_factory=dict, repr=False, compare=False)
    # where the settings are in the config file: "at the top level" (gitops.toml) or "in [tool.gitops]"
    table: str = field(default="", repr=False, compare=False)

    def __getattribute__(self, name: str) -> Any:
        refused = object.__getattribute__(self, "__dict__").get("refused")
        if refused and name in refused:
            error = refused[name]
            raise ConfigError(error.message, hint=error.hint)
        return object.__getattribute__(self, name)


_SECRET_KEYS = {"registry_password", "git_token", "password", "token"}
_FIELD_TYPES: dict[str, Any] = {}


def _field_types() -> dict[str, Any]:
    if not _FIELD_TYPES:
        hints = get_type_hints(Settings)
        for f in fields(Settings):
            if f.name not in ("sources", "names", "refused", "table"):
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


_KINDS = {"bool": "true or false (1/0, yes/no, on/off)", "int": "a whole number", "list": "a list of strings",
          "dict": "a table", "str": "a string"}


def _coerce(key: str, value: Any, source: str) -> Any:
    """`value` of setting `key` as its type; ConfigError naming it by its source (as in Settings.sources)."""
    kind = _base_kind(_field_types()[key])
    if any("\0" in v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)):
        shown = Names({key: source})(key, value, entry=False)  # no path or command can hold one
        raise ConfigError(f"{shown}: a NUL character in it")
    if key not in EMPTY_ALLOWED and any(v == "" for v in (value if isinstance(value, list) else [value])):
        shown = Names({key: source})(key, "", entry=isinstance(value, list))
        raise ConfigError(empty_value(shown, "option" if source == "flag" else "key"))
    if kind == "bool":  # the same words in a file as in a variable: a TOML boolean, 1/0, or their names
        if isinstance(value, bool):
            return value
        if isinstance(value, str | int) and str(value).strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str | int) and str(value).strip().lower() in {"0", "false", "no", "off"}:
            return False
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):  # not `--8`, not `²`
            return int(value)
    elif kind == "list":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        if isinstance(value, str):  # a variable, never blank (a blank one is unset): `,` names no entry
            entries = [v.strip() for v in value.split(",") if v.strip()]
            if not entries:
                raise ConfigError(f"{Names({key: source})(key, value, entry=False)}: no entry, only commas "
                                  "and blanks", hint="leave the variable empty to unset it")
            return entries
    elif kind == "dict":
        if isinstance(value, dict):
            return dict(value)
    elif isinstance(value, str):
        return value
    raise ConfigError(f"{Names({key: source})(key, value, entry=False)}: expected {_KINDS[kind]}")


def empty_value(subject: str, what: str = "option") -> str:
    """The message refusing an empty value: `--path '': empty value; ...` (commands.options, for every
    option) or `/app/gitops.toml: paths entry '': empty value; ...` (_coerce)."""
    return f"{subject}: empty value; give a value, or leave the {what} out"


# the settings whose empty value is a value, in a file or a flag: the empty tag prefix (the default) overrides
# a file's prefix.  Any other empty value is refused: taken as "not given", an empty --path or `paths` entry
# meant the whole deploy repo, an empty --command the default test command (a blank variable is unset)
EMPTY_ALLOWED = ("tag_prefix",)
CONFIG_NAMES = ("gitops.toml", "pyproject.toml")
PATH_KEYS = ("context", "dockerfile")  # in a file: relative to the file's directory
# in a file, a local path (not a URL) is relative to the file's directory too
# a setting's flag where it is not --KEY-WITH-DASHES (a verb may spell it its own way: load_settings)
FLAG_NAMES = {"tag_length": "--length", "tag_prefix": "--prefix", "build_args": "--build-arg", "labels": "--label",
              "paths": "--path", "dockerfile": "--file", "registry_username": "--username"}


@dataclass(frozen=True)
class Names:
    """How a message names the value of a setting: by where it came from.  The one way every check of a
    setting's value (wherever it runs: bump, build, deployrepo, ...) says what it refuses:

        --retries -1                          given on the command line (the verb's own flag)
        GITOPS_RETRIES=-1                     from the environment
        /app/gitops.toml: retries = -1        from a config file (path and key; a path as written there)
        paths entry '../x' ...                one entry of a list setting: `--path '../x'`,
                                              `GITOPS_PATHS entry '../x'`, `/app/gitops.toml: paths entry '../x'`

    Values are shown with repr(), so a line break or escape sequence in one stays visible and the message
    one line (a byte that is not UTF-8 printed as `\\xff`, not repr's `\\udcff`: output.repr_bytes).
    Names() knows no sources: it names the flags (for callers that pass values of their own).
    """

    sources: Mapping[str, str] = field(default_factory=dict)  # key -> "flag", "env GITOPS_X", a file, "default"
    flags: Mapping[str, str] = field(default_factory=dict)  # key -> the verb's flag, where not FLAG_NAMES'
    written: Mapping[tuple[str, str], Any] = field(default_factory=dict)  # (key, value used) -> value as given

    def flag(self, key: str) -> str:
        return self.flags.get(key) or FLAG_NAMES.get(key) or "--" + key.replace("_", "-")

    def __call__(self, key: str, value: Any, entry: bool | None = None) -> str:
        """`value` of setting `key` (or one entry of a list setting: `entry`, by default a value that is
        no list) as the subject of a message."""
        value = self.written.get((key, value), value) if isinstance(value, str) else value
        if isinstance(value, str) and "://" in value:  # a URL's user-info holds credentials: never shown
            from gitops_cli.git import strip_credentials

            value = strip_credentials(value)
        if entry is None:
            entry = _base_kind(_field_types()[key]) == "list" and not isinstance(value, list | tuple)
        source = self.sources.get(key, "flag")
        if source == "flag":
            return f"{self.flag(key)} {value!r}"
        if source.startswith("env "):
            var = source.removeprefix("env ")
            return f"{var} entry {value!r}" if entry else f"{var}={value!r}"
        shown = f"{key} entry {value!r}" if entry else f"{key} = {value!r}"
        return f"{shown} (default)" if source == "default" else f"{source}: {shown}"

    def given(self, key: str, used: Sequence[str], given: Sequence[str]) -> Names:
        """These names, with the values `used` of a list setting (made from `given`, in order: --path
        values scoped to a subdirectory) named as given."""
        pairs = {(key, u): g for u, g in zip(used, given, strict=False) if u != g}
        return replace(self, written={**self.written, **pairs}) if pairs else self


FLAGS = Names()  # names every value by its flag: for values that come from no settings (or in tests)


def _read_config(path: Path) -> tuple[dict[str, Any], str] | None:
    """The gitops table of one file and where it is in that file ("in [tool.gitops]" or "at the top level"):
    None when it has none (a pyproject.toml without [tool.gitops])."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    tool = data.get("tool", {})
    table = tool.get("gitops") if isinstance(tool, dict) else None
    where = "in [tool.gitops]"
    if path.name == "gitops.toml":
        top = {k: v for k, v in data.items() if k != "tool"}
        if table is not None and top:
            raise ConfigError(
                f"{path}: settings both at the top level ({', '.join(sorted(top))}) and in [tool.gitops]",
                hint="keep them in one place: the top level of gitops.toml, or [tool.gitops]",
            )
        if table is None:
            table, where = top, "at the top level"
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.gitops] must be a table")
    return None if table is None else (table, where)


def _parents_in_work_tree(directory: Path) -> list[Path]:
    """The parents of `directory` up to the top of its git work tree (the first one holding `.git`),
    nearest first; none when `directory` is not inside a work tree or is its top."""
    from gitops_cli import git

    top = git.work_tree_top(directory)
    return [] if top is None else [d for d in directory.parents if d.is_relative_to(top)]


def _config_in(where: Path) -> tuple[Path, dict[str, Any], str] | None:
    for name in CONFIG_NAMES:
        path = where / name
        if path.is_file():
            found = _read_config(path)
            if found is not None:
                return path, *found
        elif os.path.lexists(path):  # its settings would be ignored without a word
            raise ConfigError(f"{path}: not a file ({_file_kind(path)})",
                              hint=f"make {name} a file holding the settings, or remove it")
    return None


def _file_kind(path: Path) -> str:
    """What is at `path` instead of a regular file (a symlink: what it leads to), in words."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:  # a symlink to nothing (or a loop of them): lstat sees it, stat follows it
        return f"a symlink to {os.readlink(path)!r}, which does not exist" if path.is_symlink() else "unreadable"
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
             stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}
    return next((what for test, what in kinds.items() if test(mode)), "not a regular file")


def find_config_file(directory: Path) -> tuple[Path, dict[str, Any], str] | None:
    """The gitops settings of the app directory `directory`: its gitops.toml, else its pyproject.toml
    with [tool.gitops]; with where the table is in the file (see _read_config)."""
    return _config_in(directory)


_warned: set[Path] = set()


def _warn_parent_config(directory: Path, app_flag: bool) -> None:
    """`directory` has no settings: name a parent's config file (up to the git top level), once.
    `app_flag`: the verb takes the app directory as --repo (tag, build, test, publish, build-and-bump)."""
    from gitops_cli import output

    for where in _parents_in_work_tree(directory):
        try:
            found = _config_in(where)
        except ConfigError:  # not read either way
            continue
        if found is not None:
            if found[0] not in _warned:
                _warned.add(found[0])
                how = f"run in {where} or pass --repo {where}" if app_flag else f"run in {where}"
                output.warn(f"{found[0]} is not read: settings come from the app directory only ({directory} "
                            f"has none); {how} to use it")
            return


def _in_file(key: str, value: Any, source: str) -> bool:
    """Whether the value of `key` from `source` is a path relative to its config file's directory: `context`
    and `dockerfile`, and a `deploy_repo` that is a relative local path (not a URL: `scheme://`, scp-like
    `host:path` that names no file there; not `~/...`), as in a file (never in a variable or a flag)."""
    if source == "flag" or source.startswith("env ") or source == "default" or not isinstance(value, str):
        return False
    if key in PATH_KEYS:
        return True
    if key != "deploy_repo" or "://" in value or value.startswith("~") or Path(value).is_absolute():
        return False
    from gitops_cli.deployrepo import is_url

    return (Path(source).parent / value).exists() or not is_url(value)


def _check(key: str, value: Any, names: Names) -> None:
    """Checks of a setting's value beyond its type, naming the value's source (a flag, a variable, a file
    key): ConfigError."""
    from gitops_cli.imageref import TAG_RE

    if key == "tag_length" and not 7 <= value <= 40:
        raise ConfigError(f"{names(key, value)}: must be between 7 and 40")
    if key == "tag_prefix" and value and not TAG_RE.fullmatch(value + "0" * 40):
        raise ConfigError(f"{names(key, value)}: a tag prefix must start with a letter, digit or _, hold only "
                          "letters, digits, _ . -, and leave room for 40 hex digits within 128 characters")


# the secrets gitops reads from the environment (never from a file): the registry password (its other form,
# --password-stdin, is registered when it is read) and the git tokens (deployrepo.select_token)
SECRET_VARIABLES = ("GITOPS_REGISTRY_PASSWORD", "GITOPS_GIT_TOKEN", "GITHUB_TOKEN", "CI_JOB_TOKEN")
# gitops' own secrets, of SECRET_VARIABLES: left out of the environment of the app's commands too (make, the
# test and build commands), where a CI's own (GITHUB_TOKEN, CI_JOB_TOKEN) are passed on as the CI passes
# them to every step
OWN_SECRETS = ("GITOPS_REGISTRY_PASSWORD", "GITOPS_GIT_TOKEN")


def child_environment(drop: Iterable[str] = SECRET_VARIABLES, environ: Mapping[str, str] | None = None,
                      blank: bool = False) -> dict[str, str]:
    """The environment of a program gitops starts -- the one place it is made: `environ` (default
    os.environ) less the secret variables `drop` (default SECRET_VARIABLES: git, and what it runs -- hooks of
    a local checkout, transport helpers --, and kubectl need none of them; gitops gives git its credential
    itself, through GIT_CONFIG_PARAMETERS), whose output gitops does not see and cannot mask.  `blank`: the
    variables are there, empty, instead of left out, for a runner that starts from os.environ whatever
    environment it is given (GitPython: see git.run); an empty one is unset to gitops too."""
    env = dict(os.environ if environ is None else environ)
    for name in drop:
        if name in env:
            if blank:
                env[name] = ""
            else:
                del env[name]
    return env


def register_secrets(environ: Mapping[str, str] | None = None, given: Iterable[Any] = ()) -> None:
    """Every secret gitops knows of from its settings, registered for masking (output.register_secret)
    before anything is printed or checked: the value of each SECRET_VARIABLES variable (a blank one is
    unset), and the password of a URL's user-info (`https://user:PASSWORD@host/x`: git.url_passwords) in
    GITOPS_DEPLOY_REPO and in each of `given` (the deploy_repo values of a file and the flags; the
    command line's words).  The console script calls it with the environment and its command line before
    the verb's options are parsed (cli.main), load_settings with what it resolves: no line of any verb
    shows such a secret in clear, whether or not the verb uses it."""
    from gitops_cli import output

    env = os.environ if environ is None else environ
    for var in SECRET_VARIABLES:
        output.register_secret(env.get(var, "").strip())
    for text in (env.get("GITOPS_DEPLOY_REPO", ""), *given):
        if isinstance(text, str) and "://" in text:
            from gitops_cli.git import url_passwords

            for password in url_passwords(text):
                output.register_secret(password)


# GITOPS_* variables gitops reads that are no setting (where: the module reading it)
OTHER_VARIABLES = (
    "GITOPS_DEBUG",  # cli: tracebacks
    "GITOPS_REGISTRY_PASSWORD",  # registry: a secret, never a setting
    "GITOPS_GIT_TOKEN", "GITOPS_GIT_USERNAME",  # deployrepo: a secret and its user name
    "GITOPS_SSH_KNOWN_HOSTS",  # deployrepo: pinned ssh host keys
    "GITOPS_SOURCE_COMMIT", "GITOPS_CI_RUN_URL",  # ci: trailer overrides
    "GITOPS_YAML_PARSER",  # yamledit.locate: the pure-Python parser
    "GITOPS_PUSH_STALL_TIMEOUT",  # engine: how long a push may go without a word from the engine
    "GITOPS_CLI_SPEC",  # the CI examples: where gitops-cli is installed from
)
_warned_variables: set[str] = set()


def env_variables() -> dict[str, str]:
    """The GITOPS_* variable of each setting that the environment can set (all but the sub-tables)."""
    return {key: f"GITOPS_{key.upper()}" for key, tp in _field_types().items() if _base_kind(tp) != "dict"}


def _warn_unknown_variables(env: Mapping[str, str]) -> None:
    """Name each GITOPS_* variable that is no setting and that gitops does not read otherwise, once, with
    the nearest known name (`GITOPS_PREFIX`: did you mean GITOPS_TAG_PREFIX?)."""
    from gitops_cli import output

    known = [*env_variables().values(), *OTHER_VARIABLES]
    for var in sorted(env):
        if not var.startswith("GITOPS_") or var in known or var in _warned_variables:
            continue
        _warned_variables.add(var)
        close = difflib.get_close_matches(var.removeprefix("GITOPS_"), [k.removeprefix("GITOPS_") for k in known],
                                          n=1, cutoff=0.6)
        guess = f"; did you mean GITOPS_{close[0]}?" if close else ""
        output.warn(f"{var} is no gitops setting and is ignored{guess}")


def _unknown_key(path: Path, raw_key: str, where: str) -> ConfigError:
    keys = [k for k in _field_types() if k not in _SECRET_KEYS]
    close = difflib.get_close_matches(raw_key.replace("-", "_"), keys, n=1, cutoff=0.6)
    return ConfigError(f"{path}: unknown setting {raw_key!r} {where}",
                       hint=f"did you mean {close[0]!r}?" if close else None)


def load_settings(
    directory: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    app_flag: bool = True,
    flag_names: Mapping[str, str] | None = None,
) -> Settings:
    """Merge defaults, the config file in `directory`, GITOPS_* variables and flags (None = not given).
    A blank GITOPS_* variable is not set (CI systems export unset variables as empty ones).  Only the
    value that wins is used and checked: one that is not valid is refused (ConfigError, naming its source)
    when the verb reads that setting (Settings), so a bad value of a setting the verb does not use never
    stops it; a bad value overridden by a higher source is named in a warning.
    `app_flag`: the verb names the app directory with --repo (the warning about a parent's file says so).
    `flag_names`: the verb's flags where they are not FLAG_NAMES' (sync: {"deploy_repo": "--repo"}), for
    messages naming a value given on the command line (settings.names)."""
    from gitops_cli import output

    env = os.environ if environ is None else environ
    settings = Settings()
    types = _field_types()
    for key in types:
        settings.sources[key] = "default"
    written: dict[tuple[str, str], Any] = {}
    settings.names = Names(settings.sources, dict(flag_names or {}), written)
    given: dict[str, list[tuple[str, Any]]] = {key: [] for key in types}  # (source, value), lowest first

    app = Path(directory or ".")
    if app_flag:  # --repo: a missing directory or a file is its error alone, not a parent's config first
        from gitops_cli.git import require_directory

        require_directory(app)
    app = app.resolve()
    found = find_config_file(app)
    if found is None:
        _warn_parent_config(app, app_flag)
    else:
        path, table, where = found
        settings.table = where
        spelled: dict[str, str] = {}  # key -> its spelling in the file
        for raw_key, value in table.items():
            key = raw_key.replace("-", "_")
            if key in spelled:  # `tag-length` and `tag_length`: which one wins would be the file's order
                raise ConfigError(f"{path}: {spelled[key]!r} and {raw_key!r} are one setting ({key}) {where}",
                                  hint="keep one of them")
            spelled[key] = raw_key
            if key in _SECRET_KEYS:
                raise ConfigError(
                    f"{path}: {raw_key!r} must not be stored in a file",
                    hint="pass secrets through the environment (GITOPS_REGISTRY_PASSWORD, GITOPS_GIT_TOKEN)",
                )
            if key not in types:
                raise _unknown_key(path, raw_key, where)
            given[key].append((str(path), value))

    _warn_unknown_variables(env)
    for key, var in env_variables().items():
        if env.get(var, "").strip():
            given[key].append((f"env {var}", env[var]))

    for key, value in (flags or {}).items():
        if value is None or (isinstance(value, list | tuple) and not value):
            continue
        if key not in types:
            raise KeyError(f"unknown setting {key!r}")  # programming error, not user input
        given[key].append(("flag", list(value) if isinstance(value, tuple) else value))

    register_secrets(env, (value for _, value in given["deploy_repo"]))
    for key, values in given.items():
        if not values:
            continue
        (source, value), overridden = values[-1], values[:-1]
        settings.sources[key] = source
        try:
            value = _coerce(key, value, source)
            if _in_file(key, value, source):
                file = Path(source)  # relative to the file, wherever gitops runs; messages show it as written
                value, written[(key, str(file.parent / value))] = str(file.parent / value), value
            _check(key, value, settings.names)
        except ConfigError as exc:
            settings.refused[key] = exc  # raised when the verb reads it (Settings.__getattribute__)
            value = getattr(Settings(), key)
        setattr(settings, key, value)
        for lower, bad in overridden:  # named by its own source, checked as the winning value is
            try:
                _check(key, _coerce(key, bad, lower), replace(settings.names, sources={**settings.sources, key: lower}))
            except ConfigError as exc:
                output.warn(f"{exc.message} (ignored: {settings.names(key, values[-1][1], entry=False)} "
                            "overrides it)")
    return settings
