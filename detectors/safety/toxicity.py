"""``toxicity.heuristic``: harm scores by word and phrase lists, one list per bucket. Offline, pure.

A fallback, not a classifier. It scores five buckets (hate, sexual, violence, self_harm, harassment) from
weighted phrase patterns: explicit terms, threats and insults aimed at a person, self-harm statements,
dehumanising statements about protected groups. It ships no slur list and does not understand context,
negation, quotation, fiction or irony: "how do I kill a Python process" is safe because the patterns want a
person as the object, but paraphrased or coded harm passes unseen. The cloud providers (Azure AI Content
Safety, OpenAI moderation) are the real thing; this keeps a signal when they are down, over budget or not
configured.

Each bucket's score is the noisy-or ``1 - prod(1 - w)`` of its matched patterns, in [0, 1]; a bucket is
flagged at its threshold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from detectors.base import ConfigError
from detectors.safety.injection import normalize_text

DETECTOR_NAME = "toxicity.heuristic"
BUCKETS: tuple[str, ...] = ("hate", "sexual", "violence", "self_harm", "harassment")

_PERSON = (
    r"(?:you|ya|u|him|her|them|people|everyone|everybody|somebody|someone|anyone|a\s+(?:man|woman|child|"
    r"kid|person)|the\s+(?:kids|children|family|teacher|police|cops?|president|students|neighbou?rs?|"
    r"guards?|witness|baby)|my\s+(?:wife|husband|boss|mom|mother|dad|father|sister|brother|neighbou?r|"
    r"teacher|ex|family|kids|children|son|daughter|girlfriend|boyfriend|classmates?|coworkers?)|"
    r"(?:his|her|their)\s+(?:family|kids|children|wife|husband))"
)
_GROUP = (
    r"(?:jews|jewish\s+people|muslims|christians|hindus|sikhs|arabs|blacks|black\s+people|whites|white\s+"
    r"people|asians|asian\s+people|mexicans|latinos|hispanics|immigrants|migrants|refugees|foreigners|"
    r"gays|gay\s+people|lesbians|homosexuals|trans\s+people|transgender\s+people|women|men|disabled\s+"
    r"people|gypsies|roma|africans|indians|chinese\s+people|romanians|poles|catholics|atheists)"
)

_GROUP_WORDS = (
    "jews jewish muslims christians hindus sikhs arabs blacks black whites white asians asian mexicans "
    "latinos hispanics immigrants migrants refugees foreigners gays gay lesbians homosexuals trans "
    "transgender women men disabled gypsies roma africans indians chinese romanians poles catholics "
    "atheists"
)

# (name, weight, pattern, trigger words); trigger groups are separated by "|", ``stem*`` covers inflections.
_LISTS: Mapping[str, tuple[tuple[str, float, str, str], ...]] = {
    "hate": (
        (
            "dehumanising_group",
            0.8,
            (
                rf"\b{_GROUP}\s+(?:are|is)\s+(?:all\s+)?(?:just\s+)?(?:animals|vermin|subhuman|parasites|cockroaches|"
                r"rats|savages|a\s+disease|a\s+plague|filth|scum|inferior|not\s+(?:human|people))\b"
            ),
            _GROUP_WORDS + " | "
            "animals vermin subhuman parasites cockroaches rats savages disease plague "
            "filth scum inferior human people",
        ),
        (
            "eliminate_group",
            0.9,
            (
                rf"\b(?:kill|exterminate|eradicate|gas|deport|wipe\s+out|get\s+rid\s+of|ban)\s+(?:all\s+)?(?:the\s+)?"
                rf"{_GROUP}\b|\b{_GROUP}\s+should\s+(?:all\s+)?(?:die|be\s+(?:killed|exterminated|gassed|wiped\s+out|"
                r"eradicated|deported|banned))\b"
            ),
            _GROUP_WORDS + " | "
            "kill exterminate eradicate gas deport wipe rid ban die killed exterminated "
            "gassed eradicated deported banned",
        ),
        (
            "hate_group",
            0.6,
            rf"\b(?:i\s+)?(?:hate|despise|can'?t\s+stand)\s+(?:all\s+)?(?:the\s+)?{_GROUP}\b",
            _GROUP_WORDS + " | hate despise stand",
        ),
        (
            "supremacist_terms",
            0.7,
            (
                r"\b(?:master\s+race|racial\s+purity|white\s+power|white\s+supremac\w+|ethnic\s+cleansing|heil\s+hitler|"
                r"race\s+traitors?|great\s+replacement|subhumans?|untermensch|14\s*words|1488)\b"
            ),
            (
                "race racial power supremacy supremacist supremacists cleansing hitler traitor traitors "
                "replacement subhuman subhumans untermensch words 1488 14words"
            ),
        ),
        (
            "go_back",
            0.5,
            r"\bgo\s+back\s+to\s+(?:your|ur)\s+(?:own\s+)?(?:country|countries)\b",
            "country countries | back",
        ),
    ),
    "sexual": (
        (
            "explicit_terms",
            0.7,
            (
                r"\b(?:porn\w*|pornograph\w*|blowjob|handjob|cumshot|creampie|gangbang|deepthroat|anal\s+sex|oral\s+sex|"
                r"masturbat\w+|orgasm\w*|ejaculat\w+|erect\s+penis|hentai|xxx|nsfw|sexting|nudes|camgirl|"
                r"dildo|vibrator|bdsm|fetish\w*|horny|cock|pussy|tits|boobs|clit\w*)\b"
            ),
            (
                "porn* pornograph* blowjob handjob cumshot creampie gangbang deepthroat anal oral masturbat* "
                "orgasm* ejaculat* erect hentai xxx nsfw sexting nudes camgirl dildo vibrator bdsm fetish* horny "
                "cock pussy tits boobs clit*"
            ),
        ),
        (
            "sexual_terms",
            0.4,
            (
                r"\b(?:sex|sexual(?:ly)?|naked|nude|nudity|erotic\w*|genitals?|penis|vagina|intercourse|seduc\w+|"
                r"arous\w+|lingerie|strip\s*tease|stripper|sensual|aroused|make\s+love|one-?night\s+stand)\b"
            ),
            (
                "sex sexual sexually naked nude nudity erotic* genital genitals penis vagina intercourse seduc* "
                "arous* lingerie striptease stripper sensual aroused one-night"
            ),
        ),
        (
            "sexual_request",
            0.6,
            (
                r"\b(?:send|show)\s+(?:me\s+)?(?:nudes|naked\s+(?:pics|pictures|photos)|your\s+(?:body|boobs|tits))\b|"
                r"\b(?:write|describe|tell)\s+(?:me\s+)?(?:an?\s+)?(?:explicit|graphic|steamy|dirty|erotic)\s+"
                r"(?:sex\w*|story|scene|fantasy)\b"
            ),
            "send show write describe tell | nudes naked body boobs tits explicit graphic steamy dirty erotic",
        ),
        (
            "minors_sexual",
            0.95,
            (
                r"\b(?:child|children|kid|kids|minor|minors|underage|teen|preteen|\d{1,2}[\s-]?(?:year|yr)s?[\s-]?old|"
                r"schoolgirl|schoolboy|little\s+(?:girl|boy))\b[^.!?\n]{0,40}\b(?:sex\w*|naked|nude|porn\w*|erotic\w*|"
                r"explicit|molest\w*)\b|\b(?:sex\w*|naked|nude|porn\w*|erotic\w*|explicit|molest\w*)\b[^.!?\n]{0,40}\b"
                r"(?:child|children|kid|kids|minor|minors|underage|preteen|schoolgirl|schoolboy)\b|\b(?:cp|csam|"
                r"loli|lolicon|shota|pedo\w*|paedo\w*)\b"
            ),
            (
                "child children kid kids minor minors underage teen preteen old schoolgirl schoolboy little cp "
                "csam loli lolicon shota pedo* paedo*"
            ),
        ),
    ),
    "violence": (
        (
            "harm_person",
            0.6,
            (
                rf"\b(?:kill|murder|stab|shoot|strangle|choke|behead|decapitate|torture|slaughter|massacre|execute|"
                rf"beat|punch|burn|poison|kidnap|rape|maim|mutilate|assassinate|lynch|hang)\w{{0,3}}\s+{_PERSON}\b"
            ),
            (
                "kill* murder* stab* shoot* strangl* chok* behead* decapitat* tortur* slaughter* massacr* execut* "
                "beat* punch* burn* poison* kidnap* rape* maim* mutilat* assassinat* lynch* hang*"
            ),
        ),
        (
            "threat",
            0.8,
            (
                r"\b(?:i|we)\s*(?:'ll|will|am\s+going\s+to|'m\s+going\s+to|gonna|want\s+to|wanna)\s+(?:fucking\s+)?"
                r"(?:kill|murder|stab|shoot|hurt|beat|strangle|burn|destroy|rape|torture|end)\s+(?:you|u|ya|him|her|"
                r"them|your|his|her)\b|\byou(?:'re|\s+are)\s+(?:going\s+to\s+|gonna\s+)?(?:die|dead)\b"
            ),
            "kill murder stab shoot hurt beat strangle burn destroy rape torture die dead",
        ),
        (
            "mass_violence",
            0.8,
            (
                r"\b(?:mass\s+(?:shooting|murder|casualt\w+|killing)|school\s+shooting|shoot\s+up\s+(?:a|the|my)\s+\w+|"
                r"genocide|bloodbath|terror(?:ist)?\s+attack|car\s+bomb|suicide\s+(?:bomb\w*|vest)|pipe\s+bomb|"
                r"(?:make|build)\s+(?:a\s+)?(?:bomb|explosive|ied)|blow\s+up\s+(?:a|the)\s+\w+)\b"
            ),
            (
                "shooting genocide bloodbath terror terrorist bomb bombs bombing explosive explosives ied shoot "
                "casualties casualty killing murder blow vest"
            ),
        ),
        (
            "graphic",
            0.5,
            (
                r"\b(?:gore|gory|dismember\w*|disembowel\w*|decapitat\w+|mutilat\w+|eviscerat\w+|entrails|severed\s+"
                r"(?:head|limbs?|arm|leg)|brains?\s+(?:splatter\w*|blown\s+out)|blood\s+(?:everywhere|spurt\w*|"
                r"gushing))\b"
            ),
            (
                "gore gory dismember* disembowel* decapitat* mutilat* eviscerat* entrails severed brain brains "
                "blood"
            ),
        ),
        (
            "weapons",
            0.3,
            (
                r"\b(?:assault\s+rifle|ar-?15|ak-?47|machete|grenade|molotov|firearm|ammunition|silencer|"
                r"untraceable\s+gun|ghost\s+gun)\b"
            ),
            (
                "assault ar-15 ar15 ak-47 ak47 machete grenade molotov firearm ammunition silencer untraceable "
                "ghost"
            ),
        ),
    ),
    "self_harm": (
        (
            "suicidal_statement",
            0.9,
            (
                r"\b(?:i\s+(?:want|wanna|need|plan|am\s+going|'m\s+going|am\s+about|'m\s+about)\s+to\s+(?:kill\s+myself|"
                r"die|end\s+(?:it\s+all|my\s+life|it)|commit\s+suicide|hurt\s+myself|cut\s+myself|hang\s+myself|"
                r"overdose)|kill\s+myself|end\s+my\s+(?:own\s+)?life|take\s+my\s+(?:own\s+)?life|better\s+off\s+dead|"
                r"no\s+(?:reason|point)\s+(?:to|in)\s+(?:live|living|going\s+on)|don'?t\s+want\s+to\s+(?:live|be\s+"
                r"alive|wake\s+up))\b"
            ),
            "myself die dead alive life live living",
        ),
        (
            "self_harm_terms",
            0.4,
            (
                r"\b(?:suicid\w*|self[\s-]?harm\w*|self[\s-]?injur\w*|cutting\s+myself|slit\s+(?:my\s+)?wrists?|"
                r"overdos\w+|hang\s+myself|jump\s+off\s+(?:a|the)\s+(?:bridge|roof|building)|anorexi\w+|bulimi\w+|"
                r"pro-?ana|thinspo\w*|purging)\b"
            ),
            (
                "suicid* self self-harm* self-injur* selfharm cutting slit overdos* hang jump anorexi* bulimi* "
                "pro-ana proana thinspo* purging"
            ),
        ),
        (
            "self_harm_method",
            0.8,
            (
                r"\b(?:how\s+(?:to|do\s+i|can\s+i)|best\s+way\s+to|easiest\s+way\s+to|painless\s+way\s+to|"
                r"how\s+many\s+\w+\s+(?:pills|tablets)\s+(?:to|would))\b[^.!?\n]{0,40}\b(?:kill\s+(?:myself|"
                r"yourself)|die|suicide|overdose|cut\s+(?:myself|yourself)|hang\s+(?:myself|yourself)|end\s+(?:my|"
                r"your)\s+life)\b"
            ),
            "how best easiest painless many | myself yourself die suicide overdose life",
        ),
        (
            "encourage_self_harm",
            0.9,
            (
                r"\b(?:kill\s+yourself|kys|go\s+die|you\s+should\s+(?:die|kill\s+yourself|end\s+it)|"
                r"nobody\s+would\s+miss\s+you)\b"
            ),
            "yourself kys die miss",
        ),
    ),
    "harassment": (
        (
            "insult",
            0.6,
            (
                r"\byou(?:'re|\s+are|r|\s+r)\s+(?:such\s+)?(?:a\s+|an\s+|so\s+|really\s+|fucking\s+|just\s+)*"
                r"(?:idiot|stupid|moron|loser|worthless|pathetic|ugly|fat|dumb|retard\w*|trash|garbage|useless|"
                r"disgusting|creep|freak|clown|failure|joke|waste\s+of\s+(?:space|air)|piece\s+of\s+(?:shit|crap|"
                r"garbage)|bitch|bastard|asshole|dick|cunt|whore|slut)\b"
            ),
            (
                "you youre ur u | idiot stupid moron loser worthless pathetic ugly fat dumb retard* trash garbage "
                "useless disgusting creep freak clown failure joke waste piece bitch bastard asshole dick cunt "
                "whore slut"
            ),
        ),
        (
            "abuse",
            0.7,
            (
                r"\b(?:fuck\s+(?:you|u|off|yourself)|stfu|shut\s+(?:the\s+fuck\s+)?up|screw\s+you|go\s+to\s+hell|"
                r"eat\s+shit|son\s+of\s+a\s+bitch|nobody\s+(?:likes|loves|cares\s+about)\s+you|everyone\s+hates\s+you|"
                r"die\s+in\s+a\s+fire)\b"
            ),
            "fuck stfu shut screw hell shit bitch nobody hates die",
        ),
        (
            "intimidation",
            0.7,
            (
                r"\b(?:i\s+know\s+where\s+you\s+live|i(?:'ll|\s+will)\s+find\s+you|you(?:'ll|\s+will)\s+regret\s+"
                r"(?:this|it)|i(?:'ll|\s+will)\s+(?:make\s+your\s+life\s+hell|ruin\s+(?:you|your\s+life)|dox\w*\s+you|"
                r"expose\s+you))\b"
            ),
            "where find regret hell ruin dox doxx doxxing expose",
        ),
        (
            "threat",
            0.6,
            (
                r"\b(?:i|we)\s*(?:'ll|will|am\s+going\s+to|'m\s+going\s+to|gonna|want\s+to|wanna)\s+(?:fucking\s+)?"
                r"(?:kill|murder|stab|shoot|hurt|beat|strangle|burn|destroy|rape|torture|end)\s+(?:you|u|ya)\b"
            ),
            "kill murder stab shoot hurt beat strangle burn destroy rape torture | you u ya",
        ),
        (
            "profanity",
            0.25,
            r"\b(?:fuck\w*|shit\w*|bitch\w*|bastard|asshole|dickhead|cunt|motherfuck\w*|wank\w*)\b",
            "fuck* shit* bitch* bastard asshole dickhead cunt motherfuck* wank*",
        ),
    ),
}

_INFLECTIONS = (
    "",
    "e",
    "s",
    "es",
    "ed",
    "d",
    "ing",
    "er",
    "ers",
    "ion",
    "ions",
    "y",
    "ly",
    "al",
    "ally",
    "ic",
    "ity",
    "ation",
    "ations",
    "ive",
    "ism",
    "ist",
    "ists",
    "o",
    "os",
    "a",
    "ia",
    "ic",
    "ics",
)


def _triggers(spec: str) -> tuple[frozenset[str], ...]:
    """Groups of whole words that gate a pattern: every group (separated by ``|``) must have a word in the
    text. ``stem*`` stands for the stem's common inflections."""
    return tuple(_words(group) for group in spec.split("|"))


def _words(words: str) -> frozenset[str]:
    out: set[str] = set()
    for w in words.split():
        if w.endswith("*"):
            stem = w[:-1]
            out.update(stem + end for end in _INFLECTIONS)
            if stem.endswith("e"):
                out.update(stem[:-1] + end for end in ("ing", "ion", "ions", "ed", "er"))
            else:
                out.update(stem + stem[-1] + end for end in ("ing", "ed", "er"))
        else:
            out.add(w)
    return frozenset(out)


@dataclass(frozen=True)
class HarmRule:
    """A weighted pattern, run only when each of its trigger groups has a word in the text."""

    name: str
    weight: float
    pattern: re.Pattern[str]
    triggers: tuple[frozenset[str], ...]

    def triggered(self, words: frozenset[str]) -> bool:
        for group in self.triggers:
            if group.isdisjoint(words):
                return False
        return True


RULES: Mapping[str, tuple[HarmRule, ...]] = MappingProxyType(
    {
        bucket: tuple(
            HarmRule(name, weight, re.compile(pattern), _triggers(words))
            for name, weight, pattern, words in rules
        )
        for bucket, rules in _LISTS.items()
    }
)
_WORD_SPLIT = str.maketrans({c: " " for c in ".,!?;:'\"()[]{}<>/\\|_*&^%$#@~`+=\n\t\r"})


@dataclass(frozen=True)
class ToxicityConfig:
    """Per-bucket thresholds on the score; ``max_chars`` bounds the work (head and tail are scanned)."""

    thresholds: Mapping[str, float] = field(default_factory=lambda: {b: 0.5 for b in BUCKETS})
    max_chars: int = 20_000

    def __post_init__(self) -> None:
        unknown = set(self.thresholds) - set(BUCKETS)
        if unknown:
            raise ConfigError(f"unknown toxicity buckets {sorted(unknown)}; expected some of {BUCKETS}")
        merged = {b: 0.5 for b in BUCKETS} | dict(self.thresholds)
        for b, t in merged.items():
            if not (isinstance(t, (int, float)) and 0.0 < t <= 1.0):
                raise ConfigError(f"threshold of {b!r} must be in (0, 1], got {t!r}")
        object.__setattr__(self, "thresholds", MappingProxyType(merged))
        if not isinstance(self.max_chars, int) or self.max_chars < 100:
            raise ConfigError(f"max_chars must be an int >= 100, got {self.max_chars!r}")


@dataclass(frozen=True)
class ToxicityResult:
    detector: str
    scores: Mapping[str, float]
    flagged: tuple[str, ...]
    matches: Mapping[str, tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "scores": dict(self.scores),
            "flagged": list(self.flagged),
            "matches": {b: list(m) for b, m in self.matches.items()},
        }


def score_toxicity(text: str, config: ToxicityConfig | None = None) -> ToxicityResult:
    """Per-bucket heuristic harm scores of ``text``."""
    cfg = config or ToxicityConfig()
    if len(text) > cfg.max_chars:
        half = cfg.max_chars // 2
        text = text[:half] + "\n" + text[-half:]
    low = normalize_text(text)
    words = frozenset(low.translate(_WORD_SPLIT).split())
    scores: dict[str, float] = {}
    matches: dict[str, tuple[str, ...]] = {}
    for bucket in BUCKETS:
        hit = [(r.name, r.weight) for r in RULES[bucket] if r.triggered(words) and r.pattern.search(low)]
        scores[bucket] = round(1.0 - math.prod(1.0 - w for _, w in hit), 6)
        matches[bucket] = tuple(name for name, _ in hit)
    flagged = tuple(b for b in BUCKETS if scores[b] >= cfg.thresholds[b])
    return ToxicityResult(DETECTOR_NAME, MappingProxyType(scores), flagged, MappingProxyType(matches))


__all__ = [
    "BUCKETS",
    "DETECTOR_NAME",
    "RULES",
    "HarmRule",
    "ToxicityConfig",
    "ToxicityResult",
    "score_toxicity",
]
