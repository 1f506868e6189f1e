"""The package version, below every module that records it (weight files, reports, the CLI)."""

__version__ = "0.1.0"
