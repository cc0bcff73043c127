"""The package version (one place; ``specstore --version`` and the telemetry say it)."""

__version__ = "0.1.0"
