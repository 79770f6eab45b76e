"""One root exception for the shell; detectors keep their own named errors."""

from __future__ import annotations


class OpsloopError(Exception):
    """Root of opsloop's own errors."""


class ConfigError(OpsloopError):
    """Bad configuration or CLI input: reported in one line, non-zero exit."""
