"""A tiny HTTP/1.1 server for fakes of remote services: a router, recorded requests, scripted faults.

It listens on 127.0.0.1, port 0 (the OS picks a free port), in a daemon thread. Handlers get a ``Recorded``
request and return ``(status, body, headers)`` where ``body`` is JSON-able data or raw bytes.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    status: int
    body: Any
    headers: dict[str, str]
    path: str | None
    remaining: int


Handler = Callable[[Recorded, "re.Match[str]"], Reply]


@dataclass
class FakeHTTPServer:
    """Start with ``with Fake() as fake: fake.url``; ``fake.requests`` lists what came in."""

    requests: list[Recorded] = field(default_factory=list)
    _routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    _faults: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- configuration ---------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Add a route; ``pattern`` is a regex matched in full against the path (query excluded)."""
        self._routes.append((method.upper(), re.compile(pattern), handler))

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        path: str | None = None,
    ) -> None:
        """The next ``times`` requests (whose path contains ``path``, if given) get this answer instead.
        ``body`` may be raw bytes (e.g. a malformed JSON document)."""
        if body is None:
            body = {"error": {"code": str(status), "message": f"scripted failure {status}"}}
        self._faults.append(Fault(status, body, dict(headers or {}), path, times))

    def authorize(self, request: Recorded) -> Reply | None:
        """Override: return a reply to refuse the request, None to let it through."""
        return None

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # -- lifecycle ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                rec = Recorded(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                status, payload, headers = fake._dispatch(rec)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- dispatch ----------------------------------------------------------------------------------------

    def _dispatch(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            refused = self.authorize(rec)
            if refused is not None:
                return refused
            for fault in self._faults:
                if fault.path is None or fault.path in rec.path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.status, fault.body, dict(fault.headers)
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(rec.path)
            if m and method == rec.method:
                return handler(rec, m)
        return 404, {"error": {"code": "NotFound", "message": f"no route for {rec.method} {rec.path}"}}, {}
