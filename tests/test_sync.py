"""Unit tests for gitops_cli.sync and gitops_cli.kube: discovery, ordering, kustomize rendering (the real
`kubectl kustomize`, offline), YAML typing, the lock (real flock), output parsing and kubectl arguments.

The apply step itself is covered in tests/integration/test_sync.py against the recording stand-in for
kubectl (tests/fixtures/fake_kubectl.py): no API server can run on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gitops_cli import kube
from gitops_cli.errors import SyncError, SyncLockedError, UsageError
from gitops_cli.filelock import holder
from gitops_cli.sync import (
    Manifest,
    ObjectRef,
    Placement,
    Selection,
    _kustomize_references,
    discover,
    instance_id,
    load_documents,
    match_applied,
    objects_in,
    order,
    parse_interval,
    pass_lock,
    prune,
    render_stream,
    select,
)

KUBECTL = kube.Kubectl(shutil.which("kubectl") or "kubectl")
FAKE = kube.Kubectl(str(Path(__file__).resolve().parent / "fixtures" / "fake_kubectl.py"))


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def obj(kind: str, name: str, namespace: str = "", api: str = "v1") -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}{ns}\n"


def manifest(kind: str, name: str, namespace: str = "", seq: int = 0, api: str = "v1") -> Manifest:
    ref = ObjectRef(api, kind, namespace, name)
    return Manifest(ref, {"apiVersion": api, "kind": kind, "metadata": {"name": name}}, "x.yaml", seq)


# --- ordering ----------------------------------------------------------------------------------------


def test_the_instance_of_a_repo_or_path_that_is_not_utf8_is_the_hash_of_its_bytes():
    """A --repo path or --path whose name is not UTF-8 (a lone surrogate): hashed as its bytes (a strict
    encode failed, exit 70); a UTF-8 one as before."""
    import hashlib

    def expected(*parts: bytes) -> str:
        return hashlib.sha256(b"\n".join(parts)).hexdigest()[:16]

    assert instance_id("file:///srv/d\udcff.git", "main", [Path("apps/\udcff")]) == (
        expected(b"file:///srv/d\xff.git", b"main", b"apps/\xff"))
    assert instance_id("file:///srv/d.git", "main", [Path("apps/\u00fc")]) == (
        expected(b"file:///srv/d.git", b"main", "apps/\u00fc".encode()))


def test_order_puts_namespaces_and_crds_first_then_install_order_then_unknown_then_webhooks():
    given = [
        manifest("ValidatingWebhookConfiguration", "hook", api="admissionregistration.k8s.io/v1"),
        manifest("Widget", "w1", "apps", api="example.com/v1"),
        manifest("Deployment", "web", "apps", api="apps/v1"),
        manifest("Service", "web", "apps"),
        manifest("CustomResourceDefinition", "widgets.example.com", api="apiextensions.k8s.io/v1"),
        manifest("ConfigMap", "cfg", "apps"),
        manifest("Namespace", "apps"),
        manifest("ServiceAccount", "runner", "apps"),
        manifest("Alpha", "a", "apps", api="example.com/v1"),
    ]
    kinds = [m.ref.kind for m in order(given)]
    assert kinds == ["Namespace", "CustomResourceDefinition", "ServiceAccount", "ConfigMap", "Service",
                     "Deployment", "Alpha", "Widget", "ValidatingWebhookConfiguration"]


def test_order_is_stable_by_namespace_name_then_file_order():
    given = [manifest("ConfigMap", "b", "x", seq=0), manifest("ConfigMap", "a", "y", seq=1),
             manifest("ConfigMap", "a", "x", seq=2), manifest("ConfigMap", "a", "x", seq=3)]
    got = [(m.ref.namespace, m.ref.name, m.seq) for m in order(given)]
    assert got == [("x", "a", 2), ("x", "a", 3), ("x", "b", 0), ("y", "a", 1)]
    assert order(list(reversed(given))) == order(given)


# --- documents --------------------------------------------------------------------------------------


def test_documents_use_kubectl_yaml_1_1_typing_in_every_document():
    text = "a: 1\n---\nmode: 0755\nflag: yes\nwhen: 2024-01-01\nv: 1.10\nq: '0755'\n"
    docs = load_documents(text, "f.yaml")
    assert docs[1] == {"mode": 493, "flag": True, "when": "2024-01-01", "v": 1.1, "q": "0755"}


def test_invalid_yaml_names_file_and_line():
    with pytest.raises(SyncError, match=r"^deploy/web\.yaml:3: not valid YAML"):
        load_documents("kind: A\nmetadata:\n  name: a: b\n", "deploy/web.yaml")


@pytest.mark.parametrize(("text", "line"), [
    ("%YAML 1.3\n---\nkind: A\n", 1),
    ("%YAML 2.0\n---\nkind: A\n", 1),
    ("kind: A\n...\n%YAML 1.0\n---\nkind: B\n", 3),
])
def test_a_yaml_version_gitops_does_not_read_names_file_and_line(text, line):
    """As for lint and bump: not an internal error (ruamel asserts on versions it does not know)."""
    version = text.split("%YAML ")[1].split()[0]
    with pytest.raises(SyncError, match=rf"^deploy/web\.yaml:{line}: not valid YAML: %YAML {version}: gitops reads"):
        load_documents(text, "deploy/web.yaml")
    docs = load_documents("%YAML 1.2\n%TAG !e! tag:e:\n---\nkind: A\n...\n%YAML 1.1\n---\nkind: B\n", "f.yaml")
    assert docs == [{"kind": "A"}, {"kind": "B"}]


@pytest.mark.parametrize("parser", ["default", "python"])
def test_a_document_nested_too_deeply_names_the_file_and_line(parser, monkeypatch):
    """ruamel's pure-Python loader recurses per nesting level (a RecursionError at about 450 levels), and
    libyaml's composer recurses in C (100 000 levels crashed the process): more than 400 levels is refused,
    whichever parser reads the file, naming where (as the locator says for lint and bump)."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    for depth in (3000, 100_000) if parser == "default" else (3000,):  # the pure scanner is slow on 100 000
        with pytest.raises(SyncError, match=r"^deploy/web\.yaml:2: not valid YAML: nested more than 400 levels deep"):
            load_documents("a: 1\nb: " + "[" * depth + "]" * depth + "\n", "deploy/web.yaml")
    block = "".join("  " * i + f"k{i}:\n" for i in range(450)) + "  " * 450 + "x: 1\n"
    with pytest.raises(SyncError, match=r"^deploy/web\.yaml:401: not valid YAML: nested more than 400 levels deep"):
        load_documents(block, "deploy/web.yaml")
    assert load_documents("a: " + "[" * 300 + "]" * 300 + "\n", "f.yaml")  # deep, but not that deep


# The README's tab cases (`gitops bump`, YAML): read by both parsers, read by libyaml only, refused by both.
TABS_READ = (
    "%YAML\t1.2\n---\t!!map\napiVersion: v1\nkind:\tConfigMap\nmetadata:\n"
    "  name: &n\ttabs\t# a tab before a comment\n  namespace\t: shop\n"
    "data:\n  quoted: \"a\\tb\"\t\n  single: 'c\t# d'\n  block: |\n    e:\tf\n  mode:\t!!str 0755\t\n"
    "  same: *n\n")
TABS_READ_VALUES = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tabs", "namespace": "shop"},
                     "data": {"quoted": "a\tb", "single": "c\t# d", "block": "e:\tf\n", "mode": "0755",
                              "same": "tabs"}}]
# libyaml refuses the `:` in a flow plain scalar; the pure parser it falls back to refused the tab
FLOW_AND_TAB = "kind: Pod\nspec: {containers: [{name: a, image: team/app:v1}]}\nrestartPolicy: Always\t# c\n"
LIBYAML_ONLY = ["kind: A\nname: a\tb\n", "- a\n \t# c\n- b\n", "%YAML 1.2\n\t# c\n---\nkind: A\n"]
LIBYAML_ONLY_VALUES = [[{"kind": "A", "name": "a\tb"}], [["a", "b"]], [{"kind": "A"}]]
REFUSED = ["kind: A\n\tname: x\n", "x: y\n\t# c\n"]


@pytest.mark.parametrize("parser", ["default", "python"])
def test_tabs_are_read_as_bump_and_lint_read_them(parser, monkeypatch):
    """sync read every manifest with the pure-Python parser and without the locator's fallback: a tab
    before a comment, after a `:` or `---`, in a directive (all read by lint and bump) was `not valid YAML`
    (exit 15), and so was a tab libyaml reads inside a plain scalar.  Now sync reads what the locator reads,
    with the same parser and text, so the same files, with the same values, whichever parser is installed."""
    from gitops_cli.yamledit.locate import YamlSyntaxError, parse

    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    assert load_documents(TABS_READ, "tabs.yaml") == TABS_READ_VALUES
    assert load_documents(FLOW_AND_TAB, "pod.yaml") == [
        {"kind": "Pod", "spec": {"containers": [{"name": "a", "image": "team/app:v1"}]}, "restartPolicy": "Always"}]
    for text, values in zip(LIBYAML_ONLY, LIBYAML_ONLY_VALUES, strict=True):  # read by libyaml alone (README)
        if parser == "default":
            assert load_documents(text, "f.yaml") == values
            parse(text)
        else:
            with pytest.raises(SyncError, match=r"^f\.yaml:\d+: not valid YAML: .*found character '\\t'"):
                load_documents(text, "f.yaml")
            with pytest.raises(YamlSyntaxError):
                parse(text)
    for text in REFUSED:
        with pytest.raises(SyncError, match=r"^f\.yaml:2: not valid YAML: .*found character '\\t'"):
            load_documents(text, "f.yaml")


@pytest.mark.parametrize("parser", ["default", "python"])
def test_sync_reads_exactly_the_texts_the_locator_reads(parser, monkeypatch):
    """Every tab case of the locator's tests: sync reads a text exactly when the locator does (but for one
    with a custom tag, `!custom x`, which parses, and which sync refuses as kubectl does: no such type)."""
    from gitops_cli.yamledit.locate import YamlSyntaxError, parse
    from tests.yamledit.test_locate import DOCUMENT_TABS, TABS

    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    plain = [text for text in DOCUMENT_TABS if "!custom" not in text and "!e!" not in text]
    assert len(plain) == len(DOCUMENT_TABS) - 2
    for text in [TABS, *plain, TABS_READ, FLOW_AND_TAB, *LIBYAML_ONLY, *REFUSED, "a: |+\n  a\n\t\ny: 1\n"]:
        try:
            parse(text)
            located = True
        except YamlSyntaxError:
            located = False
        try:
            load_documents(text, "f.yaml")
            loaded = True
        except SyncError:
            loaded = False
        assert loaded == located, text


def test_a_pass_makes_one_yaml_loader_per_parser_not_one_per_file(tmp_path: Path, monkeypatch):
    """Making a loader costs more than reading a small manifest: discover reuses one for every file."""
    from gitops_cli import sync

    made: list[bool] = []
    real = sync._yaml

    def counted(pure: bool):
        made.append(pure)
        return real(pure)

    monkeypatch.setattr(sync, "_yaml", counted)
    for i in range(30):
        write(tmp_path, f"apps/a{i}/cm.yaml", obj("ConfigMap", f"c{i}", "ns"))
    write(tmp_path, "apps/tabbed.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\t\n  name: t\n")
    found = discover(tmp_path, select(tmp_path, []), KUBECTL)
    assert sorted(m.ref.name for m in found.manifests) == sorted([f"c{i}" for i in range(30)] + ["t"])
    assert len(made) == len(set(made)) <= 2


@pytest.mark.parametrize("parser", ["default", "python"])
def test_the_reading_before_the_loader_makes_no_nodes_and_keeps_no_events(parser, monkeypatch):
    """The locator's reading of a file (which parser, which text, its errors) made every node and kept
    every event, then the loader made its own: twice the work.  It now composes no document that has no
    alias, merge key or deep nesting, and keeps no events; what is loaded is the same."""
    import importlib

    locate = importlib.import_module("gitops_cli.yamledit.locate")  # the module (the package exports a function)
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    composed: list[int] = []
    real = locate._Composer.__init__

    def counted(self, *args):  # type: ignore[no-untyped-def]
        composed.append(1)
        real(self, *args)

    monkeypatch.setattr(locate._Composer, "__init__", counted)
    text = "".join(obj("ConfigMap", f"c{i}", "ns") + "---\n" for i in range(20))
    docs = load_documents(text, "many.yaml", {})
    assert [d["metadata"]["name"] for d in docs if d] == [f"c{i}" for i in range(20)]
    assert composed == []
    assert load_documents("a: &x 1\nb: *x\n", "alias.yaml", {}) == [{"a": 1, "b": 1}]
    assert composed == [1]  # a document with an alias is composed (see locate._Parsed)


@pytest.mark.parametrize("parser", ["default", "python"])
def test_a_loader_that_failed_is_not_used_again(parser, monkeypatch):
    """The loaders a pass shares read each file as new ones do, after a file that does not parse too
    (its anchors never reach the next file; a loader that failed half-way is not used again)."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    loaders: dict = {}
    assert load_documents("a: &x 1\nb: *x\n", "one.yaml", loaders) == [{"a": 1, "b": 1}]
    with pytest.raises(SyncError, match=r"^two\.yaml"):
        load_documents("a: &y {k: 1}\nb: [\n", "two.yaml", loaders)
    with pytest.raises(SyncError, match=r"^three\.yaml.*alias"):
        load_documents("c: *y\n", "three.yaml", loaders)
    assert load_documents("d: 0755\n", "four.yaml", loaders) == [{"d": 493}]


def test_objects_in_ignores_non_objects_and_expands_lists():
    docs = load_documents(textwrap.dedent("""
        image: {repository: app, tag: "1"}
        ---
        ---
        apiVersion: v1
        kind: List
        items:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: one}}
          - {apiVersion: v1, kind: Secret, metadata: {name: two, namespace: s}}
        ---
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [a.yaml]
        """), "mixed.yaml")
    notes: list[str] = []
    found = objects_in(docs, "mixed.yaml", notes)
    assert [ref for ref, _ in found] == [ObjectRef("v1", "ConfigMap", "", "one"),
                                         ObjectRef("v1", "Secret", "s", "two")]
    assert notes == ["mixed.yaml (document 1): not a Kubernetes object (no apiVersion/kind), ignored",
                     "mixed.yaml (document 4): a kustomize Kustomization outside a kustomization directory, "
                     "ignored"]


def test_object_without_name_stops_the_pass():
    with pytest.raises(SyncError, match=r"a\.yaml: Deployment has no metadata.name"):
        objects_in([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generateName": "x-"}}],
                   "a.yaml", [])


def test_render_stream_adds_labels_as_json_documents_without_touching_the_input():
    m = manifest("ConfigMap", "cfg", "ns")
    m.body["metadata"]["labels"] = {"app": "web"}
    stream = render_stream([m, manifest("Namespace", "ns")], {"gitops-cli.dev/instance": "abc"})
    chunks = [c for c in stream.split("---\n") if c]
    assert len(chunks) == 2 and stream.startswith("---\n")
    first = json.loads(chunks[0])
    assert first["metadata"]["labels"] == {"app": "web", "gitops-cli.dev/instance": "abc"}
    assert m.body["metadata"]["labels"] == {"app": "web"}


# --- discovery (real files, real `kubectl kustomize`) ----------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root, "namespaces.yaml", obj("Namespace", "shop"))
    write(root, "apps/web/deployment.yaml", obj("Deployment", "web", "shop", api="apps/v1"))
    write(root, "apps/web/service.yaml", obj("Service", "web", "shop"))
    write(root, "apps/web/kustomization.yaml", """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: shop
        commonLabels: {team: web}
        resources: [deployment.yaml, service.yaml]
        """)
    write(root, "apps/web/extra/ignored-by-kustomize.yaml", obj("ConfigMap", "not-applied", "shop"))
    write(root, "crds/widgets.yml", obj("CustomResourceDefinition", "widgets.example.com",
                                        api="apiextensions.k8s.io/v1"))
    write(root, ".gitlab-ci.yml", "stages: [build]\nbuild:\n  script: [make]\n")
    write(root, "charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\n")
    write(root, "charts/web/templates/dep.yaml", "kind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n")
    write(root, "values.yaml", "image:\n  repository: web\n  tag: abc\n")
    write(root, "README.md", "not yaml\n")
    outside = write(tmp_path, "outside/secret.yaml", obj("Secret", "stolen", "shop"))
    (root / "linked.yaml").symlink_to(outside)
    (root / "linked-dir").symlink_to(outside.parent)
    return root


def test_discover_renders_kustomizations_ignores_the_rest_and_never_follows_symlinks(repo: Path):
    found = discover(repo, select(repo, []), KUBECTL)
    got = {(m.ref.kind, m.ref.namespace, m.ref.name, m.source) for m in found.manifests}
    assert got == {
        ("Namespace", "", "shop", "namespaces.yaml"),
        ("CustomResourceDefinition", "", "widgets.example.com", "crds/widgets.yml"),
        ("Deployment", "shop", "web", "apps/web/ (kustomize)"),
        ("Service", "shop", "web", "apps/web/ (kustomize)"),
    }
    dep = next(m for m in found.manifests if m.ref.kind == "Deployment")
    assert dep.body["metadata"]["labels"] == {"team": "web"}  # rendered by kustomize, not read raw
    assert found.kustomized == ["apps/web"]
    assert "charts/web/: a Helm chart, not rendered by sync, ignored" in found.notes
    assert ".gitlab-ci.yml: not a Kubernetes object (no apiVersion/kind), ignored" in found.notes
    assert "values.yaml: not a Kubernetes object (no apiVersion/kind), ignored" in found.notes
    assert [m.ref.kind for m in order(found.manifests)][:2] == ["Namespace", "CustomResourceDefinition"]


def test_discover_stays_inside_the_given_paths(repo: Path):
    found = discover(repo, select(repo, ["crds", "apps/web/extra"]), KUBECTL)
    assert sorted(m.ref.name for m in found.manifests) == ["not-applied", "widgets.example.com"]


def test_kustomization_named_Kustomization_and_components(tmp_path: Path):
    write(tmp_path, "app/cm.yaml", obj("ConfigMap", "cm"))
    write(tmp_path, "app/Kustomization", "resources: [cm.yaml]\nnamePrefix: p-\n")
    write(tmp_path, "comp/kustomization.yaml",
          "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n")
    write(tmp_path, "comp/patch.yaml", obj("ConfigMap", "patch-only"))
    found = discover(tmp_path, select(tmp_path, []), KUBECTL)
    assert [(m.ref.name, m.source) for m in found.manifests] == [("p-cm", "app/ (kustomize)")]
    assert any(n.startswith("comp/: a kustomize Component") for n in found.notes)


def test_kustomize_bases_are_rendered_only_through_the_overlays_using_them(tmp_path: Path):
    write(tmp_path, "common/kustomization.yaml", "resources: [sa.yaml]\n")
    write(tmp_path, "common/sa.yaml", obj("ServiceAccount", "web"))
    write(tmp_path, "base/kustomization.yaml", "resources: [cm.yaml, ../common]\n")
    write(tmp_path, "base/cm.yaml", obj("ConfigMap", "settings"))
    write(tmp_path, "overlays/prod/kustomization.yaml", "namespace: prod\nresources: [../../base]\n")
    write(tmp_path, "overlays/dev/kustomization.yaml", "namespace: dev\nbases: [../../base]\n")
    found = discover(tmp_path, select(tmp_path, []), KUBECTL)
    assert sorted((m.ref.kind, m.ref.namespace, m.ref.name) for m in found.manifests) == [
        ("ConfigMap", "dev", "settings"), ("ConfigMap", "prod", "settings"),
        ("ServiceAccount", "dev", "web"), ("ServiceAccount", "prod", "web")]
    assert found.kustomized == ["overlays/dev", "overlays/prod"]
    assert "base/: a kustomize base of overlays/dev/, rendered only through it (name it with --path to apply " \
        "it on its own too)" in found.notes
    assert any(n.startswith("common/: a kustomize base of overlays/") for n in found.notes)
    # named with --path, a base is applied on its own as well; an overlay outside the paths does not count
    both = discover(tmp_path, select(tmp_path, ["base", "overlays/prod"]), KUBECTL)
    assert sorted(both.kustomized) == ["base", "overlays/prod"]
    alone = discover(tmp_path, select(tmp_path, ["base"]), KUBECTL)
    assert alone.kustomized == ["base"]


def _stack_used_by_a_component(tmp_path: Path) -> None:
    """stack/ (a kustomization with a ConfigMap) and components/mon/, a Component using it."""
    write(tmp_path, "stack/kustomization.yaml", "resources: [cm.yaml]\n")
    write(tmp_path, "stack/cm.yaml", obj("ConfigMap", "stack"))
    write(tmp_path, "components/mon/kustomization.yaml",
          "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [../../stack]\n")


def test_a_base_used_only_by_a_component_nothing_renders_is_applied(tmp_path: Path):
    _stack_used_by_a_component(tmp_path)
    write(tmp_path, "overlays/prod/kustomization.yaml", "namespace: prod\nresources: [cm.yaml]\n")
    write(tmp_path, "overlays/prod/cm.yaml", obj("ConfigMap", "prod"))
    found = discover(tmp_path, select(tmp_path, []), KUBECTL)
    assert found.kustomized == ["overlays/prod", "stack"]
    assert sorted(m.ref.name for m in found.manifests) == ["prod", "stack"]
    assert not any(n.startswith("stack/: a kustomize base") for n in found.notes)
    assert any(n.startswith("components/mon/: a kustomize Component") for n in found.notes)


def test_a_component_included_by_an_overlay_makes_its_resources_bases_of_that_overlay(tmp_path: Path):
    _stack_used_by_a_component(tmp_path)
    write(tmp_path, "overlays/prod/kustomization.yaml", "namespace: prod\ncomponents: [../../components/mon]\n")
    found = discover(tmp_path, select(tmp_path, []), KUBECTL)
    assert found.kustomized == ["overlays/prod"]
    assert [(m.ref.namespace, m.ref.name) for m in found.manifests] == [("prod", "stack")]
    assert "stack/: a kustomize base of overlays/prod/, rendered only through it (name it with --path to " \
        "apply it on its own too)" in found.notes


def test_kustomize_references_follow_only_local_directories_inside_the_repo(tmp_path: Path):
    root = tmp_path / "repo"
    write(root, "base/kustomization.yaml", "resources: [cm.yaml]\n")
    write(root, "comp/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n")
    write(root, "real/kustomization.yaml", "resources: []\n")
    write(tmp_path, "outside/kustomization.yaml", "resources: []\n")
    (root / "linked").symlink_to(root / "real")
    write(root, "app/kustomization.yaml", """
        resources:
          - ../base
          - https://github.com/acme/deploy//base?ref=v1
          - github.com/acme/deploy/base
          - ../linked
          - ../../outside
          - cm.yaml
          - 42
          - ""
        components: [../comp]
        """)
    refs = _kustomize_references(root, [Path("app")])
    assert refs == {Path("base"): [Path("app")], Path("comp"): [Path("app")]}


def test_a_bad_resources_entry_is_left_to_kubectl_kustomize(tmp_path: Path):
    # a name too long, a NUL byte, a path too long: OSError/ValueError from the file system calls
    write(tmp_path, "app/kustomization.yaml", f'resources: [{"a" * 300}, "x\\0y", "{"b/" * 3000}"]\n')
    assert _kustomize_references(tmp_path, [Path("app")]) == {}
    with pytest.raises(SyncError, match=r"^app: kubectl kustomize failed"):
        discover(tmp_path, select(tmp_path, []), KUBECTL)


def test_a_kustomization_that_does_not_parse_is_named_as_in_the_repo(tmp_path: Path):
    write(tmp_path, "overlays/prod/kustomization.yaml", "resources: [a\n  b: c\n")
    with pytest.raises(SyncError) as err:
        discover(tmp_path, select(tmp_path, []), KUBECTL)
    assert err.value.message.startswith("overlays/prod/kustomization.yaml:")
    assert str(tmp_path) not in err.value.message


def test_one_object_written_two_ways_is_defined_twice(tmp_path: Path):
    write(tmp_path, "a.yaml", obj("ConfigMap", "cm"))
    write(tmp_path, "b.yaml", obj("ConfigMap", "cm", "default"))
    write(tmp_path, "c.yaml", obj("Ingress", "web", "shop", api="extensions/v1beta1"))
    write(tmp_path, "d.yaml", obj("Ingress", "web", "shop", api="networking.k8s.io/v1"))
    with pytest.raises(SyncError, match=r"ConfigMap default/cm is defined twice: in a\.yaml and in b\.yaml"):
        discover(tmp_path, select(tmp_path, []), KUBECTL)
    (tmp_path / "b.yaml").unlink()
    with pytest.raises(SyncError, match=r"Ingress shop/web is defined twice: in c\.yaml and in d\.yaml"):
        discover(tmp_path, select(tmp_path, []), KUBECTL)
    (tmp_path / "d.yaml").unlink()
    write(tmp_path, "e.yaml", obj("Gateway", "public", "edge", api="networking.istio.io/v1"))
    write(tmp_path, "f.yaml", obj("Gateway", "public", "edge", api="gateway.networking.k8s.io/v1"))
    assert len(discover(tmp_path, select(tmp_path, []), KUBECTL).manifests) == 4


def test_broken_kustomization_names_the_directory(tmp_path: Path):
    write(tmp_path, "app/kustomization.yaml", "resources: [missing.yaml]\n")
    with pytest.raises(SyncError, match=r"^app: kubectl kustomize failed"):
        discover(tmp_path, select(tmp_path, []), KUBECTL)


def test_same_object_twice_stops_the_pass(tmp_path: Path):
    write(tmp_path, "a.yaml", obj("ConfigMap", "cm", "x"))
    write(tmp_path, "b/c.yaml", obj("ConfigMap", "cm", "x"))
    with pytest.raises(SyncError, match=r"ConfigMap x/cm is defined twice: in a\.yaml and in b/c\.yaml"):
        discover(tmp_path, select(tmp_path, []), KUBECTL)


@pytest.mark.parametrize("bad", ["../x", "/etc", "a/../../x", "missing", "link"])
def test_paths_must_be_real_directories_inside_the_repo(tmp_path: Path, bad: str):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UsageError, match=rf"^--path '{bad}': "):
        select(tmp_path, [bad])


def test_paths_are_normalised_and_deduplicated(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.yaml").write_text("k: v\n")
    expected = Selection([Path("a/b"), Path("a")], [Path("a/b/x.yaml")])
    assert select(tmp_path, ["a/b/", "./a/b", "a"]) == expected
    assert select(tmp_path, []).starts == [Path(".")]


# --- lock (real flock) ---------------------------------------------------------------------------------


def test_lock_refuses_a_second_holder_and_is_released(tmp_path: Path):
    lock = tmp_path / "cache" / "lock"
    with pass_lock(lock):
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(SyncLockedError, match=rf"held by pid {os.getpid()}"):
            with pass_lock(lock):
                pass
    with pass_lock(lock):  # released
        pass


def test_lock_held_by_another_process(tmp_path: Path):
    lock = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR|os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'4242'); print('held', flush=True); time.sleep(60)",
         str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SyncLockedError, match="held by pid 4242"):
            with pass_lock(lock):
                pass
    finally:
        holder.kill()
        holder.wait()
    with pass_lock(lock):
        pass


def test_lock_holder_is_the_first_line_only():
    # a pid written over a longer one without truncating leaves the old tail behind (seen in CI: "365\n7\n")
    assert holder(b"365\n7\n") == "365"
    assert holder(b"4242") == "4242"
    assert holder(b"") == "unknown"
    assert holder(b"\x00garbage\n") == "unknown"


# --- kubectl output and arguments ----------------------------------------------------------------------


def test_parse_apply_output_and_match_names_the_failed_objects():
    out = ("namespace/shop serverside-applied\ndeployment.apps/web configured (server dry run)\n"
           "Warning: something\nservice/web unchanged\n")
    reported = kube.parse_apply_output(out)
    assert reported == [("namespace/shop", "serverside-applied"),
                        ("deployment.apps/web", "configured (server dry run)"), ("service/web", "unchanged")]
    sent = [manifest("Namespace", "shop"), manifest("Deployment", "web", "a", api="apps/v1"),
            manifest("Deployment", "web", "b", api="apps/v1"), manifest("Service", "web", "a")]
    applied, failed = match_applied(sent, reported)
    assert [str(r) for r, _ in applied] == ["Namespace shop", "Deployment a/web", "Service a/web"]
    assert [str(m.ref) for m in failed] == ["Deployment b/web"]


def test_kubectl_arguments():
    assert kube.apply_args(server_side=True, dry_run=False) == [
        "apply", "-f", "-", "--server-side", "--field-manager=gitops", "--force-conflicts"]
    assert kube.apply_args(server_side=False, dry_run=True) == ["apply", "-f", "-", "--dry-run=server"]
    assert kube.Kubectl("/bin/k", "prod").argv("apply") == ["/bin/k", "--context", "prod", "apply"]
    assert kube.delete_args("deployment.v1.apps", "shop", "web", "a=b,c=d", False) == [
        "delete", "deployment.v1.apps", "--field-selector", "metadata.name=web", "-l", "a=b,c=d",
        "--ignore-not-found", "--wait=false", "-n", "shop"]
    assert ObjectRef("apps/v1", "Deployment", "", "web").resource == "deployment.v1.apps"
    assert ObjectRef("v1", "ConfigMap", "", "c").resource == "configmap"
    assert ObjectRef("rbac.authorization.k8s.io/v1", "Role", "", "r").kubectl_name == \
        "role.rbac.authorization.k8s.io/r"


# --- where objects live (prune identities), against the fake kubectl ----------------------------------


@pytest.fixture
def fake_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "kubectl.log"
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(log))
    for var in ("FAKE_KUBECTL_NAMESPACE", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    return log


def test_default_namespace_follows_client_go(fake_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "namespace").write_text("sample-app\n")
    assert kube.default_namespace(FAKE, sa) == "default"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert kube.default_namespace(FAKE, sa) == "default"  # no token: not in a pod
    (sa / "token").write_text("t")
    assert kube.default_namespace(FAKE, sa) == "sample-app"
    monkeypatch.setenv("POD_NAMESPACE", "from-env")
    assert kube.default_namespace(FAKE, sa) == "from-env"
    monkeypatch.setenv("FAKE_KUBECTL_NAMESPACE", "ctx")  # set on the kubeconfig context: it wins
    assert kube.default_namespace(FAKE, sa) == "ctx"


def test_default_namespace_without_a_current_context_or_with_another_one(fake_env: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "namespace").write_text("sample-app\n")
    (sa / "token").write_text("t")
    monkeypatch.setenv("FAKE_KUBECTL_CONTEXTS", "")  # no kubeconfig: `config view --minify` exits 1
    assert kube.run(FAKE, ["config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}"]) \
        == kube.KubectlResult(1, "", "error: current-context must exist in order to minify\n")
    assert kube.default_namespace(FAKE, sa) == "default"  # not in a pod
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert kube.default_namespace(FAKE, sa) == "sample-app"  # in a pod: the ServiceAccount's
    monkeypatch.setenv("FAKE_KUBECTL_CONTEXTS", "*dev=team-dev,prod=team-prod,bare")
    assert kube.default_namespace(FAKE, sa) == "team-dev"
    assert kube.default_namespace(kube.Kubectl(FAKE.path, "prod"), sa) == "team-prod"  # --context honoured
    assert kube.default_namespace(kube.Kubectl(FAKE.path, "bare"), sa) == "sample-app"  # none set on it
    assert kube.default_namespace(kube.Kubectl(FAKE.path, "missing"), sa) == "sample-app"  # exit 1


def test_a_kubectl_past_its_timeout_is_stopped_with_what_it_started(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    """Without a controlling terminal (a CI job), kubectl has a process group of its own, stopped whole at
    the timeout: an exec credential plugin it started (here a `sleep`) does not outlive it."""
    from gitops_cli import interrupts

    monkeypatch.setattr(interrupts, "has_controlling_terminal", lambda: False)  # a CI job's, wherever pytest runs
    pidfile = tmp_path / "plugin.pid"
    script = write(tmp_path, "kubectl", f"#!/bin/sh\nsleep 600 & echo $! > {pidfile}\nwait\n")
    script.chmod(0o755)
    with pytest.raises(SyncError, match=r"^`kubectl apply` did not finish within 1s$"):
        kube.run(kube.Kubectl(str(script)), ["apply", "-f", "-"], stdin="kind: ConfigMap\n", timeout=1)
    plugin = int(pidfile.read_text())
    for _ in range(200):  # the SIGTERM sent to its group lands
        try:
            if Path(f"/proc/{plugin}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        os.kill(plugin, 9)  # leave nothing running, then fail
        pytest.fail(f"kubectl's plugin {plugin} outlived it")


def test_api_scopes_uses_a_partial_answer(fake_env: Path, monkeypatch: pytest.MonkeyPatch):
    store = fake_env.parent / "store"
    monkeypatch.setenv("FAKE_KUBECTL_STORE", str(store))
    write(fake_env.parent, "store.crds", json.dumps({  # two CRDs on the fake cluster
        "gadgets.example.com": {"group": "example.com", "kind": "Gadget", "plural": "gadgets",
                                "versions": ["v1"], "namespaced": False},
        "things.metrics.example": {"group": "metrics.example", "kind": "Thing", "plural": "things",
                                   "versions": ["v1"], "namespaced": True}}))
    monkeypatch.setenv("FAKE_KUBECTL_PARTIAL_DISCOVERY", "metrics.example")
    res = kube.run(FAKE, ["api-resources", "--no-headers"])
    assert res.status == 1 and "unable to retrieve the complete list of server APIs" in res.stderr
    scopes = kube.api_scopes(FAKE)
    assert scopes is not None
    assert scopes[("example.com", "Gadget")] is False and scopes[("", "ConfigMap")] is True
    assert ("metrics.example", "Thing") not in scopes
    monkeypatch.setenv("FAKE_KUBECTL_DOWN", "1")
    assert kube.api_scopes(FAKE) is None


def test_parse_api_resources_reads_columns_from_the_right():
    out = ("bindings                                       v1                   true         Binding\n"
           "configmaps                        cm           v1                   true         ConfigMap\n"
           "clusterroles                                   rbac.authorization.k8s.io/v1  false  ClusterRole\n"
           "error: unable to retrieve the complete list of server APIs\n")
    assert kube.parse_api_resources(out) == {("", "Binding"): True, ("", "ConfigMap"): True,
                                             ("rbac.authorization.k8s.io", "ClusterRole"): False}


def test_placement_uses_the_default_namespace_and_drops_it_for_cluster_scoped_kinds(fake_env, monkeypatch):
    monkeypatch.setenv("FAKE_KUBECTL_NAMESPACE", "team")
    crd = Manifest(ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gadgets.example.com"),
                   {"spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Gadget"}}}, "x")
    place = Placement(FAKE, [crd]).place
    assert place(ObjectRef("v1", "ConfigMap", "", "c")).ident == ("", "ConfigMap", "team", "c")
    assert place(ObjectRef("v1", "ConfigMap", "x", "c")).ident == ("", "ConfigMap", "x", "c")
    assert place(ObjectRef("rbac.authorization.k8s.io/v1", "ClusterRole", "x", "r")).ident == \
        ("rbac.authorization.k8s.io", "ClusterRole", "", "r")
    assert place(ObjectRef("example.com/v1", "Gadget", "x", "g")).ident == ("example.com", "Gadget", "", "g")
    assert place(ObjectRef("extensions/v1beta1", "Ingress", "", "i")).ident == \
        place(ObjectRef("networking.k8s.io/v1", "Ingress", "team", "i")).ident


def test_delete_resource_goes_through_the_new_group_only_when_the_server_dropped_the_recorded_one(
        fake_env: Path, monkeypatch: pytest.MonkeyPatch):
    ingress = ObjectRef("extensions/v1beta1", "Ingress", "shop", "web")
    deployment = ObjectRef("extensions/v1beta1", "Deployment", "shop", "web")
    event = ObjectRef("events.k8s.io/v1", "Event", "shop", "e")

    def asked() -> int:
        return fake_env.read_text().count('"api-resources"') if fake_env.exists() else 0

    placement = Placement(FAKE, [])  # a current server: no `extensions` group
    assert placement.delete_resource(ObjectRef("apps/v1", "Deployment", "shop", "web")) == "deployment.v1.apps"
    assert placement.delete_resource(ObjectRef("example.com/v1", "Ingress", "shop", "web")) == \
        "ingress.v1.example.com"
    assert asked() == 0  # not a moved kind: the server is not asked
    assert placement.delete_resource(ingress) == "ingress.networking.k8s.io"
    assert placement.delete_resource(deployment) == "deployment.apps"
    assert placement.delete_resource(event) == "event.v1.events.k8s.io"  # the fake does not serve Events
    assert asked() == 1  # once a pass
    monkeypatch.setenv("FAKE_KUBECTL_LEGACY", "1")  # still served: deleted as recorded
    assert Placement(FAKE, []).delete_resource(ingress) == "ingress.v1beta1.extensions"
    monkeypatch.setenv("FAKE_KUBECTL_DOWN", "1")  # not known: as recorded (fails, retried next pass)
    assert Placement(FAKE, []).delete_resource(ingress) == "ingress.v1beta1.extensions"


@pytest.mark.parametrize(("old", "new", "same"), [
    ("extensions/v1beta1", "networking.k8s.io/v1", "Ingress"),
    ("extensions/v1beta1", "networking.k8s.io/v1", "NetworkPolicy"),
    ("extensions/v1beta1", "apps/v1", "Deployment"),
    ("extensions/v1beta1", "apps/v1", "DaemonSet"),
    ("extensions/v1beta1", "apps/v1", "ReplicaSet"),
    ("apps/v1beta2", "apps/v1", "StatefulSet"),
    ("extensions/v1beta1", "policy/v1beta1", "PodSecurityPolicy"),
    ("events.k8s.io/v1", "v1", "Event"),
])
def test_only_the_kinds_that_moved_group_are_one_object_across_groups(old: str, new: str, same: str):
    assert ObjectRef(old, same, "a", "x").ident == ObjectRef(new, same, "a", "x").ident


@pytest.mark.parametrize(("a", "b", "kind"), [
    ("networking.istio.io/v1", "gateway.networking.k8s.io/v1", "Gateway"),
    ("cert-manager.io/v1", "example.com/v1", "Certificate"),
    ("extensions/v1beta1", "example.com/v1", "Ingress"),  # a custom Ingress is not the built-in one
])
def test_a_kind_of_the_same_name_in_another_group_is_another_object(a: str, b: str, kind: str):
    assert ObjectRef(a, kind, "edge", "public").ident != ObjectRef(b, kind, "edge", "public").ident


def test_prune_never_deletes_what_may_be_an_object_of_this_pass(fake_env: Path, monkeypatch):
    monkeypatch.setenv("FAKE_KUBECTL_DOWN", "1")  # `kubectl api-resources` fails: the scope stays unknown
    previous = [ObjectRef("example.com/v1", "Gadget", "a", "one")]
    current = [ObjectRef("example.com/v1", "Gadget", "b", "one")]
    # not deleted, and kept: it stays in the inventory for a later pass that can tell
    assert prune(FAKE, Placement(FAKE, []), previous, current, {"k": "v"}, False) == ([], [], previous)
    argvs = [json.loads(line)["argv"] for line in fake_env.read_text().splitlines()]
    assert argvs == [["api-resources", "--no-headers"]]  # asked once, then nothing deleted


def _counting_may_be_same(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count Placement.may_be_same calls (the real method still answers)."""
    calls = [0]
    real = Placement.may_be_same

    def counted(self: Placement, a: ObjectRef, b: ObjectRef) -> bool:
        calls[0] += 1
        return real(self, a, b)

    monkeypatch.setattr(Placement, "may_be_same", counted)
    return calls


def test_finder_answers_as_a_scan_of_every_applied_object(fake_env: Path):
    """The index finds what comparing with each applied object in order finds: aliased groups, a kind of
    another group, cluster-scoped and unknown-scope kinds, the same name in several namespaces."""
    crd = Manifest(ObjectRef("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gadgets.example.com"),
                   {"spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Gadget"}}}, "x")
    placement = Placement(FAKE, [crd])
    kinds = [("v1", "ConfigMap"), ("extensions/v1beta1", "Ingress"), ("networking.k8s.io/v1", "Ingress"),
             ("example.com/v1", "Ingress"), ("example.com/v1", "Gadget"), ("other.io/v1", "Widget"),
             ("rbac.authorization.k8s.io/v1", "ClusterRole")]
    refs = [placement.place(ObjectRef(api, kind, ns, name))
            for api, kind in kinds for ns in ("a", "b", "c") for name in ("x", "y")]
    applied = refs[::3] + refs[1::5]  # some of each, in an order that is not the refs' order
    find = placement.finder(applied)
    for ref in refs:
        assert find(ref) == next((a for a in applied if placement.may_be_same(ref, a)), None), ref
    assert fake_env.exists() is False  # no kubectl asked: the refs are placed already


def test_finder_compares_a_removed_object_only_with_its_candidates(fake_env: Path, monkeypatch):
    """3,000 removed and 3,000 kept objects of one name in other namespaces: not 9 million comparisons."""
    placement = Placement(FAKE, [])
    kept = [ObjectRef("v1", "ConfigMap", f"kept-{i}", "settings") for i in range(3000)]
    removed = [ObjectRef("v1", "ConfigMap", f"gone-{i}", "settings") for i in range(3000)]
    calls = _counting_may_be_same(monkeypatch)
    find = placement.finder(kept)
    assert [find(r) for r in removed] == [None] * 3000
    assert find(ObjectRef("v1", "ConfigMap", "kept-7", "settings")) == kept[7]
    assert calls[0] <= 1  # only the one of the same namespace


def test_a_large_prune_makes_a_bounded_number_of_comparisons(fake_env: Path, monkeypatch):
    """prune compares each removed object with the kept ones it may be, not with all of them: 2,000
    removed custom resources of unknown scope (the server cannot be asked) each named as one applied in
    another namespace are each compared once (a scan in order: 2 million comparisons), and kept."""
    monkeypatch.setenv("FAKE_KUBECTL_DOWN", "1")
    previous = [ObjectRef("example.com/v1", "Gadget", f"a-{i}", f"g-{i}") for i in range(2000)]
    current = [ObjectRef("example.com/v1", "Gadget", f"b-{i}", f"g-{i}") for i in range(2000)]
    calls = _counting_may_be_same(monkeypatch)
    deleted, failed, kept = prune(FAKE, Placement(FAKE, []), previous, current, {"k": "v"}, False)
    assert (deleted, failed, set(kept), len(kept)) == ([], [], set(previous), len(previous))
    assert calls[0] == len(previous)
    argvs = [json.loads(line)["argv"] for line in fake_env.read_text().splitlines()]
    assert argvs == [["api-resources", "--no-headers"]]


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("30s", 30), ("1h", 3600), ("1h30m", 5400),
                                               ("90", 90), ("2m10s", 130)])
def test_parse_interval(text: str, seconds: int):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "5 minutes", "m", "-1m", "1d", "1000000000000s", "99999999999h",
                                  "169h"])  # over a week: the sleep overflowed, after a first pass
def test_parse_interval_rejects(text: str):
    with pytest.raises(UsageError, match="--interval"):
        parse_interval(text)


# --- examples/operator (rendered by the real kubectl kustomize, read by sync's own discovery) -----------


def test_operator_example_cronjob_and_least_privilege_rbac():
    example = Path(__file__).resolve().parents[1] / "examples" / "operator"
    found = discover(example.parent, select(example.parent, ["operator"]), KUBECTL)
    objects = {(m.ref.kind, m.ref.name): m.body for m in found.manifests}
    assert found.kustomized == ["operator"]
    cron = objects[("CronJob", "gitops-sync")]
    assert cron["metadata"]["namespace"] == "sample-app"
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == "gitops-sync" and pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["args"][0] == "sync" and "--prune" in container["args"]
    assert not any(a.startswith("--kubeconfig") for a in container["args"])  # in-cluster config
    assert any(v["name"] == "cache" and "persistentVolumeClaim" in v for v in pod["volumes"])
    assert ("ServiceAccount", "gitops-sync") in objects
    assert not {k for k in objects if k[0].startswith("Cluster")}  # namespace-scoped rights only
    role = objects[("Role", "gitops-sync")]
    for rule in role["rules"]:
        assert "*" not in rule["resources"] + rule["verbs"] + rule["apiGroups"]
        assert set(rule["verbs"]) == {"get", "list", "create", "patch", "delete"}
    assert {r for rule in role["rules"] for r in rule["resources"]} == {"deployments", "services"}
    binding = objects[("RoleBinding", "gitops-sync")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gitops-sync", "namespace": "sample-app"}]
    dockerfile = (example / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["gitops"]' in dockerfile and "sha256sum --check" in dockerfile
    # the image's user is the pod's, and has a passwd entry: ssh refuses to run for a uid without one
    uid = pod["securityContext"]["runAsUser"] if "securityContext" in pod else container["securityContext"]["runAsUser"]
    assert f"USER {uid}:{uid}" in dockerfile and f"useradd --uid {uid} " in dockerfile


def test_a_cache_directory_that_is_a_file_is_exit_2_naming_it(tmp_path: Path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache goes")
    with pytest.raises(UsageError, match="sync cache .*cache/x: Not a directory") as err:
        with pass_lock(blocker / "x" / "lock"):
            pass
    assert "--cache-dir" in (err.value.hint or "")


def test_kubectl_gets_none_of_the_secret_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """kubectl (and its exec credential plugins) got gitops' whole environment: GITOPS_GIT_TOKEN,
    GITOPS_REGISTRY_PASSWORD, GITHUB_TOKEN, CI_JOB_TOKEN.  None of them is kubectl's: left out now."""
    secrets = {"GITOPS_GIT_TOKEN": "GitTokenForKubectl1", "GITOPS_REGISTRY_PASSWORD": "RegistryPwForKubectl1",
               "GITHUB_TOKEN": "ghs_GithubTokenForKubectl", "CI_JOB_TOKEN": "glcbt-CiJobTokenForKubectl"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUBECONFIG", "/somewhere/kubeconfig")
    seen = tmp_path / "kubectl.env"
    script = tmp_path / "kubectl"
    script.write_text(f"#!/bin/sh\nenv > {seen}\n")
    script.chmod(0o755)
    assert kube.run(kube.Kubectl(str(script)), ["version"]).status == 0
    env = seen.read_text()
    assert "KUBECONFIG=/somewhere/kubeconfig" in env
    for name, value in secrets.items():
        assert value not in env and f"{name}=" not in env, name
