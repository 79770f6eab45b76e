"""Calling a remote safety service without letting it hurt the stream: retries, a circuit breaker, a call
budget and sampling. The clock, the sleep and the random source are injected, so tests run in no time.

- Retries: up to ``max_attempts`` per call, for retryable failures only (connection errors, timeouts, 408,
  429, 500, 502, 503, 504). The wait is exponential with jitter (``base_delay_s * 2**k``, capped at
  ``max_delay_s``, times a random factor in [0.5, 1]). A 429 or 503 with ``Retry-After`` (seconds or an HTTP date; also
  ``retry-after-ms``) waits exactly that long, unless it exceeds ``max_retry_after_s``: then the call fails
  at once rather than stall the stream.
- Circuit breaker: ``failure_threshold`` consecutive failed calls (after their retries; any failure counts,
  401 included) open it. While open, calls fail at once with "circuit open". After ``cooldown_s`` one trial
  call is let through (half-open): success closes the breaker, failure opens it for another cool-down.
- Budget: at most ``budget_calls`` calls per fixed window of ``budget_window_s``; an item whose calls do not
  fit is skipped (``budget_exhausted``), not failed.
- Sampling: an item is sent with probability ``sample_rate``, decided by a hash of its id, so a replayed
  window samples the same items.

Failures surface as ``ProviderCallError`` with a short reason built from the status code and the exception
type only: never the request, the response body or a key.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from detectors.base import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class SecretLike(Protocol):
    def get_secret_value(self) -> str: ...


def secret_value(secret: str | SecretLike) -> str:
    """The plain text of a key given as ``str`` or pydantic ``SecretStr``; refuses empty keys."""
    value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("an API key is required (got an empty value)")
    return value


def scrub(text: str, *secrets: str) -> str:
    """``text`` with every secret replaced by ``***`` (a last line of defence for error texts)."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


class ProviderCallError(Exception):
    """A remote call failed for good. ``reason`` is safe to log and to store in a verdict."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def parse_retry_after(headers: object, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``x-ms-retry-after-ms`` / ``Retry-After`` (seconds or an
    HTTP date), or None. ``headers`` is any mapping with a case-insensitive ``get``."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        raw = get(name)
        if raw:
            try:
                return max(0.0, float(raw) / 1000.0)
            except ValueError:
                pass
    raw = get("retry-after") or get("Retry-After")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class ResilienceConfig:
    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 30.0
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    budget_calls: int | None = None
    budget_window_s: float = 60.0
    sample_rate: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be an int >= 1, got {self.max_attempts!r}")
        if not isinstance(self.failure_threshold, int) or self.failure_threshold < 1:
            raise ConfigError(f"failure_threshold must be an int >= 1, got {self.failure_threshold!r}")
        for name in ("base_delay_s", "max_delay_s", "max_retry_after_s", "cooldown_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if self.budget_window_s <= 0:
            raise ConfigError("budget_window_s must be > 0")
        if self.budget_calls is not None and (
            not isinstance(self.budget_calls, int) or self.budget_calls < 0
        ):
            raise ConfigError(f"budget_calls must be None or an int >= 0, got {self.budget_calls!r}")
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be in [0, 1], got {self.sample_rate!r}")


class CircuitBreaker:
    """Consecutive-failure breaker with a cool-down and a single half-open trial."""

    def __init__(self, failure_threshold: int, cooldown_s: float, clock: Callable[[], float]) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at: float | None = None

    def allow(self) -> bool:
        if self.state == OPEN:
            assert self.opened_at is not None
            if self._clock() - self.opened_at < self.cooldown_s:
                return False
            self.state = HALF_OPEN
            return True
        return True

    def record_success(self) -> None:
        self.state, self.failures, self.opened_at = CLOSED, 0, None

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.failure_threshold:
            if self.state != OPEN:
                logger.warning("circuit breaker opened after %d consecutive failures", self.failures)
            self.state, self.opened_at = OPEN, self._clock()


class CallBudget:
    """At most ``limit`` calls per fixed window of ``window_s`` seconds (``None``: unlimited)."""

    def __init__(self, limit: int | None, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._window: int | None = None
        self.used = 0

    def try_spend(self, n: int) -> bool:
        if self.limit is None:
            return True
        window = int(self._clock() // self.window_s)
        if window != self._window:
            self._window, self.used = window, 0
        if self.used + n > self.limit:
            return False
        self.used += n
        return True


def sampled(item_id: str, rate: float) -> bool:
    """Whether ``item_id`` falls in a ``rate`` sample; stable across processes and replays."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    h = int.from_bytes(hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest(), "big")
    return h / 2.0**64 < rate


class Resilience:
    """Retries, breaker, budget and sampling for one provider. Not thread-safe: one per worker thread."""

    def __init__(
        self,
        config: ResilienceConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or ResilienceConfig()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.breaker = CircuitBreaker(self.config.failure_threshold, self.config.cooldown_s, clock)
        self.budget = CallBudget(self.config.budget_calls, self.config.budget_window_s, clock)

    def sampled(self, item_id: str) -> bool:
        return sampled(item_id, self.config.sample_rate)

    def reserve(self, n_calls: int) -> bool:
        return self.budget.try_spend(n_calls)

    def backoff(self, retry: int) -> float:
        cap = min(self.config.max_delay_s, self.config.base_delay_s * 2.0**retry)
        return cap * (0.5 + 0.5 * self._rng.random())

    def call(self, fn: Callable[[], T], classify: Callable[[BaseException], ProviderCallError]) -> T:
        """``fn()`` with retries, through the breaker; raises ``ProviderCallError`` when it fails for good."""
        if not self.breaker.allow():
            raise ProviderCallError("circuit open")
        attempt = 0
        while True:
            attempt += 1
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - classified below; nothing escapes unclassified
                err = exc if isinstance(exc, ProviderCallError) else classify(exc)
                if not err.retryable or attempt >= self.config.max_attempts:
                    self.breaker.record_failure()
                    raise err from None
                delay = err.retry_after if err.retry_after is not None else self.backoff(attempt - 1)
                if delay > self.config.max_retry_after_s:
                    self.breaker.record_failure()
                    raise ProviderCallError(
                        f"{err.reason} (retry-after {delay:.0f}s over the "
                        f"{self.config.max_retry_after_s:.0f}s limit)",
                        status=err.status,
                    ) from None
                self._sleep(delay)
                continue
            self.breaker.record_success()
            return result


def http_failure(status: int | None, kind: str, headers: object = None) -> ProviderCallError:
    """The ``ProviderCallError`` for an HTTP status (``None``: no answer, e.g. a connection error)."""
    if status is None:
        return ProviderCallError(f"no response ({kind})", retryable=True)
    retry_after = parse_retry_after(headers) if status in (429, 503) and headers is not None else None
    return ProviderCallError(
        f"http {status}", status=status, retryable=status in RETRYABLE_STATUS, retry_after=retry_after
    )


__all__ = [
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "CallBudget",
    "CircuitBreaker",
    "ProviderCallError",
    "Resilience",
    "ResilienceConfig",
    "http_failure",
    "parse_retry_after",
    "sampled",
    "scrub",
    "secret_value",
]
