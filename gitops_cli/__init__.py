"""gitops-cli: ship container images the GitOps way."""

__version__ = "0.1.0"
