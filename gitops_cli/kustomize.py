"""A kustomization's local resources, as gitops follows them (sync: which directories are bases; bump: which
files a kustomize `images:` entry applies to).

Pure file-system reads, no kubectl: each entry of `resources`, `bases` and `components` is resolved as
kustomize resolves a local path, relative to the kustomization's directory, and a directory is followed to
its own kustomization (`walk`).  gitops never follows a symlink nor leaves the repo: such an entry, a remote
one (`https://...//dir?ref=v1`, `github.com/org/repo/dir`) and anything else that names nothing in the repo
is left unresolved (`Entry.kind` None) -- `kubectl kustomize` reports the broken ones when it renders.
Patch files (`patches[].path`, `patchesStrategicMerge`, `patchesJson6902[].path`) are listed too, never
followed: a patch may set a container's image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
YAML_SUFFIXES = (".yaml", ".yml")
# the endings of the YAML files' names, for git's pathspecs (`*Kustomization`) and cheap filters: a superset
# (`XKustomization` too) of what is_yaml_name takes
YAML_ENDINGS = (*YAML_SUFFIXES, "Kustomization")


def is_yaml_name(path: str) -> bool:
    """Whether a file of this name (a path, `/`-separated) is one of the YAML files gitops reads (bump,
    history, rollback, lint, sync): `*.yaml`, `*.yml`, or kustomize's `Kustomization`, which kustomize reads
    as it reads `kustomization.yaml`.  Here, not in yamledit.discover, so lint tells a YAML file from a
    Dockerfile without importing the YAML engine."""
    return path.endswith(YAML_SUFFIXES) or path.rpartition("/")[2] in KUSTOMIZATION_FILES


RESOURCE_KEYS = ("resources", "bases", "components")  # files, or directories holding a kustomization
PATCH_KEYS = ("patches", "patchesStrategicMerge", "patchesJson6902")  # files (or inline patches)

# the kustomization document (a mapping) of a repo directory, None when it has no kustomization file
Loader = Callable[[Path], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Entry:
    """One entry of a kustomization's resources, bases, components or patches."""

    kustomization: Path  # the repo directory of the kustomization naming it
    key: str  # resources | bases | components | one of PATCH_KEYS
    value: Any  # as written (for a patch: its path)
    path: Path | None  # the repo path it names; None: not a string, remote-looking, outside the repo, unusable
    kind: str | None  # "directory" | "file" (a regular file, not a symlink) | None (nothing gitops can use there)

    @property
    def remote(self) -> bool:
        """Written as kustomize's remote resources are (a URL, or git's scp-like `git@host:org/repo`)."""
        return isinstance(self.value, str) and ("://" in self.value or self.value.startswith("git@"))


def kustomization_file(root: Path, rel: Path) -> Path | None:
    """The kustomization file of the repo directory `rel` (the first of KUSTOMIZATION_FILES kustomize would
    read, a regular file, never a symlink), or None."""
    for name in KUSTOMIZATION_FILES:
        path = root / rel / name
        if path.is_file() and not path.is_symlink():
            return path
    return None


def resolve(root: Path, d: Path, key: str, value: Any, real_root: Path | None = None) -> Entry:
    """What the kustomization in the repo directory `d` names with `value` (see Entry)."""
    real_root = root.resolve() if real_root is None else real_root
    if not isinstance(value, str) or not value or "://" in value or value.startswith("git@"):
        return Entry(d, key, value, None, None)
    try:
        rel = Path(os.path.normpath(d / value))
        target = root / rel
        if rel.parts[:1] == ("..",) or rel.is_absolute() or not (root / d / value).resolve().is_relative_to(real_root):
            return Entry(d, key, value, None, None)
        if (root / d / value).is_symlink():
            return Entry(d, key, value, rel, None)
        kind = "directory" if target.is_dir() else "file" if target.is_file() else None
    except (OSError, ValueError):  # a name too long, a NUL byte: `kubectl kustomize` reports it
        return Entry(d, key, value, None, None)
    return Entry(d, key, value, rel, kind)


def entries(root: Path, d: Path, doc: dict[str, Any], real_root: Path | None = None) -> Iterator[Entry]:
    """The resources, bases, components and patch files of the kustomization `doc` of the directory `d`.
    An inline patch (a `patch:`, a patchesStrategicMerge entry holding a line break) names no file: left out."""
    real_root = root.resolve() if real_root is None else real_root
    for key in RESOURCE_KEYS + PATCH_KEYS:
        values = doc.get(key)
        for value in values if isinstance(values, list) else []:
            if key in PATCH_KEYS:
                value = value.get("path") if isinstance(value, dict) else value
                if not isinstance(value, str) or "\n" in value:
                    continue
            yield resolve(root, d, key, value, real_root)


def walk(root: Path, top: Path, load: Loader) -> Iterator[Entry]:
    """Every entry (see `entries`) of the kustomization in the repo directory `top` and of those below it:
    a resources/bases/components entry that is a directory is followed to its kustomization (`load`; each
    directory once, `top` included, so a cycle ends)."""
    real_root = root.resolve()
    todo, seen = [top], {top}
    while todo:
        d = todo.pop()
        doc = load(d)
        if not doc:
            continue
        for entry in entries(root, d, doc, real_root):
            yield entry
            if entry.kind == "directory" and entry.key in RESOURCE_KEYS and entry.path not in seen:
                assert entry.path is not None
                seen.add(entry.path)
                todo.append(entry.path)
