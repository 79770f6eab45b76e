"""Export the JSON Schemas of events v1 (committed under schemas/, checked by a test)."""

from __future__ import annotations

import json
from pathlib import Path

from streams.events import EVENT_MODELS


def render() -> dict[str, str]:
    return {f"{name}.v1.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
            for name, model in EVENT_MODELS.items()}


def export(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in render().items():
        path = folder / fname
        path.write_text(text)
        written.append(path)
    return written
