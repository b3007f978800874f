"""Words in messages: counts with the right plural ("1 face", "2 faces", "1 person"), and
similarities as people read them."""

from __future__ import annotations

IRREGULAR = {"person": "people", "match": "matches"}


def plural(count: int, noun: str) -> str:
    """`plural(1, "face")` is "1 face", `plural(2, "face")` "2 faces", `plural(3, "person")`
    "3 people"."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {IRREGULAR.get(noun, noun + 's')}"


NO_MATCH = "no match"


def similarity_text(similarity: float) -> str:
    """A cosine similarity as shown to people: "0.61", or "no match" at or below 0 (a
    negative cosine says nothing more than 0 does: nothing in common)."""
    return f"{similarity:.2f}" if similarity >= 0.005 else NO_MATCH
