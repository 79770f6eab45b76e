"""Signed webhooks after the Standard Webhooks spec (https://www.standardwebhooks.com), delivered with retries.

Each message carries ``webhook-id`` (stable across retries: receivers dedupe on it), ``webhook-timestamp`` (unix
seconds of the attempt) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``).
The dispatcher checks the URL against the SSRF guard at registration and again at every attempt, connects to
the address it just checked (never re-resolving the name), never follows redirects, retries with capped
exponential backoff and full jitter (or the receiver's ``Retry-After``), disables an endpoint on 410 Gone or
after failing continuously too long, and logs every attempt. See ``docs/webhooks.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import random
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import httpx
from sqlalchemy.orm import Session, sessionmaker

from retrain.ssrf import Resolver, Target, UnsafeURL, parse_allow, resolve_url
from storage import webhooks_repo
from storage.models import WebhookEndpoint

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 24, 64
TIMESTAMP_TOLERANCE_S = 300
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # no "." (it delimits the signed content)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")

Redactor = Callable[[dict[str, Any]], dict[str, Any]]


class WebhookConfigError(ValueError):
    """A bad secret, secret reference or endpoint setting. Its message never contains a secret."""


# --- signing ----------------------------------------------------------------------------------------------


def generate_secret(nbytes: int = 32) -> str:
    if not SECRET_MIN_BYTES <= nbytes <= SECRET_MAX_BYTES:
        raise WebhookConfigError(f"a secret has {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret (24 to 64 random bytes, as the spec asks)."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise WebhookConfigError(f"a webhook secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except ValueError:
        raise WebhookConfigError("a webhook secret must be whsec_ followed by base64") from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise WebhookConfigError(f"a webhook secret must hold {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} bytes, "
                                 f"got {len(key)}")
    return key


def _content(msg_id: str, timestamp: int, body: bytes | str) -> bytes:
    if not _MESSAGE_ID.match(msg_id):
        raise ValueError(f"message id must match {_MESSAGE_ID.pattern}")
    raw = body.encode() if isinstance(body, str) else body
    return f"{msg_id}.{int(timestamp)}.".encode() + raw


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """``v1,<base64 HMAC-SHA256 over "{msg_id}.{timestamp}.{body}">``."""
    mac = hmac.new(secret_bytes(secret), _content(msg_id, timestamp, body), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, msg_id: str, timestamp: int | str, body: bytes | str, signatures: str, *,
           now: float | None = None, tolerance_s: float = TIMESTAMP_TOLERANCE_S) -> bool:
    """True when one of the space-separated ``v1,`` signatures matches (constant-time) and the timestamp is
    within ``tolerance_s`` of ``now`` (replays of old messages fail)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    expected = base64.b64decode(sign(secret, msg_id, ts, body)[3:])
    matched = False
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except ValueError:
            continue
        matched |= hmac.compare_digest(expected, given)  # no early exit: every candidate costs the same
    return matched


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(timestamp)),
            "webhook-signature": sign(secret, msg_id, timestamp, body), "content-type": "application/json"}


# --- messages ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookMessage:
    """A thin event: ids, severity, a summary and links; the receiver fetches details through the API."""

    id: str  # webhook-id: stable for the event, the same on every retry
    type: str  # e.g. "finding.created", "trigger.created"
    occurred_at: datetime
    data: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not _MESSAGE_ID.match(self.id):
            raise ValueError(f"message id must match {_MESSAGE_ID.pattern}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")

    def payload(self) -> dict[str, Any]:
        ts = self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return {"type": self.type, "timestamp": ts, "data": dict(self.data)}


def _stable_id(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def finding_message(*, finding_key: str, model: str, model_version: str, detector: str, status: str, severity: str,
                    summary: str, occurred_at: datetime, finding_id: int | None = None,
                    links: Mapping[str, str] | None = None) -> WebhookMessage:
    data = {"finding_id": finding_id, "model": model, "model_version": model_version, "detector": detector,
            "status": status, "severity": severity, "summary": summary, "links": dict(links or {})}
    return WebhookMessage(_stable_id("finding", finding_key), "finding.created", occurred_at, data)


def trigger_message(*, trigger_id: str, model: str, model_version: str, action: str, status: str, reason: str,
                    occurred_at: datetime, severity: str = "warn",
                    links: Mapping[str, str] | None = None) -> WebhookMessage:
    data = {"trigger_id": trigger_id, "model": model, "model_version": model_version, "action": action,
            "status": status, "severity": severity, "summary": reason, "links": dict(links or {})}
    return WebhookMessage(_stable_id("trigger", trigger_id), "trigger.created", occurred_at, data)


def encode_body(message: WebhookMessage, redact: Redactor | None = None) -> bytes:
    """The exact bytes that are signed and sent: redacted, then minified JSON."""
    payload = message.payload()
    if redact is not None:
        payload = redact(payload)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# --- retry timing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryConfig:
    base_s: float = 1.0  # first retry waits up to this long
    cap_s: float = 300.0  # no wait is longer (before jitter)
    timeout_s: float = 15.0  # per attempt (the spec suggests 15 to 30 s)
    disable_after_s: float = 86_400.0  # failing continuously this long disables the endpoint
    disable_after_failures: int | None = None  # ... and so do this many consecutive failed attempts
    max_retry_after_s: float = 3600.0  # a longer Retry-After is cut to this
    allow_ranges: tuple[str, ...] = ()  # operator-wide CIDR ranges exempt from the SSRF guard
    user_agent: str = "opsloop-webhooks/1"

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and self.cap_s >= self.base_s and self.timeout_s > 0 and self.disable_after_s > 0
                and self.max_retry_after_s >= 0):
            raise WebhookConfigError("need base_s > 0, cap_s >= base_s, timeout_s > 0, disable_after_s > 0")
        if self.disable_after_failures is not None and self.disable_after_failures < 1:
            raise WebhookConfigError("disable_after_failures must be >= 1")
        parse_allow(self.allow_ranges)


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] after the ``attempt``-th failure."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempt - 1, 0), 62))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


# --- HTTP, pinned to the checked address --------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    headers: Mapping[str, str]  # lower-case names


class Transport(Protocol):
    def post(self, target: Target, headers: Mapping[str, str], body: bytes, timeout_s: float) -> HttpResult: ...


class PinnedTransport:
    """POSTs to an address the SSRF guard checked, never to a name the HTTP client would resolve again.

    The request URL carries the IP literal (so httpx/httpcore connect there and do no DNS); the ``Host`` header
    carries the original host, and for https the ``sni_hostname`` extension makes TLS send the original name
    as SNI and verify the certificate against it. A fresh client per attempt keeps a connection opened for one
    host name from being reused for another name on the same address. Redirects are never followed, proxies
    from the environment are ignored, and the response body is not read.
    """

    def __init__(self, *, verify: ssl.SSLContext | bool = True) -> None:
        self._verify = verify
        self._lock = threading.Lock()

    def _ssl(self) -> ssl.SSLContext | bool:
        with self._lock:  # built once, on first use (loading the CA bundle takes a while)
            if self._verify is True:
                self._verify = httpx.create_ssl_context(verify=True)
            return self._verify

    def post(self, target: Target, headers: Mapping[str, str], body: bytes, timeout_s: float) -> HttpResult:
        last: Exception | None = None
        for address in target.addresses:
            url = httpx.URL(scheme=target.scheme, host=str(address), port=target.port,
                            raw_path=target.target.encode("ascii", "strict"))
            extensions: dict[str, Any] = {}
            if target.scheme == "https" and not target.host_is_ip:
                extensions["sni_hostname"] = target.host
            request_headers = {**headers, "host": target.host_header}
            try:
                with httpx.Client(verify=self._ssl(), trust_env=False, follow_redirects=False,
                                  timeout=httpx.Timeout(timeout_s)) as client:
                    request = client.build_request("POST", url, content=body, headers=request_headers,
                                                   extensions=extensions)
                    response = client.send(request, stream=True)
                    response.close()
                return HttpResult(response.status_code, {k.lower(): v for k, v in response.headers.items()})
            except httpx.ConnectError as exc:  # try the next checked address; anything else is the answer
                last = exc
        raise last if last is not None else httpx.ConnectError("no checked address to connect to")


# --- endpoints and the delivery log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    id: int
    name: str
    url: str
    secret: str | None = field(default=None, repr=False)
    secret_env: str | None = None
    allow_ranges: tuple[str, ...] = ()
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class AttemptRecord:
    endpoint_id: int
    message_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: float
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class EndpointDisabled:
    """Reported once when an endpoint is disabled; the stream layer turns it into a finding."""

    endpoint_id: int
    name: str
    reason: str
    at: datetime
    consecutive_failures: int


@dataclass(frozen=True)
class DeliveryOutcome:
    endpoint_id: int
    message_id: str
    status: Literal["delivered", "already_delivered", "endpoint_disabled"]
    attempts: int
    detail: str = ""

    @property
    def delivered(self) -> bool:
        return self.status in ("delivered", "already_delivered")


class EndpointStore(Protocol):
    def add(self, *, name: str, url: str, secret: str | None, secret_env: str | None,
            allow_ranges: tuple[str, ...]) -> Endpoint: ...
    def get(self, endpoint_id: int) -> Endpoint | None: ...
    def list(self, *, enabled_only: bool = True) -> list[Endpoint]: ...
    def save_health(self, endpoint_id: int, failing_since: datetime | None, consecutive_failures: int) -> None: ...
    def disable(self, endpoint_id: int, reason: str, at: datetime) -> bool: ...


class DeliveryLog(Protocol):
    def record(self, attempt: AttemptRecord) -> None: ...
    def attempts(self, endpoint_id: int, message_id: str) -> int: ...
    def delivered(self, endpoint_id: int, message_id: str) -> bool: ...


class MemoryEndpointStore:
    def __init__(self) -> None:
        self._rows: dict[int, Endpoint] = {}
        self._lock = threading.Lock()

    def add(self, *, name: str, url: str, secret: str | None, secret_env: str | None,
            allow_ranges: tuple[str, ...] = ()) -> Endpoint:
        with self._lock:
            if any(e.name == name for e in self._rows.values()):
                raise WebhookConfigError(f"an endpoint named {name!r} exists")
            ep = Endpoint(len(self._rows) + 1, name, url, secret, secret_env, tuple(allow_ranges))
            self._rows[ep.id] = ep
            return ep

    def get(self, endpoint_id: int) -> Endpoint | None:
        return self._rows.get(endpoint_id)

    def list(self, *, enabled_only: bool = True) -> list[Endpoint]:
        return [e for e in self._rows.values() if e.enabled or not enabled_only]

    def save_health(self, endpoint_id: int, failing_since: datetime | None, consecutive_failures: int) -> None:
        with self._lock:
            self._rows[endpoint_id] = replace(self._rows[endpoint_id], failing_since=failing_since,
                                              consecutive_failures=consecutive_failures)

    def disable(self, endpoint_id: int, reason: str, at: datetime) -> bool:
        with self._lock:
            ep = self._rows[endpoint_id]
            if not ep.enabled:
                return False
            self._rows[endpoint_id] = replace(ep, enabled=False, disabled_reason=reason)
            return True


class MemoryDeliveryLog:
    def __init__(self) -> None:
        self.records: list[AttemptRecord] = []
        self._lock = threading.Lock()

    def record(self, attempt: AttemptRecord) -> None:
        with self._lock:
            self.records.append(attempt)

    def attempts(self, endpoint_id: int, message_id: str) -> int:
        return max((r.attempt for r in self.records if (r.endpoint_id, r.message_id) == (endpoint_id, message_id)),
                   default=0)

    def delivered(self, endpoint_id: int, message_id: str) -> bool:
        return any(r.delivered_at is not None and (r.endpoint_id, r.message_id) == (endpoint_id, message_id)
                   for r in self.records)


def _endpoint(row: WebhookEndpoint) -> Endpoint:
    return Endpoint(row.id, row.name, row.url, row.secret, row.secret_env, tuple(row.allow_ranges or ()),
                    row.enabled, row.disabled_reason, row.failing_since, row.consecutive_failures)


class SqlEndpointStore:
    """Endpoints in the database; each call is its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(self, *, name: str, url: str, secret: str | None, secret_env: str | None,
            allow_ranges: tuple[str, ...] = ()) -> Endpoint:
        with self._sessions() as s, s.begin():
            return _endpoint(webhooks_repo.add_endpoint(s, name=name, url=url, secret=secret, secret_env=secret_env,
                                                        allow_ranges=allow_ranges))

    def get(self, endpoint_id: int) -> Endpoint | None:
        with self._sessions() as s:
            row = webhooks_repo.get_endpoint(s, endpoint_id)
            return _endpoint(row) if row is not None else None

    def list(self, *, enabled_only: bool = True) -> list[Endpoint]:
        with self._sessions() as s:
            return [_endpoint(r) for r in webhooks_repo.list_endpoints(s, enabled_only=enabled_only)]

    def save_health(self, endpoint_id: int, failing_since: datetime | None, consecutive_failures: int) -> None:
        with self._sessions() as s, s.begin():
            webhooks_repo.set_endpoint_health(s, endpoint_id, failing_since=failing_since,
                                              consecutive_failures=consecutive_failures)

    def disable(self, endpoint_id: int, reason: str, at: datetime) -> bool:
        with self._sessions() as s, s.begin():
            return webhooks_repo.disable_endpoint(s, endpoint_id, reason, at)


class SqlDeliveryLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, attempt: AttemptRecord) -> None:
        with self._sessions() as s, s.begin():
            webhooks_repo.record_delivery(s, endpoint_id=attempt.endpoint_id, message_id=attempt.message_id,
                                          attempt=attempt.attempt, status_code=attempt.status_code,
                                          error=attempt.error, duration_ms=attempt.duration_ms,
                                          created_at=attempt.created_at, delivered_at=attempt.delivered_at)

    def attempts(self, endpoint_id: int, message_id: str) -> int:
        with self._sessions() as s:
            return webhooks_repo.attempt_count(s, endpoint_id, message_id)

    def delivered(self, endpoint_id: int, message_id: str) -> bool:
        with self._sessions() as s:
            return webhooks_repo.was_delivered(s, endpoint_id, message_id)


# --- the dispatcher -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    attempt: int
    status_code: int | None
    error: str | None
    retry_after_s: float | None
    delivered: bool
    disabled: bool


class WebhookDispatcher:
    """Registers endpoints (SSRF-checked) and delivers messages to them with retries.

    ``deliver`` blocks until the message is delivered or the endpoint is disabled, sleeping with the injected
    ``sleep``; run one dispatcher loop (thread) per endpoint so a failing endpoint delays only its own
    messages. ``clock`` gives unix seconds (signature timestamps, log times, failure periods).
    """

    def __init__(self, store: EndpointStore | None = None, delivery_log: DeliveryLog | None = None,
                 config: DeliveryConfig | None = None, *, transport: Transport | None = None,
                 resolver: Resolver | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
                 on_disabled: Callable[[EndpointDisabled], None] | None = None, redact: Redactor | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.store: EndpointStore = store if store is not None else MemoryEndpointStore()
        self.log: DeliveryLog = delivery_log if delivery_log is not None else MemoryDeliveryLog()
        self.config = config or DeliveryConfig()
        self._transport: Transport = transport or PinnedTransport()
        self._resolver = resolver
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._on_disabled = on_disabled
        self._redact = redact
        self._environ: Mapping[str, str] = environ if environ is not None else os.environ

    # registration ---------------------------------------------------------------------------------------------

    def register(self, *, name: str, url: str, secret: str | None = None, secret_env: str | None = None,
                 allow_ranges: Sequence[str] = ()) -> Endpoint:
        """Check and store an endpoint; raises ``UnsafeURL`` or ``WebhookConfigError``."""
        if not name or len(name) > 200:
            raise WebhookConfigError("an endpoint needs a name of 1 to 200 characters")
        if (secret is None) == (secret_env is None):
            raise WebhookConfigError("give exactly one of secret and secret_env")
        if secret is not None:
            secret_bytes(secret)
        if secret_env is not None and not _ENV_NAME.match(secret_env):
            raise WebhookConfigError(f"secret_env must be an environment variable name, got {secret_env!r}")
        try:
            ranges = tuple(str(n) for n in parse_allow(allow_ranges))
        except ValueError as exc:
            raise WebhookConfigError(f"bad allow range: {exc}") from None
        resolve_url(url, self._allowed(ranges), resolver=self._resolver)
        return self.store.add(name=name, url=url, secret=secret, secret_env=secret_env, allow_ranges=ranges)

    def _allowed(self, endpoint_ranges: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.config.allow_ranges) + tuple(endpoint_ranges)

    # delivery ---------------------------------------------------------------------------------------------------

    def fan_out(self, message: WebhookMessage) -> list[DeliveryOutcome]:
        """Deliver to every enabled endpoint, one after another."""
        return [self.deliver(ep.id, message) for ep in self.store.list(enabled_only=True)]

    def deliver(self, endpoint_id: int, message: WebhookMessage) -> DeliveryOutcome:
        """Attempt until a 2xx, or until the endpoint is disabled (410, or failing for too long)."""
        ep = self._get(endpoint_id)
        if not ep.enabled:
            return DeliveryOutcome(endpoint_id, message.id, "endpoint_disabled", 0, ep.disabled_reason or "")
        if self.log.delivered(endpoint_id, message.id):
            return DeliveryOutcome(endpoint_id, message.id, "already_delivered", 0)
        body = encode_body(message, self._redact)
        attempt = self.log.attempts(endpoint_id, message.id)
        tried = 0
        while True:
            attempt += 1
            tried += 1
            result = self._attempt(endpoint_id, message.id, body, attempt)
            if result.delivered:
                return DeliveryOutcome(endpoint_id, message.id, "delivered", tried, f"HTTP {result.status_code}")
            if result.disabled:
                reason = self._get(endpoint_id).disabled_reason or ""
                return DeliveryOutcome(endpoint_id, message.id, "endpoint_disabled", tried, reason)
            if result.retry_after_s is not None:
                delay = min(result.retry_after_s, self.config.max_retry_after_s)
            else:
                delay = backoff_delay(attempt, self.config.base_s, self.config.cap_s, self._rng)
            self._sleep(delay)

    def attempt(self, endpoint_id: int, message: WebhookMessage) -> AttemptResult:
        """One attempt, logged and counted towards the endpoint's health; no waiting."""
        body = encode_body(message, self._redact)
        return self._attempt(endpoint_id, message.id, body, self.log.attempts(endpoint_id, message.id) + 1)

    def _attempt(self, endpoint_id: int, message_id: str, body: bytes, attempt: int) -> AttemptResult:
        ep = self._get(endpoint_id)
        if not ep.enabled:
            return AttemptResult(attempt, None, "endpoint disabled", None, False, True)
        now = self._clock()
        started_at = datetime.fromtimestamp(now, UTC)
        t0 = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            key = self._secret(ep)
            target = resolve_url(ep.url, self._allowed(ep.allow_ranges), resolver=self._resolver)
            headers = {**signed_headers(key, message_id, int(now), body), "user-agent": self.config.user_agent}
            response = self._transport.post(target, headers, body, self.config.timeout_s)
            status = response.status_code
            if status in (429, 503):
                retry_after = parse_retry_after(response.headers.get("retry-after"), now)
            if not 200 <= status < 300:
                error = f"HTTP {status}" + (" (redirect not followed)" if 300 <= status < 400 else "")
        except UnsafeURL as exc:
            error = f"refused by the SSRF guard: {exc.reason}"
        except WebhookConfigError as exc:
            error = str(exc)
        except httpx.TimeoutException:
            error = f"timed out after {self.config.timeout_s:g} s"
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}".replace(ep.url, "<url>")[:500]
        duration_ms = (time.perf_counter() - t0) * 1000.0
        ok = error is None
        self.log.record(AttemptRecord(endpoint_id, message_id, attempt, status, error, round(duration_ms, 3),
                                      started_at, started_at if ok else None))
        if ok:
            if ep.failing_since is not None or ep.consecutive_failures:
                self.store.save_health(endpoint_id, None, 0)
            log.info("webhook %s delivered to endpoint %s (%s) on attempt %d", message_id, ep.id, ep.name, attempt)
            return AttemptResult(attempt, status, None, None, True, False)
        log.warning("webhook %s to endpoint %s (%s), attempt %d failed: %s", message_id, ep.id, ep.name, attempt,
                    error)
        failures = ep.consecutive_failures + 1
        failing_since = ep.failing_since or started_at
        self.store.save_health(endpoint_id, failing_since, failures)
        reason = None
        if status == 410:
            reason = "the endpoint answered 410 Gone"
        elif (started_at - failing_since).total_seconds() >= self.config.disable_after_s:
            reason = (f"failing continuously for {_span((started_at - failing_since).total_seconds())} "
                      f"({failures} attempts; last: {error})")
        elif self.config.disable_after_failures is not None and failures >= self.config.disable_after_failures:
            reason = f"{failures} consecutive failed attempts (last: {error})"
        if reason is not None:
            self._disable(ep, reason, started_at, failures)
        return AttemptResult(attempt, status, error, retry_after, False, reason is not None)

    def _disable(self, ep: Endpoint, reason: str, at: datetime, failures: int) -> None:
        if self.store.disable(ep.id, reason, at):
            log.warning("webhook endpoint %s (%s) disabled: %s", ep.id, ep.name, reason)
            if self._on_disabled is not None:
                self._on_disabled(EndpointDisabled(ep.id, ep.name, reason, at, failures))

    def _get(self, endpoint_id: int) -> Endpoint:
        ep = self.store.get(endpoint_id)
        if ep is None:
            raise KeyError(f"no webhook endpoint {endpoint_id}")
        return ep

    def _secret(self, ep: Endpoint) -> str:
        if ep.secret is not None:
            return ep.secret
        value = self._environ.get(ep.secret_env or "")
        if not value:
            raise WebhookConfigError(f"environment variable {ep.secret_env} (the endpoint's secret) is not set")
        secret_bytes(value)
        return value


def _span(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"
