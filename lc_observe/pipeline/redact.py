"""Redaction of secrets: one walk over a JSON-safe value, keys and strings alike.

A `Redactor` walks a JSON-safe value (the output of `lc_observe.pipeline.serialize.to_jsonable`)
and returns a copy where

- every value under a secret-looking dict key is replaced by ``"[REDACTED]"``.  Keys are
  compared by their *name parts*: ``secret_key``, ``Private-Key``, ``accessToken``,
  ``clientSecret``, ``userPassword``, ``HF_TOKEN`` and ``aws_secret_access_key`` all split
  into lower-case words (snake, kebab, camel and upper case alike), and the words joined
  by ``_`` must match `DEFAULT_KEY_PATTERN`;
- every string has secret-looking substrings replaced: API keys (OpenAI, Anthropic,
  GitHub, Slack, Google, Hugging Face, LangSmith), bearer tokens (any case, after any
  whitespace), ``Basic`` credentials, AWS access key ids, ``?api_key=``-style URL
  parameters, ``password=...`` / ``token: ...`` written out in text, the password of
  ``scheme://user:password@host`` and PEM private keys.

>>> Redactor()({"api_key": "abc", "note": "use sk-abcdefghijklmnopqrstuv now"})
{'api_key': '[REDACTED]', 'note': 'use [REDACTED] now'}

Every rule runs in time linear in the text (bounded repetitions; PEM blocks are found
with ``str.find``, not a regex), and a walk stops after ``time_budget`` seconds: whatever
it has not checked by then is replaced by ``"…[redaction budget exceeded]"``, never kept
in clear.

Redaction is on by default (`ObsHandler(privacy=Privacy(redact=...))`): ``True`` for the
defaults, ``False`` to turn it off, a list of extra regular expressions to add to the defaults, or a
`Redactor` (or any function on JSON-safe values) of your own.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

REPLACEMENT = "[REDACTED]"
BUDGET_EXCEEDED = "…[redaction budget exceeded]"

#: Where a secret may start: not inside a word, or right after an escape sequence written
#: out as text (``\\n``, ``\\t``, ``\\r`` in a repr or a log line).
_START = r"(?:(?<![A-Za-z0-9_])|(?<=\\[ntr]))"

#: Substrings that look like credentials, wherever they appear in a string.  Each one is
#: linear: every repetition that can meet another is bounded.
DEFAULT_PATTERNS: tuple[str, ...] = (
    _START + r"sk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_\-]{16,}",  # OpenAI / Anthropic style keys
    "(?i)"
    + _START
    + r"bearer(?:\s|\\[ntr]){1,64}[A-Za-z0-9._~+/=\-]{8,}",  # HTTP bearer tokens, any case
    _START + r"(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    _START + r"gh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub tokens
    _START + r"github_pat_[A-Za-z0-9_]{22,}",  # GitHub fine-grained tokens
    _START + r"xox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
    _START + r"AIza[0-9A-Za-z_\-]{35}\b",  # Google API keys
    _START + r"hf_[A-Za-z0-9]{30,}\b",  # Hugging Face tokens
    _START + r"lsv2_(?:pt|sk)_[A-Za-z0-9_]{20,}",  # LangSmith keys
)

#: The name parts of a secret dict key, joined by ``_`` (see `key_words`): ending in a
#: secret word, a ``..._key`` of a secret kind, or holding password/passwd/secret anywhere.
DEFAULT_KEY_PATTERN = (
    r"(?:.*_)?(?:api_?key|apikey|password|passwd|passphrase|pwd|secret|token|authorization|"
    r"cookie|credentials?|dsn|(?:private|secret|access|signing|encryption|client|master|"
    r"session|auth)_?key)|(?:.*_)?(?:password|passwd|secret)_.*"
)

# Literals (lower case) that occur in every match of a rule: a rule runs only on text
# holding one of them (`str.__contains__` is far cheaper than a regex scan).
_GATES: dict[str, tuple[str, ...]] = dict(
    zip(
        DEFAULT_PATTERNS,
        (
            ("sk-",),
            ("bearer",),
            ("akia", "asia"),
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
            ("github_pat_",),
            ("xox",),
            ("aiza",),
            ("hf_",),
            ("lsv2_",),
        ),
        strict=True,
    )
)

#: ``Basic <base64 of user:password>`` (checked: the text must decode to ``user:password``).
_BASIC = re.compile("(?i)" + _START + r"basic(?:\s|\\[ntr]){1,64}([A-Za-z0-9+/]{6,}={0,2})")
#: ``?api_key=...`` / ``&token=...`` in URLs and query strings: the value is replaced.
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:[a-z0-9_\-]{0,32}(?:api[_\-]?key|apikey|token|secret|password|passwd|pwd)"
    r"|key|sig|signature|auth|access_token)=)[^&#\s\"'<>]{1,4096}"
)
#: ``scheme://user:password@host``: the password is replaced.
_DSN = re.compile(
    "(?i)" + _START + r"([a-z][a-z0-9+.\-]{0,31}://[^\s/:@]{0,256}:)[^\s/@]{1,256}(@)"
)
#: ``password=...`` / ``api_key: ...`` written out in text (logs, error messages).
_ASSIGNED = re.compile(
    "(?i)"
    + _START
    + r"((?:password|passwd|pwd|secret|api[_\-]?key|apikey|access[_\-]?token|auth[_\-]?token"
    r"|token)\s{0,8}[:=]\s{0,8})(?![\s\[])[^\s,;&\"'<>]{1,4096}"
)
#: The same keys quoted, with a quoted value: JSON or a Python dict's repr held in a string
#: (a tool call's ``arguments``, a logged request body).  The value is replaced inside its
#: quotes, so JSON text stays JSON; a number or a nested value after the key is left alone.
_QUOTED_ASSIGNED = re.compile(
    "(?i)"
    + _START
    + r"((?:password|passwd|pwd|secret|api[_\-]?key|apikey|access[_\-]?token|auth[_\-]?token"
    r"|token)([\"'])\s{0,8}:\s{0,8}\2)[^\"'\\\n]{1,4096}(?=\2)"
)
_ASSIGNED_GATES = ("password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey", "token")
_PEM_BEGIN = "-----BEGIN "
_PEM_HEADER = re.compile(r"-----BEGIN [A-Z0-9 ]{0,64}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,64}PRIVATE KEY-----")
_PEM_GATE = "private key-----"
#: Literals of the built-in rules (Basic, DSN, PEM, URL parameters, assignments in text).
_BUILTIN_GATES = (
    "basic",
    "://",
    "-----begin ",
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "key=",
    "sig=",
    "signature=",
    "auth=",
)
#: Shorter literals standing for the ones they are part of (``pass`` for ``password`` ...).
_SHORT_GATES = frozenset({"pass", "sig", "auth"})
_SUBSUMED = frozenset(
    {"password", "passwd", "passphrase", "sig=", "signature=", "auth=", "authorization"}
)
#: Every key the default key rule matches holds one of these (lower case) in its name.
_KEY_GATES = (
    "key",
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "credential",
    "dsn",
)

#: Name parts of a dict key: ``aws_secret_access_key``, ``Private-Key``, ``HFToken``,
#: ``clientSecret`` -> words (upper-case runs kept together: ``APIKey`` -> ``API``, ``Key``).
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def key_words(key: str) -> str:
    """A dict key as its lower-case name parts joined by ``_`` (what key rules match).

    >>> key_words("aws-SecretAccessKey"), key_words("HF_TOKEN"), key_words("APIKey")
    ('aws_secret_access_key', 'hf_token', 'api_key')
    """
    return "_".join(_WORDS.findall(key)).lower()


#: Strings up to this size have their redacted form remembered (they repeat a lot: a
#: graph's state in a node and its first step, metadata inherited by every child).
_CACHED_CHARS = 4_096
_CACHE_SIZE = 1_024  # at most ~4M characters


class Redactor:
    """Replace secrets in JSON-safe values, in one walk over keys and strings.

    Args:
        patterns: regular expressions of secret substrings (default `DEFAULT_PATTERNS`;
            the ``Basic``, URL-parameter, DSN-password and PEM rules always apply).
        key_pattern: regular expression the name parts of a dict key (`key_words`) must
            match in full for its value to be replaced (default `DEFAULT_KEY_PATTERN`);
            ``None`` for no key rule.
        replacement: what a secret becomes.
        time_budget: seconds one call may take; what it has not reached by then becomes
            `BUDGET_EXCEEDED` (``None``: no budget).
    """

    def __init__(
        self,
        patterns: Iterable[str] = DEFAULT_PATTERNS,
        key_pattern: str | None = DEFAULT_KEY_PATTERN,
        replacement: str = REPLACEMENT,
        time_budget: float | None = 1.0,
    ) -> None:
        self.patterns = tuple(patterns)
        gated = [p for p in self.patterns if p in _GATES]
        others = [p for p in self.patterns if p not in _GATES]
        try:
            self._gated = [(_GATES[p], re.compile(p)) for p in gated]
            self._literals = tuple(lit for p in gated for lit in _GATES[p]) + _BUILTIN_GATES
            self._ungated = [re.compile(p) for p in others]
            self._key = re.compile(key_pattern) if key_pattern else None
        except re.error as exc:
            raise ValueError(f"invalid redaction pattern: {exc}") from None
        self.replacement = replacement
        self.time_budget = time_budget
        # Literals a text must hold for any rule to match in it (None: cannot tell).
        self._key_gates: tuple[str, ...] | None = None  # a key rule of the user's
        if key_pattern is None:
            self._key_gates = ()
        elif key_pattern == DEFAULT_KEY_PATTERN:
            self._key_gates = _KEY_GATES
        # The shortest literals that imply all others (``key`` for ``api_key=`` ...), so
        # `may_redact` scans a text as few times as it can.
        gates = {*self._literals, *(self._key_gates or ()), *_SHORT_GATES} - _SUBSUMED
        self._any_literals = tuple(
            sorted(g for g in gates if not any(o != g and o in g for o in gates))
        )
        self._key_cache: dict[str, bool] = {}
        self._text_cache: dict[str, str] = {}

    def may_redact(self, text: str) -> bool:
        """False only when no rule can match anywhere in ``text``: no string or key inside
        it holds a literal some rule needs (and no rule of unknown literals is set).

        ``text`` may be the JSON text of a value: JSON escapes only quotes, backslashes and
        control characters, none of which is part of a literal, so a literal of a string
        is a literal of its JSON text.  The verdict only lets a caller skip a walk that
        would change nothing; redaction itself always walks the structure.
        """
        if self._ungated or self._key_gates is None:
            return True
        lowered = text.lower()
        for literal in self._any_literals:  # noqa: SIM110 - a plain loop is cheaper than any()
            if literal in lowered:
                return True
        return False

    # -- strings -------------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """Redact secret substrings of one string (remembered for short strings)."""
        if len(value) > _CACHED_CHARS:
            return self._text(value)
        cache = self._text_cache
        done = cache.get(value)
        if done is None:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()  # simple and thread-safe; refills within a few traces
            done = cache[value] = self._text(value)
        return done

    def _text(self, value: str) -> str:
        # A replacement can join two pieces into a new match: run the rules again until
        # nothing changes (a second pass is rare, and each pass is linear).
        for _ in range(4):
            redacted = self._one_pass(value)
            if redacted == value:
                return value
            value = redacted
        return value

    def _one_pass(self, value: str) -> str:
        lowered = value.lower()
        for literal in self._literals:  # a plain loop: cheaper than any() on a generator
            if literal in lowered:
                value = self._gated_rules(value, lowered)
                break
        for pattern in self._ungated:
            value = pattern.sub(self.replacement, value)
        return value

    def _gated_rules(self, value: str, lowered: str) -> str:
        replacement = self.replacement
        for literals, pattern in self._gated:
            for literal in literals:
                if literal in lowered:
                    value = pattern.sub(replacement, value)
                    break
        if "basic" in lowered:
            value = _BASIC.sub(self._basic, value)
        if "=" in value:
            value = _QUERY_SECRET.sub(lambda m: m.group(1) + replacement, value)
        if ("=" in value or ":" in value) and any(w in lowered for w in _ASSIGNED_GATES):
            value = _ASSIGNED.sub(lambda m: m.group(1) + replacement, value)
            if '"' in value or "'" in value:
                value = _QUOTED_ASSIGNED.sub(lambda m: m.group(1) + replacement, value)
        if "://" in value:
            value = _DSN.sub(lambda m: m.group(1) + replacement + m.group(2), value)
        if _PEM_GATE in lowered:
            value = self._pem(value)
        return value

    def _basic(self, match: re.Match[str]) -> str:
        """``Basic xxx`` is replaced when ``xxx`` decodes to ``user:password``."""
        try:
            decoded = base64.b64decode(match.group(1) + "==", validate=False)
        except (binascii.Error, ValueError):
            return match.group(0)
        if b":" in decoded and decoded.isascii():
            return match.group(0)[: match.start(1) - match.start(0)] + self.replacement
        return match.group(0)

    def _pem(self, value: str) -> str:
        """PEM private key blocks, BEGIN to END (to the end of the text when the END is
        missing, as in a cut string): one forward scan with ``str.find``, linear."""
        out: list[str] = []
        position = 0
        while True:
            begin = value.find(_PEM_BEGIN, position)
            if begin < 0:
                break
            header = _PEM_HEADER.match(value, begin)
            if header is None:
                out.append(value[position : begin + len(_PEM_BEGIN)])
                position = begin + len(_PEM_BEGIN)
                continue
            end = _PEM_END.search(value, header.end())
            out.append(value[position:begin])
            out.append(self.replacement)
            if end is None:
                return "".join(out)
            position = end.end()
        out.append(value[position:])
        return "".join(out)

    # -- keys and structures -------------------------------------------------------------------

    def is_secret_key(self, key: str) -> bool:
        """Whether values under dict key ``key`` are secrets (cached: keys repeat a lot)."""
        if self._key is None:
            return False
        known = self._key_cache.get(key)
        if known is None:
            known = bool(self._key.fullmatch(key_words(key)))
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = known
        return known

    def __call__(self, value: Any) -> Any:
        """Return a redacted copy of a JSON-safe ``value`` (within `time_budget`)."""
        budget = self.time_budget
        return self.redact(value, None if budget is None else time.perf_counter() + budget)

    def redact(self, value: Any, deadline: float | None = None) -> Any:
        """A redacted copy of ``value``; past ``deadline`` (`time.perf_counter`) the rest
        becomes `BUDGET_EXCEEDED`."""
        if isinstance(value, str):
            if deadline is not None and time.perf_counter() > deadline:
                return BUDGET_EXCEEDED
            return self.text(value)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = self.text(key) if isinstance(key, str) else key  # keys: no budget
                if isinstance(key, str) and self.is_secret_key(key):
                    out[name] = self.replacement
                else:
                    out[name] = self.redact(item, deadline)
            return out
        if isinstance(value, list):
            return [self.redact(item, deadline) for item in value]
        return value


RedactOption = bool | Iterable[str] | Redactor | Callable[[Any], Any] | None


def make_redactor(option: RedactOption) -> Callable[[Any], Any] | None:
    """Turn an ``Privacy(redact=...)`` value into a redaction function (or None: off)."""
    if option is None or option is False:
        return None
    if option is True:
        return Redactor()
    if isinstance(option, Redactor) or callable(option):
        return option
    if isinstance(option, str):
        raise TypeError("redact= takes a list of patterns, not a single string: use [pattern]")
    return Redactor(patterns=(*DEFAULT_PATTERNS, *option))
