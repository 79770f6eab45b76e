"""Dependencies point one way: detectors/ is pure math; storage/ imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "detectors": {"kafka", "aiokafka", "faust", "sqlalchemy", "alembic", "streams", "storage", "retrain", "opsloop",
                  "requests", "httpx", "logging.config"},
    "storage": {"kafka", "aiokafka", "faust", "streams", "retrain", "opsloop", "detectors"},
    "retrain": {"streams", "opsloop", "faust"},
    "streams": {"opsloop"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        if package == "detectors" and "providers" in path.parts:
            continue  # remote safety providers are the one allowed exception
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert bad == []
