"""Concept drift on a stream of per-event numbers (errors, losses): ADWIN and Page–Hinkley.

Both are online: ``update(state, values) -> (new_state, detection indices)``, with states that round-trip
through JSON. Import the modules (``detectors.concept.adwin``, ``detectors.concept.page_hinkley``) for
``init_state`` and ``update``.
"""

from __future__ import annotations

from detectors.concept import adwin, page_hinkley
from detectors.concept.adwin import AdwinConfig, AdwinState
from detectors.concept.page_hinkley import PageHinkleyConfig, PageHinkleyState

__all__ = ["AdwinConfig", "AdwinState", "PageHinkleyConfig", "PageHinkleyState", "adwin", "page_hinkley"]
