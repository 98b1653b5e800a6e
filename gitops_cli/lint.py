"""Tag lint: rules over located image references and Dockerfile images; text/json/github/sarif output.

Pure functions over text; the only I/O is reading the files to lint.  YAML references come from the
shared locator (gitops_cli.yamledit.locate, the same one `gitops bump` edits with); Dockerfile images
from gitops_cli.dockerfile; reference grammar and mutable tags from gitops_cli.imageref.

    GL000 parse-error        the file does not parse
    GL001 latest             tag `latest` (any case) without a digest
    GL002 no-tag             neither tag nor digest (implicit latest)
    GL003 mutable-tag        a branch-like tag (main, dev, ..., *-SNAPSHOT, + configured ones)
    GL004 invalid-reference  fails the distribution/reference grammar
    GL005 digest-required    no digest (off unless --require-digest or configured)
    GL006 unresolved         a placeholder such as ${VAR}, {{ ... }}, <NAME> (warning)

Suppression: `# gitops-lint: ignore=GL001[,GL003] [reason]` at the end of the offending line (or of the
line where its image entry starts, or for a Helm map of its parent `image:` key), or alone on the line
above one of those.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gitops_cli import imageref
from gitops_cli.errors import ConfigError, InvalidReferenceError, UsageError
from gitops_cli.kustomize import is_yaml_name

ERROR, WARNING = "error", "warning"
SEVERITIES = (ERROR, WARNING)
FORMATS = ("text", "json", "github", "sarif")
INFO_URI = "https://github.com/gitops-cli/gitops-cli#gitops-lint"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    summary: str
    severity: str | None  # default severity; None = off by default


RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        Rule("GL000", "parse-error", "The file does not parse as YAML / Dockerfile.", ERROR),
        Rule("GL001", "latest", "Tag `latest` (any case) without a digest.", ERROR),
        Rule("GL002", "no-tag", "Neither tag nor digest: the image means the implicit `latest`.", ERROR),
        Rule("GL003", "mutable-tag", "A branch-like tag (main, dev, stable, ..., *-SNAPSHOT).", ERROR),
        Rule("GL004", "invalid-reference", "The reference fails the distribution/reference grammar.", ERROR),
        Rule("GL005", "digest-required", "The reference has no digest (@sha256:...).", None),
        Rule("GL006", "unresolved", "The reference contains an unresolved placeholder.", WARNING),
    )
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    rule: str
    severity: str
    message: str
    image: str | None = None
    end_line: int | None = None
    end_column: int | None = None
    # other lines whose suppression comments apply: where the reference starts (a kustomize/Helm map's
    # first key) and, for a Helm map under a key, that key's line (`image:`)
    anchor_lines: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @property
    def name(self) -> str:
        return RULES[self.rule].name


@dataclass(frozen=True)
class LintConfig:
    """What to check: from `[tool.gitops.lint]` and flags (see config_from_settings)."""

    severities: Mapping[str, str | None] = field(
        default_factory=lambda: {code: rule.severity for code, rule in RULES.items()}
    )
    allow: tuple[str, ...] = ()
    mutable_tags: frozenset[str] = frozenset()
    ignore_paths: tuple[str, ...] = ()
    fail_level: str = ERROR  # findings at or above it fail the run
    format: str | None = None  # None: text, or github on GitHub Actions


# --- configuration ---------------------------------------------------------------------------------

_CONFIG_KEYS = {"allow", "mutable_tags", "ignore_paths", "rules", "require_digest", "fail_level", "format"}


def config_from_settings(lint_table: Mapping[str, Any], *, extra_mutable_tags: Iterable[str] = (),
                         require_digest: bool = False, origin: str = "[tool.gitops.lint]") -> LintConfig:
    """Validate the `[tool.gitops.lint]` table and build a LintConfig.

    Keys: allow (image globs), mutable-tags (extra mutable tags), ignore-paths (path globs),
    rules (a table GLxxx = "error" | "warning" | "off"), require-digest (bool), fail-level, format.
    """
    table = {str(k).replace("-", "_"): v for k, v in lint_table.items()}
    unknown = sorted(set(table) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"{origin}: unknown key {unknown[0]!r}",
                          hint="known keys: " + ", ".join(sorted(k.replace("_", "-") for k in _CONFIG_KEYS)))
    severities: dict[str, str | None] = {code: rule.severity for code, rule in RULES.items()}
    if _bool(table.get("require_digest", False), "require-digest", origin):
        severities["GL005"] = ERROR
    rules = table.get("rules", {})
    if not isinstance(rules, Mapping):
        raise ConfigError(f"{origin}: 'rules' must be a table such as {{ GL003 = \"warning\" }}")
    for code, level in rules.items():
        key = str(code).upper()
        if key not in RULES:
            raise ConfigError(f"{origin}: unknown rule {code!r} in 'rules'", hint="rules are GL000..GL006")
        if level not in (ERROR, WARNING, "off"):
            raise ConfigError(f"{origin}: rules.{code} must be 'error', 'warning' or 'off', not {level!r}")
        severities[key] = None if level == "off" else level
    if require_digest and severities["GL005"] is None:
        severities["GL005"] = ERROR
    fail_level = table.get("fail_level", ERROR)
    if fail_level not in SEVERITIES:
        raise ConfigError(f"{origin}: 'fail-level' must be one of {', '.join(SEVERITIES)}, not {fail_level!r}")
    fmt = table.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"{origin}: 'format' must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return LintConfig(
        fail_level=fail_level,
        format=fmt,
        severities=severities,
        allow=tuple(_strings(table.get("allow", []), "allow", origin)),
        mutable_tags=frozenset(t.lower() for t in [*_strings(table.get("mutable_tags", []), "mutable-tags",
                                                                 origin), *extra_mutable_tags]),
        ignore_paths=tuple(_strings(table.get("ignore_paths", []), "ignore-paths", origin)),
    )


def _strings(value: Any, key: str, origin: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{origin}: {key!r} must be a list of strings")
    return value


def _bool(value: Any, key: str, origin: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{origin}: {key!r} must be true or false")
    return value


# --- rules on one reference ------------------------------------------------------------------------

_MARK = "zplaceholderz"  # stands for a placeholder (imageref.PLACEHOLDER_RE) where the rest is still judged


@dataclass(frozen=True)
class Problem:
    """A rule violation on one reference; `part` says where: name, tag, digest or None (the whole)."""

    rule: str
    message: str
    part: str | None = None


def check_reference(value: str, config: LintConfig) -> list[Problem]:
    """The rule violations of one image reference (as composed text), before severity/suppression."""
    shown = _show(value)
    found = imageref.placeholders(value)  # the placeholders bump never overwrites: one definition
    if found:
        return [Problem("GL006", f"image {shown} has an unresolved placeholder {found[0]}; "
                                 "the linted file is not what gets deployed", _part_of(value, found[0])),
                *_check_with_placeholders(imageref.PLACEHOLDER_RE.sub(_MARK, value), shown, config)]
    try:
        ref = imageref.parse(value)
    except InvalidReferenceError as exc:
        return [Problem("GL004", exc.message, _invalid_part(value))]
    return _check_parsed(ref, shown, config)


def _check_parsed(ref: imageref.ImageRef, shown: str, config: LintConfig,
                  name_known: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    if ref.digest is None:
        if ref.tag is None:
            if name_known:
                problems.append(Problem("GL002", f"image {shown} has no tag, so it means :latest; "
                                                 "pin an immutable tag or a digest", "name"))
        elif ref.tag.lower() == "latest":
            problems.append(Problem("GL001", f"image {shown} uses the tag {ref.tag!r}; "
                                             "pin an immutable tag or a digest", "tag"))
        elif imageref.is_mutable_tag(ref.tag, config.mutable_tags):
            problems.append(Problem("GL003", f"image {shown} uses the mutable tag {ref.tag!r}; "
                                             "use an immutable tag such as the commit SHA", "tag"))
        if ref.tag is not None or name_known:
            problems.append(Problem("GL005", f"image {shown} has no digest; pin it as NAME:TAG@sha256:...",
                                    "tag" if ref.tag is not None else "name"))
    return problems


def _check_with_placeholders(value: str, shown: str, config: LintConfig) -> list[Problem]:
    """Rules that can still be judged when part of the reference is a placeholder."""
    ref = imageref.try_parse(value)
    if ref is None:
        return []
    if ref.tag is not None and _MARK in ref.tag:
        return []
    last_component = ref.path.rsplit("/", 1)[-1]
    return _check_parsed(ref, shown, config, name_known=_MARK not in last_component)


def _part_of(value: str, fragment: str) -> str | None:
    name, tag, digest = imageref.split_reference(value)
    for part, text in (("digest", digest), ("tag", tag), ("name", name)):
        if text and fragment in text:
            return part
    return None


def _invalid_part(value: str) -> str | None:
    """Which part of an invalid reference fails: for map references, to point at the right field."""
    name, tag, digest = imageref.split_reference(value)
    checks = (("digest", digest, imageref.validate_digest), ("tag", tag, imageref.validate_tag),
              ("name", name, imageref.validate_name))
    for part, text, check in checks:
        if text is None:
            continue
        try:
            check(text)
        except InvalidReferenceError:
            return part
    return None


def _show(value: str) -> str:
    return repr(value if len(value) <= 100 else value[:97] + "...")


def is_allowed(value: str, allow: Sequence[str]) -> bool:
    """True when the reference matches an allow glob, as written or in normalized/familiar form."""
    if not allow:
        return False
    forms = {value}
    ref = imageref.try_parse(value)
    if ref is not None:
        suffix = (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")
        forms |= {ref.normalized_name + suffix, ref.familiar_name + suffix, ref.normalized_name,
                  ref.familiar_name}
    return any(fnmatch.fnmatchcase(form, pattern) for pattern in allow for form in forms)


# --- files -----------------------------------------------------------------------------------------

# the last suffixes that make a Dockerfile-like name something else: documentation, a template, a backup, a
# patch, data or a script (`build.Dockerfile.md`, `Dockerfile.j2`, `app.Dockerfile.yaml`); the pre-commit
# hook's `files` pattern lists the same
NOT_DOCKERFILE_SUFFIXES = frozenset({
    "dockerignore", "md", "markdown", "rst", "txt", "adoc", "html", "j2", "jinja", "jinja2", "tpl", "tmpl",
    "gotmpl", "erb", "mustache", "hbs", "bak", "orig", "rej", "swp", "patch", "diff", "json", "yaml", "yml",
    "toml", "sh", "py",
})


_DATA_SUFFIXES = frozenset({"dockerignore", "json", "yaml", "yml"})  # a file named so is never read as a Dockerfile


def is_dockerfile(path: str | Path, named: bool = False) -> bool:
    """`Dockerfile*`, `Containerfile*`, a name with a `.`-separated part `Dockerfile` or `Containerfile`
    (`web.Dockerfile`, `api.Containerfile.prod`: pre-commit's type `dockerfile`), `*.dockerfile`,
    `*.containerfile`, `dockerfile`, `containerfile`; never one whose last suffix (any case) is in
    NOT_DOCKERFILE_SUFFIXES (`.dockerignore`, `.md`, `.j2`, ...) or that ends in `~` (an editor's backup).
    `named`: a file given by name, which is read whatever its name: then only a data suffix (`.yaml`,
    `.json`, `.dockerignore`) makes a Dockerfile-like name no Dockerfile (`gitops lint Dockerfile.j2` reads
    it as the Dockerfile it mostly is)."""
    name = os.path.basename(str(path))
    parts = name.split(".")
    last = parts[-1].lower() if len(parts) > 1 else ""
    if last in (_DATA_SUFFIXES if named else NOT_DOCKERFILE_SUFFIXES) or (name.endswith("~") and not named):
        return False
    return (name.startswith(("Dockerfile", "Containerfile")) or name in ("dockerfile", "containerfile")
            or any(part in ("Dockerfile", "Containerfile") for part in parts[1:])
            or (len(parts) > 1 and parts[-1] in ("dockerfile", "containerfile")))


_SKIP_DIRS = {".git", ".hg", ".svn"}


def discover(paths: Sequence[str], ignore_paths: Sequence[str] = ()) -> list[str]:
    """The files to lint, as display paths: explicit files as given, directories walked recursively.

    A walk takes the regular files is_yaml_name and is_dockerfile take (*.yaml, *.yml, Kustomization,
    Dockerfile*, Containerfile*, *.Dockerfile, ...);
    it skips .git, symbolic links and anything else that is not a regular file (FIFOs, sockets, devices:
    reading a FIFO would wait forever).  A path given by name is kept whatever its type (read_text then
    reports a non-regular file as GL000).  Helm chart templates (`templates/` next to a Chart.yaml) are
    skipped: they are not YAML until rendered.  Paths matching an ignore glob (relative to the current
    directory; see ignore_globs for the spellings) are skipped.
    Raises UsageError for a path that does not exist.
    """
    out: list[str] = []
    for given in paths or ["."]:
        if os.path.isdir(given):
            out.extend(_walk(given))
        elif os.path.exists(given):
            out.append(given)
        elif not given:  # `gitops lint "$FILES"` with the variable unset: named, not a blank
            raise UsageError("an empty PATH argument: give a file or directory (none: the current directory)")
        else:
            raise UsageError(f"{given}: no such file or directory")
    seen: set[str] = set()
    result = []
    globs = ignore_globs(ignore_paths)
    for path in out:
        key = os.path.normpath(path)
        if key in seen or _ignored(path, globs) or _is_helm_template(path):
            continue
        seen.add(key)
        result.append(path)
    return result


def _walk(top: str) -> Iterator[str]:
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not os.path.islink(os.path.join(root, d)))
        for name in sorted(files):
            if not (is_yaml_name(name) or is_dockerfile(name)):
                continue
            path = os.path.join(root, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue  # symbolic links, FIFOs, sockets, devices
            except OSError:
                continue
            yield path[2:] if top == "." and path.startswith("./") else path


def ignore_globs(patterns: Sequence[str]) -> list[str]:
    """ignore-paths entries as absolute globs (relative ones joined to the current directory, `.` and `..`
    resolved, no trailing `/`), matched by _ignored against absolute paths: `vendor`, `./vendor`,
    `vendor/`, `../here/vendor` and the absolute path of that directory are the same entry."""
    base = glob.escape(os.getcwd())  # a `[` in the directory's name is no glob
    return [os.path.normpath(os.path.join(base, p)).replace(os.sep, "/") for p in patterns if p]


def _ignored(path: str, globs: Sequence[str]) -> bool:
    if not globs:
        return False
    full = os.path.abspath(path).replace(os.sep, "/")
    # the path itself or one of its directories; as written too (`/srv/app[1]/vendor` is also a glob)
    return any(full == g or full.startswith(g.rstrip("/") + "/") or fnmatch.fnmatchcase(full, g)
               or fnmatch.fnmatchcase(full, g.rstrip("/") + "/*") for g in globs)


_helm_dirs: dict[str, bool] = {}


def _is_helm_template(path: str) -> bool:
    parent = os.path.dirname(os.path.abspath(path))
    parts = parent.split(os.sep)
    while parts and "templates" in parts:
        i = len(parts) - 1 - parts[::-1].index("templates")
        chart = os.sep.join(parts[:i]) or os.sep
        if chart not in _helm_dirs:
            _helm_dirs[chart] = os.path.isfile(os.path.join(chart, "Chart.yaml"))
        if _helm_dirs[chart]:
            return True
        parts = parts[:i]
    return False


@dataclass(frozen=True)
class Unreadable:
    """Why a file cannot be linted, and where (1-based line and column) when a position is known."""

    reason: str
    line: int = 1
    column: int = 1


def read_text(path: str) -> tuple[str | None, Unreadable | None]:
    """(text, None) or (None, why it cannot be linted).

    Only a regular file is read: it is opened without blocking (opening a FIFO for reading would wait
    for a writer) and its type checked on the open descriptor.  Text that is not UTF-8 is placed at its
    first bad byte (the column counts characters, as for every finding; a leading BOM is not one).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return None, Unreadable(f"cannot read the file: {exc.strerror or exc}")
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            return None, Unreadable(f"not a regular file ({_file_type(mode)})")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as exc:
        return None, Unreadable(f"cannot read the file: {exc.strerror or exc}")
    finally:
        os.close(fd)
    if b"\0" in data:
        return None, Unreadable("not a text file (contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, _not_utf8(data, exc.start)
    return text.removeprefix("\ufeff"), None


def _not_utf8(data: bytes, bad: int) -> Unreadable:
    """GL000 at the first byte that is not UTF-8 (the text before it decodes: it is the first)."""
    line_start = data.rfind(b"\n", 0, bad) + 1
    before = data[line_start:bad].decode("utf-8")
    if line_start == 0:
        before = before.removeprefix("\ufeff")
    return Unreadable(f"not UTF-8 text (byte {bad})", data.count(b"\n", 0, line_start) + 1, len(before) + 1)


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


# --- linting ---------------------------------------------------------------------------------------

@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == WARNING)

    def failed(self, fail_level: str) -> bool:
        return self.errors > 0 if fail_level == ERROR else bool(self.findings)


def lint_paths(paths: Sequence[str], config: LintConfig) -> Report:
    report = Report()
    for path in discover(paths, config.ignore_paths):
        report.files += 1
        text, problem = read_text(path)
        if text is None:
            problem = problem or Unreadable("unreadable")
            report.findings.extend(_emit(path, problem.line, problem.column, "GL000", problem.reason, config))
            continue
        report.findings.extend(lint_text(path, text, config))
    return report


def lint_text(path: str, text: str, config: LintConfig, dockerfile: bool | None = None) -> list[Finding]:
    """All findings for one file's text (`dockerfile` defaults to guessing from the file name)."""
    if dockerfile is None:  # what a walk takes, or a file given by name (read whatever its name)
        dockerfile = is_dockerfile(path, named=True)
    findings = _lint_dockerfile(path, text, config) if dockerfile else _lint_yaml(path, text, config)
    if findings and "gitops-lint" in text:
        findings = _apply_suppressions(findings, text)
    # a value reached twice (through a YAML alias) is reported once, at its anchor
    unique = {(f.line, f.column, f.rule): f for f in reversed(findings)}
    return sorted(unique.values(), key=lambda f: (f.line, f.column, f.rule))


def _lint_yaml(path: str, text: str, config: LintConfig) -> list[Finding]:
    from gitops_cli.yamledit.locate import locate

    result = locate(text, filename=path)
    findings: list[Finding] = []
    if result.error is not None:
        err = result.error
        findings += _emit(path, err.line, err.column, "GL000", f"YAML does not parse: {err.message}", config)
    for ref in result.references:
        findings += _reference_findings(path, text, ref, config)
    return findings


def _lint_dockerfile(path: str, text: str, config: LintConfig) -> list[Finding]:
    from gitops_cli.dockerfile import parse_dockerfile

    result = parse_dockerfile(text)
    findings: list[Finding] = []
    if result.error is not None:
        err = result.error
        message = f"Dockerfile does not parse: {err.message}"
        findings += _emit(path, err.line, err.column, "GL000", message, config)
    for image in result.images:
        if is_allowed(image.value, config.allow):
            continue
        for problem in check_reference(image.value, config):
            message = problem.message
            if image.value != image.raw and problem.rule != "GL006":
                message += f" (written {image.raw!r}, ARG defaults applied)"
            findings += _emit(path, image.line, image.column, problem.rule, message, config, image.value,
                              (image.end_line, image.end_column), anchor_lines=(image.line,))
    return findings


_TAG_FIELDS = ("newTag", "tag")
_DIGEST_FIELDS = ("digest", "newDigest")
_NAME_FIELDS = ("newName", "name", "repository", "image", "repo", "registry", "hub")


def _reference_findings(path: str, text: str, ref: Any, config: LintConfig) -> list[Finding]:
    written = ref.value or ""
    value = _expanded(ref)
    if is_allowed(value, config.allow) or (value != written and is_allowed(written, config.allow)):
        return []
    chart = _chart_default(path, ref, value)
    if chart is not None and chart.value and is_allowed(chart.image, config.allow):
        return []
    image = chart.image if chart is not None and chart.value else value  # as the chart renders it
    problems = check_reference(image, config)
    if chart is not None:
        problems = [chart.explain(p) for p in problems]
    if ref.kind == "kustomize" and not any(expand_defaults(_scalar_text(s), allow_empty=True)
                                           for s in _present(ref.fields, "newTag", "digest")):
        # only newName / tagSuffix, or a newTag / digest that is empty once its `${VAR:-}` default is
        # applied: kustomize keeps the base manifest's tag and digest (linted on its own)
        problems = [p for p in problems if p.rule not in ("GL002", "GL005")]
    findings: list[Finding] = []
    parent = _parent_key_line(text, ref)
    anchors = (ref.line,) if parent is None else (ref.line, parent)
    for problem in problems:
        message = problem.message
        if value != written:
            message += f" (written {_show(written)}, ${{VAR:-default}} defaults applied)"
        scalar = ref.scalar if ref.form == "string" else _field_for(ref, problem)
        if chart is not None and (problem.part == "tag" or problem.rule in ("GL002", "GL005")):
            scalar = ref.fields["tag"]  # the empty tag: where the fix goes
        if scalar is not None:
            line, column, end = scalar.line, scalar.column, _scalar_end(text, scalar)
        else:
            line, column, end = ref.line, ref.column, None
        findings += _emit(path, line, column, problem.rule, message, config, image, end,
                          anchor_lines=anchors)
    return findings


@dataclass(frozen=True)
class _ChartDefault:
    """A Helm values map's empty `tag` (`tag: ""`, the `helm create` scaffold's): the chart's templates default it
    to Chart.yaml's appVersion (`.Values.image.tag | default .Chart.AppVersion`).  value: that appVersion, ''
    when the Chart.yaml beside the values file sets none; where: "DIR/Chart.yaml:LINE", or None when no
    Chart.yaml is beside the file (a values override file elsewhere: which chart it is layered over is the
    Application's or HelmRelease's business)."""

    image: str  # the reference as the chart renders it: name:appVersion
    value: str
    where: str | None

    def explain(self, problem: Problem) -> Problem:
        if self.value:  # the appVersion is judged as the tag; say where it comes from
            return Problem(problem.rule, f"{problem.message} (the empty tag defaults to the chart's appVersion, "
                                         f"{self.where})", problem.part)
        if problem.rule != "GL002":
            return problem
        shown = _show(self.image)
        if self.where is None:
            why = "no Chart.yaml beside this file gives the appVersion a chart would default it to"
        else:
            why = f"{self.where} sets no appVersion for it to default to"
        return Problem("GL002", f"image {shown} has an empty tag, and {why}; pin an immutable tag or a digest",
                       problem.part)


_charts: dict[str, tuple[str, int] | None] = {}


def _chart_default(path: str, ref: Any, value: str) -> _ChartDefault | None:
    """For a Helm values map whose `tag` is present but empty (after its `${VAR:-}` default) and which has no
    digest: what the chart makes of it (see _ChartDefault); None for any other reference."""
    fields = ref.fields or {}
    if ref.kind != "helm" or ref.form != "map" or fields.get("tag") is None or value.count("@") \
            or expand_defaults(_scalar_text(fields["tag"]), allow_empty=True) or not ref.name:
        return None
    chart = os.path.join(os.path.dirname(path), "Chart.yaml")
    key = os.path.abspath(chart)
    if key not in _charts:
        _charts[key] = _app_version(chart)
    found = _charts[key]
    if found is None:
        return _ChartDefault(value, "", None)
    version, line = found
    return _ChartDefault(f"{value}:{version}" if version else value, version, f"{chart}:{line}" if line else chart)


def _app_version(chart: str) -> tuple[str, int] | None:
    """(appVersion, its line) of a Chart.yaml, ('', 0) when it sets none (or cannot be read as YAML);
    None when there is no such file.  The value as written (`appVersion: 1.10` is "1.10", as Helm reads it)."""
    from gitops_cli.yamledit import YamlSyntaxError, read_text
    from gitops_cli.yamledit.locate import top_level_scalar

    if not os.path.isfile(chart):
        return None
    try:
        scalar = top_level_scalar(read_text(Path(chart)), "appVersion")
    except (OSError, UnicodeDecodeError, YamlSyntaxError):
        return "", 0
    if scalar is None or scalar.is_null or not scalar.value.strip():
        return "", 0
    return scalar.value.strip(), scalar.line


def _expanded(ref: Any) -> str:
    """The reference with `${VAR:-default}` defaults applied: a string as a whole; a map (Helm values,
    kustomize `images:`) field by field before it is composed, so `tag: ${TAG:-}` is an empty tag (GL002)
    and not a reference ending in ':' (GL004)."""
    if ref.form != "map" or not ref.fields:
        return expand_defaults(ref.value or "")
    from gitops_cli.yamledit.locate import compose_map_value

    fields = {role: expand_defaults(_scalar_text(s), allow_empty=True) for role, s in ref.fields.items()}
    return compose_map_value(ref.kind, fields)


def _present(fields: Mapping[str, Any], *names: str) -> list[Any]:
    return [fields[name] for name in names if fields.get(name) is not None]


# `${VAR:+word}` / `${VAR+word}`: empty when VAR is unset, which rarely leaves a reference; kept unexpanded
_ALTERNATE_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\+")


def expand_defaults(value: str, allow_empty: bool = False) -> str:
    """`${VAR:-default}` / `${VAR-default}` in a YAML value, expanded as with an empty environment.

    What docker compose (no .env), envsubst-style tools and the Dockerfile `ARG` expansion
    (gitops_cli.dockerfile.expand, the one implementation) give when the variable is unset: the default.
    A variable without a default stays as written (a GL006 placeholder).  Values with `$$` or `\\$`
    escapes, `${VAR:+alt}` forms or an unterminated `${` are returned unchanged, and so is a value that
    would expand to nothing, unless `allow_empty` (one field of a map: `tag: ${TAG:-}`).
    """
    if "${" not in value or "$$" in value or "\\$" in value or _ALTERNATE_RE.search(value):
        return value
    from gitops_cli.dockerfile import expand

    try:
        expanded, _ = expand(value, {})
    except ValueError:
        return value
    return expanded if expanded or allow_empty else value


def _parent_key_line(text: str, ref: Any) -> int | None:
    """For a map reference under a key (`image:` above `repository:`), the line of that key.

    The map node starts at its first key (block style) or at its anchor / `{` (on the key's own line);
    in block style the key is on the nearest line above with less indentation (comments skipped).
    """
    start = getattr(ref, "start", None)
    if ref.form != "map" or start is None or not ref.path or not isinstance(ref.path[-1], str):
        return None
    line_start = text.rfind("\n", 0, start) + 1
    line = text.count("\n", 0, line_start) + 1
    if text[line_start:start].strip():
        return line  # `image: {` or `image: &anchor` on the same line
    indent = start - line_start
    while line_start > 0:
        prev_end = line_start - 1
        line_start = text.rfind("\n", 0, prev_end) + 1
        line -= 1
        content = text[line_start:prev_end].rstrip("\r")
        stripped = content.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        return line if len(content) - len(stripped) < indent else None
    return None


def _field_for(ref: Any, problem: Problem) -> Any:
    """The field of a map reference (kustomize / Helm) a problem points at."""
    fields = ref.fields or {}

    def first(names: Sequence[str], non_empty: bool = False) -> Any:
        for name in names:
            scalar = fields.get(name)
            if scalar is not None and (not non_empty or _scalar_text(scalar)):
                return scalar
        return None

    name_field = first(_NAME_FIELDS, non_empty=True) or first(_NAME_FIELDS)
    if problem.part == "digest":
        return first(_DIGEST_FIELDS) or name_field
    if problem.part == "tag":
        return first(_TAG_FIELDS, non_empty=True) or name_field
    if problem.rule in ("GL002", "GL005"):
        return first(_TAG_FIELDS) or name_field  # an empty `tag: ""` is where the fix goes
    # only the fields the reference is composed of: a kustomize `name` replaced by `newName` is not one
    composed = [*_name_sources(ref), first(_TAG_FIELDS), first(_DIGEST_FIELDS)]
    if problem.rule == "GL006":
        marker = imageref.placeholders(ref.value or "")
        for scalar in composed:
            if scalar is not None and marker and marker[0] in _scalar_text(scalar):
                return scalar
    if problem.rule == "GL004" and problem.part == "name":
        for scalar in _name_sources(ref):
            try:
                imageref.validate_name(expand_defaults(_scalar_text(scalar), allow_empty=True))
            except InvalidReferenceError:
                return scalar
    return name_field


def _name_sources(ref: Any) -> list[Any]:
    """The fields a map reference's name is made of (as gitops_cli.yamledit.locate.map_name composes it):
    a kustomize entry's `newName`, else its `name`; a Helm map's registry and repository."""
    fields = ref.fields or {}
    if ref.kind == "kustomize":
        new_name = fields.get("newName")
        if new_name is not None and expand_defaults(_scalar_text(new_name), allow_empty=True):
            return [new_name]
        return [fields["name"]] if fields.get("name") is not None else []
    return [fields[role] for role in ("registry", "repository") if fields.get(role) is not None]


def _scalar_text(scalar: Any) -> str:
    value = getattr(scalar, "value", None)
    return "" if value is None or getattr(scalar, "is_null", False) else str(value)


def _scalar_end(text: str, scalar: Any) -> tuple[int, int] | None:
    start, end = getattr(scalar, "start", None), getattr(scalar, "end", None)
    if start is None or end is None or end <= start:
        return None
    source = text[start:end]
    if "\n" in source or "\r" in source:
        return None
    return scalar.line, scalar.column + len(source)


def _emit(path: str, line: int, column: int, rule: str, message: str, config: LintConfig,
          image: str | None = None, end: tuple[int, int] | None = None,
          anchor_lines: tuple[int, ...] = ()) -> list[Finding]:
    severity = config.severities.get(rule, RULES[rule].severity)
    if severity is None:
        return []
    end_line, end_column = end if end else (None, None)
    return [Finding(path, line, column, rule, severity, message, image, end_line, end_column, anchor_lines)]


# `ignore=` then a comma-separated list of codes (or `all`), any letter case; what follows is a reason
_SUPPRESS_RE = re.compile(r"#\s*gitops-lint:\s*ignore\s*=\s*((?:GL\d{3}|all)(?:\s*,\s*(?:GL\d{3}|all))*)(?!\w)",
                          re.IGNORECASE)


def suppressions(text: str) -> dict[int, set[str]]:
    """line -> codes suppressed on it: by a trailing comment, or a comment alone on the line above."""
    out: dict[int, set[str]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines, start=1):
        m = _SUPPRESS_RE.search(line)
        if m is None:
            continue
        codes = {c.strip().upper() for c in m.group(1).split(",") if c.strip()}
        alone = line.lstrip().startswith("#")
        out.setdefault(i + 1 if alone else i, set()).update(codes)
    return out


def _apply_suppressions(findings: list[Finding], text: str) -> list[Finding]:
    table = suppressions(text)
    kept = []
    for finding in findings:
        lines = {finding.line, *finding.anchor_lines}
        if not any(finding.rule in table.get(n, ()) or "ALL" in table.get(n, ()) for n in lines):
            kept.append(finding)
    return kept


# --- output ----------------------------------------------------------------------------------------

def format_text(report: Report) -> str:
    """One line per finding: control characters in a file name (or message) escaped (output.printable)."""
    from gitops_cli.output import printable

    return "".join(printable(f"{f.path}:{f.line}:{f.column}: {f.rule} {f.message}")
                   + (" (warning)" if f.severity == WARNING else "") + "\n" for f in report.findings)


def summary(report: Report) -> str:
    if not report.findings:
        return f"gitops lint: no findings in {report.files} file{'s' * (report.files != 1)}"
    files = len({f.path for f in report.findings})
    return (f"gitops lint: {report.errors} error{'s' * (report.errors != 1)}, {report.warnings} "
            f"warning{'s' * (report.warnings != 1)} in {files} of {report.files} "
            f"file{'s' * (report.files != 1)}")


def format_json(report: Report) -> str:
    """Through output.json_text: a file name is its bytes decoded as UTF-8 (`é` in any locale), a byte
    that is not UTF-8 written `\\xff` as the text format writes it; never a lone surrogate."""
    from gitops_cli.output import json_text

    data = {
        "findings": [_finding_json(f) for f in report.findings],
        "summary": {"files": report.files, "errors": report.errors, "warnings": report.warnings},
    }
    return json_text(data) + "\n"


def _finding_json(f: Finding) -> dict[str, Any]:
    data = asdict(f)
    del data["anchor_lines"]
    return {**data, "name": f.name}


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def format_github(report: Report) -> str:
    """GitHub Actions workflow commands: annotations on the pull request's diff.  Control characters in a
    file name or message are escaped (output.printable) as in the text format: a raw ESC would reach the
    log (JSON and SARIF carry such names exactly)."""
    from gitops_cli.output import printable

    out = []
    for f in report.findings:
        props = f"file={_gh_escape(printable(f.path), True)},line={f.line},col={f.column}"
        if f.end_line == f.line and f.end_column:
            props += f",endColumn={f.end_column}"
        props += f",title={_gh_escape(f'{f.rule} {f.name}', True)}"
        out.append(f"::{f.severity} {props}::{_gh_escape(printable(f.message))}\n")
    return "".join(out)


def format_sarif(report: Report, version: str = "") -> str:
    """SARIF 2.1.0 (GitHub code scanning and other SARIF viewers), through output.json_text as JSON is."""
    from gitops_cli.output import json_text

    codes = list(RULES)
    rules = [{
        "id": r.code,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "helpUri": f"{INFO_URI}-{r.code.lower()}",
        "defaultConfiguration": {"level": r.severity or "none", "enabled": r.severity is not None},
    } for r in RULES.values()]
    results = []
    for f in report.findings:
        region: dict[str, int] = {"startLine": f.line, "startColumn": f.column}
        if f.end_line is not None and f.end_column is not None:
            region |= {"endLine": f.end_line, "endColumn": f.end_column}
        results.append({
            "ruleId": f.rule,
            "ruleIndex": codes.index(f.rule),
            "level": f.severity,
            "message": {"text": f.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(f.path)},
                "region": region,
            }}],
        })
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "gitops-lint", "informationUri": INFO_URI, "version": version,
                                "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json_text(sarif) + "\n"


def _uri(path: str) -> str:
    """A file's SARIF artifact URI: its name's bytes percent-encoded (os.fsencode: a byte that is not UTF-8,
    or any non-ASCII name read under an ASCII locale, is the byte the file system has), absolute as file://."""
    if os.path.isabs(path):
        return Path(path).as_uri()
    from urllib.parse import quote

    return quote(os.fsencode(os.path.normpath(path).replace(os.sep, "/")))


def render(report: Report, fmt: str, version: str = "") -> str:
    """The report in format `fmt`.  Every string of a finding (its file name, message, image) has its
    secrets masked (output.redact) before it is formatted: each format encodes them (the text's escapes of
    control characters, JSON's `\\u00e4`, GitHub's `%3A`, SARIF's percent-encoded file URI), where a
    secret would no longer be found; so the rendered text is printed as it is."""
    from gitops_cli.output import redact

    report = Report([replace(f, path=redact(f.path), message=redact(f.message),
                             image=redact(f.image) if f.image is not None else None) for f in report.findings],
                    report.files)
    if fmt == "json":
        return format_json(report)
    if fmt == "github":
        return format_github(report)
    if fmt == "sarif":
        return format_sarif(report, version)
    return format_text(report)
