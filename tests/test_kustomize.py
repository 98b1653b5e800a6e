"""gitops_cli.kustomize: a kustomization's local resources, as sync and bump follow them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops_cli import kustomize


def _load(root: Path) -> kustomize.Loader:
    from ruamel.yaml import YAML

    def load(d: Path) -> dict[str, Any] | None:
        path = kustomize.kustomization_file(root, d)
        return None if path is None else YAML(typ="safe").load(path.read_text())

    return load


def test_walk_resolves_files_follows_directories_and_lists_patch_files(tmp_path: Path) -> None:
    files = {
        "app/kustomization.yaml": "resources: [d.yaml, ../base, 'https://x.example/r//b', missing.yaml, ../link.yaml]\n"
                                  "patches:\n- path: p.yaml\n- patch: |-\n    inline\n"
                                  "patchesStrategicMerge: [q.yaml]\n",
        "app/d.yaml": "", "app/p.yaml": "", "app/q.yaml": "", "real.yaml": "",
        "base/Kustomization": "resources: [b.yaml, ../app]\n", "base/b.yaml": "",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "link.yaml").symlink_to(tmp_path / "real.yaml")
    got = [(e.kustomization.as_posix(), e.key, e.value, e.path and e.path.as_posix(), e.kind, e.remote)
           for e in kustomize.walk(tmp_path, Path("app"), _load(tmp_path))]
    assert got == [
        ("app", "resources", "d.yaml", "app/d.yaml", "file", False),
        ("app", "resources", "../base", "base", "directory", False),
        ("app", "resources", "https://x.example/r//b", None, None, True),
        ("app", "resources", "missing.yaml", "app/missing.yaml", None, False),
        ("app", "resources", "../link.yaml", "link.yaml", None, False),  # a symlink is never followed
        ("app", "patches", "p.yaml", "app/p.yaml", "file", False),
        ("app", "patchesStrategicMerge", "q.yaml", "app/q.yaml", "file", False),
        ("base", "resources", "b.yaml", "base/b.yaml", "file", False),
        ("base", "resources", "../app", "app", "directory", False),  # the cycle ends: app is not walked again
    ]
