"""Personal data and secrets: find them, redact them, fingerprint text with a keyed hash. Offline, pure.

What is found (``Span.kind``; the placeholder is the kind in capitals, ``[EMAIL]``):

- ``email``; ``phone`` (international ``+CC ...`` and E.164, North American, UK / French / German national
  formats with separators, bare digit runs only right after a word like "phone" or "tel");
- ``card`` (13-19 digits, plain or grouped, a known network prefix and a valid Luhn checksum);
- ``iban`` (known country length and a valid ISO 7064 mod-97 checksum);
- ``ssn`` (US, ``AAA-GG-SSSS`` without the never-issued ranges, bare 9 digits only after "SSN");
- ``national_id``: UK National Insurance numbers, Canadian SINs (Luhn), Indian Aadhaar numbers (Verhoeff),
  Spanish DNI / NIE (check letter);
- ``ipv4``, ``ipv6`` (validated by ``ipaddress``);
- secrets: ``aws_access_key`` (AKIA... key ids), ``api_key`` (``sk-...``, ``sk_live_...``, GitHub, Slack,
  Google, GitLab, Hugging Face token shapes), ``jwt``, ``bearer_token`` (the token after "Bearer"),
  ``private_key`` (a whole PEM block, or to the end of the text when the block is cut), ``secret`` (the value
  after a word like key / secret / token / password and ``=`` or ``:``: any value of 6+ characters after a
  password word, a high-entropy token after the others; the key name itself is kept).

Guarantees against slow input: every pattern is bounded (no unbounded quantifier sits next to another that
can match the same characters), starts only at a token boundary (look-behind), and runs only inside windows
around cheap hits (an ``@`` for emails, a run of 6+ digits and separators for the number kinds, ``::`` or 7
colons for IPv6, a 15+ character token for keys, a keyword for secrets). Bounded time on 100 KB adversarial
strings is a tested property.

Where spans overlap, the more specific kind wins (a private key over the secrets inside it, a card over a
phone-like run), then the longer span.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from detectors.base import ConfigError

DETECTOR_NAME = "pii.regex"

# Most specific first: on overlap the earlier kind wins.
KINDS: tuple[str, ...] = (
    "private_key",
    "bearer_token",
    "jwt",
    "aws_access_key",
    "api_key",
    "secret",
    "email",
    "iban",
    "card",
    "ssn",
    "national_id",
    "ipv6",
    "ipv4",
    "phone",
)
_PRIORITY = {k: i for i, k in enumerate(KINDS)}
MIN_FINGERPRINT_KEY_BYTES = 16


@dataclass(frozen=True)
class Span:
    """``text[start:end]`` is personal data or a secret of kind ``kind``. Holds positions, never the value."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class RedactionResult:
    """The redacted text, how many spans of each kind were replaced, and where they were."""

    text: str
    counts: Mapping[str, int] = field(default_factory=dict)
    spans: tuple[Span, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if self.counts.get(k))

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "counts": dict(self.counts),
            "spans": [{"kind": s.kind, "start": s.start, "end": s.end} for s in self.spans],
        }


def placeholder(kind: str) -> str:
    return f"[{kind.upper()}]"


# --------------------------------------------------------------------------------------------- checksums


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def verhoeff_ok(digits: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VERHOEFF_D[c][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return c == 0


# Lengths from the SWIFT IBAN registry (the countries most likely to show up; others are not detected).
IBAN_LENGTHS: Mapping[str, int] = MappingProxyType(
    {
        "AD": 24,
        "AE": 23,
        "AL": 28,
        "AT": 20,
        "AZ": 28,
        "BA": 20,
        "BE": 16,
        "BG": 22,
        "BH": 22,
        "BR": 29,
        "CH": 21,
        "CR": 22,
        "CY": 28,
        "CZ": 24,
        "DE": 22,
        "DK": 18,
        "DO": 28,
        "EE": 20,
        "EG": 29,
        "ES": 24,
        "FI": 18,
        "FO": 18,
        "FR": 27,
        "GB": 22,
        "GE": 22,
        "GI": 23,
        "GL": 18,
        "GR": 27,
        "GT": 28,
        "HR": 21,
        "HU": 28,
        "IE": 22,
        "IL": 23,
        "IS": 26,
        "IT": 27,
        "JO": 30,
        "KW": 30,
        "KZ": 20,
        "LB": 28,
        "LI": 21,
        "LT": 20,
        "LU": 20,
        "LV": 21,
        "MC": 27,
        "MD": 24,
        "ME": 22,
        "MK": 19,
        "MR": 27,
        "MT": 31,
        "MU": 30,
        "NL": 18,
        "NO": 15,
        "PK": 24,
        "PL": 28,
        "PS": 29,
        "PT": 25,
        "QA": 29,
        "RO": 24,
        "RS": 22,
        "SA": 24,
        "SE": 24,
        "SI": 19,
        "SK": 24,
        "SM": 27,
        "TN": 24,
        "TR": 26,
        "UA": 29,
        "VG": 24,
        "XK": 20,
    }
)


def iban_ok(iban: str) -> bool:
    """Country length and the mod-97 checksum of a compact, upper-case IBAN."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _card_network_ok(d: str) -> bool:
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    p2, p4 = int(d[:2]), int(d[:4])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    if d.startswith("6011") or p2 == 65 or 644 <= int(d[:3]) <= 649:
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    if 300 <= int(d[:3]) <= 305 or p2 in (36, 38, 39):
        return 14 <= n <= 19
    if p2 == 62 or 2200 <= p4 <= 2204:
        return 16 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro
        return 13 <= n <= 19
    return False


def card_ok(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _card_network_ok(digits) and luhn_ok(digits)


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_ok(value: str) -> bool:
    v = value.replace("-", "").upper()
    body, letter = v[:-1], v[-1]
    body = body.replace("X", "0").replace("Y", "1").replace("Z", "2")
    return body.isdigit() and _DNI_LETTERS[int(body) % 23] == letter


def shannon_entropy(s: str) -> float:
    """Bits per character of ``s`` (0 for the empty string)."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


# ---------------------------------------------------------------------------------------------- patterns

_DIGIT = re.compile(r"\d")

_EMAIL = re.compile(
    r"(?<![\w.%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w\-])"
)

_PHONE = re.compile(
    r"(?<![\w+.\-/])(?<!\d[ .\-])(?:"  # not a tail of a longer run of digit groups (an IBAN, a card)
    r"\+[1-9]\d{7,14}"  # E.164, compact
    r"|\+[1-9]\d{0,2}[ .\-]?(?:\(\d{1,4}\)[ .\-]?)?\d{1,8}(?:[ .\-]\d{1,8}){1,5}"  # +CC with separators
    r"|\(?[2-9]\d{2}\)?[ .\-]?[2-9]\d{2}[ .\-]\d{4}"  # North American
    r"|0[1-9]\d{1,4}[ \-/]\d{3,8}(?:[ \-]\d{2,4}){0,3}"  # UK / DE / ... national
    r"|0[1-9](?:[ .]\d{2}){4}"  # FR national
    r")(?![\w]|[.\-/]\d)"
)
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|whatsapp|call(?: me)?(?: at)?)\b"
    r"[^\w\n]{0,5}(?:(?:no|number|nr)\b\.?)?[^\w\n]{0,3}(\d{9,12})(?!\d)"
)

_CARD = re.compile(
    r"(?<![\d\-+])(?:"
    r"\d{4}([ \-])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"  # 4-4-4-4(-3) and the shorter tails
    r"|\d{4}([ \-])\d{6}\2\d{4,5}"  # 4-6-5 (Amex), 4-6-4 (Diners)
    r"|\d{13,19}"
    r")(?![\d]|-\d)"
)

_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")

_SSN = re.compile(r"(?<![\d\-+])(?!000|666|9\d\d)\d{3}([\- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d]|-\d)")
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\b[^\w\n]{0,5}(\d{9})(?!\d)")

_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
)
_SIN = re.compile(r"(?<![\d\-+])[1-79]\d{2}([ \-])\d{3}\1\d{3}(?![\d]|[ \-]\d)")
_AADHAAR = re.compile(r"(?<![\d\-+])[2-9]\d{3}([ \-])\d{4}\1\d{4}(?![\d]|[ \-]\d)")
_DNI = re.compile(r"(?<![A-Za-z0-9])(?:\d{8}|[XYZ]\d{7})-?[A-HJ-NP-TV-Z](?![A-Za-z0-9])")

_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:|:)(?:[0-9A-Fa-f]{0,4}:){1,7}"
    r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?:%[A-Za-z0-9]{1,15})?(?![\w:])"
)

_AWS_PREFIXES = (
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AGPA",
    "AIDA",
    "AIPA",
    "ANPA",
    "ANVA",
    "APKA",
    "AROA",
    "ASCA",
)
_AWS_KEY = re.compile(r"(?<![A-Za-z0-9])(?:" + "|".join(_AWS_PREFIXES) + r")[A-Z0-9]{16}(?![A-Za-z0-9])")

_API_KEY = re.compile(
    r"(?<![\w\-])(?:"
    r"sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,250}"
    r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,250}"
    r"|gh[pousr]_[A-Za-z0-9]{36,255}"
    r"|github_pat_[A-Za-z0-9_]{22,255}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,250}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|glpat-[A-Za-z0-9_\-]{20,64}"
    r"|hf_[A-Za-z]{30,40}"
    r")(?![\w\-])"
)
_JWT = re.compile(
    r"(?<![\w\-])eyJ[A-Za-z0-9_\-]{5,2000}\.eyJ[A-Za-z0-9_\-]{5,8000}\.[A-Za-z0-9_\-]{10,2000}"
    r"(?![\w\-])"
)
_BEARER = re.compile(r"(?i)\bbearer[ \t]{1,3}([A-Za-z0-9._~+/\-]{16,4096}=*)")
_BASIC_AUTH = re.compile(
    r"(?i)\bauthorization[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?basic[ \t]{1,3}([A-Za-z0-9+/]{8,4096}={0,2})"
)
_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY( BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY( BLOCK)?-----")

_SECRET_WORDS = ("key", "secret", "token", "pass", "pwd", "credential")
_SECRET = re.compile(
    r"(?i)(?<![A-Za-z0-9])(api[_\-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|access[_\-]?key"
    r"|private[_\-]?key|auth[_\-]?key|credentials?)[A-Za-z0-9_\-]{0,24}[\"']?[ \t]{0,3}"
    r"(?:[:=]|=>|:=|[ \t]is\b)[ \t]{0,3}[\"']?([A-Za-z0-9+/=_\-.~!@#$%^&*]{6,512})"
)
_PASSWORD_WORD = re.compile(r"(?i)pass|pwd")
_NOT_A_PASSWORD = frozenset(
    {
        "required",
        "incorrect",
        "invalid",
        "missing",
        "expired",
        "hidden",
        "redacted",
        "changed",
        "needed",
        "correct",
        "wrong",
        "empty",
        "optional",
        "provided",
        "protected",
        "secret",
        "example",
        "placeholder",
        "strong",
        "weak",
        "stored",
        "hashed",
        "encrypted",
        "masked",
        "unknown",
        "undefined",
        "none",
        "null",
        "false",
        "true",
        "reset",
        "updated",
        "valid",
    }
)


def _secret_value_ok(keyword: str, value: str) -> bool:
    v = value.rstrip(".,;:!")
    if len(v) < 6 or len(set(v)) < 3 or v.startswith(("[", "<", "$", "{", "%")):
        return False
    if _PASSWORD_WORD.search(keyword):
        return v.lower() not in _NOT_A_PASSWORD
    has_digit = any(c.isdigit() for c in v)
    has_alpha = any(c.isalpha() for c in v)
    return len(v) >= 12 and has_digit and has_alpha and shannon_entropy(v) >= 3.0


# --------------------------------------------------------------------------------------------- finders
#
# Patterns run only inside windows around cheap literal hits (str.find is C-fast; a regex scanning every
# position of a 1.5 KB text costs 30-150 us). Number patterns run around runs of 6+ digits and separators,
# found on a one-byte-per-character "shape" of the text where a literal-led regex is fast too.

_SHAPE = bytes(48 if 48 <= i <= 57 else (45 if chr(i) in " -./()+" else 97) for i in range(256))
_NUMBER_RUN = re.compile(rb"0[0\-]{5,}")
_TOKEN_SHAPE = bytes(
    116 if (chr(i).isascii() and (chr(i).isalnum() or chr(i) in "_-")) else 32 for i in range(256)
)
_TOKEN_NEEDLE = b"t" * 15  # every key shape holds a run of 15+ [A-Za-z0-9_-]
_NUMBER_MARGIN = 48  # room for "phone: " / "SSN " before a run and an IBAN's or NINO's letters around it

Window = tuple[int, int]


def _merge(windows: Iterable[Window], n: int) -> list[Window]:
    merged: list[list[int]] = []
    for a, b in sorted(windows):
        a, b = max(0, a), min(n, b)
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def _literal_windows(haystack: str, literals: Iterable[str], before: int, after: int) -> list[Window]:
    out: list[Window] = []
    for lit in literals:
        i = haystack.find(lit)
        while i >= 0:
            out.append((i - before, i + len(lit) + after))
            i = haystack.find(lit, i + 1)
    return _merge(out, len(haystack))


def _run_windows(run: re.Pattern[bytes], shape: bytes, margin: int) -> list[Window]:
    return _merge(((m.start() - margin, m.end() + margin) for m in run.finditer(shape)), len(shape))


def _token_windows(shape: bytes) -> list[Window]:
    out: list[Window] = []
    i = shape.find(_TOKEN_NEEDLE)
    while i >= 0:
        j = shape.find(b" ", i)
        j = len(shape) if j < 0 else j
        out.append((i - 1, j + 1))
        i = shape.find(_TOKEN_NEEDLE, j)
    return _merge(out, len(shape))


def _scan(
    pattern: re.Pattern[str],
    text: str,
    kind: str,
    windows: Iterable[Window],
    valid: Callable[[re.Match[str]], bool] | None = None,
    group: int = 0,
) -> Iterator[Span]:
    """Matches inside the windows that pass ``valid``. After a rejected match the search resumes one character
    on, so a rejected candidate never hides a valid one that starts inside it."""
    for pos, endpos in windows:
        while pos < endpos:
            m = pattern.search(text, pos, endpos)
            if m is None:
                break
            if valid is None or valid(m):
                yield Span(kind, m.start(group), m.end(group))
                pos = max(m.end(), m.start() + 1)
            else:
                pos = m.start() + 1


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


def _phone_ok(m: re.Match[str]) -> bool:
    s = m.group(0)
    n = len(_digits(s))
    if s.startswith("+"):
        return 8 <= n <= 15
    if s.startswith("0"):
        return 10 <= n <= 12
    return n == 10


def _ipv6_ok(m: re.Match[str]) -> bool:
    s = m.group(0).split("%", 1)[0]
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    groups = [g for g in re.split(r"[:.]", s) if g]
    return s.strip(":") == "1" or (len(groups) >= 2 and any(c.isdigit() for c in s))


def _bearer_ok(m: re.Match[str]) -> bool:
    tok = m.group(1)
    return any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok)


def _cards(text: str, windows: list[Window]) -> Iterator[Span]:
    """Cards; a grouped number with one group too many ("4111 1111 1111 1111 7") keeps its valid head."""
    for pos, endpos in windows:
        while pos < endpos:
            m = _CARD.search(text, pos, endpos)
            if m is None:
                break
            s = m.group(0)
            end = None
            if card_ok(_digits(s)):
                end = m.end()
            else:
                sep = m.group(1) or m.group(2)
                cut = s.rfind(sep) if sep else -1
                if cut > 0 and card_ok(_digits(s[:cut])):
                    end = m.start() + cut
            if end is not None:
                yield Span("card", m.start(), end)
                pos = end
            else:
                pos = m.start() + 1


def _numbers(text: str, lower: str, windows: list[Window]) -> Iterator[Span]:
    yield from _cards(text, windows)
    yield from _scan(_IBAN, text, "iban", windows, lambda m: iban_ok(m.group(0).replace(" ", "")))
    yield from _scan(_SSN, text, "ssn", windows)
    if "ssn" in lower or "social security" in lower:
        yield from _scan(
            _SSN_CONTEXT,
            text,
            "ssn",
            windows,
            lambda m: not m.group(1).startswith(("000", "666", "9")),
            group=1,
        )
    yield from _scan(_NINO, text, "national_id", windows)
    yield from _scan(_SIN, text, "national_id", windows, lambda m: luhn_ok(_digits(m.group(0))))
    yield from _scan(_AADHAAR, text, "national_id", windows, lambda m: verhoeff_ok(_digits(m.group(0))))
    yield from _scan(_DNI, text, "national_id", windows, lambda m: _dni_ok(m.group(0)))
    yield from _scan(_IPV4, text, "ipv4", windows)
    yield from _scan(_PHONE, text, "phone", windows, _phone_ok)
    if any(w in lower for w in ("phone", "tel", "mobile", "cell", "fax", "whatsapp", "call")):
        yield from _scan(_PHONE_CONTEXT, text, "phone", windows, group=1)


def _private_keys(text: str) -> Iterator[Span]:
    pos = 0
    while True:
        begin = _PEM_BEGIN.search(text, pos)
        if begin is None:
            return
        end = _PEM_END.search(text, begin.end())
        if end is None:  # a cut block is still a secret: redact to the end
            yield Span("private_key", begin.start(), len(text))
            return
        yield Span("private_key", begin.start(), end.end())
        pos = end.end()


def _secrets(text: str, lower: str) -> Iterator[Span]:
    if "authorization" in lower and "basic" in lower:
        yield from _scan(
            _BASIC_AUTH, text, "secret", _literal_windows(lower, ("authorization",), 0, 4200), group=1
        )
    windows = _literal_windows(lower, _SECRET_WORDS, 16, 600)
    if not windows:
        return
    for sp in _scan(
        _SECRET, text, "secret", windows, lambda m: _secret_value_ok(m.group(1), m.group(2)), group=2
    ):
        value = text[sp.start : sp.end]
        yield Span("secret", sp.start, sp.start + len(value.rstrip(".,;:!")))


def _candidates(text: str) -> Iterator[Span]:
    lower = text.lower()
    if "PRIVATE KEY" in text:
        yield from _private_keys(text)
    raw = text.encode("latin-1", "replace")  # one byte per character: positions carry over
    tokens = _token_windows(raw.translate(_TOKEN_SHAPE))
    if tokens:
        yield from _scan(_AWS_KEY, text, "aws_access_key", tokens)
        yield from _scan(_API_KEY, text, "api_key", tokens)
    yield from _scan(_JWT, text, "jwt", _literal_windows(text, ("eyJ",), 1, 12100))
    yield from _scan(
        _BEARER, text, "bearer_token", _literal_windows(lower, ("bearer",), 1, 4200), _bearer_ok, group=1
    )
    yield from _secrets(text, lower)
    yield from _scan(_EMAIL, text, "email", _literal_windows(text, ("@",), 65, 600))
    if "::" in text or text.count(":") >= 7:
        yield from _scan(_IPV6, text, "ipv6", [(0, len(text))], _ipv6_ok)
    windows = _run_windows(_NUMBER_RUN, raw.translate(_SHAPE), _NUMBER_MARGIN)
    if windows:
        yield from _numbers(text, lower, windows)


def _resolve(spans: Iterable[Span]) -> list[Span]:
    """Keep the most specific, then the longest, of overlapping spans; return them in text order."""
    ranked = sorted(spans, key=lambda s: (_PRIORITY[s.kind], -(s.end - s.start), s.start))
    starts: list[int] = []
    kept: list[Span] = []
    for sp in ranked:
        if sp.end <= sp.start:
            continue
        i = bisect_left(starts, sp.start)
        if i > 0 and kept[i - 1].end > sp.start:
            continue
        if i < len(kept) and kept[i].start < sp.end:
            continue
        starts.insert(i, sp.start)
        kept.insert(i, sp)
    return kept


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[Span]:
    """Non-overlapping spans of personal data and secrets in ``text``, in text order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    wanted = None if kinds is None else frozenset(kinds)
    if wanted is not None and not wanted <= set(KINDS):
        raise ConfigError(f"unknown PII kinds {sorted(wanted - set(KINDS))}; expected some of {KINDS}")
    spans = _resolve(_candidates(text)) if text else []
    return spans if wanted is None else [s for s in spans if s.kind in wanted]


def redact(text: str, kinds: Iterable[str] | None = None) -> RedactionResult:
    """``text`` with every span found replaced by its placeholder (``[EMAIL]``, ``[CARD]`` ...)."""
    spans = find_pii(text, kinds)
    if not spans:
        return RedactionResult(text=text, counts=MappingProxyType({}), spans=())
    parts: list[str] = []
    pos = 0
    for sp in spans:
        parts.append(text[pos : sp.start])
        parts.append(placeholder(sp.kind))
        pos = sp.end
    parts.append(text[pos:])
    counts = Counter(sp.kind for sp in spans)
    return RedactionResult(
        text="".join(parts),
        counts=MappingProxyType({k: counts[k] for k in KINDS if k in counts}),
        spans=tuple(spans),
    )


def _key_bytes(key: object) -> bytes:
    get = getattr(key, "get_secret_value", None)
    raw = get() if callable(get) else key
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, (bytes, bytearray)):
        raise ConfigError("fingerprint key must be bytes, str or a SecretStr")
    if len(raw) < MIN_FINGERPRINT_KEY_BYTES:
        raise ConfigError(f"fingerprint key must have at least {MIN_FINGERPRINT_KEY_BYTES} bytes")
    return bytes(raw)


def fingerprint(text: str, key: bytes | str | Any) -> str:
    """HMAC-SHA256 of ``text`` (UTF-8) under ``key``, hex. Stable ids for equal texts that reveal nothing
    without the key, so a dictionary of likely emails or card numbers cannot be hashed and matched."""
    return hmac.new(_key_bytes(key), text.encode("utf-8"), hashlib.sha256).hexdigest()


__all__ = [
    "DETECTOR_NAME",
    "IBAN_LENGTHS",
    "KINDS",
    "RedactionResult",
    "Span",
    "card_ok",
    "find_pii",
    "fingerprint",
    "iban_ok",
    "luhn_ok",
    "placeholder",
    "redact",
    "shannon_entropy",
    "verhoeff_ok",
]
