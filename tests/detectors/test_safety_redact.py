"""PII and secrets: each kind found and redacted, checksums enforced, no raw value survives, linear time."""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.base import ConfigError
from detectors.safety.redact import (
    KINDS,
    Span,
    card_ok,
    find_pii,
    fingerprint,
    iban_ok,
    luhn_ok,
    placeholder,
    redact,
    verhoeff_ok,
)

FOUND = [
    ("email", "write to jane.doe+news@mail.example.co.uk today", "jane.doe+news@mail.example.co.uk"),
    ("phone", "call +44 20 7946 0958 now", "+44 20 7946 0958"),
    ("phone", "call +1 (555) 234-5678 now", "+1 (555) 234-5678"),
    ("phone", "or +4915112345678.", "+4915112345678"),
    ("phone", "office (415) 555-2671 ext", "(415) 555-2671"),
    ("phone", "office 415.555.2671 ext", "415.555.2671"),
    ("phone", "London 020 7946 0958 desk", "020 7946 0958"),
    ("phone", "Paris 06 12 34 56 78 mobile", "06 12 34 56 78"),
    ("phone", "phone: 4155552671", "4155552671"),
    ("card", "visa 4111 1111 1111 1111 exp", "4111 1111 1111 1111"),
    ("card", "mc 5555-5555-5555-4444 exp", "5555-5555-5555-4444"),
    ("card", "amex 378282246310005 exp", "378282246310005"),
    ("card", "amex 3782 822463 10005 exp", "3782 822463 10005"),
    ("card", "discover 6011111111111117", "6011111111111117"),
    ("iban", "pay DE89 3704 0044 0532 0130 00 now", "DE89 3704 0044 0532 0130 00"),
    ("iban", "pay GB82WEST12345698765432 now", "GB82WEST12345698765432"),
    ("iban", "pay FR1420041010050500013M02606 now", "FR1420041010050500013M02606"),
    ("ssn", "ssn 078-05-1120 on file", "078-05-1120"),
    ("ssn", "SSN: 123456789 on file", "123456789"),
    ("national_id", "NINO AB123456C ok", "AB123456C"),
    ("national_id", "SIN 130 692 544 ok", "130 692 544"),
    ("national_id", "aadhaar 2725 1027 3464 ok", "2725 1027 3464"),
    ("national_id", "DNI 12345678Z ok", "12345678Z"),
    ("national_id", "NIE X1234567L ok", "X1234567L"),
    ("ipv4", "host 192.168.10.1 up", "192.168.10.1"),
    ("ipv6", "host 2001:db8::8a2e:370:7334 up", "2001:db8::8a2e:370:7334"),
    ("ipv6", "link fe80::1ff:fe23:4567:890a up", "fe80::1ff:fe23:4567:890a"),
    ("ipv6", "loopback ::1 up", "::1"),
    ("aws_access_key", "id AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
    ("api_key", "key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv here", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv"),
    ("api_key", "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc here", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "api_key",
        "gh ghp_16C7e42F292c6912E7710c838347Ae178B4a here",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    ),
    (
        "jwt",
        "t eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U x",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    (
        "bearer_token",
        "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0 done",
        "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    ),
    ("secret", "password=hunter22 then", "hunter22"),
    ("secret", "api_key: 'Zx8Fj2kL9qPz7Rt4Vb1N'", "Zx8Fj2kL9qPz7Rt4Vb1N"),
    (
        "secret",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("secret", "my password is Tr0ub4dor&3.", "Tr0ub4dor&3"),
]

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx3k9\nq8W0=\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("kind", "text", "value"), FOUND, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(FOUND)]
)
def test_each_kind_is_found_and_redacted(kind: str, text: str, value: str) -> None:
    spans = find_pii(text)
    assert [(s.kind, text[s.start : s.end]) for s in spans] == [(kind, value)]
    result = redact(text)
    assert result.text == text.replace(value, placeholder(kind))
    assert dict(result.counts) == {kind: 1}
    assert value not in result.text


def test_private_key_blocks_whole_and_cut() -> None:
    text = f"key:\n{PEM}\nafter"
    assert redact(text).text == "key:\n[PRIVATE_KEY]\nafter"
    cut = "log: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    assert redact(cut).text == "log: [PRIVATE_KEY]"


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 is not Luhn-valid",
        "number 4111111111111112 either",
        "order 1234567890123456 is not a card",
        "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum",
        "IBAN XX89370400440532013000 has no such country",
        "SSN 000-12-3456 and 666-12-3456 and 912-34-5678 are never issued",
        "SIN 130 692 545 fails Luhn",
        "aadhaar 2725 1027 3465 fails Verhoeff",
        "DNI 12345678A wrong letter",
        "ip 999.1.1.1 and 1.2.3 and 10.0.0.256",
        "dates 2024-01-15 and 15.01.2024, times 12:30:45, pi 3.14159, version v10.2, std::vector, Foo::Bar",
        "token is expired; password is required; the secret is out; api_key=os.environ.get",
        "mac 00:1A:2B:3C:4D:5E and hash 9f86d081884c7d659a2feaa0c55ad015",
        "",
    ],
)
def test_look_alikes_are_not_pii(text: str) -> None:
    assert find_pii(text) == []
    assert redact(text).text == text


def test_checksums() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert card_ok("4111111111111111") and not card_ok("4111111111111112")
    assert not card_ok("9111111111111111")  # no such network, even with a valid Luhn digit
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")
    assert iban_ok("NL91ABNA0417164300") and not iban_ok("NL91ABNA041716430")  # wrong length
    assert verhoeff_ok("2363") and not verhoeff_ok("2364")


def test_overlaps_keep_the_specific_kind() -> None:
    text = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P"
    assert [s.kind for s in find_pii(text)] == ["bearer_token"]
    text = "aws_access_key_id=AKIAIOSFODNN7EXAMPLE"
    assert [s.kind for s in find_pii(text)] == ["aws_access_key"]
    many = "a@b.io, 4111 1111 1111 1111, +44 20 7946 0958, 8.8.8.8, a@b.io"
    result = redact(many)
    assert result.text == "[EMAIL], [CARD], [PHONE], [IPV4], [EMAIL]"
    assert dict(result.counts) == {"email": 2, "card": 1, "ipv4": 1, "phone": 1}
    assert result.kinds == ("email", "card", "ipv4", "phone")
    assert all(isinstance(s, Span) for s in result.spans)


def test_kinds_filter_and_errors() -> None:
    text = "mail a@b.io from 8.8.8.8"
    assert redact(text, kinds=["email"]).text == "mail [EMAIL] from 8.8.8.8"
    with pytest.raises(ConfigError):
        find_pii(text, kinds=["passport"])
    with pytest.raises(TypeError):
        find_pii(b"bytes")  # type: ignore[arg-type]
    assert set(KINDS) >= {"email", "phone", "card", "iban", "ssn", "ipv4", "ipv6", "secret"}


def test_fingerprint_is_a_keyed_hmac() -> None:
    key = b"k" * 32
    a = fingerprint("jane@example.com", key)
    assert a == fingerprint("jane@example.com", key) and len(a) == 64
    assert a != fingerprint("jane@example.com", b"j" * 32)
    assert a != fingerprint("john@example.com", key)
    import hashlib

    assert a != hashlib.sha256(b"jane@example.com").hexdigest()

    class Secret:
        def get_secret_value(self) -> str:
            return "s" * 20

    assert fingerprint("x", Secret()) == fingerprint("x", "s" * 20)
    with pytest.raises(ConfigError):
        fingerprint("x", b"short")


def _luhn_complete(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


emails = st.builds(
    lambda user, dom, tld: f"{user}@{dom}.{tld}",
    st.from_regex(r"[a-z][a-z0-9._+-]{0,15}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    st.sampled_from(["com", "org", "io", "co.uk", "travel"]),
)


def _card(prefix: str, digits: str, sep: str) -> str:
    number = _luhn_complete(prefix + digits[: 15 - len(prefix)])
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


cards = st.builds(
    _card,
    st.sampled_from(["4", "51", "55", "2221", "6011"]),
    st.text(alphabet="0123456789", min_size=14, max_size=14),
    st.sampled_from(["", " ", "-"]),
)
noise = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(prefix=noise, value=st.one_of(emails, cards), suffix=noise)
def test_no_raw_value_survives_redaction(prefix: str, value: str, suffix: str) -> None:
    text = f"{prefix} {value} {suffix}"
    out = redact(text).text
    assert value not in out


ADVERSARIAL = {
    "letters": "a" * 100_000,
    "at-signs": "a@" * 50_000,
    "digits": "1" * 100_000,
    "digit-space": "1 " * 50_000,
    "digit-dash": "1-" * 50_000,
    "dots": "a." * 50_000,
    "colons": ":" * 100_000,
    "hex-colon": "ab:" * 33_000,
    "plus": "+1" * 50_000,
    "key-eq": "key=" + "A1" * 50_000,
    "passwords": "password is " * 9_000,
    "sk": "sk-" + "a" * 100_000,
    "dotted-digits": "1.1." * 25_000,
    "bearer": "bearer " * 14_000,
    "pem-begin": "-----BEGIN PRIVATE KEY-----" * 3_500,
    "local-parts": ("x" * 60 + "@") * 1_600,
    "labels": "a@" + "b." * 50_000,
    "groups": "1234 " * 20_000,
    "phones": "+44 20 " * 14_000,
    "akia": "AKIA" * 25_000,
    "jwt": "eyJ" + "a" * 5_000 + "." + "eyJ" * 30_000,
    "parens": "(555)" * 20_000,
    "iban-ish": "DE89 3704 " * 10_000,
    "mixed": "x@y.zz 4111 1111 1111 1111 +1 555 " * 3_000,
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_long_adversarial_inputs_stay_fast(name: str) -> None:
    text = ADVERSARIAL[name]
    assert len(text) >= 90_000
    start = time.process_time()
    result = redact(text)
    elapsed = time.process_time() - start
    assert elapsed < 3.0, f"{name}: {elapsed:.2f}s CPU for {len(text)} characters"
    assert len(result.text) > 0


def test_random_long_text_keeps_everything_but_pii() -> None:
    rng = random.Random(7)
    words = ["alpha", "beta", "2024", "v1.2", "the", "and", "id:", "42", "-", "(x)", "ok."]
    text = " ".join(rng.choice(words) for _ in range(20_000))
    assert redact(text).text == text
