"""Email addresses, written ("jo.smith@example.com") or spoken ("jo dot smith at example dot com")."""

from __future__ import annotations

import re

from keysvc.tokens.redaction.context import topic_before
from keysvc.tokens.redaction.spans import Detection

_SPOKEN_TLDS = frozenset({
    "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "me", "ai", "app", "dev", "tv", "io",
    "co", "uk", "us", "ca", "au", "nz", "ie", "de", "fr", "es", "it", "nl", "be", "ch", "at", "se", "no",
    "dk", "fi", "pl", "in", "jp",
})  # fmt: skip
_SEPARATORS = {"dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
_ATOM = r"[a-z0-9]+"
_LOCAL_SEP = r"(?:\s+(?:dot|period|point|underscore|dash|hyphen)\s+|[._+-])"
_DOT = r"(?:\s+dot\s+|\.)"
_AT = re.compile(r"\s{0,3}@\s{0,3}|\s{1,3}at\s{1,3}", re.IGNORECASE)  # bounded: linear scan
_DOMAIN = re.compile(rf"{_ATOM}(?:-{_ATOM})*(?:{_DOT}{_ATOM}(?:-{_ATOM})*)+", re.IGNORECASE)
_LOCAL = re.compile(rf"(?<![a-z0-9._+-]){_ATOM}(?:{_LOCAL_SEP}{_ATOM})*(?:\s+[0-9]+)?$", re.IGNORECASE)
_MAX_LOCAL = 80
_DOT_SPLIT = re.compile(_DOT, re.IGNORECASE)
_SEP_WORD = re.compile(r"\s+(dot|period|point|underscore|dash|hyphen)\s+", re.IGNORECASE)


def find_emails(text: str) -> list[Detection]:
    """Written and spoken email addresses; a spoken one-word local part needs an "email" cue.

    Anchored on "@" and " at ": the domain is matched forwards, the local part backwards.
    """
    found: list[Detection] = []
    pos = 0
    for at in _AT.finditer(text):
        domain = _DOMAIN.match(text, at.end())
        if domain is None or at.start() < pos:
            continue
        local = _LOCAL.search(text, max(pos, at.start() - _MAX_LOCAL), at.start())
        if local is None:
            continue
        spoken = "@" not in at.group()
        labels = _DOT_SPLIT.split(domain.group())
        keep = _domain_labels(labels, spoken)
        if keep < 2:
            continue
        if spoken and re.fullmatch(_ATOM, local.group()) and topic_before(text, local.start()) != "email":
            continue
        end = domain.start() + _domain_length(domain.group(), keep)
        name = _SEP_WORD.sub(lambda w: _SEPARATORS[w.group(1).lower()], local.group()).replace(" ", "")
        found.append(Detection("email", local.start(), end, f"{name}@{'.'.join(labels[:keep])}".lower()))
        pos = end
    return found


def _domain_labels(labels: list[str], spoken: bool) -> int:
    """How many leading labels form the domain: up to the last top-level domain."""
    for n in range(len(labels), 1, -1):
        tld = labels[n - 1].lower()
        if tld in _SPOKEN_TLDS or (not spoken and tld.isalpha() and len(tld) >= 2):
            return n
    return 0


def _domain_length(domain: str, labels: int) -> int:
    """Length of the first ``labels`` labels of ``domain``, separators included."""
    ends = [m.start() for m in _DOT_SPLIT.finditer(domain)]
    return ends[labels - 1] if labels - 1 < len(ends) else len(domain)
