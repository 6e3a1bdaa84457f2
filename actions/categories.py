"""What went wrong, in the customer's terms: the problem categories, how each is recognised and named, and repeats.

The category drives the wording of the apology and the ticket's category; the customer's own words stay the
ticket's description. Tried in order: the first category whose pattern matches names the problem.
"""

from __future__ import annotations

import re

OTHER = "other"
# (category, pattern): the more specific problems first ("says delivered but…" before "never arrived").
PATTERNS: list[tuple[str, str]] = [
    (
        "delivered_not_received",
        (
            r"\b(says|said|shows?|showing|marked|status|apparently|supposedly|claims?)\b.{0,30}\bdelivered\b"
            r"|\bdelivered\b.{0,40}\b(but|yet)\b.{0,30}\b(not|never|nothing|no|nobody|didn'?t|don'?t|dont|haven'?t)\b"
            r"|\bhanded (it )?over\b.{0,20}\b(but|yet)\b"
        ),
    ),
    (
        "charged_twice",
        (
            r"\bcharged (me )?(twice|two times|2x|double)|double[- ]?charg|\b(twice|two times|2x)\b.{0,30}\b(charg|paid|pay|bill|debit)"
            r"|\b(charg|payment|paid|billed|debited|took the (money|payment)).{0,40}\b(twice|two times|2x)\b|\btwo payments\b"
        ),
    ),
    (
        "wrong_size",
        (
            r"\bwrong size|\bsizes? (too|smaller|bigger|larger)\b|\b(too|way too) (small|big|large|tight|loose|short|long)\b"
            r"|\bsent (me )?(a )?size\b|\bsize\b.{0,30}\b(instead|not what)\b|\bordered (an? )?(xs|s|m|l|xl|xxl)\b.{0,12}\bgot\b"
        ),
    ),
    (
        "wrong_item",
        (
            r"\bwrong (item|product|thing|order|colou?r|one|parcel|model|book|style)\b|someone else'?s|not what i (ordered|bought|paid)"
            r"|\b(isn'?t|isnt|not) (my order|what i ordered)|\baren'?t (mine|my)\b|\bordered an? [\w-]+( [\w-]+)? and (got|received)\b"
            r"|\b(received|got|sent me) an? .{1,30}\binstead of\b"
        ),
    ),
    (
        "missing_parts",
        (
            r"\bmissing\b|\bcame (with no|without)\b|\bwithout the\b|\bweren'?t in the box|\b(wasn'?t|was not|weren'?t|not) included"
            r"|\bthere (are|were) only\b"
        ),
    ),
    (
        "stopped_working",
        (
            r"\bstopp?ed (working|spinning|charging|heating)|\b(died|packed in|gave up)\b|\bnot working\b|\bfaulty|\bdefective"
            r"|\b(doesn'?t|does not|doesnt|won'?t|wont|will not) (turn on|switch on|charge|start|power on)\b"
            r"|\b(doesn'?t|does not|doesnt|won'?t|wont|will not) work\b.{0,4}\b(anymore|any more|after)"
        ),
    ),
    (
        "damaged",
        (
            r"\b(broke|broken|damage|damged|crack|smash|shatter|dent|scratch|chip|torn|ripped|snapped|bent|crushed|soaked|ruined"
            r"|leak|stain)|\bin pieces\b"
        ),
    ),
    (
        "refund_missing",
        (
            r"\b(where'?s|where is|no sign of|waiting for|still no|still (haven'?t|havent|not) (got|had|received)"
            r"|(haven'?t|havent|never|not) (got|had|received|seen)|promised( me)?)( my| the| a| any| that)? refund"
            r"|\brefund\b.{0,30}\b(still|never|has not|hasn'?t|yet to|not (arrived|come|received|in))\b"
            r"|\bowe me( my)? money|\bmoney (hasn'?t|has not|never)\b"
        ),
    ),
    (
        "rude_staff",
        r"\b(rude|swore|swearing|shout|yell|laughed at|disrespect|impolite|hung up|threw|aggressive|unprofessional|attitude)",
    ),
    (
        "no_reply",
        (
            r"\b(no|nobody|no one|noone|never)\b (has |have |ever |even )*(repl|answer|respon|got back|get back|called back)"
            r"|\bno (reply|response|answer)\b|\bnothing back\b|\b(second|third|fourth|fifth|\d+(nd|rd|th)) (email|message|time i'?m)"
            r"|\b(emailed|written to|wrote to|messaged) (you|support)\b.{0,40}\b(no|nobody|still|never|times)\b|\bread (the|my) emails"
        ),
    ),
    (
        "late",
        (
            r"\blate\b|\boverdue|\bdelay|\bstill (isn'?t|isnt|not|hasn'?t|hasnt) (here|arrived|come|delivered)"
            r"|\bstill waiting for (my|the) (parcel|order|delivery|package)|\b(was|were|is) (due|supposed to|meant to)\b"
            r"|\bshould (have|'?ve) (been here|arrived|come)|\bexpress\b|\bnext day\b"
        ),
    ),
    (
        "not_arrived",
        (
            r"\bnever (arrived|came|showed up|turned up|got|reached|received|delivered)|\bnever got my\b|\blost\b"
            r"|\bnothing (ever )?(arrived|came)|\b(didn'?t|did not) (arrive|come|turn up|show up)\b"
        ),
    ),
]
# How the first reply names each problem: plain words that follow "sorry about".
PHRASES = {
    "damaged": "your item arriving damaged",
    "wrong_item": "being sent the wrong item",
    "wrong_size": "the wrong size",
    "missing_parts": "parts missing from your order",
    "late": "your order arriving late",
    "not_arrived": "your order never arriving",
    "delivered_not_received": "your order showing as delivered when it never reached you",
    "charged_twice": "being charged twice",
    "refund_missing": "your refund not reaching you",
    "rude_staff": "the way you were treated by our staff or courier",
    "no_reply": "not getting a reply from us",
    "stopped_working": "a product that stopped working",
    OTHER: "what you've been through",
}
# Categories of tickets made before these existed: still named on the customer's list of tickets.
EARLIER = {
    "delivery": "the problem with your delivery",
    "damaged_or_wrong_item": "your item arriving damaged or wrong",
    "billing": "the problem with your bill",
    "service": "the service you received from us",
}
# Problems that already cost the customer a long wait: the confirmation says sorry for the wait.
LONG_WAIT = {"late", "not_arrived", "refund_missing", "no_reply"}
# Photos show these problems; for the others they are not asked for (any sent are still kept).
SHOWN_IN_PHOTOS = {"damaged", "wrong_item", "wrong_size", "missing_parts", "stopped_working"}
REPEAT = re.compile(
    r"(?<!never )\bagain\b|\b(second|2nd|third|3rd|fourth|4th|fifth|5th|\d+th) (time|email|message|call|attempt)"
    r"|\b(three|four|five|six|several|many|so many|\d+) (times|emails|messages|calls)\b|\bkeeps? (happening|sending)\b"
    r"|\bevery (single )?time\b|\bonce more\b|\bnot the first time\b",
    re.IGNORECASE,
)
QUOTE_CHARS = 80


def category_of(text: str) -> str | None:
    """The first category whose pattern the text matches, or None."""
    return next((name for name, pattern in PATTERNS if re.search(pattern, text, re.IGNORECASE)), None)


def is_repeat(text: str) -> bool:
    """Whether the customer says it has happened before ("again", "the third email", "four times")."""
    return bool(REPEAT.search(text))


def problem_text(category: str | None, words: str = "") -> str:
    """The problem in plain words; for anything else, the customer's own words follow as a quote."""
    if category in PHRASES and category != OTHER:
        return PHRASES[category]
    if category in EARLIER:
        return EARLIER[category]
    words = " ".join(words.split())
    if not words:
        return PHRASES[OTHER]
    quoted = words if len(words) <= QUOTE_CHARS else words[: QUOTE_CHARS - 1].rstrip() + "…"
    return f"{PHRASES[OTHER]} (“{quoted}”)"
