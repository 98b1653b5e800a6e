"""yamledit.locate: where image references are, with exact spans, and where they are not."""

from __future__ import annotations

import pytest

from gitops_cli.yamledit import YamlSyntaxError, locate
from gitops_cli.yamledit.locate import parse


def refs(text: str, **kw):
    result = locate(text, **kw)
    assert result.error is None, result.error
    return result.references


def span(text: str, scalar) -> str:
    return text[scalar.start:scalar.end]


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    image: team/app:0.9            # an annotation, not an image
spec:
  template:
    spec:
      containers:
      - name: app   # main
        image: "team/app:1.0"   # same-line comment
        args: ["--image", "image: team/app:1.0"]
        env:
        - {name: IMAGE, value: 'team/app:1.0'}   # libyaml: no ':' in a flow plain scalar
      - {name: side, image: 'nginx'}
      initContainers: [{name: init, image: "busybox@sha256:%s"}]
      ephemeralContainers:
      - name: debug
        image: >-
          team/app:folded
""" % ("a" * 64)


def test_containers_in_every_style_and_nothing_else():
    found = refs(DEPLOYMENT)
    assert [(r.kind, r.value, r.container, r.scalar.style) for r in found] == [
        ("container", "team/app:1.0", "app", "double"),
        ("container", "nginx", "side", "single"),
        ("container", "busybox@sha256:" + "a" * 64, "init", "double"),
    ]
    first = found[0]
    assert span(DEPLOYMENT, first.scalar) == '"team/app:1.0"'
    assert (first.line, first.column) == (11, 16)
    assert first.path == ("spec", "template", "spec", "containers", 0, "image")
    assert span(DEPLOYMENT, found[1].scalar) == "'nginx'"
    assert found[2].scalar.flow and not first.scalar.flow


def test_block_scalars_configmap_data_and_comments_are_never_references():
    text = """\
kind: ConfigMap
data:
  image: team/app:1
  values.yaml: |
    image: team/app:1
# image: team/app:1
---
kind: Pod
spec:
  containers:
  - name: a
    image: |
      team/app:1
"""
    assert refs(text) == []


def test_other_image_keys_compose_and_multi_documents():
    text = """\
# leading comment
---
# empty document
---
apiVersion: tekton.dev/v1
kind: Task
spec:
  steps:
  - name: build
    image: gcr.io/kaniko-project/executor:v1
...
---
services:
  web:
    image: team/web:1
  db: {image: "postgres:16"}
"""
    found = refs(text)
    assert [(r.doc, r.kind, r.value, r.container) for r in found] == [
        (1, "image", "gcr.io/kaniko-project/executor:v1", None),
        (2, "compose", "team/web:1", "web"),
        (2, "compose", "postgres:16", "db"),
    ]


def test_anchor_and_alias_point_at_the_anchored_scalar():
    text = """\
x-image: &img team/app:1.0
services:
  a:
    image: *img
  b:
    <<: &common
      image: team/b:2
  c:
    <<: *common
    image: team/c:3
  d:
    <<: *common
"""
    found = refs(text)
    by_path = {r.path: r for r in found}
    a = by_path[("services", "a", "image")]
    assert a.via_alias and a.value == "team/app:1.0" and span(text, a.scalar) == "team/app:1.0"
    assert a.scalar.anchor == "img" and a.scalar.start == text.index("team/app")
    assert by_path[("services", "b", "image")].via_alias  # through the merge key
    assert by_path[("services", "c", "image")].value == "team/c:3"  # explicit key beats the merge
    d = by_path[("services", "d", "image")]
    assert d.via_alias and d.scalar == by_path[("services", "b", "image")].scalar


def test_crlf_and_bom_offsets_index_the_original_string():
    text = "\ufeffspec:\r\n  containers:\r\n  - name: a\r\n    image: &x 'team/app:1'  \r\n"
    (ref,) = refs(text)
    assert span(text, ref.scalar) == "'team/app:1'"
    assert (ref.line, ref.column) == (4, 15)


def test_kustomization_images_by_kind_by_filename_and_flux():
    text = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
- name: team/app
  newTag: "1.0"   # pinned
- {name: nginx, newName: registry.local/nginx, digest: 'sha256:%s'}
- name: bare
patches:
- target: {kind: Deployment}
  patch: |
    - op: replace
      path: /spec/template/spec/containers/0/image
      value: team/app:9
""" % ("b" * 64)
    found = refs(text)
    assert [(r.kind, r.form, r.value) for r in found] == [
        ("kustomize", "map", "team/app:1.0"),
        ("kustomize", "map", "registry.local/nginx@sha256:" + "b" * 64),
        ("kustomize", "map", "bare"),
    ]
    first, second, bare = found
    assert span(text, first.fields["newTag"]) == '"1.0"' and first.name == "team/app"
    assert text[first.insert_after:first.insert_after + 1] == "\n" and first.indent == "  "
    assert second.flow and text[second.insert_after] == "}"
    assert set(bare.fields) == {"name"}
    plain = "images:\n- name: team/app\n"  # no kind: recognised by the file name only
    assert refs(plain) == []
    assert refs(plain, filename="deploy/kustomization.yaml")[0].kind == "kustomize"
    flux = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nspec:\n  images:\n  - name: a\n"
    assert refs(flux)[0].path == ("spec", "images", 0)


def test_helm_maps():
    text = """\
image:
  registry: docker.io
  repository: bitnami/nginx
  tag: ""
  digest:
worker:
  image: {repo: team/worker, tag: 1.10}
istio:
  hub: registry.istio.io/release
  tag: 1.22.0
  image: pilot
chart:
  dependencies:
  - name: redis
    repository: https://charts.example.com
"""
    found = refs(text)
    assert [(r.kind, r.value, r.path) for r in found] == [
        ("helm", "docker.io/bitnami/nginx", ("image",)),
        ("helm", "team/worker:1.10", ("worker", "image")),
        ("helm", "registry.istio.io/release/pilot:1.22.0", ("istio",)),
    ]
    nginx = found[0]
    assert nginx.fields["digest"].is_null and nginx.fields["digest"].start == text.index("digest:") + 7
    assert nginx.keys == {k: k for k in ("registry", "repository", "tag", "digest")}
    assert found[1].keys["repository"] == "repo" and found[1].flow
    assert found[2].keys["registry"] == "hub" and found[2].keys["repository"] == "image"


def test_syntax_error_position_and_needle_prefilter():
    text = "a: b\n  c: d\nimage: {{ .Values.image }}\n"
    result = locate(text)
    assert result.references == [] and isinstance(result.error, YamlSyntaxError)
    assert (result.error.line, result.error.column) == (2, 4)
    assert locate(text, needles=["team/app"]).error is None  # not parsed at all
    with pytest.raises(YamlSyntaxError):
        parse(text)


def test_bom_syntax_error_line_and_column():
    result = locate("\ufeffa: [\n")
    assert result.error is not None and result.error.line == 2


def test_python_parser_gives_the_same_spans(monkeypatch):
    fast = refs(DEPLOYMENT)
    monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    assert refs(DEPLOYMENT) == fast
    empty = "image:\n  repository: a/b\n  tag:\n"
    assert refs(empty)[0].fields["tag"].start == empty.index("tag:") + 4
