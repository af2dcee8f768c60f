"""Showing a name that came from outside (a file name, a zip entry, a setting) inside a message."""

from __future__ import annotations

import re

# Control characters (line breaks, NUL, terminal escapes) and the invisible marks that reorder
# or hide text (bidirectional overrides, zero-width characters).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def shown(value: object, limit: int = 80) -> str:
    """``value`` as plain text for a one-line message: each unsafe character becomes ``?`` and
    past ``limit`` characters it is cut with ``…``, so that a hostile name can neither break the
    line nor pass off text of its own as the rest of the message (unlike ``repr``, it shows no
    Python quoting or escapes)."""
    text = _UNSAFE.sub("?", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
