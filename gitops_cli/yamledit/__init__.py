"""The byte-exact YAML engine: locate image references, splice new values, discover manifest files.

Pure functions over text: no docker, no git, no network.
"""

from gitops_cli.yamledit.locate import LocateResult, Reference, Scalar, YamlSyntaxError, locate

__all__ = ["LocateResult", "Reference", "Scalar", "YamlSyntaxError", "locate"]
