"""The `sitegraph` command line."""

from sitegraph.cli.main import app, main

__all__ = ["app", "main"]
