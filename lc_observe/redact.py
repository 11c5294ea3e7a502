"""Redaction of secrets before any sink sees a value.

A `Redactor` walks a JSON-safe value (the output of `lc_observe.serialize.to_jsonable`)
and returns a copy where

- every string has secret-looking substrings (API keys, bearer tokens, AWS key ids ...)
  replaced by ``"[REDACTED]"``;
- every value under a secret-looking dict key (``api_key``, ``password``,
  ``authorization`` ...) is replaced by ``"[REDACTED]"``.

>>> Redactor()({"api_key": "abc", "note": "use sk-abcdefghijklmnopqrstuv now"})
{'api_key': '[REDACTED]', 'note': 'use [REDACTED] now'}

Redaction is on by default (`ObsHandler(redact=...)`): ``True`` for the defaults, ``False``
to turn it off, a list of extra regular expressions to add to the defaults, or a
`Redactor` of your own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

REPLACEMENT = "[REDACTED]"

#: Substrings that look like credentials, wherever they appear in a string.
DEFAULT_PATTERNS: tuple[str, ...] = (
    r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic style keys
    r"\bBearer\s+[A-Za-z0-9._~+/=\-]{8,}",  # HTTP bearer tokens
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    r"\bAIza[0-9A-Za-z_\-]{35}\b",  # Google API keys
    r"\blsv2_(?:pt|sk)_[A-Za-z0-9_]{20,}",  # LangSmith keys
    # PEM private keys; [^"] keeps a match inside one JSON string when JSON text is redacted
    r'-----BEGIN [A-Z ]*PRIVATE KEY-----[^"]*?-----END [A-Z ]*PRIVATE KEY-----',
)

#: Dict keys whose values are secrets (compared lower-cased, ``-`` read as ``_``).
DEFAULT_KEY_PATTERN = (
    r"(?:.*_)?(?:api_?key|password|passwd|pwd|secret|client_secret|secret_key|authorization|"
    r"auth_token|access_token|refresh_token|id_token|bearer_token|session_token|private_key|"
    r"cookie|set_cookie|credentials?)|token"
)


#: Literals that occur in every match of a default pattern: a pattern runs only on text
#: that holds one of its literals (``str.__contains__`` is far cheaper than a regex scan).
_GATES: dict[str, tuple[str, ...]] = dict(
    zip(
        DEFAULT_PATTERNS,
        (
            ("sk-",),
            ("Bearer",),
            ("AKIA", "ASIA"),
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
            ("xox",),
            ("AIza",),
            ("lsv2_",),
            ("-----BEGIN",),
        ),
        strict=True,
    )
)
#: A JSON key ending in a secret word ends like one of these (lower-cased).
_KEY_WORDS = (
    'key"',
    'passwd"',
    'password"',
    'pwd"',
    'secret"',
    'authorization"',
    'token"',
    'cookie"',
    'credential"',
    'credentials"',
)

#: Where a key of JSON text may end in a secret word (checked precisely by `is_secret_key`).
_KEY_CANDIDATES = re.compile(
    r"(?:api[_-]?key|passw(?:or)?d|pwd|secret|authorization|token|cookie|credentials?)"
    r'("\s*:)',
    re.IGNORECASE,
)


#: `Redactor.redact_json_text` remembers verdicts on this many texts of at most this size.
_TEXT_CACHE_SIZE = 256
_CACHED_TEXT_CHARS = 8_192


class Redactor:
    """Replace secrets in JSON-safe values.

    Args:
        patterns: regular expressions of secret substrings (default `DEFAULT_PATTERNS`).
        key_pattern: regular expression a whole (normalised) dict key must match for its
            value to be replaced (default `DEFAULT_KEY_PATTERN`); ``None`` for no key rule.
        replacement: what a secret becomes.
    """

    def __init__(
        self,
        patterns: Iterable[str] = DEFAULT_PATTERNS,
        key_pattern: str | None = DEFAULT_KEY_PATTERN,
        replacement: str = REPLACEMENT,
    ) -> None:
        self.patterns = tuple(patterns)
        gated = [p for p in self.patterns if p in _GATES]
        others = [p for p in self.patterns if p not in _GATES]
        try:
            # Default patterns each behind their literals; other patterns as one regex.
            self._gated = [(_GATES[p], re.compile(p)) for p in gated]
            self._literals = tuple(lit for p in gated for lit in _GATES[p])
            joined = "|".join(f"(?:{p})" for p in others)
            self._ungated = re.compile(joined) if others else None
            self._key = re.compile(key_pattern) if key_pattern else None
        except re.error as exc:
            raise ValueError(f"invalid redaction pattern: {exc}") from None
        self.replacement = replacement
        self._key_cache: dict[str, bool] = {}
        self._text_cache: dict[str, str | None] = {}
        # Candidates for the default key rule in JSON text: a secret word ending a key.
        self._key_candidates = _KEY_CANDIDATES if key_pattern == DEFAULT_KEY_PATTERN else None

    def redact_json_text(self, text: str) -> str | None:
        """Redact serialized JSON directly when no secret-looking key occurs in it.

        Returns ``None`` when one does (or a custom key rule is set): the caller must then
        redact the structure with `__call__`.

        Verdicts on texts up to `_CACHED_TEXT_CHARS` are remembered (`_TEXT_CACHE_SIZE`
        of them: at most ~2M characters): LangGraph hands the same state to a node and its first
        step, and children inherit their parent's metadata, so about half the texts of a
        graph's spans repeat one seen moments before.
        """
        if len(text) > _CACHED_TEXT_CHARS:
            return self._redact_json_text(text)
        cache = self._text_cache
        if text in cache:
            return cache[text]
        if len(cache) >= _TEXT_CACHE_SIZE:
            cache.clear()  # simple and thread-safe; refills within a few traces
        result = cache[text] = self._redact_json_text(text)
        return result

    def _redact_json_text(self, text: str) -> str | None:
        if self._key is not None:
            if self._key_candidates is None:
                return None
            lowered = text.lower()
            for word in _KEY_WORDS:
                if word in lowered:
                    break
            else:
                return self._json_text(text)
            for match in self._key_candidates.finditer(text):
                start = text.rfind('"', 0, match.start()) + 1
                if self.is_secret_key(text[start : match.end() - len(match.group(1))]):
                    return None
        return self._json_text(text)

    def _json_text(self, text: str) -> str | None:
        """Redacted JSON text, or None when a replacement broke the JSON (a pattern of the
        user's may match from one string into the next): then redact the structure."""
        redacted = self.text(text)
        if redacted != text:
            try:
                json.loads(redacted)
            except ValueError:
                return None
        return redacted

    def text(self, value: str) -> str:
        """Redact secret substrings of one string."""
        for literal in self._literals:  # a plain loop: cheaper than any() on a generator
            if literal in value:
                for literals, pattern in self._gated:
                    if any(lit in value for lit in literals):
                        value = pattern.sub(self.replacement, value)
                break
        if self._ungated is not None:
            value = self._ungated.sub(self.replacement, value)
        return value

    def is_secret_key(self, key: str) -> bool:
        """Whether values under dict key ``key`` are secrets (cached: keys repeat a lot)."""
        if self._key is None:
            return False
        known = self._key_cache.get(key)
        if known is None:
            known = bool(self._key.fullmatch(key.lower().replace("-", "_")))
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = known
        return known

    def __call__(self, value: Any) -> Any:
        """Return a redacted copy of a JSON-safe ``value``."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                key: self.replacement if self.is_secret_key(key) else self(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self(item) for item in value]
        return value


RedactOption = bool | Iterable[str] | Redactor | Callable[[Any], Any] | None


def make_redactor(option: RedactOption) -> Callable[[Any], Any] | None:
    """Turn an ``ObsHandler(redact=...)`` value into a redaction function (or None: off)."""
    if option is None or option is False:
        return None
    if option is True:
        return Redactor()
    if isinstance(option, Redactor) or callable(option):
        return option
    if isinstance(option, str):
        raise TypeError("redact= takes a list of patterns, not a single string: use [pattern]")
    return Redactor(patterns=(*DEFAULT_PATTERNS, *option))
