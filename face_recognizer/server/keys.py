"""API keys: made here, shown once, stored only as their SHA-256.

A key is `frk_` and 43 URL-safe characters (256 random bits), so a plain SHA-256 is enough to
store it: nobody can guess a key from its hash, and a lookup by hash is one index probe (a slow
password hash would add its cost to every request). Keys are checked on every request, so a
key revoked with `face-recognizer keys revoke` stops working at once, also in a running server.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata

from face_recognizer.errors import FaceRecognizerError

KEY_PREFIX = "frk_"
MAX_KEY_NAME = 64


def new_key() -> str:
    """A fresh random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What is stored and looked up: the key's SHA-256, hex."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


def check_key_name(name: str) -> str:
    """A key's name as stored (NFC, stripped); FaceRecognizerError when unusable."""
    clean = unicodedata.normalize("NFC", str(name)).strip()
    if not clean:
        raise FaceRecognizerError("A key's name cannot be empty.")
    if len(clean) > MAX_KEY_NAME:
        raise FaceRecognizerError(f"A key's name can have at most {MAX_KEY_NAME} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in clean):
        raise FaceRecognizerError(f"The key name {clean!r} holds control characters.")
    return clean
