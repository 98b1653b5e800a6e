"""The byte-exact YAML engine: locate image references, splice new values, discover manifest files.

Pure functions over text (and, in discover, the file tree): no docker, no git, no network.
"""

from gitops_cli.yamledit.discover import YAML_SUFFIXES, discover, read_text, write_atomic
from gitops_cli.yamledit.locate import LocateResult, Reference, Scalar, YamlSyntaxError, locate
from gitops_cli.yamledit.splice import (
    Change,
    Edit,
    Kept,
    apply_edits,
    kept,
    kept_references,
    mentions,
    needles_for,
    pending,
    update_images,
    update_images_located,
)

__all__ = [
    "YAML_SUFFIXES",
    "Change",
    "Edit",
    "Kept",
    "LocateResult",
    "Reference",
    "Scalar",
    "YamlSyntaxError",
    "apply_edits",
    "discover",
    "kept",
    "kept_references",
    "locate",
    "mentions",
    "needles_for",
    "pending",
    "read_text",
    "update_images",
    "update_images_located",
    "write_atomic",
]
