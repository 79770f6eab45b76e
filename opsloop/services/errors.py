"""Errors of the local services."""

from __future__ import annotations

from opsloop.errors import OpsloopError


class ServiceError(OpsloopError):
    """A local service could not be prepared, started, stopped or reached."""


class ServiceUnavailable(ServiceError):
    """The machine lacks what a local service needs (a program, a package, the right user)."""


class ServiceStartError(ServiceError):
    """A service process was started but did not become ready; the message ends with its log's tail."""
