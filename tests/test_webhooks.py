"""Webhooks: Standard Webhooks signatures (checked with the reference package), retries against a real local HTTP
server, Retry-After, 410, redirects, endpoint disabling, and the SSRF guard at registration and at send time."""

from __future__ import annotations

import datetime as dt
import random
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from retrain import ssrf
from retrain.webhooks import (
    DeliveryConfig,
    EndpointDisabled,
    HttpResult,
    MemoryDeliveryLog,
    MemoryEndpointStore,
    PinnedTransport,
    SqlDeliveryLog,
    SqlEndpointStore,
    WebhookConfigError,
    WebhookDispatcher,
    WebhookMessage,
    backoff_delay,
    encode_body,
    finding_message,
    generate_secret,
    parse_retry_after,
    secret_bytes,
    sign,
    signed_headers,
    trigger_message,
    verify,
)
from storage import webhooks_repo
from storage.db import make_engine, migrate, session_factory

LOOPBACK = ("127.0.0.0/8",)
PUBLIC_IP = "93.184.216.34"  # a global address; nothing is ever sent to it in these tests


# --- a local receiver -------------------------------------------------------------------------------------


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str]]


@dataclass
class Receiver:
    base: str
    port: int
    requests: list[Request] = field(default_factory=list)
    app: Callable[[Request], Reply] = lambda r: (200, {})

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.base.split('://')[0]}://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


@contextmanager
def _serve(context: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with lock:
                receiver.requests.append(req)
                status, headers = receiver.app(req)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    receiver = Receiver(f"{'https' if context else 'http'}://127.0.0.1:{port}", port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _serve() as r:
        yield r


class FakeClock:
    """Unix seconds that move only when the dispatcher sleeps; starts at the real time so the reference
    verifier's 5-minute timestamp tolerance holds."""

    def __init__(self) -> None:
        self.now = float(int(dt.datetime.now(dt.UTC).timestamp()))
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _alert(i: int) -> WebhookMessage:
    return finding_message(finding_key=f"credit-risk:3:drift.features:{i}", model="credit-risk", model_version="3",
                           detector="drift.features", status="drift", severity="critical",
                           summary=f"window {i}: 4 of 12 features drifted", finding_id=i,
                           occurred_at=dt.datetime(2026, 11, 29, 12, i, tzinfo=dt.UTC),
                           links={"finding": f"https://opsloop.example/findings/{i}"})


def _dispatcher(clock: FakeClock, **kw: Any) -> WebhookDispatcher:
    config = kw.pop("config", DeliveryConfig(allow_ranges=LOOPBACK, timeout_s=5))
    return WebhookDispatcher(config=config, clock=clock, sleep=clock.sleep, rng=random.Random(7), **kw)


# --- signatures ---------------------------------------------------------------------------------------------


def test_signature_matches_the_reference_implementation() -> None:
    secret = generate_secret()
    body = encode_body(_alert(1))
    now = int(dt.datetime.now(dt.UTC).timestamp())
    headers = signed_headers(secret, "finding_abc", now, body)
    assert Webhook(secret).verify(body, headers) == __import__("json").loads(body)
    ref = Webhook(secret).sign("finding_abc", dt.datetime.fromtimestamp(now, dt.UTC), body.decode())
    assert ref == sign(secret, "finding_abc", now, body)
    assert headers["content-type"] == "application/json"


def test_verify_is_strict() -> None:
    secret, other = generate_secret(), generate_secret()
    body, now = b'{"a":1}', 1_700_000_000
    good = sign(secret, "msg_1", now, body)
    assert verify(secret, "msg_1", now, body, good, now=now)
    assert verify(secret, "msg_1", str(now), body, f"v1a,xxxx {sign(other, 'msg_1', now, body)} {good}", now=now)
    assert not verify(secret, "msg_1", now, b'{"a":2}', good, now=now)  # body changed
    assert not verify(secret, "msg_2", now, body, good, now=now)  # id changed
    assert not verify(other, "msg_1", now, body, good, now=now)  # other key
    assert not verify(secret, "msg_1", now, body, good, now=now + 301)  # replayed too late
    assert not verify(secret, "msg_1", now, body, "v1,not-base64!", now=now)
    assert not verify(secret, "msg_1", "x", body, good, now=now)


def test_secrets_are_checked_and_never_echoed() -> None:
    assert len(secret_bytes(generate_secret())) == 32
    for bad in ("whsec_" + "QUJD", "sk_" + generate_secret()[6:], "whsec_%%%notbase64"):
        with pytest.raises(WebhookConfigError) as info:
            secret_bytes(bad)
        assert bad not in str(info.value)
    with pytest.raises(ValueError):
        sign(generate_secret(), "has.dot", 1, b"{}")  # "." delimits the signed content


@given(st.integers(min_value=1, max_value=200), st.floats(0.01, 10), st.floats(10, 600), st.integers(0, 2**32))
def test_backoff_is_full_jitter_under_the_cap(attempt: int, base: float, cap: float, seed: int) -> None:
    delay = backoff_delay(attempt, base, cap, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_retry_after_forms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:00 GMT", now) == pytest.approx(100.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_payload_is_thin_and_redacted_before_signing(receiver: Receiver) -> None:
    clock = FakeClock()
    secret = generate_secret()

    def redact(payload: dict[str, Any]) -> dict[str, Any]:
        data = dict(payload["data"])
        data["summary"] = data["summary"].replace("jane@example.com", "[email]")
        return {**payload, "data": data}

    d = _dispatcher(clock, redact=redact)
    ep = d.register(name="ops", url=receiver.url(), secret=secret)
    msg = trigger_message(trigger_id="t1", model="credit-risk", model_version="3", action="retrain",
                          status="pending", reason="reported by jane@example.com",
                          occurred_at=dt.datetime(2026, 11, 29, tzinfo=dt.UTC))
    assert d.deliver(ep.id, msg).status == "delivered"
    (req,) = receiver.requests
    payload = Webhook(secret).verify(req.body, req.headers)
    assert payload["type"] == "trigger.created" and payload["timestamp"] == "2026-11-29T00:00:00Z"
    assert set(payload["data"]) == {"trigger_id", "model", "model_version", "action", "status", "severity",
                                    "summary", "links"}
    assert b"jane@example.com" not in req.body and payload["data"]["summary"] == "reported by [email]"


# --- delivery -------------------------------------------------------------------------------------------------


def _sql_stores(tmp_path: Path) -> tuple[SqlEndpointStore, SqlDeliveryLog, Any]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hooks.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    return SqlEndpointStore(sessions), SqlDeliveryLog(sessions), sessions


def test_outage_of_60_seconds_then_recovery_delivers_every_alert_once(receiver: Receiver, tmp_path: Path) -> None:
    """T5: the endpoint fails for 60 s (some requests are processed before the 500, as after a crash), then
    recovers. Every alert arrives with a valid signature and is accepted exactly once by id."""
    clock = FakeClock()
    start = clock.now
    secret = generate_secret()
    verifier = Webhook(secret)
    accepted: dict[str, int] = {}
    duplicates: list[str] = []
    bad_signatures: list[str] = []

    def app(req: Request) -> Reply:
        try:
            verifier.verify(req.body, req.headers)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            bad_signatures.append(str(exc))
            return 400, {}
        msg_id = req.headers["webhook-id"]
        failing = clock.now < start + 60
        if failing and len(receiver.requests) % 2:
            return 500, {}  # down before processing
        if msg_id in accepted:  # dedupe on webhook-id: a repeat is acknowledged, not processed again
            duplicates.append(msg_id)
        else:
            accepted[msg_id] = 1
        return (500, {}) if failing else (200, {})  # while failing: processed, then the reply is lost

    receiver.app = app
    store, dlog, sessions = _sql_stores(tmp_path)
    disabled: list[EndpointDisabled] = []
    d = _dispatcher(clock, store=store, delivery_log=dlog, on_disabled=disabled.append)
    ep = d.register(name="pager", url=receiver.url(), secret=secret)
    alerts = [_alert(i) for i in range(5)]
    outcomes = [d.deliver(ep.id, a) for a in alerts]

    assert [o.status for o in outcomes] == ["delivered"] * 5
    assert outcomes[0].attempts > 3 and clock.now - start >= 60
    assert bad_signatures == [] and disabled == []
    assert accepted == {a.id: 1 for a in alerts}
    assert duplicates  # the sender did retry ids the receiver had already processed
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests if r.headers["webhook-id"] == alerts[0].id}) > 1
    with sessions() as s:
        rows = webhooks_repo.list_deliveries(s, ep.id, alerts[0].id, limit=1000)
        assert len(rows) == outcomes[0].attempts
        assert sorted(r.attempt for r in rows) == list(range(1, len(rows) + 1))
        assert [r.status_code for r in sorted(rows, key=lambda r: r.attempt)][-1] == 200
        assert all(r.delivered_at is None for r in rows if r.status_code != 200)
        assert webhooks_repo.was_delivered(s, ep.id, alerts[0].id)
        row = webhooks_repo.get_endpoint(s, ep.id)
        assert row is not None and row.enabled and row.consecutive_failures == 0 and row.failing_since is None
    # a redelivery (e.g. after a relay restart) of a delivered message sends nothing
    n = len(receiver.requests)
    assert d.deliver(ep.id, alerts[0]).status == "already_delivered" and len(receiver.requests) == n


def test_429_retry_after_seconds_is_honoured(receiver: Receiver) -> None:
    clock = FakeClock()
    replies = iter([(429, {"Retry-After": "7"}), (200, {})])
    receiver.app = lambda r: next(replies)
    d = _dispatcher(clock)
    ep = d.register(name="rl", url=receiver.url(), secret=generate_secret())
    assert d.deliver(ep.id, _alert(1)).status == "delivered"
    assert clock.sleeps == [7.0]


def test_503_retry_after_http_date_is_honoured(receiver: Receiver) -> None:
    clock = FakeClock()
    from email.utils import formatdate

    replies = iter([(503, {"Retry-After": formatdate(clock.now + 30, usegmt=True)}), (200, {})])
    receiver.app = lambda r: next(replies)
    d = _dispatcher(clock)
    ep = d.register(name="busy", url=receiver.url(), secret=generate_secret())
    assert d.deliver(ep.id, _alert(1)).status == "delivered"
    assert clock.sleeps == [pytest.approx(30.0)]


def test_410_gone_disables_the_endpoint_at_once(receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.app = lambda r: (410, {})
    events: list[EndpointDisabled] = []
    d = _dispatcher(clock, on_disabled=events.append)
    ep = d.register(name="gone", url=receiver.url(), secret=generate_secret())
    out = d.deliver(ep.id, _alert(1))
    assert out.status == "endpoint_disabled" and out.attempts == 1 and "410" in out.detail
    assert [e.endpoint_id for e in events] == [ep.id] and "410" in events[0].reason
    assert d.deliver(ep.id, _alert(2)).status == "endpoint_disabled"
    assert receiver.hits("/hook") == 1 and clock.sleeps == []


def test_failing_continuously_past_the_period_disables_and_reports(receiver: Receiver) -> None:
    clock = FakeClock()
    start = clock.now
    receiver.app = lambda r: (500, {})
    events: list[EndpointDisabled] = []
    config = DeliveryConfig(allow_ranges=LOOPBACK, disable_after_s=600, cap_s=60)
    d = _dispatcher(clock, config=config, on_disabled=events.append)
    ep = d.register(name="down", url=receiver.url(), secret=generate_secret())
    out = d.deliver(ep.id, _alert(1))
    assert out.status == "endpoint_disabled"
    assert clock.now - start >= 600 and len(events) == 1
    assert "failing continuously" in events[0].reason and events[0].consecutive_failures == out.attempts
    assert all(s <= 60 for s in clock.sleeps)
    assert d.store.get(ep.id).enabled is False  # type: ignore[union-attr]


def test_redirects_are_not_followed_and_count_as_failures(receiver: Receiver) -> None:
    clock = FakeClock()
    receiver.app = lambda r: (302, {"Location": receiver.url("/elsewhere")}) if r.path == "/hook" else (200, {})
    events: list[EndpointDisabled] = []
    config = DeliveryConfig(allow_ranges=LOOPBACK, disable_after_failures=3)
    log = MemoryDeliveryLog()
    d = _dispatcher(clock, config=config, delivery_log=log, on_disabled=events.append)
    ep = d.register(name="moved", url=receiver.url(), secret=generate_secret())
    assert d.deliver(ep.id, _alert(1)).status == "endpoint_disabled"
    assert receiver.hits("/elsewhere") == 0 and receiver.hits("/hook") == 3
    assert [r.status_code for r in log.records] == [302, 302, 302]
    assert all("redirect not followed" in (r.error or "") for r in log.records)
    assert len(events) == 1


def test_secret_from_the_environment_at_send_time(receiver: Receiver) -> None:
    clock = FakeClock()
    secret = generate_secret()
    env: dict[str, str] = {}
    config = DeliveryConfig(allow_ranges=LOOPBACK, disable_after_failures=1)
    d = _dispatcher(clock, config=config, environ=env)
    ep = d.register(name="env", url=receiver.url(), secret_env="OPSLOOP_HOOK_SECRET")
    assert ep.secret is None and "OPSLOOP_HOOK_SECRET" in repr(ep)
    env["OPSLOOP_HOOK_SECRET"] = secret
    assert d.deliver(ep.id, _alert(1)).status == "delivered"
    Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    del env["OPSLOOP_HOOK_SECRET"]
    result = d.attempt(ep.id, _alert(2))
    assert not result.delivered and "OPSLOOP_HOOK_SECRET" in (result.error or "")
    assert len(receiver.requests) == 1


def test_registration_checks_secrets_and_ranges() -> None:
    d = WebhookDispatcher(resolver=lambda h, p: [PUBLIC_IP])
    with pytest.raises(WebhookConfigError):
        d.register(name="x", url="https://hooks.example.com/", secret=generate_secret(), secret_env="X")
    with pytest.raises(WebhookConfigError):
        d.register(name="x", url="https://hooks.example.com/")
    with pytest.raises(WebhookConfigError):
        d.register(name="x", url="https://hooks.example.com/", secret="whsec_c2hvcnQ=")
    with pytest.raises(WebhookConfigError):
        d.register(name="x", url="https://hooks.example.com/", secret_env="not a name")
    with pytest.raises(WebhookConfigError):
        d.register(name="x", url="https://hooks.example.com/", secret=generate_secret(), allow_ranges=["10.0.0.1/8"])
    assert "whsec_" not in repr(d.register(name="x", url="https://hooks.example.com/", secret=generate_secret()))


# --- the connection goes to the checked address -----------------------------------------------------------------


def test_connects_to_the_checked_address_and_never_resolves_again(receiver: Receiver) -> None:
    """The name below cannot resolve in real DNS (.invalid): delivery only works because the sender connects to
    the address the guard checked. A resolver that rebinds after its first answer changes nothing."""
    clock = FakeClock()
    answers = iter([["127.0.0.1"], ["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    d = _dispatcher(clock, resolver=rebinding)
    ep = d.register(name="pinned", url=receiver.url("/hook?x=1", host="hooks.invalid"), secret=generate_secret())
    assert d.deliver(ep.id, _alert(1)).status == "delivered"
    assert calls == ["hooks.invalid", "hooks.invalid"]  # once at registration, once for the attempt
    (req,) = receiver.requests
    assert req.path == "/hook?x=1" and req.headers["host"] == f"hooks.invalid:{receiver.port}"
    result = d.attempt(ep.id, _alert(2))  # now the name points inside: refused, nothing sent
    assert not result.delivered and "10.0.0.1" in (result.error or "") and len(receiver.requests) == 1


def test_dns_rebinding_after_registration_is_refused_at_send_time(receiver: Receiver) -> None:
    clock = FakeClock()
    answer = [PUBLIC_IP]
    config = DeliveryConfig(disable_after_failures=2)  # no allowed ranges
    log = MemoryDeliveryLog()
    d = _dispatcher(clock, config=config, delivery_log=log, resolver=lambda h, p: list(answer))
    ep = d.register(name="rebind", url=f"http://hooks.example.com:{receiver.port}/hook", secret=generate_secret())
    answer[:] = ["127.0.0.1"]
    assert d.deliver(ep.id, _alert(1)).status == "endpoint_disabled"
    assert receiver.requests == []
    assert all("SSRF guard" in (r.error or "") and r.status_code is None for r in log.records)


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_sends_the_name_as_sni_and_verifies_the_certificate_against_it(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "hooks.invalid")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment,func-returns-value]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    with _serve(server_ctx) as rx:
        clock = FakeClock()
        d = _dispatcher(clock, transport=PinnedTransport(verify=client_ctx), resolver=lambda h, p: ["127.0.0.1"])
        ep = d.register(name="tls", url=f"https://hooks.invalid:{rx.port}/hook", secret=generate_secret())
        assert d.deliver(ep.id, _alert(1)).status == "delivered"
        assert sni == ["hooks.invalid"] and rx.requests[0].headers["host"] == f"hooks.invalid:{rx.port}"
        # the same address under a name the certificate does not cover fails verification
        other = d.register(name="tls2", url=f"https://other.invalid:{rx.port}/hook", secret=generate_secret())
        result = d.attempt(other.id, _alert(2))
        assert not result.delivered and "CERTIFICATE_VERIFY_FAILED" in (result.error or "")
        assert len(rx.requests) == 1


# --- SSRF ------------------------------------------------------------------------------------------------------

SSRF_TARGETS = [
    "http://127.0.0.1/",
    "http://127.0.0.1./",
    "http://127.255.255.254:8080/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.000.000.001/",
    "http://evil@127.0.0.1/",
    "http://evil.com@127.0.0.1/",
    "http://user:pass@hooks.example.com/",
    "http://%31%32%37.0.0.1/",
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # full-width digits
    "http://127.0.0.1\\@hooks.example.com/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
    "http://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fd00:ec2::254]/",
    "http://[ff02::1]/",
    "http://internal.example/",
    "http://mixed.example/",
    "http://six.example/",
    "http://metadata.example/",
    "ftp://hooks.example.com/",
    "file:///etc/passwd",
    "gopher://hooks.example.com:70/",
    "http:///nohost",
    "http://hooks.example.com:0/",
]
SSRF_DNS = {"internal.example": ["10.1.2.3"], "mixed.example": [PUBLIC_IP, "192.168.0.10"], "six.example": ["::1"],
            "metadata.example": ["169.254.169.254"]}


def _ssrf_resolver(host: str, port: int) -> list[str]:
    return SSRF_DNS.get(host, [PUBLIC_IP])


def test_ssrf_target_list_is_long_enough() -> None:
    assert len(SSRF_TARGETS) >= 25 and len(set(SSRF_TARGETS)) == len(SSRF_TARGETS)


@pytest.mark.parametrize("url", SSRF_TARGETS)
def test_ssrf_targets_are_refused_at_registration(url: str) -> None:
    d = WebhookDispatcher(resolver=_ssrf_resolver)
    with pytest.raises(ssrf.UnsafeURL):
        d.register(name="x", url=url, secret=generate_secret())
    assert d.store.list(enabled_only=False) == []


class RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[ssrf.Target] = []

    def post(self, target: ssrf.Target, headers: Any, body: bytes, timeout_s: float) -> HttpResult:
        self.calls.append(target)
        return HttpResult(200, {})


@pytest.mark.parametrize("url", SSRF_TARGETS)
def test_ssrf_targets_are_refused_at_send_time(url: str) -> None:
    """An endpoint that reached the store without the registration check (an edited row) still gets nothing."""
    store, transport = MemoryEndpointStore(), RecordingTransport()
    ep = store.add(name="x", url=url, secret=generate_secret(), secret_env=None)
    d = WebhookDispatcher(store, transport=transport, resolver=_ssrf_resolver)
    result = d.attempt(ep.id, _alert(1))
    assert not result.delivered and "SSRF guard" in (result.error or "")
    assert transport.calls == []


def test_allowed_ranges_and_public_addresses_pass() -> None:
    assert ssrf.resolve_url("http://127.0.0.1:8080/x", ["127.0.0.0/8"]).addresses[0].compressed == "127.0.0.1"
    assert ssrf.resolve_url("http://[::ffff:127.0.0.1]/", ["127.0.0.0/8"]).host == "::ffff:7f00:1"
    target = ssrf.resolve_url("https://Hooks.Example.com./a?b=1", resolver=lambda h, p: [PUBLIC_IP, "2606:4700::1"])
    assert (target.host, target.port, target.target, target.host_header) == \
        ("hooks.example.com", 443, "/a?b=1", "hooks.example.com")
    assert len(target.addresses) == 2
    assert ssrf.resolve_url("https://hooks.example.com/ü?q=é#frag", resolver=lambda h, p: [PUBLIC_IP]).target == \
        "/%C3%BC?q=%C3%A9"
    ssrf.check_url("http://[64:ff9b::808:808]/")  # NAT64 of a global address
    with pytest.raises(ssrf.UnresolvableHost):
        ssrf.check_url("http://nowhere.example/", resolver=lambda h, p: [])
    with pytest.raises(ValueError):
        ssrf.parse_allow(["127.0.0.1/8"])  # host bits set: a typo, not a range


def test_transport_errors_are_failures_not_crashes() -> None:
    clock = FakeClock()
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = _dispatcher(clock, config=DeliveryConfig(allow_ranges=LOOPBACK, disable_after_failures=2, timeout_s=2))
    ep = d.register(name="closed", url=f"http://127.0.0.1:{port}/hook", secret=generate_secret())
    out = d.deliver(ep.id, _alert(1))
    assert out.status == "endpoint_disabled" and out.attempts == 2
    assert isinstance(httpx.ConnectError("x"), httpx.HTTPError)


def test_delivery_repo_insert_or_ignore(sessions) -> None:  # type: ignore[no-untyped-def]
    """On SQLite and PostgreSQL (the shared ``sessions`` fixture)."""
    with sessions() as s, s.begin():
        ep = webhooks_repo.add_endpoint(s, name="a", url="https://hooks.example.com/", secret_env="HOOK")
        values = {"endpoint_id": ep.id, "message_id": "m1", "attempt": 1, "status_code": 500, "error": "HTTP 500",
                  "duration_ms": 1.0}
        assert webhooks_repo.record_delivery(s, **values)
        assert not webhooks_repo.record_delivery(s, **values)
        assert webhooks_repo.attempt_count(s, ep.id, "m1") == 1 and not webhooks_repo.was_delivered(s, ep.id, "m1")
        assert webhooks_repo.disable_endpoint(s, ep.id, "gone")
        assert not webhooks_repo.disable_endpoint(s, ep.id, "gone again")
        webhooks_repo.enable_endpoint(s, ep.id)
        assert [e.name for e in webhooks_repo.list_endpoints(s, enabled_only=True)] == ["a"]
        webhooks_repo.delete_endpoint(s, ep.id)
        assert webhooks_repo.get_endpoint_by_name(s, "a") is None
