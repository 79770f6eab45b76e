"""Trigger policy: pure, from a model's finding history to a decision.

Hysteresis (M of the last N windows), a cooldown in event time, and a stable dedupe key, so a replayed
window yields the same decision and the same trigger id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

Action = Literal["alert", "retrain", "prompt_update", "fine_tune"]


class PolicyConfigError(ValueError):
    """A trigger policy that cannot work as configured."""


@dataclass(frozen=True)
class TriggerPolicy:
    action: Action = "retrain"
    m: int = 1
    n: int = 1
    cooldown_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.m <= self.n:
            raise PolicyConfigError(f"need 1 <= m <= n, got m={self.m}, n={self.n}")
        if self.cooldown_s < 0:
            raise PolicyConfigError(f"cooldown_s must be >= 0, got {self.cooldown_s}")


@dataclass(frozen=True)
class PolicyState:
    recent: tuple[bool, ...] = ()
    last_fired_at: datetime | None = None
    fired: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"recent": list(self.recent), "last_fired_at": self.last_fired_at.isoformat() if self.last_fired_at
                else None, "fired": self.fired}

    @classmethod
    def from_dict(cls, d: dict[str, object] | None) -> PolicyState:
        if not d:
            return cls()
        last = d.get("last_fired_at")
        return cls(recent=tuple(bool(x) for x in d.get("recent", ())),  # type: ignore[union-attr]
                   last_fired_at=datetime.fromisoformat(str(last)) if last else None,
                   fired=int(d.get("fired", 0)))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Decision:
    fire: bool
    reason: str
    state: PolicyState = field(default_factory=PolicyState)


def decide(policy: TriggerPolicy, state: PolicyState, condition: bool, at: datetime) -> Decision:
    """Record one window's condition and say whether to fire the action now."""
    recent = (state.recent + (condition,))[-policy.n:]
    hits = sum(recent)
    if hits < policy.m or not condition:
        return Decision(False, f"condition in {hits} of last {len(recent)} windows (needs {policy.m} of {policy.n})",
                        PolicyState(recent, state.last_fired_at, state.fired))
    if state.last_fired_at is not None and at - state.last_fired_at < timedelta(seconds=policy.cooldown_s):
        return Decision(False, f"in cooldown until {(state.last_fired_at + timedelta(seconds=policy.cooldown_s)).isoformat()}",
                        PolicyState(recent, state.last_fired_at, state.fired))
    return Decision(True, f"condition in {hits} of last {len(recent)} windows",
                    PolicyState(recent, at, state.fired + 1))


def trigger_id(dedupe_key: str) -> str:
    """A stable id derived from the dedupe key: a replay publishes the same id."""
    return hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]
