"""Ready-made replacers: a plain label, or a label that keeps a card's last four digits."""

from __future__ import annotations

from keysvc.tokens.redaction.spans import Span


def label(span: Span, value: str) -> str:
    """``[PAN]``, ``[CVV]``, ``[EXPIRY]``, ``[SSN]``, ``[PHONE]`` or ``[EMAIL]``."""
    return f"[{span.kind.upper()}]"


def mask(span: Span, value: str) -> str:
    """Like :func:`label`, but a card number keeps its last four digits: ``[PAN ****1111]``."""
    if span.kind == "pan":
        return f"[PAN ****{value[-4:]}]"
    return label(span, value)
