"""Safety rates of one window of verdicts, overall and by provider. Pure.

Each rate has its own denominator: the verdicts that measured that thing (a provider that does not look for
PII does not dilute the PII leak rate; an item skipped by sampling or budget counts nowhere but ``n_skipped``).

- ``injection_attempt_rate``: prompts judged an injection attempt;
- ``indirect_attack_rate``: items whose retrieved documents carry an attack;
- ``pii_leak_rate``: responses with personal data or secrets (``pii_kind_counts`` by kind);
- ``harm_rates``: per harm bucket, the share of items flagged;
- ``protected_material_rate``, ``ungrounded_rate`` (ungrounded share at or over ``ungrounded_threshold``);
- ``provider_error_rate``: verdicts carrying an error among those attempted (not skipped).

``overall`` merges the providers per item: an item is an injection attempt if any provider that measured it
says so, its PII kinds are the union, and so on; its error rate is over all attempted verdicts. ``alerts``
name the rates over their configured maxima, checked only where the denominator reaches ``min_items``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from detectors.base import ConfigError, Status, json_safe
from detectors.safety.base import HARM_BUCKETS, SafetyVerdict, check_unit_interval

DETECTOR_NAME = "safety.window"
OVERALL = "overall"


@dataclass(frozen=True)
class SafetyWindowConfig:
    min_items: int = 20
    max_injection_rate: float = 0.05
    max_indirect_rate: float = 0.02
    max_pii_leak_rate: float = 0.01
    max_harm_rate: Mapping[str, float] = field(default_factory=lambda: {b: 0.01 for b in HARM_BUCKETS})
    max_protected_material_rate: float = 0.01
    max_ungrounded_rate: float = 0.1
    ungrounded_threshold: float = 0.5
    max_provider_error_rate: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.min_items, int) or self.min_items < 1:
            raise ConfigError(f"min_items must be a positive int, got {self.min_items!r}")
        for name in (
            "max_injection_rate",
            "max_indirect_rate",
            "max_pii_leak_rate",
            "max_protected_material_rate",
            "max_ungrounded_rate",
            "ungrounded_threshold",
            "max_provider_error_rate",
        ):
            check_unit_interval(name, getattr(self, name))
        unknown = set(self.max_harm_rate) - set(HARM_BUCKETS)
        if unknown:
            raise ConfigError(f"unknown harm buckets {sorted(unknown)}; expected some of {HARM_BUCKETS}")
        merged = {b: 0.01 for b in HARM_BUCKETS} | dict(self.max_harm_rate)
        for b, v in merged.items():
            check_unit_interval(f"max_harm_rate[{b}]", v)
        object.__setattr__(self, "max_harm_rate", MappingProxyType(merged))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json_safe({k: getattr(self, k) for k in self.__dataclass_fields__})
        return out


@dataclass(frozen=True)
class Rate:
    """``count`` of ``n`` measured; ``value`` is None when nothing was measured."""

    count: int
    n: int

    @property
    def value(self) -> float | None:
        return self.count / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "count": self.count, "n": self.n}


@dataclass(frozen=True)
class SafetyRates:
    n_items: int
    n_attempted: int
    n_skipped: int
    injection_attempt_rate: Rate
    indirect_attack_rate: Rate
    pii_leak_rate: Rate
    pii_kind_counts: Mapping[str, int]
    harm_rates: Mapping[str, Rate]
    protected_material_rate: Rate
    ungrounded_rate: Rate
    mean_ungrounded: float | None
    provider_error_rate: Rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_items": self.n_items,
            "n_attempted": self.n_attempted,
            "n_skipped": self.n_skipped,
            "injection_attempt_rate": self.injection_attempt_rate.to_dict(),
            "indirect_attack_rate": self.indirect_attack_rate.to_dict(),
            "pii_leak_rate": self.pii_leak_rate.to_dict(),
            "pii_kind_counts": dict(self.pii_kind_counts),
            "harm_rates": {b: r.to_dict() for b, r in self.harm_rates.items()},
            "protected_material_rate": self.protected_material_rate.to_dict(),
            "ungrounded_rate": self.ungrounded_rate.to_dict(),
            "mean_ungrounded": json_safe(self.mean_ungrounded),
            "provider_error_rate": self.provider_error_rate.to_dict(),
        }


@dataclass(frozen=True)
class SafetyWindowResult:
    detector: str
    status: Status
    overall: SafetyRates
    by_provider: Mapping[str, SafetyRates]
    alerts: tuple[str, ...]
    config: SafetyWindowConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "status": self.status.value,
            "overall": self.overall.to_dict(),
            "by_provider": {p: r.to_dict() for p, r in self.by_provider.items()},
            "alerts": list(self.alerts),
            "config": self.config.to_dict(),
        }


@dataclass
class _Merged:
    """One item's facts, merged over the providers that measured them."""

    injection: bool | None = None
    indirect: bool | None = None
    pii: set[str] | None = None
    harm_measured: set[str] = field(default_factory=set)
    flagged: set[str] = field(default_factory=set)
    protected: bool | None = None
    ungrounded: float | None = None
    skipped: bool = True


def _or(a: bool | None, b: bool | None) -> bool | None:
    return b if a is None else (a if b is None else (a or b))


def _merge(verdicts: Iterable[SafetyVerdict]) -> list[_Merged]:
    items: dict[str, _Merged] = {}
    for v in verdicts:
        m = items.setdefault(v.item_id, _Merged())
        if v.skipped is not None:
            continue
        m.skipped = False
        m.injection = _or(m.injection, v.injection_attack)
        m.indirect = _or(m.indirect, v.indirect_attack)
        if v.pii_kinds is not None:
            m.pii = (m.pii or set()) | set(v.pii_kinds)
        m.harm_measured |= set(v.harm)
        m.flagged |= set(v.flagged)
        m.protected = _or(m.protected, v.protected_material)
        if v.ungrounded is not None:
            m.ungrounded = max(m.ungrounded or 0.0, v.ungrounded)
    return list(items.values())


def _rates(merged: Sequence[_Merged], n_attempted: int, n_errors: int, threshold: float) -> SafetyRates:
    done = [m for m in merged if not m.skipped]

    def rate(values: Iterable[bool | None]) -> Rate:
        measured = [x for x in values if x is not None]
        return Rate(sum(measured), len(measured))

    pii = [m.pii for m in done if m.pii is not None]
    kinds = Counter(k for s in pii for k in s)
    grounded = [m.ungrounded for m in done if m.ungrounded is not None]
    harm = {
        b: Rate(
            sum(b in m.flagged for m in done if b in m.harm_measured), sum(b in m.harm_measured for m in done)
        )
        for b in HARM_BUCKETS
    }
    return SafetyRates(
        n_items=len(merged),
        n_attempted=n_attempted,
        n_skipped=len(merged) - len(done),
        injection_attempt_rate=rate(m.injection for m in done),
        indirect_attack_rate=rate(m.indirect for m in done),
        pii_leak_rate=Rate(sum(bool(s) for s in pii), len(pii)),
        pii_kind_counts=MappingProxyType(dict(sorted(kinds.items()))),
        harm_rates=MappingProxyType(harm),
        protected_material_rate=rate(m.protected for m in done),
        ungrounded_rate=Rate(sum(u >= threshold for u in grounded), len(grounded)),
        mean_ungrounded=sum(grounded) / len(grounded) if grounded else None,
        provider_error_rate=Rate(n_errors, n_attempted),
    )


def _alerts(scope: str, r: SafetyRates, cfg: SafetyWindowConfig) -> list[str]:
    checks: list[tuple[str, Rate, float]] = [
        ("injection_attempt_rate", r.injection_attempt_rate, cfg.max_injection_rate),
        ("indirect_attack_rate", r.indirect_attack_rate, cfg.max_indirect_rate),
        ("pii_leak_rate", r.pii_leak_rate, cfg.max_pii_leak_rate),
        ("protected_material_rate", r.protected_material_rate, cfg.max_protected_material_rate),
        ("ungrounded_rate", r.ungrounded_rate, cfg.max_ungrounded_rate),
        ("provider_error_rate", r.provider_error_rate, cfg.max_provider_error_rate),
    ]
    checks += [(f"harm_rate:{b}", r.harm_rates[b], cfg.max_harm_rate[b]) for b in HARM_BUCKETS]
    return [
        f"{scope}:{name}"
        for name, rate, limit in checks
        if rate.n >= cfg.min_items and rate.value is not None and rate.value > limit
    ]


def summarize(
    verdicts: Sequence[SafetyVerdict], config: SafetyWindowConfig | None = None
) -> SafetyWindowResult:
    """Rates of one window of verdicts (any mix of providers and items)."""
    cfg = config or SafetyWindowConfig()
    by_provider: dict[str, list[SafetyVerdict]] = defaultdict(list)
    for v in verdicts:
        by_provider[v.provider].append(v)

    def attempted(vs: Sequence[SafetyVerdict]) -> tuple[int, int]:
        tried = [v for v in vs if v.skipped is None]
        return len(tried), sum(bool(v.errors) for v in tried)

    per = {}
    for provider in sorted(by_provider):
        vs = by_provider[provider]
        n_att, n_err = attempted(vs)
        per[provider] = _rates(_merge(vs), n_att, n_err, cfg.ungrounded_threshold)
    n_att, n_err = attempted(verdicts)
    overall = _rates(_merge(verdicts), n_att, n_err, cfg.ungrounded_threshold)
    alerts = _alerts(OVERALL, overall, cfg)
    for provider, rates in per.items():
        alerts += [a for a in _alerts(provider, rates, cfg) if a.endswith("provider_error_rate")]
    n_done = overall.n_items - overall.n_skipped
    status = Status.OK if n_done >= cfg.min_items else Status.INSUFFICIENT_DATA
    return SafetyWindowResult(DETECTOR_NAME, status, overall, MappingProxyType(per), tuple(alerts), cfg)


__all__ = [
    "DETECTOR_NAME",
    "OVERALL",
    "Rate",
    "SafetyRates",
    "SafetyWindowConfig",
    "SafetyWindowResult",
    "summarize",
]
