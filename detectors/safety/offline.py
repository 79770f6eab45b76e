"""``OfflineProvider``: the offline heuristics as a ``SafetyProvider``. Pure, no network, no clock.

Per item it runs the injection heuristic on the prompt (``injection_attack``) and on each retrieved document
(``indirect_attack``), the toxicity heuristic on prompt and response (each bucket's score is the larger of the
two), and the PII finder on the response (``pii_kinds``: what would leak) and on the prompt (in ``details``).
It measures no illicit bucket, no protected material and no groundedness: those stay unset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from detectors.base import ConfigError
from detectors.safety.base import SafetyItem, SafetyVerdict
from detectors.safety.injection import InjectionConfig, score_documents, score_injection
from detectors.safety.redact import KINDS, Span, find_pii
from detectors.safety.toxicity import BUCKETS, ToxicityConfig, score_toxicity

PROVIDER_NAME = "offline"


@dataclass(frozen=True)
class OfflineConfig:
    """``pii_kinds`` limits which PII kinds count (``None``: all of ``redact.KINDS``)."""

    injection: InjectionConfig = field(default_factory=InjectionConfig)
    toxicity: ToxicityConfig = field(default_factory=ToxicityConfig)
    pii_kinds: frozenset[str] | None = None
    harm_on_prompt: bool = True

    def __post_init__(self) -> None:
        if self.pii_kinds is not None:
            object.__setattr__(self, "pii_kinds", frozenset(self.pii_kinds))
            unknown = self.pii_kinds - set(KINDS)
            if unknown:
                raise ConfigError(f"unknown PII kinds {sorted(unknown)}; expected some of {KINDS}")


class OfflineProvider:
    """The heuristics behind the ``SafetyProvider`` interface; a failure on one item is that item's error."""

    def __init__(self, config: OfflineConfig | None = None) -> None:
        self.config = config or OfflineConfig()

    @property
    def name(self) -> str:
        return PROVIDER_NAME

    def __repr__(self) -> str:
        return f"OfflineProvider(config={self.config!r})"

    def analyze(self, items: Sequence[SafetyItem]) -> list[SafetyVerdict]:
        out: list[SafetyVerdict] = []
        for item in items:
            try:
                out.append(self.analyze_one(item))
            except Exception as exc:  # noqa: BLE001 - a heuristic bug must not drop the event
                out.append(
                    SafetyVerdict.failed(
                        item.id, PROVIDER_NAME, f"{PROVIDER_NAME}: internal error ({type(exc).__name__})"
                    )
                )
        return out

    def analyze_one(self, item: SafetyItem) -> SafetyVerdict:
        cfg = self.config
        inj = score_injection(item.prompt, "prompt", cfg.injection)
        docs = score_documents(item.documents, cfg.injection) if item.documents else None
        response_tox = score_toxicity(item.response, cfg.toxicity)
        harm = dict(response_tox.scores)
        rules = {b: set(m) for b, m in response_tox.matches.items()}
        if cfg.harm_on_prompt and item.prompt:
            prompt_tox = score_toxicity(item.prompt, cfg.toxicity)
            for b in BUCKETS:
                harm[b] = max(harm[b], prompt_tox.scores[b])
                rules[b].update(prompt_tox.matches[b])
        flagged = tuple(b for b in BUCKETS if harm[b] >= cfg.toxicity.thresholds[b])
        details: dict[str, object] = {
            "injection_score": inj.score,
            "injection_rules": list(inj.rules),
            "prompt_pii_kinds": self._kinds(find_pii(item.prompt)),
            "harm_rules": {b: sorted(r) for b, r in rules.items() if r},
        }
        if docs is not None:
            details["document_injection_score"] = docs.score
            details["document_rules"] = list(docs.rules)
        return SafetyVerdict(
            item_id=item.id,
            provider=PROVIDER_NAME,
            harm=harm,
            flagged=flagged,
            injection_attack=inj.attack,
            indirect_attack=None if docs is None else docs.attack,
            pii_kinds=tuple(self._kinds(find_pii(item.response))),
            details=details,
        )

    def _kinds(self, spans: Iterable[Span]) -> list[str]:
        kinds = {s.kind for s in spans}
        if self.config.pii_kinds is not None:
            kinds &= self.config.pii_kinds
        return sorted(kinds)


__all__ = ["PROVIDER_NAME", "OfflineConfig", "OfflineProvider"]
