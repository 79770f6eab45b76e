"""The CLI: bad input and bad configuration give one clear line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from opsloop.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "opsloop.cli", *args], capture_output=True, text=True, env=e,
                          timeout=120)


def test_unknown_command_exits_non_zero() -> None:
    r = run("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_bad_setting_names_the_variable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = run("findings", env={"OPSLOOP_WORKER_WINDOW_SIZE": "-3", "OPSLOOP_DB_URL": f"sqlite:///{tmp_path}/x.db"})
    assert r.returncode == 2
    assert "OPSLOOP_WORKER_WINDOW_SIZE" in r.stderr and "Traceback" not in r.stderr


def test_bad_db_url_is_refused() -> None:
    r = run("findings", env={"OPSLOOP_DB_URL": "mysql://root:hunter2@db/x"})
    assert r.returncode == 2 and "OPSLOOP_DB_URL" in r.stderr
    assert "hunter2" not in r.stderr


def test_findings_on_empty_database(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPSLOOP_DB_URL", f"sqlite:///{tmp_path}/x.db")
    assert main(["findings"]) == 0
    assert capsys.readouterr().out == ""


def test_redact_url_hides_password() -> None:
    from opsloop.wiring import redact_url

    assert redact_url("postgresql+psycopg://u:s3cret@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"


@pytest.mark.parametrize("argv", [["topics"], ["db", "sideways"]])
def test_argument_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
