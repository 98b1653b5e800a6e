"""The kubectl adapter: the only module that runs `kubectl`.

Three calls do the work: `kustomize` (render a directory, works offline), `apply` (one `kubectl apply -f
-` with the documents on stdin) and `delete_one` (delete one object, guarded by a label selector).  Two
read-only ones tell where an object lives, for pruning: `default_namespace` (where kubectl puts an object
written without `metadata.namespace`) and `api_scopes` (which kinds the server has and whether each is
namespaced: `kubectl api-resources`).  Everything the
cluster connection needs is left to kubectl itself: `--context` is passed when given, and without it
kubectl uses $KUBECONFIG / ~/.kube/config or, inside a pod, the ServiceAccount token (in-cluster config),
so no `--kubeconfig` is ever added.

kubectl reports each object it applied on stdout as `kind[.group]/name operation` (`created`,
`configured`, `unchanged`, `serverside-applied`, optionally followed by ` (server dry run)`);
`parse_apply_output` reads those lines, and the caller (gitops_cli.sync) compares them with what it sent
to name the objects that failed: kubectl's error lines do not always name the object (e.g. a server-side
apply conflict), its success lines always do.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gitops_cli import interrupts
from gitops_cli.errors import CommandStartError, SyncError
from gitops_cli.output import redact
from gitops_cli.settings import child_environment

FIELD_MANAGER = "gitops"
_APPLIED_RE = re.compile(r"^(?P<name>[^\s/]+/\S+) (?P<op>\S.*)$")


@dataclass(frozen=True)
class Kubectl:
    """How to run kubectl: the executable and an optional kubeconfig context."""

    path: str = "kubectl"
    context: str | None = None

    def argv(self, *args: str) -> list[str]:
        ctx = ["--context", self.context] if self.context else []
        return [self.path, *ctx, *args]


@dataclass(frozen=True)
class KubectlResult:
    status: int
    stdout: str
    stderr: str


def run(
    kubectl: Kubectl, args: Sequence[str], stdin: str | None = None, timeout: float = 900
) -> KubectlResult:
    """Run `kubectl [--context C] ARGS`; CommandStartError (exit 14) when it cannot be started.  kubectl
    reads and writes UTF-8 whatever the locale: its stdin, stdout and stderr are UTF-8 here too (a byte
    that is not UTF-8 kept as itself, surrogateescape), never the locale's encoding (ASCII under LC_ALL=C
    without Python's UTF-8 mode, where a manifest's `ü` failed to encode and nothing was applied).

    kubectl is owned while it runs (interrupts.owning), as git and the test command are: an interrupt or
    the timeout stops it -- without a controlling terminal (CI) with its own process group, so what it
    started (an exec credential plugin) too -- and nothing it does outlives gitops.  Its environment has none
    of gitops' secret variables (settings.child_environment): kubectl and its plugins need none of them."""
    argv = kubectl.argv(*args)
    group = not interrupts.has_controlling_terminal()

    def start() -> subprocess.Popen[str]:
        try:
            return subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else None,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8",
                                    errors="surrogateescape", process_group=0 if group else None,
                                    env=child_environment())
        except FileNotFoundError:
            raise CommandStartError(f"kubectl not found: {kubectl.path!r}",
                                    hint="install kubectl or pass --kubectl PATH") from None
        except PermissionError:
            raise CommandStartError(f"kubectl is not executable: {kubectl.path}") from None
        except OSError as exc:
            raise CommandStartError(f"kubectl could not be started ({kubectl.path}): {exc.strerror}") from None

    proc: subprocess.Popen[str] | None = None
    try:
        with interrupts.owning(start, group=group) as proc:
            try:
                out, err = proc.communicate(stdin, timeout=timeout)
            except subprocess.TimeoutExpired:
                interrupts.stop(proc, group=group)
                raise SyncError(f"`kubectl {args[0]}` did not finish within {int(timeout)}s") from None
    finally:
        if proc is not None:  # its pipes, once it is stopped
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:  # what was left to write to a stopped kubectl
                    pass
    return KubectlResult(proc.returncode, out, err)


def kustomize(kubectl: Kubectl, directory: Path, shown_as: str) -> str:
    """`kubectl kustomize DIR`: the rendered multi-document YAML, or SyncError naming the directory."""
    res = run(Kubectl(kubectl.path), ["kustomize", str(directory)])  # no cluster needed: no --context
    if res.status != 0:
        reason = first_error(res.stderr)
        raise SyncError(f"{shown_as}: kubectl kustomize failed (exit {res.status}): {reason}")
    return res.stdout


def apply_args(*, server_side: bool, dry_run: bool, field_manager: str = FIELD_MANAGER) -> list[str]:
    """The arguments of the one `kubectl apply` of a pass (documents on stdin).

    Server-side apply takes ownership of conflicting fields (`--force-conflicts`): the repo is the source
    of truth, as it is for a client-side `kubectl apply`, which always overwrites.
    """
    args = ["apply", "-f", "-"]
    if server_side:
        args += ["--server-side", f"--field-manager={field_manager}", "--force-conflicts"]
    if dry_run:
        args.append("--dry-run=server")
    return args


def apply(kubectl: Kubectl, stream: str, *, server_side: bool, dry_run: bool) -> KubectlResult:
    """One `kubectl apply -f -` of the whole stream; the caller reads per-object results from stdout."""
    return run(kubectl, apply_args(server_side=server_side, dry_run=dry_run), stdin=stream)


def parse_apply_output(stdout: str) -> list[tuple[str, str]]:
    """`deployment.apps/web configured` lines -> [("deployment.apps/web", "configured")], in order."""
    out = []
    for line in stdout.splitlines():
        m = _APPLIED_RE.match(line.strip())
        if m:
            out.append((m.group("name"), m.group("op")))
    return out


def delete_args(resource: str, namespace: str, name: str, selector: str, dry_run: bool) -> list[str]:
    """`kubectl delete RESOURCE --field-selector metadata.name=NAME -l SELECTOR` (plus -n, dry run).

    kubectl refuses a name together with -l, so the name goes in a field selector: the object is
    deleted only if it still carries the labels sync put on it.
    """
    args = ["delete", resource, "--field-selector", f"metadata.name={name}", "-l", selector,
            "--ignore-not-found", "--wait=false"]
    if namespace:
        args += ["-n", namespace]
    if dry_run:
        args.append("--dry-run=server")
    return args


def delete_one(kubectl: Kubectl, resource: str, namespace: str, name: str, selector: str,
               dry_run: bool) -> KubectlResult:
    return run(kubectl, delete_args(resource, namespace, name, selector, dry_run))


_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def default_namespace(kubectl: Kubectl, sa_dir: Path = _SA_DIR) -> str:
    """The namespace kubectl applies an object without `metadata.namespace` to, by client-go's rules
    (clientcmd's DeferredLoadingClientConfig.Namespace): the namespace set on the kubeconfig context in
    use; else, when in-cluster config is possible (in a pod), $POD_NAMESPACE or the ServiceAccount's
    namespace; else "default"."""
    res = run(kubectl, ["config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}"])
    namespace = res.stdout.strip() if res.status == 0 else ""
    if namespace:
        return namespace
    token = sa_dir / "token"
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT") \
            and token.is_file():
        if os.environ.get("POD_NAMESPACE"):
            return os.environ["POD_NAMESPACE"]
        try:
            return (sa_dir / "namespace").read_text().strip() or "default"
        except OSError:
            return "default"
    return "default"


def api_scopes(kubectl: Kubectl) -> dict[tuple[str, str], bool] | None:
    """`kubectl api-resources`: {(API group, kind): namespaced} for what the server serves, or None when
    it could not be asked.  A partial answer (an aggregated API down: kubectl exits 1 but prints the
    rest) is used for what it lists."""
    res = run(kubectl, ["api-resources", "--no-headers"])
    scopes = parse_api_resources(res.stdout)
    return scopes or None


def parse_api_resources(stdout: str) -> dict[tuple[str, str], bool]:
    """`NAME [SHORTNAMES] APIVERSION NAMESPACED KIND` rows (SHORTNAMES may be blank: read from the right)."""
    scopes: dict[tuple[str, str], bool] = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[-2] not in ("true", "false"):
            continue
        api_version, kind = fields[-3], fields[-1]
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        scopes[(group, kind)] = fields[-2] == "true"
    return scopes


def first_error(stderr: str) -> str:
    """The most telling part of kubectl's stderr, on one line, redacted: its `error:` / `Error from server` /
    `unable to` line; else the error a klog line carries (newer kubectl reports a failed `kustomize` as
    `E1127 21:48:21.308110 22907 run.go:72] "command failed" err="..."`, the error quoted, or `err=<` followed
    by the error's lines, each indented with a tab, up to a line ` >`: those lines, joined with one space);
    else the first line."""
    plain: list[str] = []  # the lines outside klog entries
    logged: list[tuple[str, str]] = []  # (klog severity, the error it carries, else its message)
    block: list[str] | None = None  # the lines of a multi-line `err=<` value being read
    severity = ""
    for raw in redact(stderr).splitlines():
        line = raw.strip()
        if block is not None:
            if line == ">":
                logged.append((severity, " ".join(block)))
                block = None
            elif line:
                block.append(line)
            continue
        if not line:
            continue
        m = _KLOG_RE.match(line)
        if m is None:
            plain.append(line)
            continue
        severity, text = m.group("severity"), m.group("text")
        if text.endswith(" err=<"):
            block = []
            continue
        quoted = _KLOG_ERR_RE.search(text)
        logged.append((severity, _unquote(quoted.group(1)) if quoted else text))
    if block:  # cut short: what there is of it
        logged.append((severity, " ".join(block)))
    errors = [ln for ln in plain if ln.lower().startswith(("error", "unable"))]
    failed = [text for level, text in logged if level in ("E", "F")]
    return (errors or failed or [text for _, text in logged] or plain or ["no error output"])[0]


# klog's header: severity, MMDD, time, thread id, file:line]; then the message and its key=value pairs
_KLOG_RE = re.compile(r"^(?P<severity>[IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [^\]\s]+\] (?P<text>.*)$")
_KLOG_ERR_RE = re.compile(r'\berr="((?:[^"\\]|\\.)*)"')


def _unquote(value: str) -> str:
    """A Go-quoted string's content (klog quotes a value with strconv.Quote); as written when it is not one
    JSON can read (a `\\x..` escape)."""
    try:
        text = json.loads(f'"{value}"')
    except ValueError:
        return value.replace('\\"', '"').replace("\\\\", "\\")
    return " ".join(text.split()) if isinstance(text, str) else value
