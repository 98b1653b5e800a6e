"""`gitops sync`: one reconciliation pass of the operator (fetch, discover, order, apply, prune), or a loop.

Fetch.  The repo is fetched (depth 1, no tags) into a cache kept between passes,
`<cache-dir>/<sha256(url)[:16]>/`: `checkout/` is a git work tree with no remote configured (the URL is
given on each fetch and credentials only through the environment, see gitops_cli.deployrepo) in the
remote's object format (SHA-1 or SHA-256, learnt from git's refusal of the first fetch: _fetch_into), `lock` is
the pass lock and `state-<instance>[-<context>].json` remembers the last applied commit and the objects it
applied.  A pass whose commit is the one last applied is a no-op that says so (`--force` applies again).

Discover. YAML files under the `--path` directories (default: the whole repo; each must be inside it),
never through a symlink, as listed by gitops_cli.yamledit.discover. A directory holding a kustomization
(`kustomization.yaml|.yml|Kustomization`) is rendered with `kubectl kustomize DIR` instead, and nothing
below it is read as loose files; a kustomization directory that another selected kustomization uses (a
base in `resources`/`bases`, or through a Component it includes; a Component nothing renders uses
nothing) is rendered only through it, as Flux and Argo CD render only the chosen path
(unless it is itself a `--path`); a kustomize Component is only ever included by another kustomization and
is skipped, as are Helm charts (a directory with Chart.yaml: sync does not render Helm). Documents with
`apiVersion` and `kind` are objects (a `kind: *List` is expanded into its items); anything else (CI
configs, Helm values, ...) is ignored with a `--verbose` note. A file that does not parse, an object
without a name, or the same object defined twice stops the pass before anything is applied: skipping it
silently would, with `--prune`, delete what it defines. Files are parsed as lint and bump parse them
(gitops_cli.yamledit.locate.parse: the parser, and the text it reads, with its tab fallback), then
loaded with YAML 1.1 rules, as kubectl reads them (`0755` is 493, `yes` is true, timestamps stay
strings), and sent to kubectl as JSON documents, so nothing changes type on the way.

Order.  Namespaces and CustomResourceDefinitions first, then by kind in Helm's install order (ServiceAccounts,
Secrets and ConfigMaps before workloads, ...), custom resources and unknown kinds after the known ones,
admission webhooks last (a webhook whose service is not up yet would block everything after it); ties by
namespace/name, then by file order.  Caveat of the single apply: kubectl maps every kind before applying,
so a custom resource whose CRD is created in the same pass fails on that first pass (named as failed);
the next pass applies it.

Apply.  One `kubectl apply -f -` with all documents on stdin: server-side with `--field-manager=gitops`
(and `--force-conflicts`: the repo is the source of truth) unless `--no-server-side`.  Every object gets
two labels: `gitops-cli.dev/managed-by=gitops-sync` and `gitops-cli.dev/instance=<hash of url, branch and
paths>`.  kubectl prints one line per object it applied; the objects missing from those lines are the
ones that failed, and the pass exits non-zero naming them.

Prune (the design).  `kubectl apply --prune -l ...` was not used: it only looks at the namespaces of the
objects being applied (objects left behind in a namespace that no longer has any object in the repo are
never pruned) and only at a fixed allowlist of kinds.  Instead the state file records which objects the
last pass applied (an inventory); objects in that inventory and no longer in the repo are deleted one by
one, in reverse install order, with `kubectl delete KIND --field-selector metadata.name=NAME -l
<managed-by>,<instance> -n NS`: the label selector makes kubectl delete only an object that still carries
the labels this sync instance set, so nothing sync did not apply is ever deleted, even if the inventory
were wrong.  Objects are compared as the server keeps them (see Placement): by API group, kind,
namespace and name, whatever the version; the few built-in kinds served by two groups (GROUP_ALIASES:
Ingress, NetworkPolicy, Deployment, DaemonSet, ReplicaSet, PodSecurityPolicy, Event) count as one object
(`extensions` to `networking.k8s.io` Ingress is a move, not a removal; one recorded from a group the
server no longer serves is deleted through the group it moved to: Placement.delete_resource), any other
kind of the same name in another group is another object (an Istio and a Gateway API Gateway); with the
namespace kubectl would use for an object that names none (the context's, the pod's in-cluster one, else
`default`), and none for a cluster-scoped kind (the scope comes from the built-in kinds, the CRDs in the commit, else
`kubectl api-resources`, asked only then).  So adding or dropping
`namespace: default` never deletes the object, and the inventory records the namespace each object was
applied to (`-n` is always explicit), so a changed context namespace prunes the old copies.  Last guard:
an object that may be one applied in the same pass (a kind of unknown scope) is left alone and kept
in the inventory, so a later pass that can tell prunes it.
Pruning runs only after an apply in which every object succeeded; objects that could not be
deleted stay in the inventory and are retried by the next pass.  The inventory lives in the cache, so a
cache that is lost (an emptyDir in a CronJob pod) forgets it: keep the cache on a volume to prune.

Lock.  `fcntl.flock` (gitops_cli.filelock) on `<cache>/lock` around the whole pass: a second pass fails with
SyncLockedError (exit 16); in `--interval` mode a locked pass is skipped with a warning.

Loop.  `--interval`: the command line is checked once, before the first pass (check_command_line: a bad flag
ends it at once); then a pass that fails for what the fetched commit holds or for a condition of the moment
is reported as a single pass reports it and retried an interval later (run_passes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from gitops_cli import filelock, git, kube, kustomize, output
from gitops_cli.errors import (
    WRITE_FAILURES,
    CommandStartError,
    GitopsError,
    NotFoundError,
    SyncError,
    SyncLockedError,
    UsageError,
    write_failure,
)
from gitops_cli.settings import FLAGS, Names, home_directory

MANAGED_BY_LABEL = "gitops-cli.dev/managed-by"
MANAGED_BY_VALUE = "gitops-sync"
INSTANCE_LABEL = "gitops-cli.dev/instance"
_HEAD_REF = "refs/gitops-sync/head"

# Install order (after Helm's releaseutil.InstallOrder), Namespace and CRD moved first, webhooks last.
KIND_ORDER: tuple[str, ...] = (
    "Namespace", "CustomResourceDefinition", "PriorityClass", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
)
_LAST_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")

# Built-in kinds by (API group, kind): True = namespaced; groups they moved from included.  Custom
# resources: their CRD in the repo, else the server (`kubectl api-resources`), asked only when pruning.
_NAMESPACED_BUILTINS = {
    "": ("ConfigMap", "Endpoints", "Event", "LimitRange", "PersistentVolumeClaim", "Pod", "PodTemplate",
         "ReplicationController", "ResourceQuota", "Secret", "Service", "ServiceAccount"),
    "apps": ("ControllerRevision", "DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"),
    "extensions": ("DaemonSet", "Deployment", "Ingress", "NetworkPolicy", "ReplicaSet"),
    "batch": ("CronJob", "Job"),
    "autoscaling": ("HorizontalPodAutoscaler",),
    "policy": ("PodDisruptionBudget",),
    "networking.k8s.io": ("Ingress", "NetworkPolicy"),
    "rbac.authorization.k8s.io": ("Role", "RoleBinding"),
    "coordination.k8s.io": ("Lease",),
    "discovery.k8s.io": ("EndpointSlice",),
    "events.k8s.io": ("Event",),
    "storage.k8s.io": ("CSIStorageCapacity",),
}
_CLUSTER_BUILTINS = {
    "": ("ComponentStatus", "Namespace", "Node", "PersistentVolume"),
    "extensions": ("PodSecurityPolicy",),
    "policy": ("PodSecurityPolicy",),
    "apiextensions.k8s.io": ("CustomResourceDefinition",),
    "apiregistration.k8s.io": ("APIService",),
    "admissionregistration.k8s.io": ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
                                     "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"),
    "rbac.authorization.k8s.io": ("ClusterRole", "ClusterRoleBinding"),
    "scheduling.k8s.io": ("PriorityClass",),
    "storage.k8s.io": ("CSIDriver", "CSINode", "StorageClass", "VolumeAttachment"),
    "networking.k8s.io": ("IngressClass",),
    "node.k8s.io": ("RuntimeClass",),
    "certificates.k8s.io": ("CertificateSigningRequest",),
    "flowcontrol.apiserver.k8s.io": ("FlowSchema", "PriorityLevelConfiguration"),
}
# The only kinds that are one object served by two API groups (the server converts between them): the
# group they moved from -> the group they moved to.  Every other kind of the same name in another group
# (an Istio and a Gateway API `Gateway`, say) is another object.
GROUP_ALIASES: dict[tuple[str, str], str] = {
    ("extensions", "Ingress"): "networking.k8s.io",
    ("extensions", "NetworkPolicy"): "networking.k8s.io",
    ("extensions", "Deployment"): "apps",
    ("extensions", "DaemonSet"): "apps",
    ("extensions", "ReplicaSet"): "apps",
    ("extensions", "PodSecurityPolicy"): "policy",
    ("events.k8s.io", "Event"): "",
}
BUILTIN_SCOPES: dict[tuple[str, str], bool] = {
    **{(g, k): True for g, kinds in _NAMESPACED_BUILTINS.items() for k in kinds},
    **{(g, k): False for g, kinds in _CLUSTER_BUILTINS.items() for k in kinds},
}
_INTERVAL_RE = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")


# --- objects -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRef:
    """A Kubernetes object's identity: as written in a manifest (namespace "" = none written), or as the
    server keeps it once `Placement.place`d (the inventory in the state file holds placed refs)."""

    api_version: str
    kind: str
    namespace: str
    name: str

    # group and ident are asked for again and again when inventories of thousands are compared: computed
    # once per ref (the ref is frozen, so they never change)
    @cached_property
    def group(self) -> str:
        return self.api_version.rsplit("/", 1)[0] if "/" in self.api_version else ""

    @property
    def version(self) -> str:
        return self.api_version.rsplit("/", 1)[-1]

    @cached_property
    def ident(self) -> tuple[str, str, str, str]:
        """Identity across API versions (apps/v1beta2 and apps/v1 Deployment x are the same object) and
        across the groups of GROUP_ALIASES only (extensions/v1beta1 and networking.k8s.io/v1 Ingress x are
        one object; networking.istio.io and gateway.networking.k8s.io Gateway x are two).  Compare refs
        placed by `Placement` (namespace as the server has it), never as written."""
        return (GROUP_ALIASES.get((self.group, self.kind), self.group), self.kind, self.namespace, self.name)

    @property
    def kubectl_name(self) -> str:
        """How kubectl prints it: `deployment.apps/web`, `service/web`."""
        kind = self.kind.lower() + (f".{self.group}" if self.group else "")
        return f"{kind}/{self.name}"

    @property
    def resource(self) -> str:
        """A resource argument kubectl resolves exactly: `deployment.v1.apps`, `configmap`."""
        return f"{self.kind.lower()}.{self.version}.{self.group}" if self.group else self.kind.lower()

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    def to_json(self) -> dict[str, str]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace,
                "name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> ObjectRef:
        return cls(data["apiVersion"], data["kind"], data.get("namespace", ""), data["name"])


@dataclass
class Manifest:
    """One object to apply: its identity, its body and where it came from."""

    ref: ObjectRef
    body: dict[str, Any]
    source: str
    seq: int = 0


@dataclass
class Discovery:
    manifests: list[Manifest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was ignored and why (printed with --verbose)
    kustomized: list[str] = field(default_factory=list)  # rendered directories, relative to the repo
    placement: Placement | None = None  # where the server keeps the manifests (see Placement)


def kind_rank(kind: str) -> int:
    if kind in KIND_ORDER:
        return KIND_ORDER.index(kind)
    if kind in _LAST_KINDS:
        return len(KIND_ORDER) + 1 + _LAST_KINDS.index(kind)
    return len(KIND_ORDER)


def order(manifests: Sequence[Manifest]) -> list[Manifest]:
    """Install order: kind rank, then (unknown kinds by name) namespace/name, then file order."""

    def key(m: Manifest) -> tuple[int, str, str, str, int]:
        rank = kind_rank(m.ref.kind)
        return (rank, m.ref.kind if rank == len(KIND_ORDER) else "", m.ref.namespace, m.ref.name, m.seq)

    return sorted(manifests, key=key)


def render_stream(manifests: Sequence[Manifest], labels: dict[str, str]) -> str:
    """The stdin of `kubectl apply -f -`: one JSON document per object, `---` between, labels added."""
    docs = []
    for m in manifests:
        body = json.loads(json.dumps(m.body))  # a deep copy; the labels never leak into the caller's data
        meta = body.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        docs.append(json.dumps(body, ensure_ascii=False, sort_keys=False))
    return "".join(f"---\n{doc}\n" for doc in docs)


class Placement:
    """Where the API server keeps each object, so that inventories are compared as the cluster sees them.

    An object written without `metadata.namespace` lands in kubectl's default namespace (the context's,
    else the pod's in-cluster one, else "default": kube.default_namespace, asked once, only when needed);
    a cluster-scoped object has no namespace whatever its manifest says (kubectl ignores it, the server
    drops it).  Scopes come from the built-in kinds, the CRDs being applied, and (`ask=True`, at most once
    a pass) the server's `kubectl api-resources`; that one answer also tells which groups the server still
    serves a moved kind in (`delete_resource`).
    """

    def __init__(self, kubectl: kube.Kubectl, manifests: Sequence[Manifest]) -> None:
        self._kubectl = kubectl
        self._scopes = {**BUILTIN_SCOPES, **crd_scopes(manifests)}
        self._asked = False
        self._served: dict[tuple[str, str], bool] | None = None  # the server's answer, once asked
        self._default: str | None = None

    def _ask_server(self) -> dict[tuple[str, str], bool] | None:
        """`kubectl api-resources`, asked at most once a pass (None: it could not be asked)."""
        if not self._asked:
            self._asked = True
            self._served = kube.api_scopes(self._kubectl)
            self._scopes = {**(self._served or {}), **self._scopes}
        return self._served

    def namespaced(self, ref: ObjectRef, ask: bool = False) -> bool | None:
        """True/False, or None when the scope of the kind is not known."""
        key = (ref.group, ref.kind)
        if key not in self._scopes and ask:
            self._ask_server()
        return self._scopes.get(key)

    def delete_resource(self, ref: ObjectRef) -> str:
        """The kubectl resource argument that deletes `ref` (an inventory entry): `ref.resource`, except for a
        kind recorded from the group it moved from (GROUP_ALIASES: `extensions` Ingress) that the server no
        longer serves there (Kubernetes 1.22 and later): then the group it moved to, without a version
        (`ingress.networking.k8s.io`; kubectl picks the served one), when the server serves the kind there.
        The server's kinds (`kubectl api-resources`) are asked only for such a kind, at most once a pass;
        when they cannot be asked, `ref.resource` (the delete fails and is retried by the next pass)."""
        target = GROUP_ALIASES.get((ref.group, ref.kind))
        if target is None:
            return ref.resource
        served = self._ask_server()
        if served is None or (ref.group, ref.kind) in served or (target, ref.kind) not in served:
            return ref.resource
        return f"{ref.kind.lower()}.{target}" if target else ref.kind.lower()

    def default_namespace(self) -> str:
        if self._default is None:
            self._default = kube.default_namespace(self._kubectl)
        return self._default

    def place(self, ref: ObjectRef, ask: bool = False) -> ObjectRef:
        """`ref` in the namespace the server keeps it in: none for a cluster-scoped kind; for a namespaced
        kind (or one of unknown scope), the one written, else the default namespace."""
        if self.namespaced(ref, ask) is False:
            return replace(ref, namespace="") if ref.namespace else ref
        return ref if ref.namespace else replace(ref, namespace=self.default_namespace())

    def may_be_same(self, a: ObjectRef, b: ObjectRef) -> bool:
        """Could placed `a` and `b` be one object?  Same (aliased) group, kind and name, and the same
        namespace unless a scope is unknown (the namespace may not count)."""
        return a.ident[:2] == b.ident[:2] and a.name == b.name and (
            a.namespace == b.namespace or not (self.namespaced(a) and self.namespaced(b)))

    def finder(self, applied: Sequence[ObjectRef]) -> Callable[[ObjectRef], ObjectRef | None]:
        """`find(ref)`: the first of placed `applied` that `may_be_same` as `ref`, or None -- what
        `next((a for a in applied if self.may_be_same(ref, a)), None)` answers, without comparing `ref` with
        every applied object (thousands removed times thousands kept).  may_be_same needs the same (aliased)
        group, kind and name, so only those are candidates; and when `ref`'s kind is known namespaced, only
        the first in its namespace and those of a kind not known namespaced when the index was made (a scope
        learnt since only makes fewer match).  Every candidate is still checked with may_be_same, in order,
        when `find` is called (scopes asked from the server meanwhile count)."""
        by_name: dict[tuple[str, str, str], list[int]] = {}
        by_namespace: dict[tuple[str, str, str, str], int] = {}
        unscoped: dict[tuple[str, str, str], list[int]] = {}  # a kind not known namespaced
        for index, a in enumerate(applied):
            key = (a.ident[0], a.kind, a.name)
            by_name.setdefault(key, []).append(index)
            by_namespace.setdefault((*key, a.namespace), index)
            if not self.namespaced(a):
                unscoped.setdefault(key, []).append(index)

        def find(ref: ObjectRef) -> ObjectRef | None:
            key = (ref.ident[0], ref.kind, ref.name)
            if self.namespaced(ref):
                first = by_namespace.get((*key, ref.namespace))
                indexes = sorted({*unscoped.get(key, ()), *(() if first is None else (first,))})
            else:  # the namespace does not count: any of the same name may be it
                indexes = by_name.get(key, [])
            return next((applied[i] for i in indexes if self.may_be_same(ref, applied[i])), None)

        return find


def crd_scopes(manifests: Sequence[Manifest]) -> dict[tuple[str, str], bool]:
    """{(group, kind): namespaced} for the CustomResourceDefinitions among `manifests`."""
    scopes: dict[tuple[str, str], bool] = {}
    for m in manifests:
        if m.ref.kind != "CustomResourceDefinition" or m.ref.group != "apiextensions.k8s.io":
            continue
        spec = m.body.get("spec")
        names = spec.get("names") if isinstance(spec, dict) else None
        if isinstance(spec, dict) and isinstance(names, dict) and isinstance(spec.get("group"), str) \
                and isinstance(names.get("kind"), str) and spec.get("scope") in ("Namespaced", "Cluster"):
            scopes[(spec["group"], names["kind"])] = spec["scope"] == "Namespaced"
    return scopes


# --- YAML documents ----------------------------------------------------------------------------------


def _yaml(pure: bool) -> Any:
    """A safe loader with kubectl's YAML 1.1 typing; timestamps and !!binary stay the text written.  `pure`:
    with the pure-Python parser, else libyaml's."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor
    from ruamel.yaml.resolver import VersionedResolver

    class _Constructor(SafeConstructor):
        pass

    class _Resolver(VersionedResolver):
        @property
        def processing_version(self) -> Any:  # every document, not only the first (`yaml.version` does that)
            return (1, 1)

    _Constructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_scalar)
    _Constructor.add_constructor("tag:yaml.org,2002:binary", SafeConstructor.construct_scalar)
    loader = YAML(typ="safe", pure=pure)
    loader.Constructor = _Constructor
    loader.Resolver = _Resolver
    return loader


def load_documents(text: str, source: str, loaders: dict[bool, Any] | None = None) -> list[Any]:
    """All documents of a YAML stream, read as lint and bump read it (_load_all), or SyncError naming
    `source` and the line (a `%YAML` directive naming a version other than 1.1 or 1.2 is one, as for lint
    and bump).  `loaders`: the loaders (`_yaml`, by `pure`) made so far in this pass, reused (see
    _load_all); None: new ones."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from gitops_cli.yamledit.locate import YamlSyntaxError

    try:
        return _load_all(text, {} if loaders is None else loaders)
    except YamlSyntaxError as exc:  # the version check, the parser's refusal, too deep
        raise SyncError(f"{source}:{exc.line}: not valid YAML: {exc.message}",
                        hint="fix the file; nothing was applied") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SyncError(f"{where}: not valid YAML: {exc.problem or exc.context}",
                        hint="fix the file; nothing was applied") from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise SyncError(f"{source}: not valid YAML: {exc}", hint="fix the file; nothing was applied") from exc
    except Exception as exc:  # a failure inside the parser: still about this file, not an internal error
        detail = " ".join(str(exc).split())
        raise SyncError(f"{source}: the YAML parser failed on it ({type(exc).__name__}: {detail})",
                        hint="fix the file; nothing was applied") from exc


def _load_all(text: str, loaders: dict[bool, Any]) -> list[Any]:
    """The documents of text as the YAML locator reads it for lint and bump (locate.parse decides): with
    libyaml's parser when installed, else, or when libyaml refuses the text, with the pure-Python one, on a
    copy with the tabs libyaml reads as white space made spaces when that parser refuses them.  So a file
    lint and bump read is read here, with the same values.  YamlSyntaxError when neither reads it, or when
    a collection is nested more than 400 levels deep: both loaders recurse per level (libyaml's composer
    in C: 100 000 levels overflowed its stack, a crash; the pure one stops at about 450).

    `loaders` holds the loader of each parser once made (making one costs more than reading a small
    manifest: ruamel looks for its plug-ins each time), reused one file after another (never by two threads
    at once); one that failed half-way is dropped (a half-read document's state must not reach the next)."""
    from gitops_cli.yamledit.locate import parse

    # read for the parser it takes, the text it reads and its errors: no node made, no event kept (the loader
    # makes its own); a document with an alias, a merge key or deep nesting is still composed (see _Parsed)
    parsed = parse(text, shallow=True, keep=lambda _index, _start, _end: False, events=None)
    loader = loaders.get(parsed.pure)
    if loader is None:
        loader = loaders[parsed.pure] = _yaml(pure=parsed.pure)
    try:
        return list(loader.load_all(parsed.source))
    except BaseException:
        del loaders[parsed.pure]
        raise


def objects_in(docs: Sequence[Any], source: str, notes: list[str]) -> list[tuple[ObjectRef, dict[str, Any]]]:
    """The Kubernetes objects among `docs` (Lists expanded); the rest is noted and ignored."""
    found: list[tuple[ObjectRef, dict[str, Any]]] = []
    for index, doc in enumerate(docs, start=1):
        where = f"{source} (document {index})" if len(docs) > 1 else source
        if doc is None:
            continue
        if not _is_object(doc):
            notes.append(f"{where}: not a Kubernetes object (no apiVersion/kind), ignored")
            continue
        if doc["apiVersion"].startswith("kustomize.config.k8s.io/"):
            notes.append(f"{where}: a kustomize {doc['kind']} outside a kustomization directory, ignored")
            continue
        items = doc.get("items")
        if doc["kind"].endswith("List") and isinstance(items, list):
            for n, item in enumerate(items, start=1):
                if not _is_object(item):
                    raise SyncError(f"{where}: item {n} of the {doc['kind']} is not a Kubernetes object")
                found.append((_ref(item, f"{where} item {n}"), item))
            continue
        found.append((_ref(doc, where), doc))
    return found


def _is_object(doc: Any) -> bool:
    return (isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and bool(doc["apiVersion"])
            and isinstance(doc.get("kind"), str) and bool(doc["kind"]))


def _ref(doc: dict[str, Any], where: str) -> ObjectRef:
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise SyncError(f"{where}: {doc['kind']} has no metadata.name (kubectl apply needs one)",
                        hint="fix the manifest; nothing was applied")
    namespace = meta.get("namespace") or ""
    if not isinstance(namespace, str):
        raise SyncError(f"{where}: {doc['kind']} {meta['name']}: metadata.namespace is not a string")
    return ObjectRef(doc["apiVersion"], doc["kind"], namespace, meta["name"])


# --- discovery -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What --path selects: the start directories (repo-relative) and the YAML files below them."""

    starts: list[Path]
    files: list[Path]


def select(root: Path, paths: Sequence[str], names: Names = FLAGS) -> Selection:
    """Validate --path values and list the YAML files below them (gitops_cli.yamledit.discover: never
    through a symlink, never outside the repo, no .git, no binaries); UsageError for a bad --path, named
    as `names` does."""
    from gitops_cli.yamledit.discover import discover as discover_files

    files = [p.relative_to(root) for p in discover_files(root, list(paths) or None, names)]
    starts: list[Path] = []
    for raw in paths or ["."]:
        rel = Path(os.path.normpath(raw))
        rel = rel.relative_to(root.resolve()) if rel.is_absolute() else rel
        if rel not in starts:
            starts.append(rel)
    return Selection(starts, files)


def _under(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _marked_dirs(
    root: Path, starts: Sequence[Path], files: Sequence[Path], names: Sequence[str]
) -> list[Path]:
    """Directories inside `starts` (the starts themselves and ancestors of `files`) holding one of `names`."""
    ancestors: set[Path] = set()  # of the files: each directory once, however many files it holds
    for directory in {f.parent for f in files}:
        for p in (directory, *directory.parents):
            if p in ancestors:  # and so are all of its own
                break
            ancestors.add(p)
    candidates = set(starts) | {p for p in ancestors if any(_under(p, s) for s in starts)}
    marked = []
    for d in sorted(candidates):
        if any((root / d / n).is_file() and not (root / d / n).is_symlink() for n in names):
            marked.append(d)
    return [d for d in marked if not any(o != d and _under(d, o) for o in marked)]


def discover(root: Path, selection: Selection, kubectl: kube.Kubectl) -> Discovery:
    """Every object to apply in `selection`, with notes on what was ignored (see the module docstring)."""
    result = Discovery()
    starts, files = selection.starts, selection.files
    charts = _marked_dirs(root, starts, files, ("Chart.yaml",))
    for chart in charts:
        result.notes.append(f"{_show(chart)}/: a Helm chart, not rendered by sync, ignored")
    kustomize_dirs = [d for d in _marked_dirs(root, starts, files, kustomize.KUSTOMIZATION_FILES)
                      if not any(_under(d, c) for c in charts)]
    sources: list[tuple[str, Callable[[], str]]] = []
    docs: dict[Path, dict[str, Any] | None] = {}  # each kustomization file is read once a pass
    components = [d for d in kustomize_dirs if _is_component(root, d, docs)]
    # only what may be rendered uses anything: a Component nothing renders does not (one that an overlay
    # includes is followed by that overlay's own walk)
    used_by = _kustomize_references(root, [d for d in kustomize_dirs if d not in components], docs)
    for d in kustomize_dirs:
        if d in components:
            result.notes.append(f"{_show(d)}/: a kustomize Component (only rendered by a kustomization "
                                "that includes it), ignored")
            continue
        # used by a kustomization that is itself rendered (in a cycle, kustomize names the error)
        users = [u for u in used_by.get(d, []) if u not in used_by or u in starts]
        if users and d not in starts:
            result.notes.append(f"{_show(d)}/: a kustomize base of {_show(users[0])}/, rendered only "
                                "through it (name it with --path to apply it on its own too)")
            continue
        result.kustomized.append(_show(d))
        sources.append((f"{_show(d)}/ (kustomize)", partial(kube.kustomize, kubectl, root / d, _show(d))))
    skip = charts + kustomize_dirs
    for f in files:
        if not any(_under(f, s) for s in skip):
            sources.append((f.as_posix(), partial(_read, root / f, f.as_posix())))
    seq = 0
    loaders: dict[bool, Any] = {}  # one YAML loader per parser for the whole pass
    for source, read in sorted(sources, key=lambda s: s[0]):
        for ref, body in objects_in(load_documents(read(), source, loaders), source, result.notes):
            result.manifests.append(Manifest(ref, body, source, seq))
            seq += 1
    result.placement = Placement(kubectl, result.manifests)
    _check_duplicates(result.manifests, result.placement)
    return result


def _show(rel: Path) -> str:
    return "." if rel == Path(".") else rel.as_posix()


def _read(path: Path, shown: str) -> str:
    from gitops_cli.yamledit.discover import read_text

    try:
        return read_text(path)
    except UnicodeDecodeError:
        raise SyncError(f"{shown}: not UTF-8 text") from None
    except OSError as exc:
        raise SyncError(f"{shown}: cannot read: {exc.strerror}") from None


def _kustomization(root: Path, rel: Path, docs: dict[Path, dict[str, Any] | None]) -> dict[str, Any] | None:
    """The (first document of the) kustomization file of the repo directory `rel`, or None; errors name
    the file as in the repo (`overlays/prod/kustomization.yaml:3`), never the cache path.  `docs`: the
    files read so far in this pass (a base shared by several overlays is read once)."""
    if rel not in docs:
        docs[rel] = read_kustomization(root, rel)  # an error stops the pass: not cached
    return docs[rel]


def read_kustomization(root: Path, rel: Path) -> dict[str, Any] | None:
    """The first document of the kustomization file of the repo directory `rel` ({} when it is no mapping),
    None when it has none; SyncError naming the file as in the repo when it cannot be read or parsed."""
    path = kustomize.kustomization_file(root, rel)
    if path is None:
        return None
    shown = (rel / path.name).as_posix()
    found = load_documents(_read(path, shown), shown)
    return found[0] if found and isinstance(found[0], dict) else {}


def _is_component(root: Path, rel: Path, docs: dict[Path, dict[str, Any] | None]) -> bool:
    doc = _kustomization(root, rel, docs)
    return doc is not None and doc.get("kind") == "Component"


def _kustomize_references(root: Path, dirs: Sequence[Path],
                          docs: dict[Path, dict[str, Any] | None] | None = None) -> dict[Path, list[Path]]:
    """{directory: the selected kustomizations using it} for the directories in the repo that the
    kustomizations in `dirs` use as `resources`/`bases`/`components`, followed through the bases too
    (kustomize renders a base inside each overlay using it; applying it alone again would put its
    objects, un-patched, in the default namespace).  Only local directories inside the repo, never
    through a symlink (gitops_cli.kustomize.walk)."""
    used: dict[Path, list[Path]] = {}
    docs = {} if docs is None else docs
    for top in dirs:
        for entry in kustomize.walk(root, top, partial(_kustomization, root, docs=docs)):
            if entry.kind != "directory" or entry.key not in kustomize.RESOURCE_KEYS:
                continue
            assert entry.path is not None
            if entry.path != top and top not in used.get(entry.path, []):
                used.setdefault(entry.path, []).append(top)
    return used


def _check_duplicates(manifests: Sequence[Manifest], placement: Placement) -> None:
    """Two manifests of one object (as the server keeps it: see Placement and ObjectRef.ident) stop the
    pass: one would silently overwrite the other."""
    seen: dict[tuple[str, str, str, str], Manifest] = {}
    for m in manifests:
        placed = placement.place(m.ref)
        first = seen.setdefault(placed.ident, m)
        if first is not m:
            raise SyncError(f"{placed} is defined twice: in {first.source} and in {m.source}",
                            hint="keep one definition (or narrow --path); nothing was applied")


# --- cache, state and lock -------------------------------------------------------------------------------


def default_cache_root() -> Path:
    """$XDG_CACHE_HOME/gitops/sync, else ~/.cache/gitops/sync; UsageError (exit 2) when there is no home
    directory either (no HOME and a uid with no passwd entry)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "gitops" / "sync"
    home = home_directory()
    if home is None:
        raise UsageError(f"no cache directory: HOME is not set and uid {os.getuid()} has no passwd entry",
                         hint="pass --cache-dir DIR (or set XDG_CACHE_HOME or HOME)")
    return home / ".cache" / "gitops" / "sync"


def _digest(*parts: str, length: int = 16) -> str:
    """A short hash of `parts`: as UTF-8, a byte that is not UTF-8 (a path's, a value given) as itself."""
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:length]


def instance_id(url: str, branch: str, paths: Sequence[Path]) -> str:
    """The value of the instance label: which repo, branch and paths this sync applies."""
    return _digest(url, branch, *sorted(p.as_posix() for p in paths))


@contextmanager
def pass_lock(path: Path) -> Iterator[None]:
    """An exclusive, non-blocking flock on `path` for the whole pass (filelock.exclusive); SyncLockedError
    when held; UsageError (exit 2) when the cache directory cannot be made or used (a file in its place)."""
    with ExitStack() as held:
        _make_cache(path.parent)
        try:
            held.enter_context(filelock.exclusive(path))
        except filelock.LockHeld as exc:
            raise SyncLockedError(
                f"another gitops sync pass is running (lock {path} held by pid {exc.holder})",
                hint="passes never overlap; this one was not run",
            ) from None
        except OSError as exc:
            raise _unusable_cache(path.parent, exc) from None
        yield


def _make_cache(cache: Path) -> None:
    """Make the cache directory (and its parents) if missing; UsageError (exit 2) when it cannot be (a file in
    its place, no permission), the OSError of a write the system refused (a full disk: exit 74) as it is."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable_cache(cache, exc) from None


def _unusable_cache(cache: Path, exc: OSError) -> OSError | UsageError:
    if exc.errno in WRITE_FAILURES:
        return exc
    return UsageError(f"sync cache {cache}: {exc.strerror}",
                      hint="--cache-dir (else $XDG_CACHE_HOME, else $HOME/.cache) must name a directory gitops "
                           "can write")


def load_state(path: Path) -> dict[str, Any]:
    """The state a pass left (empty: none yet).  One that cannot be read (truncated, not JSON, unreadable)
    is set aside as `<name>.damaged` with a warning: the objects it listed are no longer known, so nothing of
    them is pruned, and they stay in the cluster until pruned by hand."""
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
        why = "not a JSON object"
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        why = str(getattr(exc, "strerror", None) or exc)
    aside = path.with_name(path.name + ".damaged")
    try:
        path.replace(aside)
        kept = f"set aside as {aside.name}"
    except OSError:
        kept = "left as it is"
    output.warn(f"{path}: the state of the last pass cannot be read ({output.printable(why)[:120]}); {kept}: the "
                "objects it listed are unknown now, and none of them is pruned (prune them by hand, see that file)")
    return {}


def save_state(path: Path, commit: str | None, objects: Sequence[ObjectRef], pruned: bool = False) -> None:
    """`commit`: the last commit applied; `pruned`: whether that pass pruned too (a --prune pass on that
    commit is then no no-op)."""
    unique = {o.ident: o for o in objects}
    data = {"commit": commit, "pruned": pruned, "objects": [o.to_json() for o in unique.values()]}
    from gitops_cli.yamledit import write_atomic

    # durable and atomic: a pass killed (or a disk full) while saving leaves the last state, never a partial one
    write_atomic(path, json.dumps(data, indent=1) + "\n")


def _inventory(state: dict[str, Any]) -> list[ObjectRef]:
    out = []
    for item in state.get("objects") or []:
        try:
            out.append(ObjectRef.from_json(item))
        except (KeyError, TypeError):
            continue
    return out


# --- fetch ---------------------------------------------------------------------------------------------


def fetch(url: str, display: str, env: dict[str, str], branch: str, checkout: Path) -> str:
    """Fetch `branch` (depth 1) into the cached checkout, check it out clean; return the commit.  The cache
    is gitops' own repository: no template, none of the user's hooks (git.own_repository).

    A pass killed with its git (an evicted pod, an OOM kill) leaves git's lock files (`shallow.lock`,
    `index.lock`, `refs/.../*.lock`...) and temporary packs in the checkout, where git would refuse every
    later pass ("File exists"): the caller holds the pass lock, so no git of another pass can be using them,
    and they are removed first, with a warning naming them.  A checkout git cannot read (no HEAD, a damaged
    index) is made again from scratch, with a warning."""
    _remove_leftovers(checkout)
    if (checkout / ".git").is_dir():
        # git reads its index (ls-files) as a fetch does: a damaged one would fail every fetch
        probe = git.run(["ls-files", "-z", "--", ":(exclude)*"], cwd=checkout, check=False)
        if probe.status:
            refused = git.ownership_error(probe.stderr, cwd=checkout)  # another user's: theirs, not to remove
            if refused is not None:
                raise refused
            reason = probe.stderr.splitlines()[-1] if probe.stderr else f"git exit {probe.status}"
            output.warn(f"{checkout}: not a usable git repository ({reason}): made again")
            shutil.rmtree(checkout, ignore_errors=True)
    _fetch_into(url, display, env, branch, checkout)
    return _check_out(checkout, env)


# git's words when the cache's object format is not the remote's (SHA-1 and SHA-256 repositories)
_MISMATCH_RE = re.compile(r"mismatched algorithms: client (?P<client>\w+); server (?P<server>\w+)")


def _fetch_into(url: str, display: str, env: dict[str, str], branch: str, checkout: Path) -> None:
    """Fetch into the cached checkout, made (`git init`) when there is none.  A new one gets git's default
    object format (SHA-1, or GIT_DEFAULT_HASH's); when that is not the remote's (a SHA-256 deploy repo, or
    GIT_DEFAULT_HASH=sha256 and a SHA-1 one), git refuses the fetch, and the checkout is made again in the
    remote's format, as a clone takes it -- an existing cache too, with a warning (a repo moved to
    another format)."""
    made = not (checkout / ".git").is_dir()
    if made:
        _init(checkout)
    git.own_repository(checkout)
    args = ["fetch", "--quiet", "--depth", "1", "--no-tags", "--force", "--", url, f"+refs/heads/{branch}:{_HEAD_REF}"]
    what = f"fetching {display} ({branch})"
    res = git.run(args, cwd=checkout, env=env, check=False, what=what)
    mismatch = _MISMATCH_RE.search(res.stderr) if res.status else None
    if mismatch is not None:
        if not made:
            output.warn(f"{checkout}: holds {mismatch['client']} objects, {display} {mismatch['server']} ones: "
                        "made again")
        _init(checkout, mismatch["server"])
        res = git.run(args, cwd=checkout, env=env, check=False, what=what)
    if res.status:
        raise git.error_for(args, res.status, res.stderr, what=what, cwd=checkout)


def _init(checkout: Path, object_format: str | None = None) -> None:
    """Make the cached checkout afresh: an empty repository, no template (so none of the user's hooks),
    in `object_format` (sha1, sha256), else git's default."""
    shutil.rmtree(checkout, ignore_errors=True)
    fmt = [f"--object-format={object_format}"] if object_format else []
    git.run_outside(["init", "--quiet", "--template=", *fmt, os.path.abspath(checkout)])


def _check_out(checkout: Path, env: dict[str, str]) -> str:
    """Check the fetched commit out, clean, every file as it is stored (deployrepo.AS_STORED, as a bump's
    clone holds it: none of the user's filters, no line-end conversion); return it.  A cache made before
    that (its files may have been converted) has every file written again."""
    from gitops_cli.deployrepo import AS_STORED

    commit = git.run(["rev-parse", "--verify", f"{_HEAD_REF}^{{commit}}"], cwd=checkout, env=env).stdout.strip()
    attributes = checkout / ".git" / "info" / "attributes"
    if not attributes.is_file() or attributes.read_text(errors="replace") != AS_STORED:
        attributes.parent.mkdir(parents=True, exist_ok=True)
        attributes.write_text(AS_STORED)
        (checkout / ".git" / "index").unlink(missing_ok=True)  # no file is taken as up to date: all written
    git.run(["checkout", "--quiet", "--force", "--detach", commit], cwd=checkout, env=env)
    git.run(["clean", "-ffdxq"], cwd=checkout, env=env)
    return commit


# What a git killed mid-command leaves in a repository: its lock files (`<file>.lock`, anywhere in the git
# dir) and the temporary files of objects and packs being written (tmp_obj_*, tmp_pack_*, tmp_idx_*...).
_LEFTOVER_LOCK = ".lock"
_LEFTOVER_TEMP = "tmp_"


def _remove_leftovers(checkout: Path) -> None:
    """Remove the lock and temporary files a killed git left in the cached checkout's git dir, with a
    warning naming them (only ever called under the pass lock: no other git can be using them)."""
    git_dir = checkout / ".git"
    if not git_dir.is_dir() or git_dir.is_symlink():
        return
    removed: list[str] = []
    for top, _dirs, files in os.walk(git_dir):
        in_objects = Path(top).relative_to(git_dir).parts[:1] == ("objects",)
        for name in files:
            if name.endswith(_LEFTOVER_LOCK) or (in_objects and name.startswith(_LEFTOVER_TEMP)):
                path = Path(top, name)
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(path.relative_to(checkout).as_posix())
    if removed:
        removed.sort()
        shown = ", ".join(removed[:10]) + (f" and {len(removed) - 10} more" if len(removed) > 10 else "")
        output.warn(f"{checkout}: removed what an interrupted git left behind: {shown}")


# --- the pass --------------------------------------------------------------------------------------------


@dataclass
class SyncOptions:
    repo: str
    branch: str | None = None
    paths: list[str] = field(default_factory=list)
    prune: bool = False
    dry_run: bool = False
    kubectl: str = "kubectl"
    context: str | None = None
    server_side: bool = True
    cache_dir: Path | None = None
    force: bool = False
    verbose: bool = False
    names: Names = FLAGS  # how messages name a setting's value (its source): --repo, --path


@dataclass
class PassResult:
    commit: str
    noop: bool = False
    applied: list[tuple[ObjectRef, str]] = field(default_factory=list)
    pruned: list[ObjectRef] = field(default_factory=list)


def check_command_line(opts: SyncOptions) -> None:
    """What the command line alone decides, checked before the first pass of `--interval` (UsageError, exit
    2, ends the loop at once): the --branch name, the --repo (a URL gitops can use, an existing directory),
    the --path values (none empty, none outside the repo: whether one exists is the fetched commit's
    business), the cache directory (one that can be made and used), git's environment (a GIT_CONFIG_COUNT that
    is no number).  Every pass checks these again (sync_once): a failure then (a file:// repo's directory
    gone, say) is a condition of that pass, reported, and the loop goes on (run_passes).  A cache directory
    the system refuses to write (a full or read-only file system) is such a condition, not the command
    line's: left to the passes, which report it until it can be written."""
    from gitops_cli import deployrepo
    from gitops_cli.bump import check_branch
    from gitops_cli.yamledit.discover import relative_subpath

    git.base_env()  # every git of every pass would refuse it
    if opts.branch is not None:
        check_branch(opts.branch, opts.names("branch", opts.branch))
    remote = deployrepo.open_remote(opts.repo, names=opts.names)
    cache = (opts.cache_dir or default_cache_root()) / _digest(remote.display)
    for path in opts.paths:
        relative_subpath(cache / "checkout", path, opts.names)
    try:
        _make_cache(cache)
    except OSError:  # a write the system refused (_unusable_cache): each pass reports it, the loop goes on
        pass


def sync_once(opts: SyncOptions) -> PassResult:
    """One pass: lock, fetch, (no-op when already applied), discover, apply, prune, remember."""
    from gitops_cli import deployrepo
    from gitops_cli.bump import check_branch

    if opts.branch is not None:  # as bump refuses it (`x@{1}`, `refs/heads/x`): exit 2, not git's refspec error
        check_branch(opts.branch, opts.names("branch", opts.branch))
    remote = deployrepo.open_remote(opts.repo, names=opts.names)
    branch = opts.branch or (deployrepo.current_branch(remote.local) if remote.local else None)
    branch = branch or deployrepo.default_branch(remote)
    cache = (opts.cache_dir or default_cache_root()) / _digest(remote.display)
    with pass_lock(cache / "lock"):
        output.step(f"fetching {remote.display} ({branch})")
        commit = fetch(remote.url, remote.display, remote.env, branch, cache / "checkout")
        selection = select(cache / "checkout", opts.paths, opts.names)
        instance = instance_id(remote.display, branch, selection.starts)
        suffix = f"-{_digest(opts.context, length=8)}" if opts.context else ""
        state_path = cache / f"state-{instance}{suffix}.json"
        state = load_state(state_path)
        # a no-op unless this pass does more than the one that applied it: --prune after passes without,
        # --dry-run (which remembers nothing), --force
        if (state.get("commit") == commit and not opts.force and not opts.dry_run
                and (not opts.prune or state.get("pruned") is True)):
            output.info(f"{commit[:12]} is already applied: nothing to do (--force applies it again)")
            return PassResult(commit, noop=True)
        return _apply_commit(opts, cache / "checkout", commit, selection, instance, state_path, state)


def _apply_commit(opts: SyncOptions, root: Path, commit: str, selection: Selection, instance: str,
                  state_path: Path, state: dict[str, Any]) -> PassResult:
    kubectl = kube.Kubectl(opts.kubectl, opts.context)
    found = discover(root, selection, kubectl)
    if opts.verbose:
        for note in found.notes:
            output.info(f"note: {note}")
    where = ", ".join(_show(s) for s in selection.starts)
    if not found.manifests:
        raise NotFoundError(f"no Kubernetes objects in {where} at {commit[:12]}; nothing was applied",
                            hint="check --path (use --verbose to see what was ignored)")
    ordered = order(found.manifests)
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, INSTANCE_LABEL: instance}
    mode = "server-side" if opts.server_side else "client-side"
    mode += ", dry run" if opts.dry_run else ""
    # the inventory records objects where the server keeps them (see Placement)
    placement = found.placement or Placement(kubectl, ordered)
    previous = _inventory(state)
    current = [m.ref for m in ordered]
    if not opts.dry_run:  # before kubectl runs: a pass killed during it (a deadline, an eviction) leaves an
        # inventory naming what it may have applied, still at the last commit applied (the next pass applies
        # again, and prunes what left the repo since)
        save_state(state_path, state.get("commit"), [placement.place(r) for r in previous + current],
                   pruned=state.get("pruned") is True)
    output.step(f"applying {len(ordered)} objects at {commit[:12]} ({mode})")
    res = kube.apply(kubectl, render_stream(ordered, labels), server_side=opts.server_side,
                     dry_run=opts.dry_run)
    applied, failed = match_applied(ordered, kube.parse_apply_output(res.stdout))
    for ref, op in applied:
        if opts.verbose:
            output.info(f"{ref}: {op}")
    if not failed and res.status == 0:  # the API server's warnings (a deprecated API, an admission webhook's)
        for line in res.stderr.splitlines():
            if line.startswith("Warning:"):
                output.log_line(f"kubectl: {line}")
    if failed or res.status != 0:
        for line in res.stderr.splitlines():  # named: kubectl's own `error: ...` is not gitops' one error line
            output.log_line(f"kubectl: {line}")
        raise _apply_error(failed, ordered, res)  # the inventory saved above forgets nothing
    pruned: list[ObjectRef] = []
    if opts.prune:
        pruned, not_deleted, kept = prune(kubectl, placement, previous, current, labels, opts.dry_run)
        if not opts.dry_run:  # what could not be deleted or was not, for safety, stays in the inventory
            save_state(state_path, commit if not not_deleted else state.get("commit"),
                       [placement.place(r) for r in current] + not_deleted + kept,
                       pruned=not not_deleted or state.get("pruned") is True)
        if not_deleted:
            raise SyncError("could not prune: " + ", ".join(str(r) for r in not_deleted),
                            hint="see kubectl's errors above; the next pass retries")
    elif not opts.dry_run:  # without --prune, keep the whole inventory
        save_state(state_path, commit, [placement.place(r) for r in previous + current])
    summary = _count([op for _, op in applied])
    output.info(f"applied {len(applied)} objects ({summary})" + (f", pruned {len(pruned)}" if pruned else ""))
    return PassResult(commit, applied=applied, pruned=pruned)


def match_applied(
    manifests: Sequence[Manifest], reported: Sequence[tuple[str, str]]
) -> tuple[list[tuple[ObjectRef, str]], list[Manifest]]:
    """Pair kubectl's `kind.group/name op` lines with what was sent; the unpaired manifests failed."""
    pending = list(manifests)
    applied: list[tuple[ObjectRef, str]] = []
    for name, op in reported:
        hit = next((m for m in pending if m.ref.kubectl_name == name), None)
        if hit is not None:
            pending.remove(hit)
            applied.append((hit.ref, op))
    return applied, pending


def _apply_error(failed: Sequence[Manifest], sent: Sequence[Manifest], res: kube.KubectlResult) -> SyncError:
    reason = kube.first_error(res.stderr)
    if not failed:
        return SyncError(f"kubectl apply failed (exit {res.status}): {reason}")
    if len(failed) == len(sent):
        return SyncError(f"kubectl apply failed (exit {res.status}), none of the {len(sent)} objects was "
                         f"applied: {reason}",
                         hint="check the cluster connection (--context) and permissions")
    def named(m: Manifest) -> str:  # kubectl's lines name no namespace: which of two same names failed is not known
        twins = [o for o in sent if o is not m and o.ref.kubectl_name == m.ref.kubectl_name]
        return " or ".join(sorted(f"{o.ref} ({o.source})" for o in [m, *twins])) + (
            " (kubectl names no namespace: which one is not known)" if twins else "")

    names = ", ".join(named(m) for m in failed)
    return SyncError(f"{len(failed)} of {len(sent)} objects failed to apply: {names}",
                     hint="kubectl's errors are above; the other objects were applied")


def prune(kubectl: kube.Kubectl, placement: Placement, previous: Sequence[ObjectRef],
          current: Sequence[ObjectRef], labels: dict[str, str],
          dry_run: bool) -> tuple[list[ObjectRef], list[ObjectRef], list[ObjectRef]]:
    """Delete what the last pass applied and the repo no longer has; return (deleted, not deleted, kept).

    Both lists are compared as the server keeps the objects (Placement: namespace defaulted, none for a
    cluster-scoped kind; API version ignored, API group only for the kinds that moved group, see
    GROUP_ALIASES), so writing the namespace differently or moving Ingress from `extensions` to
    `networking.k8s.io` is not a removal.  Last guard: an object that may be one applied in this pass is
    not deleted but kept (it stays in the inventory, and a later pass that can tell prunes it)."""

    def candidates(ask: bool) -> list[ObjectRef]:
        now = {placement.place(r, ask).ident for r in current}
        gone: dict[tuple[str, str, str, str], ObjectRef] = {}
        for ref in previous:
            placed = placement.place(ref, ask)
            if placed.ident not in now:
                gone.setdefault(placed.ident, placed)
        return list(gone.values())

    gone = candidates(ask=False)
    if any(placement.namespaced(r) is None for r in gone):  # a kind of unknown scope: ask the server once
        gone = candidates(ask=True)
    gone.sort(key=lambda r: (kind_rank(r.kind), r.kind, r.namespace, r.name), reverse=True)
    applied = [placement.place(r) for r in current]
    may_be = placement.finder(applied)  # the first of `applied` that may be it, without a scan of them all
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    deleted: list[ObjectRef] = []
    failed: list[ObjectRef] = []
    kept: list[ObjectRef] = []
    for ref in gone:
        same = may_be(ref)
        if same is not None:
            output.info(f"{ref}: not pruned, it may be {same} applied by this pass (the scope of "
                        f"{ref.kind} is unknown; kept in the inventory)")
            kept.append(ref)
            continue
        users = holds(ref, applied)
        if users:  # deleting it would delete what the repo still has (and what others made there)
            what = "everything in it" if ref.kind == "Namespace" else "every object of its kinds, cluster-wide"
            output.warn(f"{ref}: not pruned: {len(users)} object(s) this pass applied need it ({users[0]}"
                        f"{', ...' if len(users) > 1 else ''}), and deleting it deletes {what}; kept in the "
                        "inventory (delete it yourself once nothing needs it)")
            kept.append(ref)
            continue
        res = kube.delete_one(kubectl, placement.delete_resource(ref), ref.namespace, ref.name, selector,
                              dry_run)
        if res.status != 0:
            output.error(f"pruning {ref}: {kube.first_error(res.stderr)}")
            failed.append(ref)
        elif res.stdout.strip():
            output.info(f"pruned {ref}{' (dry run)' if dry_run else ''}")
            deleted.append(ref)
        else:
            output.info(f"{ref}: gone already or not labelled by this sync: left alone")
    return deleted, failed, kept


def holds(ref: ObjectRef, applied: Sequence[ObjectRef]) -> list[ObjectRef]:
    """The applied objects that a Namespace or CustomResourceDefinition `ref` holds: deleting a Namespace
    deletes every object in it, deleting a CRD every object of its kinds (`<plural>.<group>`: the objects
    of its group are counted, the kind's plural not being known).  Empty for any other kind."""
    if ref.kind == "Namespace" and ref.group == "":
        return [a for a in applied if a.namespace == ref.name]
    if ref.kind == "CustomResourceDefinition" and ref.group == "apiextensions.k8s.io" and "." in ref.name:
        group = ref.name.split(".", 1)[1]
        return [a for a in applied if a.group == group]
    return []


def _count(ops: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    return ", ".join(f"{n} {op}" for op, n in counts.items()) or "none"


# --- the loop --------------------------------------------------------------------------------------------


def parse_interval(text: str) -> float:
    """`5m`, `30s`, `1h`, `1h30m`, `90` (seconds) -> seconds; UsageError otherwise."""
    m = _INTERVAL_RE.match(text.strip())
    if not text.strip() or not m:
        raise UsageError(f"--interval {text!r}: expected a duration like 30s, 5m, 1h or 1h30m")
    seconds = int(m.group("h") or 0) * 3600 + int(m.group("m") or 0) * 60 + int(m.group("s") or 0)
    if seconds < 1:
        raise UsageError(f"--interval {text!r}: must be at least 1s")
    if seconds > MAX_INTERVAL:  # the sleep between passes would overflow (after a first pass was applied)
        raise UsageError(f"--interval {text!r}: must be at most {MAX_INTERVAL // 3600}h (a week)")
    return float(seconds)


MAX_INTERVAL = 7 * 24 * 3600


def run_passes(opts: SyncOptions, interval: float | None, on_result: Callable[[PassResult], None],
               max_passes: int | None = None) -> None:
    """--once: one pass, its errors raised (its exit code).  --interval: the command line is checked first
    (check_command_line: a bad flag ends the loop at once, exit 2), then a pass runs every `interval` seconds
    until the loop is stopped (SIGTERM, Ctrl-C: KeyboardInterrupt, exit 130 whatever the passes did).  A
    pass that fails for what the fetched commit holds (a --path it no longer has, a file that does not
    parse, an object defined twice, a failed kustomize or apply, no objects) or for a condition of the moment
    (the remote unreachable, the cluster down, a full disk, the lock held) is reported as a single pass
    reports it, and the next pass retries, as Flux and Argo CD retry a failed reconciliation.  Only a kubectl
    that cannot be started (--kubectl, the installation) and a bug (an internal error) end the loop."""
    if interval is None:
        on_result(sync_once(opts))
        return
    check_command_line(opts)
    done = 0
    while max_passes is None or done < max_passes:
        started = time.monotonic()
        try:
            result = sync_once(opts)
        except SyncLockedError as exc:
            output.warn(f"{exc.message}: skipping this pass")
        except CommandStartError:
            raise
        except GitopsError as exc:
            output.error(exc.message, exc.hint, exc.details)
        except OSError as exc:
            if exc.errno not in WRITE_FAILURES:
                raise
            output.error(write_failure(exc).message)  # as the CLI reports it (exit 74 of a single pass)
        else:
            on_result(result)
        done += 1
        if max_passes is None or done < max_passes:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
