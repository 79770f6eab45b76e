"""Signed webhooks end to end: findings and the trigger reach an endpoint that fails for a while, then
recovers; every alert arrives, each webhook-id is accepted once, every signature verifies with the
reference `standardwebhooks` package."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from opsloop.simulate import Scenario, events
from retrain.webhooks import generate_secret
from tests.e2e.harness import Loop, publish_all, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.e2e]

FAIL_FOR_S = 6.0  # the endpoint answers 500 for this long after the first request reaches it


class Receiver:
    def __init__(self) -> None:
        self.started: float | None = None
        self.attempts: list[int] = []
        self.accepted: dict[str, tuple[dict[str, str], bytes]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    if receiver.started is None:
                        receiver.started = time.monotonic()
                    failing = time.monotonic() - receiver.started < FAIL_FOR_S
                    receiver.attempts.append(500 if failing else 200)
                    if not failing:
                        receiver.accepted.setdefault(self.headers["webhook-id"],
                                                     ({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def test_every_alert_delivered_once_with_valid_signatures(kafka_bootstrap: str, pg_url: str,
                                                          tmp_path: Path) -> None:
    from standardwebhooks import Webhook

    secret = generate_secret()
    loop = Loop(kafka_bootstrap, pg_url, tmp_path, extra_env={"HOOK_SECRET": secret,
                                                              "OPSLOOP_WORKER_REFERENCE_SIZE": "2000"})
    receiver = Receiver()
    try:
        add = loop.spawn("webhooks", "add", "--name", "oncall", "--url", receiver.url, "--secret-env",
                         "HOOK_SECRET", "--allow", "127.0.0.0/8", name="add")
        assert add.wait(timeout=120) == 0, loop.logs()
        loop.spawn("webhooks", "run", "--retry-base-s", "0.5", "--retry-cap-s", "4", name="webhooks")
        loop.worker(relay=True)
        sc = Scenario(n_events=6000, drift_after=4000)
        with loop.publisher() as pub:
            n = publish_all(pub, [(e.model.name, e.model_dump_json().encode()) for e in events(sc)],
                            loop.topics.predictions)
        loop.wait_applied(n)
        n_findings = len(loop.finding_keys())  # drift, and values beyond the reference's range, in #2 and #3
        assert len(loop.findings()) == 2 and loop.trigger_count() == 1  # windows #2 and #3 drift, one trigger
        expected = n_findings + 1
        wait_for(lambda: len(receiver.accepted) >= expected, 180, f"{expected} webhooks accepted")
        time.sleep(2)  # nothing more may arrive
        assert len(receiver.accepted) == expected
        assert 500 in receiver.attempts, "the endpoint's failing period must have been exercised"
        hook = Webhook(secret)
        types = []
        for _mid, (headers, body) in receiver.accepted.items():
            payload = hook.verify(body, headers)  # raises on a bad signature
            types.append(payload["type"])
            assert set(json.loads(body)["data"]) >= {"model", "severity", "summary"}
        assert sorted(types) == ["finding.created"] * n_findings + ["trigger.created"]
    finally:
        receiver.server.shutdown()
        loop.close()
