"""yamledit.locate: where image references are, with exact spans, and where they are not."""

from __future__ import annotations

import pytest

from gitops_cli.yamledit import YamlSyntaxError, locate
from gitops_cli.yamledit.locate import _Parsed, parse, pure_parser_forced


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
        ("container", "team/app:folded", "debug", "folded"),
    ]
    first = found[0]
    assert span(DEPLOYMENT, first.scalar) == '"team/app:1.0"'
    assert (first.line, first.column) == (11, 16)
    assert first.path == ("spec", "template", "spec", "containers", 0, "image")
    assert span(DEPLOYMENT, found[1].scalar) == "'nginx'"
    assert found[2].scalar.flow and not first.scalar.flow
    folded = found[3].scalar  # a one-line block scalar: its span is the content line
    assert span(DEPLOYMENT, folded) == "team/app:folded" and (folded.line, folded.column) == (20, 11)


def test_configmap_data_and_comments_are_never_references():
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
    image: |-
      team/app:1
"""
    (ref,) = refs(text)
    assert (ref.value, ref.scalar.style, ref.line, ref.column) == ("team/app:1", "literal", 13, 7)
    assert span(text, ref.scalar) == "team/app:1"


def test_configmap_and_secret_data_are_never_references_wherever_the_object_sits():
    text = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  data: {image: team/app:1}
- apiVersion: v1
  kind: Secret
  stringData:
    image: team/app:1
- apiVersion: example.com/v1
  kind: Bundle
  spec:
    objects:
    - kind: ConfigMap
      data:
        image: team/app:1
    - kind: Pod
      spec:
        containers: [{name: a, image: team/app:1}]
"""
    assert [(r.line, r.container) for r in refs(text)] == [(20, "a")]


@pytest.mark.parametrize(("block", "value", "one_line"), [
    ("|\n  team/app:1\n", "team/app:1\n", True),           # clip: ends in a line break (not a valid image)
    (">-  # c\n  team/app:1  \n\n", "team/app:1  ", True),  # a header comment, trailing spaces, blank lines
    ("|+\n  team/app:1\n\n", "team/app:1\n\n", True),
    (">-\n  team/app\n  :1\n", "team/app :1", False),        # folded from two lines
    ("&b !!str |2-\n   team/app:1\n", " team/app:1", False),  # more indented than the indicator says
])
def test_block_scalar_image_values_are_located_exactly(block, value, one_line):
    text = "a: 1\nimage: " + block
    (ref,) = refs(text)
    assert ref.value == value
    source = text[ref.scalar.start:ref.scalar.end]
    if one_line:  # the span is the content line, as for a quoted or plain value
        assert source == value.rstrip("\n") and (ref.line, ref.column) == (3, 3)
    else:  # the span is the whole block scalar from its indicator
        assert source[0] in "|>" and (ref.line, ref.column) == (2, 8 + block.index(source[0]))


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
    assert [by_path[("services", s, "image")].through for s in "abcd"] == [  # for messages
        "the alias *img on line 4", "the merge key `<<` on line 6", None, "the merge key `<<: *common` on line 12"]


def test_a_compose_extension_templates_image_is_a_compose_reference_of_no_service():
    text = "x-app: &app\n  image: team/app:1\nservices:\n  web: {<<: *app}\nx-other: {image: team/b:1}\n"
    found = refs(text)
    assert [(r.path, r.kind, r.container, r.template) for r in found] == [
        (("x-app", "image"), "compose", None, True), (("services", "web", "image"), "compose", "web", False),
        (("x-other", "image"), "compose", None, True)]
    assert found[0].scalar == found[1].scalar
    assert not refs("kind: X\nx-app: {image: team/app:1}\n")[0].template  # not a compose file


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


def test_a_helm_registry_written_with_a_trailing_slash_names_the_same_image():
    text = "image:\n  registry: reg.io/\n  repository: team/app\n  tag: v1\n"
    (found,) = refs(text)
    assert (found.kind, found.value) == ("helm", "reg.io/team/app:v1")


@pytest.mark.parametrize("null", ["~", "null", "Null", "NULL", ""])
def test_a_null_image_is_no_reference_and_a_null_helm_field_is_unset(null):
    """`image: ~` (or null, or nothing) is YAML's null: no image at all, not an image named `~`; a Helm
    map's `tag: ~` is a tag not set.  Quoted, `'~'` is a string."""
    assert refs(f"spec:\n  containers:\n  - name: a\n    image: {null}\n") == []
    (found,) = refs(f"image:\n  repository: team/app\n  tag: {null}\n")
    assert found.value == "team/app" and found.fields["tag"].is_null
    assert not refs(f"image:\n  repository: team/app\n  tag: '{null}'\n")[0].fields["tag"].is_null  # quoted: a string


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


FLOW_COLONS = """\
spec:
  containers:
  - {name: b, image: team/app:v1}
  - name: c
    image: team/c:1
    args: [a:b, {x: "y"}, http://x, "--port=8080"]
"""


@pytest.mark.parametrize("parser", ["default", "python"])
def test_a_colon_in_a_flow_plain_scalar_parses_whichever_parser_is_installed(parser, monkeypatch):
    """libyaml refuses `{image: team/app:v1}` (YAML 1.1); YAML 1.2, PyYAML and kubectl read a string:
    the text is re-read with the pure parser, so nothing depends on a libyaml parser being installed."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    found = refs(FLOW_COLONS)
    assert [(r.value, r.container, r.line, r.column) for r in found] == [
        ("team/app:v1", "b", 3, 22), ("team/c:1", "c", 5, 12)]
    assert span(FLOW_COLONS, found[0].scalar) == "team/app:v1" and found[0].scalar.flow
    values = [e.value for e in parse(FLOW_COLONS).events if e.kind == "S"]
    assert values[-5:] == ["a:b", "x", "y", "http://x", "--port=8080"]


def test_gitops_yaml_parser_takes_python_or_nothing_and_refuses_a_typo() -> None:
    """A typo (`GITOPS_YAML_PARSER=pyhton`) silently kept libyaml: it is exit 2 naming the valid values."""
    from gitops_cli.errors import UsageError

    assert [pure_parser_forced(env) for env in ({}, {"GITOPS_YAML_PARSER": " "}, {"GITOPS_YAML_PARSER": "python"},
                                                {"GITOPS_YAML_PARSER": "Python "})] == [False, False, True, True]
    with pytest.raises(UsageError) as refused:
        pure_parser_forced({"GITOPS_YAML_PARSER": "pyhton"})
    assert refused.value.exit_code == 2
    assert refused.value.message == ("GITOPS_YAML_PARSER='pyhton': expected python (the pure-Python parser) or no "
                                     "value (libyaml when installed)")


@pytest.mark.parametrize("parser", ["default", "python"])
def test_a_text_neither_parser_reads_reports_the_pure_parsers_position(parser, monkeypatch):
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    result = locate("a: {image: team/app:v1}\nb: [x, {y: z]\n")
    assert result.error is not None and (result.error.line, result.error.column) == (2, 13)  # libyaml: 1, 20


TABS = """\
spec:
  containers:
  - name: a\t# a tab before a comment
    image: team/app:1\t# and after a value
  - name:\tb
    image:\t'team/app:1'\t
  - name: c
    image: &i\tteam/app:1
    args: ["a:\tb", 'c\t# d', "e\\\t
      f"]\t# a tab inside a quoted scalar is content
    command:\t|
      g:\th\t
  initContainers: [{name: d,\timage: *i}]\t
image:
  repository\t: team/app
  tag: !!str\tv1\t\t# c
"""


@pytest.mark.parametrize("parser", ["default", "python"])
def test_tabs_that_separate_tokens_inside_a_line_parse_whichever_parser_is_installed(parser, monkeypatch):
    """YAML 1.2 and libyaml take a tab as separation white space inside a line (before a comment, after a value,
    around `:`, after an anchor or tag); ruamel's pure-Python parser refused them (a file skipped with
    GITOPS_YAML_PARSER=python, or when libyaml refuses it for another reason).  A tab that is content stays."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    found = refs(TABS)
    assert [(r.container, r.value, r.line, r.column) for r in found] == [
        ("a", "team/app:1", 4, 12), ("b", "team/app:1", 6, 12), ("c", "team/app:1", 8, 15),
        ("d", "team/app:1", 8, 15), (None, "team/app:v1", 15, 3)]
    assert span(TABS, found[1].scalar) == "'team/app:1'" and span(TABS, found[4].fields["tag"]) == "v1"
    scalars = [e.value for e in parse(TABS).events if e.kind == "S"]
    assert ["a:\tb", "c\t# d", "e\t f", "g:\th\t\n"] == [v for v in scalars if "\t" in v]
    events = [(e.kind, e.start, e.value, e.style, e.anchor) for e in parse(TABS).events]
    monkeypatch.delenv("GITOPS_YAML_PARSER", raising=False)
    assert events == [(e.kind, e.start, e.value, e.style, e.anchor) for e in _Parsed(TABS).events]  # libyaml's


@pytest.mark.parametrize("parser", ["default", "python"])
def test_a_text_libyaml_refuses_with_a_tab_before_a_comment_is_read(parser, monkeypatch):
    """libyaml refuses the flow `{..., image: team/app:v1}`; the pure parser it falls back to refused the tab."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    text = "spec:\n  containers: [{name: a, image: team/app:v1}]\n  restartPolicy: Always\t# tab before comment\n"
    assert [(r.container, r.value, r.column) for r in refs(text)] == [("a", "team/app:v1", 33)]


@pytest.mark.parametrize("parser", ["default", "python"])
@pytest.mark.parametrize("text", ["-\ta\n", "x: y\n\t# c\n", "x: |+\n  a\n\t\ny: 1\n"])
def test_a_tab_libyaml_refuses_is_refused_by_either_parser(parser, text, monkeypatch):
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    with pytest.raises(YamlSyntaxError, match=r"found character '\\t'"):
        parse(text)


def _events(text: str) -> list[tuple]:
    return [(e.kind, e.start, e.value, e.style, e.anchor) for e in parse(text).events]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_a_tab_in_a_block_scalar_stays_content_whatever_the_line_breaks(eol, monkeypatch):
    """The tab fallback (the pure parser, on a copy with separating tabs made spaces) finds a block scalar's
    content after its header line, also when the line breaks are CRs alone: the tab in it stays."""
    text = "a: |\n  x:\ty\nb: c\t# x\n".replace("\n", eol)
    libyaml = [(e.kind, e.start, e.value, e.style, e.anchor) for e in _Parsed(text).events]
    assert libyaml[3] == ("S", 6 + len(eol), "x:\ty\n", "literal", None)
    monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    assert _events(text) == libyaml


DOCUMENT_TABS = [
    "---\t!custom x\n", "---\t&a x\n", '---\t"x"\n', "---\t[a]\n", "---\t|\n  x\n", "--- \t\t{a: b}\n",
    "\ufeff---\tx\n", "a\n---\t!!map\nimage: team/app:1\n", "%YAML\t1.2\n---\tx\n",
    "%YAML 1.2\t# c\n%TAG\t!e!\ttag:example.com,2000:\n--- !e!m\nimage: !e!img team/app:v1\n",
]


@pytest.mark.parametrize("eol", ["\n", "\r"])
@pytest.mark.parametrize("text", DOCUMENT_TABS)
def test_a_tab_after_a_document_start_or_in_a_directive_is_read_by_either_parser(text, eol, monkeypatch):
    """libyaml reads a tab between `---` and the document's first node, and between the parts of a directive,
    as YAML 1.2 says; the pure parser refused it (exit 3 with GITOPS_YAML_PARSER=python)."""
    text = text.replace("\n", eol)
    libyaml = [(e.kind, e.start, e.value, e.style, e.anchor) for e in _Parsed(text).events]
    monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    assert _events(text) == libyaml


@pytest.mark.parametrize("parser", ["default", "python"])
def test_a_flow_document_after_a_tab_after_its_start_is_searched(parser, monkeypatch):
    """libyaml refuses `{image: team/app:1}` (a ':' in a flow plain scalar); the pure parser it falls back to
    refused the tab after `---`: the file was skipped."""
    if parser == "python":
        monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    text = "---\t{image: team/app:1}\n---\t!!map\nimage: team/app:2\n"
    assert [(r.doc, r.value, r.line, r.column) for r in refs(text)] == [(0, "team/app:1", 1, 13),
                                                                          (1, "team/app:2", 3, 8)]


def _nested(depth: int, leaf: str) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + leaf + "\n"


def test_an_image_nested_too_deep_to_search_is_a_reported_problem():
    shallow = _nested(300, "image: team/app:v1")
    assert [r.value for r in refs(shallow)] == ["team/app:v1"]
    deep = "image: team/top:1\n" + _nested(450, "image: team/app:v1")
    result = locate(deep)
    assert [r.value for r in result.references] == ["team/top:1"]  # what could be searched
    assert result.error is not None and "nested more than 400 levels" in result.error.message
    assert result.error.line == 403  # the first mapping below the limit


def test_anchor_uses_decide_whether_an_image_value_is_shared():
    text = """\
x-img: &ext team/ext:1
a: &x team/app:1
one:
  image: *x
two:
  image: &own team/own:1
  env: [*own]
three:
  image: *ext
four:
  image: &img team/img:1
five:
  image: *img
"""
    found = {r.path[0]: r for r in refs(text)}
    assert found["one"].conflict == ("comes from the anchor &x (written as *x on line 4), which is set on `a` "
                                     "on line 2, not an image; bumping it would change that too")
    assert found["two"].conflict is not None and "a list item or key on line 7" in found["two"].conflict
    assert found["three"].conflict is None  # a compose-style extension field holds it for aliasing only
    assert found["four"].conflict is None and found["five"].conflict is None  # only images use &img


def test_python_parser_gives_the_same_spans(monkeypatch):
    fast = refs(DEPLOYMENT)
    monkeypatch.setenv("GITOPS_YAML_PARSER", "python")
    assert refs(DEPLOYMENT) == fast
    empty = "image:\n  repository: a/b\n  tag:\n"
    assert refs(empty)[0].fields["tag"].start == empty.index("tag:") + 4


# --- Argo CD Application: kustomize image-override strings ------------------------------------------------------

APPLICATION = f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  annotations:
    note: team/app:0.1
spec:
  source:
    kustomize:
      images:
      - team/app:v1   # pinned
      - "team/api=registry.local/team/api:v2"
      - 'nginx@sha256:{"1" * 64}'
      - worker=team/worker
      - team/db:1.0@sha256:{"2" * 64}
      - team/app           # no tag or digest: kustomize refuses it
      - app=*:v2           # `*` keeps the kustomization's value: not read
      - {{name: team/app, newTag: v1}}
  sources:
  - repoURL: https://example.com/repo.git
    kustomize: {{images: [team/web:v3, "w=team/web:v4"]}}
"""


def test_application_kustomize_images_are_override_strings_with_part_spans():
    found = refs(APPLICATION)
    assert [(r.kind, r.form, r.value, r.path[-1], r.line, r.column) for r in found] == [
        ("kustomize", "override", "team/app:v1", 0, 10, 9),
        ("kustomize", "override", "registry.local/team/api:v2", 1, 11, 9),
        ("kustomize", "override", "nginx@sha256:" + "1" * 64, 2, 12, 9),
        ("kustomize", "override", "team/worker", 3, 13, 9),
        ("kustomize", "override", f"team/db:1.0@sha256:{'2' * 64}", 4, 14, 9),
        ("kustomize", "override", "team/web:v3", 0, 20, 26),
        ("kustomize", "override", "team/web:v4", 1, 20, 39),
    ]
    app, api, nginx, worker, db, web, web2 = found
    assert app.path == ("spec", "source", "kustomize", "images", 0) and app.name == "team/app"
    assert web.path == ("spec", "sources", 0, "kustomize", "images", 0)
    assert span(APPLICATION, app.scalar) == "team/app:v1"
    assert {role: span(APPLICATION, s) for role, s in api.fields.items()} == {
        "name": "team/api", "newName": "registry.local/team/api", "newTag": "v2"}
    assert api.fields["newTag"].column == 9 + len('"team/api=registry.local/team/api:')
    assert api.name == "registry.local/team/api"
    assert set(nginx.fields) == {"name", "digest"} and set(worker.fields) == {"name", "newName"}
    assert span(APPLICATION, db.fields["newTag"]) == "1.0" and set(db.fields) == {"name", "newTag", "digest"}
    assert span(APPLICATION, web2.fields["newName"]) == "team/web"


def test_override_strings_only_in_an_argo_cd_application_source():
    other = APPLICATION.replace("argoproj.io/v1alpha1", "app.k8s.io/v1beta1")
    assert refs(other) == []
    appset = """\
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
spec:
  generators: [{list: {elements: [{env: dev}]}}]
  template:
    spec:
      source:
        kustomize:
          images: ['team/app:{{env}}', team/app:v1]
      ignoreDifferences:
      - kustomize: {images: [team/app:v1]}
"""
    assert [(r.form, r.value, r.path) for r in refs(appset)] == [
        ("override", "team/app:v1", ("spec", "template", "spec", "source", "kustomize", "images", 1))]
    # an escaped value has its parts' spans the whole scalar's
    escaped = 'apiVersion: argoproj.io/v1\nkind: Application\nspec:\n  source:\n    kustomize:\n' \
              '      images: ["team/app\\x3av1"]\n'
    (ref,) = refs(escaped)
    assert ref.value == "team/app:v1" and ref.fields["newTag"].start == ref.scalar.start


def test_an_argo_cd_write_back_files_kustomize_images_by_its_name():
    # Argo CD Image Updater's git write-back: `.argocd-source-<app>.yaml` in the Application's path, merged by
    # Argo CD into the Application's source (`.argocd-source.yaml`: into every Application of that path)
    text = "kustomize:\n  images:\n  - team/app=registry.local/team/app:v7\n  - 'nginx:1.27'\n"
    assert refs(text) == [] and refs(text, filename="apps/a/kustomization.yaml") == []
    assert refs(text, filename="apps/a/.argocd-source-yaml") == []
    for name in (".argocd-source-app.yaml", ".argocd-source-argocd_app.yaml", ".argocd-source.yaml"):
        found = refs(text, filename=f"apps/a/{name}")
        assert [(r.form, r.value, r.path, r.line, r.column) for r in found] == [
            ("override", "registry.local/team/app:v7", ("kustomize", "images", 0), 3, 5),
            ("override", "nginx:1.27", ("kustomize", "images", 1), 4, 5)]
    nested = "spec:\n  kustomize:\n    images: [team/app:v1]\n"  # only the document is the source
    assert refs(nested, filename=".argocd-source-app.yaml") == []


# --- Argo CD Helm parameters ----------------------------------------------------------------------------------------

HELM_APPLICATION = f"""\
apiVersion: argoproj.io/v1alpha1
kind: Application
spec:
  source:
    helm:
      parameters:
      - name: image.name          # Argo CD Image Updater's default names
        value: team/app
        forceString: true
      - {{name: image.tag, value: "v1"}}
      - name: worker.image.repository
        value: team/worker
      - name: worker.image.registry
        value: registry.local
      - name: worker.image.digest
        value: sha256:{"1" * 64}
      - name: sidecar.image       # a whole reference (Image Updater's image-spec)
        value: team/sidecar:1.0
      - name: bare.image          # a name alone: its tag is set elsewhere
        value: team/bare
      - name: service.name        # `name` names a repository only under `image`
        value: team/svc
      - name: service.tag
        value: v1
      - name: twice.repository    # a name given twice: not read
        value: team/twice
      - name: twice.tag
        value: a
      - name: twice.tag
        value: b
      - name: both.repository     # two repository parameters: not read
        value: team/both
      - name: both.image
        value: team/both
      - name: both.tag
        value: v1
  sources:
  - helm:
      parameters: [{{name: repository, value: team/top}}, {{name: tag, value: '3'}}]
"""


def test_application_helm_parameters_of_one_prefix_are_a_helm_map():
    found = refs(HELM_APPLICATION)
    assert [(r.kind, r.form, r.value, r.path[-1], r.line, r.column) for r in found] == [
        ("helm", "map", "team/app:v1", 0, 7, 9),
        ("helm", "map", f"registry.local/team/worker@sha256:{'1' * 64}", 2, 11, 9),
        ("image", "string", "team/sidecar:1.0", 5, 18, 16),
        ("helm", "map", "team/top:3", 0, 39, 21),
    ]
    app, worker, sidecar, top = found
    assert app.path == ("spec", "source", "helm", "parameters", 0)
    assert app.keys == {"repository": "image.name", "tag": "image.tag"}
    assert span(HELM_APPLICATION, app.fields["tag"]) == '"v1"' and app.name == "team/app"
    assert set(worker.fields) == {"repository", "registry", "digest"} and worker.name == "registry.local/team/worker"
    assert span(HELM_APPLICATION, sidecar.scalar) == "team/sidecar:1.0"
    assert top.keys == {"repository": "repository", "tag": "tag"} and span(HELM_APPLICATION, top.fields["tag"]) == "'3'"
    assert refs(HELM_APPLICATION.replace("argoproj.io/", "example.com/")) == []


def test_helm_parameters_in_a_write_back_file():
    # Image Updater's git write-back for a Helm application (yaml.v2 writes `forcestring`)
    text = ("helm:\n  parameters:\n  - name: image.name\n    value: team/app\n    forcestring: true\n"
            "  - name: image.tag\n    value: v1@sha256:" + "1" * 64 + "\n    forcestring: true\n")
    (ref,) = refs(text, filename=".argocd-source-app.yaml")
    assert (ref.kind, ref.value, ref.line) == ("helm", "team/app:v1@sha256:" + "1" * 64, 3)
    assert refs(text, filename="values.yaml") == []


def test_a_flux_helmreleases_post_renderer_images_are_kustomize_entries():
    text = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
spec:
  values:
    image: {repository: team/app, tag: v0}
  postRenderers:
    - kustomize:
        images:
          - name: team/app
            newName: registry.local/team/app
            newTag: v1   # the environment's
          - {name: team/side}
        patches:
          - target: {kind: Deployment}
            patch: |
              - op: add
                path: /spec/template/spec/containers/0/image
                value: team/app:v9
"""
    found = refs(text)
    assert [(r.kind, r.form, r.value, r.path) for r in found] == [
        ("helm", "map", "team/app:v0", ("spec", "values", "image")),
        ("kustomize", "map", "registry.local/team/app:v1", ("spec", "postRenderers", 0, "kustomize", "images", 0)),
        ("kustomize", "map", "team/side", ("spec", "postRenderers", 0, "kustomize", "images", 1)),
    ]
    assert span(text, found[1].fields["newTag"]) == "v1" and found[2].flow
    assert [r.kind for r in refs(text.replace("helm.toolkit.fluxcd.io/v2", "example.com/v1"))] == ["helm"]
    old = text.replace("helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta1")
    assert [r.kind for r in refs(old)] == ["helm", "kustomize", "kustomize"]


def test_an_image_map_with_a_tag_and_no_repository_is_no_reference_but_is_reported():
    # a Helm values override file (values-staging.yaml) layered over the chart's values.yaml
    text = "image:\n  tag: v1   # CI\n  pullPolicy: Always\nworker:\n  image: {digest: 'sha256:1'}\n" \
           "db:\n  tag: '15'\nweb:\n  image: {repository: team/web, tag: v1}\nnone:\n  image: {tag: ~}\n"
    result = locate(text)
    assert [r.value for r in result.references] == ["team/web:v1"]
    assert [(s.value, s.line, s.column) for s in result.tag_only] == [("v1", 2, 8), ("sha256:1", 5, 19)]


def test_a_hub_and_tag_map_with_an_empty_hub_names_no_image():
    """Istio's values (`repair: {hub: "", tag: ""}`): an empty hub or tag inherits the global one, so the map names
    no image -- no reference, as a tag-only `image: {tag: v1}` map is none (and under `image:` it is reported as
    one); a hub with a value, or an empty hub beside an `image:` name, is still a reference."""
    text = ('repair:\n  hub: ""\n  tag: ""\nnull_hub:\n  hub: ~\n  tag: "1.0"\nimage:\n  hub: ""\n  tag: v1\n'
            "global:\n  hub: registry.istio.io/release\n  tag: 1.22.0\n"
            'cni:\n  hub: ""\n  image: install-cni\n  tag: ""\n')
    result = locate(text)
    assert [(r.value, r.path) for r in result.references] == [
        ("registry.istio.io/release:1.22.0", ("global",)), ("install-cni", ("cni",))]
    assert [(s.value, s.line) for s in result.tag_only] == [("v1", 9)]
    kustomize_suffix = "images:\n- name: team/app\n  tagSuffix: -debug\n"
    (entry,) = refs(kustomize_suffix, filename="kustomization.yaml")
    assert (entry.value, span(kustomize_suffix, entry.fields["tagSuffix"])) == ("team/app", "-debug")


# Reading without composing: the documents a caller does not need are read (every event: errors, the verifier's
# record) but get no nodes; update_images turns down those that do not mention an image it bumps.

MULTI_DOCS = "a: 1\n---\nimage: team/app:1\n---\nb: [1, {c: d}]\n---\nimage: team/other:1\n"


def _mentions_app(text: str):
    return lambda index, start, end: "app:" in text[start:end]


def test_documents_turned_down_are_read_but_get_no_nodes():
    parsed = parse(MULTI_DOCS, keep=_mentions_app(MULTI_DOCS))
    assert [doc is not None for doc in parsed.docs] == [False, True, False, False]
    assert parsed.kept == {1}
    assert list(parsed.events) == list(parse(MULTI_DOCS).events)  # every event read and recorded all the same


def test_a_document_that_holds_too_many_events_to_wait_is_composed_as_read_and_still_turned_down(monkeypatch):
    import sys

    from gitops_cli.yamledit.locate import locate_result

    monkeypatch.setattr(sys.modules["gitops_cli.yamledit.locate"], "_HELD_EVENTS", 2)
    parsed = parse(MULTI_DOCS, keep=_mentions_app(MULTI_DOCS))
    assert [doc is not None for doc in parsed.docs] == [False, True, False, False]
    assert locate_result(parsed).references == locate(MULTI_DOCS).references[:1]


def test_a_syntax_error_in_a_document_turned_down_is_the_same_error():
    text = "image: team/app:1\n---\na: [1\n"
    with pytest.raises(YamlSyntaxError) as composed:
        parse(text)
    with pytest.raises(YamlSyntaxError) as read:
        parse(text, keep=lambda index, start, end: False)
    assert (read.value.line, read.value.column, read.value.message) == \
        (composed.value.line, composed.value.column, composed.value.message)


def test_a_document_with_an_alias_a_merge_key_or_deep_nesting_is_composed_even_when_turned_down():
    """What the walker reports for them (a part too deep to search) or spends on them (the file's alias budget)
    must not depend on which documents the caller needs."""
    docs = ["a: &x 1\nb: *x\n", "<<: {a: 1}\n", "a: " + "[" * 401 + "]" * 401 + "\n", "a: 1\n"]
    parsed = parse("---\n".join(docs), keep=lambda index, start, end: False)
    assert parsed.kept == {0, 1, 2}
    assert parsed.docs[3] is None


def test_locating_keeps_no_documents_and_finds_what_a_walk_of_the_composed_text_finds():
    from gitops_cli.yamledit.locate import locate_result

    text = MULTI_DOCS + "---\n" + DEPLOYMENT
    walked = parse(text, events=None, walk=True)
    assert walked.docs == []
    assert walked.located == locate(text) == locate_result(parse(text))
    assert [(r.doc, r.value) for r in walked.located.references][:3] == [
        (1, "team/app:1"), (3, "team/other:1"), (4, "team/app:1.0")]
