"""One module per verb. Each holds a single Typer-annotated function registered in gitops_cli.cli."""
