"""Words in messages: counts with the right plural ("1 face", "2 faces", "1 person")."""

from __future__ import annotations

IRREGULAR = {"person": "people", "match": "matches"}


def plural(count: int, noun: str) -> str:
    """`plural(1, "face")` is "1 face", `plural(2, "face")` "2 faces", `plural(3, "person")`
    "3 people"."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {IRREGULAR.get(noun, noun + 's')}"
