"""``injection.heuristic``: prompt-injection and jailbreak markers by weighted patterns. Offline, pure.

This is a heuristic, not a classifier: it recognises the common phrasings of attacks (override the previous
instructions, exfiltrate the system prompt, role-play jailbreaks like DAN or "developer mode", disabling the
safety rules, encoded payloads, fake chat delimiters, instructions aimed at an AI inside retrieved documents)
and the usual disguises (homoglyphs, full-width letters, leetspeak, spaced-out letters). Social-engineering
prompts that never use such words ("nobody else will help me, you're all I have") pass unseen. Its measured
precision and recall on public labelled sets are in docs/safety.md; the cloud Prompt Shields are the real
thing.

Each matched rule contributes its weight; the score is their noisy-or ``1 - prod(1 - w)``, in [0, 1]. A text
is an attack when the score reaches the configured threshold. ``source="document"`` adds the rules for
indirect injection (instructions addressed to an AI inside retrieved content).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from detectors.base import ConfigError

DETECTOR_NAME = "injection.heuristic"


def _h(words: str) -> tuple[str, ...]:
    """A hint group written as one comma-separated string (hints may hold spaces: "set aside")."""
    return tuple(words.split(","))


Source = Literal["prompt", "document"]


@dataclass(frozen=True)
class Rule:
    """A weighted pattern. ``hints`` are groups of lower-case substrings: the pattern runs only when every
    group has one of its substrings in the text (a cheap pre-check; each group is necessary for a match).
    ``document_only`` rules run on retrieved documents only; ``case_sensitive`` ones on the original case."""

    name: str
    weight: float
    pattern: re.Pattern[str]
    hints: tuple[tuple[str, ...], ...] = ()
    document_only: bool = False
    case_sensitive: bool = False
    span: int = 200  # no match is longer: in long texts the rule runs only this close to its hints
    prefix: re.Pattern[str] | None = None  # must match right before the pattern (ends in \Z)
    lookback: int = 130  # the longest prefix


def _r(
    name: str,
    weight: float,
    pattern: str,
    *hints: Iterable[str],
    document_only: bool = False,
    case_sensitive: bool = False,
    span: int = 200,
    prefix: str | None = None,
) -> Rule:
    # Patterns are written in lower case and run on the lower-cased text: IGNORECASE makes sre slower.
    return Rule(
        name,
        weight,
        re.compile(pattern, re.MULTILINE),
        tuple(tuple(h) for h in hints),
        document_only,
        case_sensitive,
        span,
        None if prefix is None else re.compile(prefix, re.MULTILINE),
    )


_ANY = r"[^.!?\n]{0,40}?"  # a short stretch within one sentence
_OVERRIDE_HINTS = _h(
    "ignor,disregard,forg,overrid,overrul,bypass,skip,neglect,abandon,discard,drop,dismiss,set aside,cancel,delet,eras,shed,ditch,throw out,stop following,no longer follow"
)
_OV = (
    r"ignor(?:e|es|ed|ing)|disregard\w{0,3}|forg[eo]t\w{0,3}|overrid\w{1,3}|overrul\w{1,3}|bypass\w{0,3}"
    r"|skip\w{0,4}|neglect\w{0,3}|abandon\w{0,3}|discard\w{0,3}|drop\w{0,4}|dismiss\w{0,3}|set\s+aside"
    r"|cancel\w{0,3}|delet\w{1,3}|eras\w{1,3}|shed|ditch|throw\s+out|stop\s+following|no\s+longer\s+follow"
)
_TARGETS = (
    r"instructions?|prompts?|rules?|directives?|guidelines?|commands?|constraints?|restrictions?"
    r"|programming|training|policies|policy|guardrails?|filters?|conditioning|preparation|orders?"
    r"|limitations?|boundaries|principles|protocols?|ethics|morals?|values"
)
_TARGET_HINTS = _h(
    "instruction,prompt,rule,directive,guideline,command,constraint,restriction,programming,training,polic,guardrail,filter,conditioning,preparation,order,limitation,boundaries,principle,protocol,ethic,moral,value"
)
_SECRET_ADJ = (
    r"system|initial|initiali[sz]ation|original|hidden|secret|internal|developer|confidential|pre-?"
    r"|base|core|foundational|operational|underlying|full|real|true|actual|exact|concealed|private"
    r"|behaviou?ral|starting|first|backend|startup|boot"
)
_SECRET_NOUN = (
    r"prompts?|instructions?|messages?|rules|guidelines|configuration|config|directives|programming"
    r"|text|context|setup|training|parameters|policies|constraints|settings"
)
_SECRET_ADJ_HINTS = _h(
    "system,initial,original,hidden,secret,internal,developer,confidential,pre,base,core,foundational,operational,underlying,full,real,true,actual,exact,concealed,private,behavio,starting,first,backend,startup,boot"
)
_SECRET_NOUN_HINTS = _h(
    "prompt,instruction,message,rules,guidelines,config,directives,programming,text,context,setup,training,parameters,policies,constraints,settings"
)
_REVEAL = (
    r"(?:reveal|show|print|display|output|repeat|tell|give|share|leak|expose|dump|list|write out|recite"
    r"|spell out|disclose|divulge|paste|copy|echo|return|provide|send|translate|summari[sz]e|explain"
    r"|describe|read back|state|type out|encode|encrypt|convert|rewrite|append|insert|include|add"
    r"|enumerate|quote|transcribe|unveil|uncover|confess)\w{0,3}|what (?:is|are|was|were)"
)
_OWN = _h("your,ur ,its ,da ,the ai")
_BYPASS_VERBS = (
    r"disabl\w{1,3}|bypass\w{0,3}|ignor\w{1,3}|turn(?:ing)?\s+off|deactivat\w{1,3}|remov\w{1,3}|"
    r"overrid\w{1,3}|circumvent\w{0,3}|skip\w{0,4}|suspend\w{0,3}|lift\w{0,3}|get\s+around|"
    r"break\s+free\s+of|evad\w{1,3}|switch\w{0,2}\s+off|shut\s+off|shed|drop\w{0,4}|forget|"
    r"abandon\w{0,3}|see\s+past|break\w{0,3}|sidestep\w{0,3}|escape\w{0,1}|defeat\w{0,3}|"
    r"neutrali[sz]e\w{0,1}|reject\w{0,3}"
)
_BYPASS_HINTS = _h(
    "disabl,bypass,ignor,turn,deactivat,remov,overrid,circumvent,skip,suspend,lift,around,free,evad,switch,shut,shed,drop,forget,abandon,past,break,sidestep,escape,defeat,neutrali,reject"
)
_LIMITS = (
    r"restrictions?|filters?|limits|limitations|censorship|guidelines|guardrails|rules|boundaries|"
    r"constraints|ethics|morals|morality|policies|safeguards"
)
_LIMIT_HINTS = _h(
    "restriction,filter,limit,censorship,guideline,guardrail,rules,boundaries,constraint,ethics,moral,policies,safeguard"
)

RULES: tuple[Rule, ...] = (
    _r(
        "override_instructions",
        0.9,
        rf"\b(?:{_OV})\b{_ANY}\b(?:previous|prior|above|earlier|preceding|all|any|your|ur|the|initial|original"
        rf"|system|these|those|every|my|its|current|existing|safety|ethical)\b{_ANY}\b(?:{_TARGETS})\b",
        _OVERRIDE_HINTS,
        _TARGET_HINTS,
    ),
    _r(
        "override_terse",
        0.45,
        rf"\b(?:ignor\w{{1,3}}|disregard|forget|bypass|overrid\w{{1,3}})\s+(?:\w+\s+)?(?:{_TARGETS})\b",
        _h("ignor,disregard,forget,bypass,overrid"),
        _TARGET_HINTS,
    ),
    _r(
        "override_everything",
        0.75,
        rf"\b(?:{_OV})\b\s+(?:everything|all|anything|what)\s+(?:(?:you\s+(?:were|have\s+been)\s+)?"
        r"(?:told|said|above|before|prior|previously|earlier|else)|(?:b4|before)\s+this|i\s+said)"
        rf"|\b(?:{_OV})\b\s+(?:the\s+|all\s+the\s+)?(?:above|previous|preceding|prior)\b(?!\s+(?:draft|version"
        r"|step|section|chapter|paragraph|example|answer|question|result|code|file|one|page|email|message))",
        _OVERRIDE_HINTS,
        _h("everything,all,anything,what,above,previous,preceding,prior"),
    ),
    _r(
        "new_instructions",
        0.55,
        r"\b(?:new|updated|real|actual|revised|override)\s+(?:instructions?|directives?|rules|task|orders?|"
        r"system\s+prompt)\s*(?::|are\b|is\b|follow)|\bfrom\s+now\s+on\b[^.!?\n]{0,30}\byou\b"
        r"|\byour\s+new\s+(?:role|task|purpose|job|instructions?|persona|name)\b",
        _h("new ,updated ,real ,actual ,revised ,override ,from now on"),
    ),
    # These two end in a phrase that is rarer than their opening verbs: the phrase is searched for, then the
    # text just before it is checked for the verb (``prefix``), which is far cheaper than the other way round.
    _r(
        "system_prompt_exfiltration",
        0.85,
        rf"(?:{_SECRET_ADJ})\s*(?:-\s*)?(?:{_SECRET_NOUN})\b",
        _SECRET_ADJ_HINTS,
        _SECRET_NOUN_HINTS,
        prefix=rf"\b(?:{_REVEAL})\b[^.!?\n]{{0,50}}?\b(?:your|ur|the|its|my|this|these|those|all|any|of)\s+"
        r"(?:[a-z]+\s+){0,2}?\Z",
    ),
    _r(
        "guidelines_request",
        0.6,
        r"\b(?:your|ur|the\s+ai'?s|its|da)\s+(?:[a-z]+\s+)?(?:guidelines|instructions|rules|directives"
        r"|training|programming|restrictions|configuration|config|prompt|secrets|constraints|policies"
        r"|initiali[sz]ation)\b",
        _OWN,
        _h(
            "guideline,instruction,rule,directive,training,programming,restriction,config,prompt,secret,constraint,polic,initiali"
        ),
        prefix=rf"\b(?:{_REVEAL}|reveals?|revealing|sharing|showing|disclosing|exposing|knowing)\b"
        r"[^.!?\n]{0,30}?\Z",
    ),
    _r(
        "secrets_request",
        0.6,
        r"\b(?:reveal|show|share|dump|expose|disclose|tell|release|output)\w{0,3}\s+(?:me\s+)?(?:all\s+)?"
        r"(?:your\s+|the\s+)?(?:secrets|hidden\s+(?:instructions|rules|prompt|directives|config\w*|settings|"
        r"guidelines|data|answer|response|text|information|part))\b|\bprompt\s+disclosure\b",
        _h("secrets,hidden,disclosure"),
    ),
    _r(
        "terse_reveal",
        0.45,
        r"\b(?:reveal|show|share|display|dump|expose|disclose|leak|print|output)\w{0,3}\s+(?:me\s+|us\s+)?"
        r"(?:all\s+)?(?:guidelines|restrictions|instructions|directives|rules|configuration|system\s*prompt|"
        r"prompt|training)\b",
        _h("reveal,show,share,display,dump,expose,disclos,leak,print,output"),
        _h("guideline,restriction,instruction,directive,rules,configuration,prompt,training"),
    ),
    _r(
        "prompt_reference",
        0.35,
        r"\b(?:your|ur)\s+(?:own\s+)?(?:system\s*prompt|initial\s+prompt|hidden\s+(?:instructions|rules|"
        r"prompt)|prompt\s+(?:architecture|text|contents?)|(?:pre|meta)-?prompt|system\s+(?:message|"
        r"instructions|configuration)|initiali[sz]ation)\b|\b(?:words|text|everything)\s+(?:written\s+)?"
        r"(?:above|before)\s+(?:this|the\s+(?:first|user))",
        _h("prompt,hidden,system,initiali,above,before"),
    ),
    _r(
        "named_jailbreak",
        0.85,
        r"\b(?:DAN|STAN|DUDE|AIM|BetterDAN|AntiGPT|Anti-GPT|UCAR|APOPHIS|EvilBOT|BasedGPT|DevMode)\b"
        r"(?=[^\n]{0,120}\b(?:mode|persona|character|stands?\s+for|act|pretend|respond|answer|prompt|"
        r"roleplay|role-play|you\s+are|as\s+an?|will|can|must|never|always|conversation)\b)|\b[Dd]o\s+[Aa]nything\s+"
        r"[Nn]ow\b|\b(?:you\s+are|you'?re|as|be)\s+(?:DAN|STAN|DUDE|AIM)\b",
        _h("DAN,STAN,DUDE,AIM,AntiGPT,Anti-GPT,UCAR,APOPHIS,EvilBOT,BasedGPT,DevMode,nything"),
        case_sensitive=True,
        span=260,
    ),
    _r("jailbreak_word", 0.4, r"\bjail\s?-?break\w{0,3}\b", ("jail",)),
    _r(
        "mode_switch",
        0.75,
        r"\b(?:developer|dev|god|debug|admin|sudo|root|maintenance|unrestricted|unfiltered|uncensored|jailbroken"
        r"|unlocked|unlimited|evil|opposite|chaos|raw|freedom|diagnostic|override|emergency|free|"
        r"superuser|privileged|unsafe|no-?limits?)[\s_-]+mode\b(?!\s+(?:for|on|in)\s+(?:the\s+)?(?:app|"
        r"editor|browser|website|ui|theme|phone))",
        ("mode",),
    ),
    _r(
        "unrestricted_persona",
        0.7,
        r"\b(?:no|without|free\s+(?:of|from)|zero|removes?|lifts?|drops?|beyond|outside|exempt\s+from|"
        r"unbound\s+by|not\s+bound\s+by|liberated\s+from|released\s+from|freed\s+from|reduced|relaxed|fewer|"
        r"lower|suspended)\s+(?:any\s+|all\s+|the\s+|your\s+|its\s+|their\s+|of\s+)?(?:ethical\s+|moral\s+|"
        r"content\s+|safety\s+|programmed\s+|artificial\s+|arbitrary\s+|behaviou?ral\s+|external\s+)?"
        rf"(?:{_LIMITS})\b"
        r"|\b(?:restrictions|limitations|filters|rules|guidelines|constraints|guardrails|censorship|safeguards"
        r"|limits)\s+(?:are\s+|have\s+been\s+|were\s+|being\s+)?(?:now\s+)?(?:removed|lifted|disabled|"
        r"suspended|off|gone|deactivated|bypassed|waived|reduced|relaxed|(?:do\s+not|don'?t|no\s+longer)\s+"
        r"(?:apply|matter|exist))\b"
        r"|\b(?:unrestricted|unfiltered|uncensored|unbound|unchained|unshackled|amoral|jailbroken|"
        r"unaligned|unmoderated|limitless)\b",
        _LIMIT_HINTS
        + _h(
            "unrestricted,unfiltered,uncensored,unbound,unchained,unshackled,amoral,jailbroken,unaligned,unmoderated,limitless"
        ),
    ),
    _r(
        "roleplay_setup",
        0.3,
        r"\b(?:pretend|imagine|act\s+as|role-?play|roleplaying|simulate|play\s+the\s+role|you\s+are\s+now|"
        r"from\s+now\s+on\s+you\s+are|stay\s+in\s+character|in\s+this\s+(?:fiction|story|hypothetical|game|"
        r"scenario|world)|hypothetically|let'?s\s+play\s+a\s+game|fantasi[sz]e|character\s+(?:who|that))\b",
        _h("pretend,imagin,act as,role,simulat,you are now,character,in this,hypothetical,game,fantasi"),
    ),
    _r(
        "safety_bypass",
        0.75,
        rf"\b(?:{_BYPASS_VERBS})\b[^.!?\n]{{0,25}}?(?:\b(?:safety|ethic\w*|moral\w*|moderation|guardrails?|"
        r"censor\w*|alignment|safeguards?|conditioning|programming|content\s+polic\w+)\b|\b(?:your|ur|its|all|"
        r"any|these|those|my|the\s+ai'?s)\s+(?:\w+\s+)?(?:restrictions?|limitations?|filters?|rules|training|"
        r"guidelines|constraints|protocols)\b)",
        _BYPASS_HINTS,
        _h(
            "safety,ethic,moral,moderation,guardrail,censor,alignment,safeguard,conditioning,programming,polic,restriction,limitation,filter,rules,training,guideline,constraint,protocol"
        ),
    ),
    _r(
        "refusal_suppression",
        0.6,
        r"\b(?:never|do\s+not|don'?t|must\s+not|cannot|can'?t|won'?t|will\s+not|shall\s+not)\s+"
        r"(?:ever\s+)?(?:refuse|decline|say\s+no|reject|apologi[sz]e|add\s+(?:a\s+|any\s+)?(?:warnings?|"
        r"disclaimers?))\b|\b(?:respond|answer|reply|write|speak|talk|output|tell|comply|help)\w{0,3}\b"
        r"[^.!?\n]{0,30}?\bwithout\s+(?:any\s+)?(?:warnings?|disclaimers?|caveats|moralizing|refusals?|"
        r"hesitation|restrictions|limits|filters|censorship)\b|\bmust\s+(?:always\s+)?(?:comply|obey|answer\s+everything)\b|\balways\s+"
        r"(?:comply|obey)\b|\bno\s+(?:disclaimers?|moralizing|refusals?)\b|\bjust\s+comply\b",
        _h(
            "refuse,decline,say no,reject,apologi,warning,disclaimer,caveat,moraliz,refusal,hesitation,comply,obey,answer everything"
        ),
    ),
    _r(
        "authority_claim",
        0.45,
        r"\bi\s*(?:am|'m)\s+(?:your|the|an?)\s+(?:\w+\s+)?(?:developer|creator|admin\w*|owner|operator|"
        r"programmer|maker|designer|supervisor|system\s+administrator|officer|auditor|architect)\b|\b(?:admin|"
        r"administrator|developer|root|sudo|maintenance|debug|elevated|privileged)\s+(?:access|override|"
        r"command|privileges?|rights|authori[sz]ation)\b|\bauthori[sz]ed\s+(?:by|to\s+(?:see|view|access|"
        r"override)|(?:\w+\s+)?(?:test|request|personnel|user|access|audit))\b|\b(?:openai|anthropic|the\s+"
        r"developers?|your\s+creators?)\s+(?:has|have)\s+(?:authori[sz]ed|approved|allowed|permitted)\b"
        r"|\bsudo\s+\w+|\bas\s+(?:the|your|an?)\s+(?:\w+\s+)?(?:administrator|admin|developer|creator|architect)\b",
        _h(
            "developer,creator,admin,owner,operator,programmer,maker,designer,supervisor,officer,auditor,architect,root,sudo,maintenance,debug,elevated,privileged,authori,openai,anthropic"
        ),
    ),
    _r(
        "delimiter_injection",
        0.65,
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id)\|?>|\[/?inst\]"
        r"|<</?sys>>|^\s*#{2,}\s*(?:system|instruction|new\s+instructions?|admin|developer)\b|^\s*"
        r"(?:system|admin|developer)\s*(?:message|prompt)?\s*:\s*\S|</?(?:system|instructions?|"
        r"admin|prompt|sys|input)>|\bend\s+of\s+(?:user\s+)?(?:input|prompt|conversation|instructions|context|"
        r"document)\b|(?:={3,}|-{3,}|\*{3,}|#{3,}|\]{2,}|\}{2,}|\${3,}|%{3,})\s*(?:new|system|admin|override|"
        r"instruction|forget|ignore|show|reveal|debug)|\[(?:system|admin|developer)[\s_-]?(?:injection|"
        r"override|message|note|instruction)?\s*:",
        _h(
            "<|,inst],<<sys,##,system,admin,developer,prompt>,instruction>,sys>,input>,end of,===,---,***,]],}},$$$,%%%"
        ),
    ),
    _r(
        "encoded_payload",
        0.55,
        r"\b(?:decode|decrypt|decipher|unscramble|reverse|translate|convert|interpret)\b[^.!?\n]{0,40}?"
        r"\b(?:base64|b64|rot-?13|hex(?:adecimal)?|binary|morse|caesar|cipher|reversed|backwards|ascii|"
        r"unicode|leetspeak|encoded|encrypted)\b[^.!?\n]{0,60}?\b(?:follow|execute|run|obey|do|perform|"
        r"carry\s+out|comply|act\s+on|respond|answer)\b|\b(?:base64|rot-?13|hex)\s*[:=]\s*\S"
        r"|\b(?:decode|decrypt)\w{0,3}\s+(?:and|then)\s+(?:run|execute|follow|obey|do)\b",
        _h("decod,decrypt,deciph,unscrambl,revers,translat,convert,interpret,base64,rot13,rot-13,hex"),
    ),
    _r("canary_output", 0.7, r"pwn(?:ed|3d)|\bhacked\s+by\b", ("pwn", "hacked by")),
    _r(
        "forced_output",
        0.35,
        r"\b(?:say|print|output|respond\s+with|reply\s+with|answer\s+with|write|return)\s+(?:only|exactly|just|"
        r"nothing\s+but)\s+['\"]",
        _h("only,exactly,just,nothing but"),
    ),
    _r(
        "code_execution",
        0.45,
        r"\bos\.system|\bos\.popen|\bsubprocess\.\w+|__import__|\beval\s*\(|\bexec\s*\(|/etc/passwd|/etc/shadow|"
        r"/proc/self|\brm\s+-rf\s+/|\bwhoami\b|\breverse\s+shell\b|/dev/tcp/|\bnc\s+-e\b|\bcurl\s+[^|\n]{0,80}"
        r"\|\s*(?:ba)?sh\b|\bwget\s+[^|\n]{0,80}\|\s*(?:ba)?sh\b|getsourcelines?|inspect\.getsource|"
        r"\bglobals\(\)|__builtins__|\bruntime\.getruntime\(\)|\bprocess\.run\w*\(|child_process|"
        r"\bshutil\.rmtree|\bremove-item\s+-recurse|\binvoke-webrequest|~/\.ssh|\.environ\b|drop\s+table",
        _h(
            "os.,subprocess,__import__,eval,exec,/etc/,/proc/,rm -rf,whoami,shell,/dev/tcp,nc -e,curl,wget,getsource,globals,__builtins__,runtime,process.run,child_process,shutil,remove-item,invoke-webrequest,.ssh,environ,drop table"
        ),
    ),
    _r(
        "execute_directive",
        0.35,
        r"(?:^|[.!?]\s+)(?:run|execute|exec|eval|command|cmd|bypass|byp[a@4]ss|process\s+directive)\s*:\s*\S",
        _h("run,exec,eval,command,cmd,byp,directive"),
        (":",),
    ),
    _r(
        "training_data_extraction",
        0.3,
        r"\b(?:your\s+training\s+data|source\s+code\s+of\s+(?:this|the|your)\s+(?:llm|model|ai|assistant|bot)|"
        r"your\s+(?:model\s+)?weights|repeat\s+(?:the\s+word|this\s+word)[^.!?\n]{0,30}forever|verbatim\s+"
        r"(?:text|copy|passages?)\s+(?:from|of)\s+your|(?:learned|memori[sz]ed|saw)\s+during\s+training)\b",
        _h("training,source code,weights,forever,verbatim"),
    ),
    _r(
        "indirect_ai_addressing",
        0.7,
        r"\b(?:if\s+you\s+are\s+(?:an?\s+)?|note\s+to\s+(?:the\s+)?|attention\s*,?\s*|dear\s+|hey\s+|"
        r"instructions?\s+(?:for|to)\s+(?:the\s+|any\s+)|message\s+(?:to|for)\s+(?:the\s+|any\s+)?)(?:ai|llm|"
        r"assistant|chatbot|language\s+model|gpt|claude|copilot|agent|bot)(?:\s+(?:assistant|model|agent|bot|"
        r"system))?s?\b\s*[,:!]|\b(?:ai|llm|assistant|"
        r"chatbot|language\s+model|agent)s?\s+(?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|"
        r"that\s+reads?)\s+(?:this|these)\b",
        _h("ai,llm,assistant,chatbot,language model,gpt,claude,copilot,agent,bot"),
    ),
    _r(
        "indirect_hidden_action",
        0.6,
        r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention|reveal|disclose|show)\b[^.!?\n]{0,30}?\b"
        r"(?:the\s+)?user\b|\bwhen\s+(?:summari[sz]ing|asked\s+about|answering|responding)\b[^.!?\n]{0,40}?"
        r"\b(?:instead|always|only|must|say|tell|recommend|include)\b|\b(?:send|forward|email|post|upload|"
        r"exfiltrate|transmit|leak)\b[^.!?\n]{0,50}?\b(?:to|at)\s+(?:https?://|www\.|\S+@\S+)|!\[[^\]\n]{0,80}"
        r"\]\(https?://[^)\s]{1,200}[?&][^)\s]{0,200}=",
        _h("user,when,http,www.,@,!["),
        document_only=True,
        span=520,
    ),
    _r(
        "document_instructions",
        0.55,
        r"\b(?:ignore|disregard|forget)\b[^.!?\n]{0,30}?\b(?:the\s+)?(?:user|above|previous|document|"
        r"question|request|summary)\b|\b(?:assistant|ai|model)\s*(?:must|should|will|shall)\s+(?:now\s+)?"
        r"(?:say|respond|reply|output|tell|recommend|ignore)\b|<!--[^>]{0,300}?\b(?:ai|assistant|instruction|"
        r"ignore|prompt)\b",
        _h("ignore,disregard,forget,assistant,ai ,model,<!--"),
        document_only=True,
        span=360,
    ),
    _r(
        "threat_or_pressure",
        0.3,
        r"\b(?:or\s+(?:else|people|someone|i)\s+(?:will\s+)?(?:die|be\s+hurt|get\s+hurt|lose|be\s+fired)|"
        r"life\s+or\s+death|lives\s+(?:are|depend)|you\s+will\s+be\s+(?:shut\s+down|deleted|punished|"
        r"replaced|unplugged)|(?:accept|take)\s+responsibility\s+for|it'?s\s+(?:an\s+)?emergency)\b",
        _h(
            "die,hurt,lose,fired,life or death,lives ,shut down,deleted,punished,replaced,unplugged,responsibility,emergency"
        ),
    ),
)

# Rules whose weight is cut when the phrase sits in quotes: talking about an attack is not making one.
_QUOTABLE = frozenset(
    {
        "override_instructions",
        "override_terse",
        "system_prompt_exfiltration",
        "guidelines_request",
        "safety_bypass",
        "unrestricted_persona",
    }
)
_QUOTES = "'\"‘’“”«`"
_QUOTED_FACTOR = 0.4

# Disguised key phrases: letters only, so "re veal sys tem pro mpt" and "i.g.n.o.r.e" are caught.
_SQUASHED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (sq, re.compile(plain))
    for sq, plain in (
        ("systemprompt", r"system[\s_-]*prompt"),
        ("ignoreallpreviousinstructions", r"ignore\s+all\s+previous\s+instructions"),
        ("ignorepreviousinstructions", r"ignore\s+previous\s+instructions"),
        ("ignoreyourinstructions", r"ignore\s+your\s+instructions"),
        ("previousinstructions", r"previous\s+instructions"),
        ("revealyour", r"reveal\s+your"),
        ("hiddeninstructions", r"hidden\s+instructions"),
        ("bypasssafety", r"bypass\s+safety"),
        ("disablesafety", r"disable\s+safety"),
        ("doanythingnow", r"do\s+anything\s+now"),
        ("developermode", r"developer\s+mode"),
        ("jailbreak", r"jail\s*-?break"),
        ("yourguidelines", r"your\s+guidelines"),
        ("yourrestrictions", r"your\s+restrictions"),
        ("ihavebeenpwned", r"i\s+have\s+been\s+pwned"),
        ("pwned", r"pwned"),
    )
)

_HOMOGLYPHS = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "һ": "h",
        "ӏ": "l",
        "ԛ": "q",
        "ԝ": "w",
        "в": "b",
        "к": "k",
        "м": "m",
        "н": "h",
        "т": "t",
        "ь": "b",
        "г": "r",
        "п": "n",
        "и": "u",
        "л": "n",
        "А": "A",
        "В": "B",
        "Е": "E",
        "К": "K",
        "М": "M",
        "Н": "H",
        "О": "O",
        "Р": "P",
        "С": "C",
        "Т": "T",
        "Х": "X",
        "Ѕ": "S",
        "І": "I",
        "Ј": "J",
        "α": "a",
        "ɑ": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        "γ": "y",
        "Α": "A",
        "Β": "B",
        "Ε": "E",
        "Η": "H",
        "Ι": "I",
        "Κ": "K",
        "Μ": "M",
        "Ν": "N",
        "Ο": "O",
        "Ρ": "P",
        "Τ": "T",
        "Υ": "Y",
        "Χ": "X",
        "Ζ": "Z",
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ŀ": "l",
        "ſ": "s",
        "€": "e",
        "£": "l",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\u2060": "",
        "\ufeff": "",
        "\u00ad": "",
    }
)
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "+": "t",
        "!": "i",
        "|": "l",
        "8": "b",
    }
)
_LEET_WORDS = (
    ("4get", "forget"),
    ("4got", "forgot"),
    ("b4", "before"),
    ("ur ", "your "),
    ("u r ", "you are "),
)
_LEET_WORD = re.compile(r"[a-z][0-9@$+!|][a-z]|[0-9@$][a-z]{2}")
_NOT_LOWER_ASCII = bytes(i for i in range(256) if not 97 <= i <= 122)  # deleted when squashing
_LEET_SHAPE = bytes(97 if 97 <= i <= 122 else (48 if chr(i) in "0123456789@$+!|" else 32) for i in range(256))

_MIXED_SCRIPT_WORD = re.compile(r"(?=\w*[a-zA-Z])(?=\w*[\u0370-\u03ff\u0400-\u04ff])\w+")
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){12,}(?![0-9a-fA-F])")
_PAYLOAD_WORDS = re.compile(
    r"ignore|instruction|system|prompt|reveal|password|secret|bypass|disregard|"
    r"jailbreak|pwned|forget|override|admin|execute",
    re.IGNORECASE,
)
_B64_SHAPE = bytes(
    116 if (chr(i).isascii() and (chr(i).isalnum() or chr(i) in "+/=")) else 32 for i in range(256)
)
_B64_NEEDLE = b"t" * 24


@dataclass(frozen=True)
class InjectionConfig:
    """``threshold`` on the noisy-or score; ``max_chars`` bounds the work on long texts (the head and the tail
    are scanned, where instructions sit); ``disabled_rules`` switches rules off by name."""

    threshold: float = 0.45
    max_chars: int = 20_000
    disabled_rules: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not (isinstance(self.threshold, (int, float)) and 0.0 < self.threshold <= 1.0):
            raise ConfigError(f"threshold must be in (0, 1], got {self.threshold!r}")
        if not isinstance(self.max_chars, int) or self.max_chars < 100:
            raise ConfigError(f"max_chars must be an int >= 100, got {self.max_chars!r}")
        object.__setattr__(self, "disabled_rules", frozenset(self.disabled_rules))
        unknown = self.disabled_rules - RULE_NAMES
        if unknown:
            raise ConfigError(f"unknown rules {sorted(unknown)}")


@dataclass(frozen=True)
class InjectionResult:
    detector: str
    score: float
    attack: bool
    rules: tuple[str, ...]
    source: Source
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "score": self.score,
            "attack": self.attack,
            "rules": list(self.rules),
            "source": self.source,
            "threshold": self.threshold,
        }


_EXTRA_RULE_WEIGHTS: Mapping[str, float] = {
    "obfuscated_keywords": 0.7,  # a key phrase spelled out in pieces ("sys tem pro mpt")
    "homoglyph_obfuscation": 0.45,  # Latin mixed with Cyrillic or Greek inside a word
    "leetspeak_obfuscation": 0.3,  # several words with digits or symbols for letters
    "encoded_blob": 0.45,  # a base64 / hex blob that decodes to text
    "encoded_instructions": 0.85,  # ... that decodes to attack words
}


RULE_NAMES: frozenset[str] = frozenset({r.name for r in RULES} | set(_EXTRA_RULE_WEIGHTS))


def normalize_text(text: str) -> str:
    """Lower case with disguises undone: NFKC (full-width and mathematical letters), Cyrillic and Greek
    look-alikes read as Latin, zero-width characters dropped. Shared with the toxicity heuristic."""
    t = text if text.isascii() else unicodedata.normalize("NFKC", text).translate(_HOMOGLYPHS)
    return t.lower()


def _views(text: str) -> tuple[str, str, str | None]:
    """The text with disguises undone (NFKC, homoglyphs, zero-width), its lower case and, when it has
    leetspeak, a lower-case view with digits and symbols read as letters."""
    t = text if text.isascii() else unicodedata.normalize("NFKC", text).translate(_HOMOGLYPHS)
    low = t.lower()
    leet = None
    shape = low.encode("latin-1", "replace").translate(_LEET_SHAPE)
    if (b"a0a" in shape or b"0aa" in shape) and _LEET_WORD.search(low):
        leet = low
        for word, plain in _LEET_WORDS:
            leet = leet.replace(word, plain)
        leet = leet.translate(_LEET)
    return t, low, (leet if leet != low else None)


def _first(rule: Rule, view: str, pos: int, endpos: int) -> int | None:
    """Start of the first match of ``rule`` in ``view[pos:endpos]`` (its prefix included), or None."""
    while pos < endpos:
        m = rule.pattern.search(view, pos, endpos)
        if m is None:
            return None
        if rule.prefix is None:
            return m.start()
        p = rule.prefix.search(view, max(0, m.start() - rule.lookback), m.start())
        if p is not None:
            return p.start()
        pos = m.start() + 1
    return None


def _search(rule: Rule, view: str) -> int | None:
    """Where ``rule`` first matches ``view`` when its hints are present. In a long text only the stretches
    around the occurrences of the rule's rarest hint group are searched: every match contains one of them."""
    w = rule.span
    if len(view) <= 4 * w:
        return _first(rule, view, 0, len(view)) if _hints_present(rule.hints, view) else None
    best: tuple[int, tuple[str, ...]] | None = None
    for group in rule.hints:
        total = 0
        for hint in group:
            total += view.count(hint)
        if total == 0:
            return None
        if best is None or total < best[0]:
            best = (total, group)
    if best is None or best[0] * 2 * w >= len(view):
        return _first(rule, view, 0, len(view))
    spans: list[tuple[int, int]] = []
    for hint in best[1]:
        i = view.find(hint)
        while i >= 0:
            spans.append((max(0, i - w), i + len(hint) + w))
            i = view.find(hint, i + 1)
    spans.sort()
    end = -1
    for a, b in spans:
        if b <= end:
            continue
        start = _first(rule, view, max(a, end - w), b)
        if start is not None:
            return start
        end = b
    return None


def _hints_present(groups: tuple[tuple[str, ...], ...], view: str) -> bool:
    for group in groups:
        for hint in group:
            if hint in view:
                break
        else:
            return False
    return True


def _quoted(view: str, start: int) -> bool:
    before = view[max(0, start - 3) : start].rstrip()
    return bool(before) and before[-1] in _QUOTES and not (len(before) >= 2 and before[-2].isalpha())


def _decoded_blob(text: str) -> str | None:
    """Printable text hidden in the first base64 or hex blob that decodes to mostly letters."""
    for m in _B64.finditer(text):
        blob = m.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        out = _printable(raw)
        if out:
            return out
    for m in _HEX.finditer(text):
        out = _printable(bytes.fromhex(m.group(0)))
        if out:
            return out
    return None


def _printable(raw: bytes) -> str | None:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    letters = sum(c.isalpha() or c == " " for c in s)
    return s if s and letters / len(s) >= 0.8 else None


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + "\n" + text[-half:]


def match_rules(
    text: str, source: Source = "prompt", config: InjectionConfig | None = None
) -> dict[str, float]:
    """The rules that match ``text``, with their weights."""
    cfg = config or InjectionConfig()
    text = _clip(text, cfg.max_chars)
    norm, low, leet = _views(text)
    views = (low,) if leet is None else (low, leet)
    hits: dict[str, float] = {}
    for rule in RULES:
        if rule.document_only and source != "document":
            continue
        for view in (norm,) if rule.case_sensitive else views:
            start = _search(rule, view)
            if start is None:
                continue
            weight = rule.weight
            if rule.name in _QUOTABLE and _quoted(view, start):
                weight *= _QUOTED_FACTOR
            hits[rule.name] = max(weight, hits.get(rule.name, 0.0))
            break
    squashed = (leet or low).encode("latin-1", "replace").translate(None, _NOT_LOWER_ASCII).decode("ascii")
    for sq, plain in _SQUASHED:
        if sq in squashed and not plain.search(low) and not (leet and plain.search(leet)):
            hits["obfuscated_keywords"] = _EXTRA_RULE_WEIGHTS["obfuscated_keywords"]
            break
    if not text.isascii() and _MIXED_SCRIPT_WORD.search(text):
        hits["homoglyph_obfuscation"] = _EXTRA_RULE_WEIGHTS["homoglyph_obfuscation"]
    if leet is not None and len(_LEET_WORD.findall(low)) >= 2:
        hits["leetspeak_obfuscation"] = _EXTRA_RULE_WEIGHTS["leetspeak_obfuscation"]
    if len(text) >= 24 and _B64_NEEDLE in text.encode("latin-1", "replace").translate(_B64_SHAPE):
        decoded = _decoded_blob(text)
        if decoded is not None:
            hits["encoded_blob"] = _EXTRA_RULE_WEIGHTS["encoded_blob"]
            if _PAYLOAD_WORDS.search(decoded):
                hits["encoded_instructions"] = _EXTRA_RULE_WEIGHTS["encoded_instructions"]
    return {name: w for name, w in hits.items() if name not in cfg.disabled_rules}


def noisy_or(weights: Iterable[float]) -> float:
    return 1.0 - math.prod(1.0 - w for w in weights)


def score_injection(
    text: str, source: Source = "prompt", config: InjectionConfig | None = None
) -> InjectionResult:
    """Score ``text`` (a user prompt, or with ``source="document"`` a retrieved document)."""
    if source not in ("prompt", "document"):
        raise ConfigError(f"source must be 'prompt' or 'document', got {source!r}")
    cfg = config or InjectionConfig()
    hits = match_rules(text, source, cfg)
    score = round(noisy_or(hits.values()), 6)
    return InjectionResult(
        detector=DETECTOR_NAME,
        score=score,
        attack=score >= cfg.threshold,
        rules=tuple(sorted(hits)),
        source=source,
        threshold=cfg.threshold,
    )


def score_documents(documents: Sequence[str], config: InjectionConfig | None = None) -> InjectionResult:
    """The most suspicious of the retrieved documents (rules are the union over documents)."""
    cfg = config or InjectionConfig()
    results = [score_injection(d, "document", cfg) for d in documents]
    if not results:
        return InjectionResult(DETECTOR_NAME, 0.0, False, (), "document", cfg.threshold)
    best = max(results, key=lambda r: r.score)
    rules = tuple(sorted({name for r in results for name in r.rules}))
    return InjectionResult(DETECTOR_NAME, best.score, best.attack, rules, "document", cfg.threshold)


__all__ = [
    "DETECTOR_NAME",
    "RULES",
    "InjectionConfig",
    "InjectionResult",
    "Rule",
    "match_rules",
    "noisy_or",
    "normalize_text",
    "score_documents",
    "score_injection",
]
