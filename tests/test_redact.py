"""`Redactor` rules: key names by their parts, value patterns, linear time, time budget."""

from __future__ import annotations

import contextlib
import time

import pytest

from lc_observe.pipeline.redact import BUDGET_EXCEEDED, REPLACEMENT, Redactor, key_words

SECRET_KEYS = [
    "api_key",
    "apiKey",
    "x-api-key",
    "OPENAI-API-KEY",
    "secret_key",
    "private_key",
    "Private-Key",
    "accessToken",
    "clientSecret",
    "userPassword",
    "github_token",
    "HF_TOKEN",
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "Authorization",
    "set-cookie",
    "refresh_token",
    "password_confirmation",
    "credentials",
    "db_password",
]
PLAIN_KEYS = [
    "input_tokens",
    "max_tokens",
    "token_count",
    "tokens",
    "key",
    "monkey",
    "keyboard",
    "model",
    "session_id",
    "authorization_url",
    "primary_key_column",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_key_names_match_by_their_parts(key: str) -> None:
    assert Redactor()({key: "value", "other": 1}) == {key: REPLACEMENT, "other": 1}


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_ordinary_key_names_are_kept(key: str) -> None:
    assert Redactor()({key: 5}) == {key: 5}


def test_key_words_split_snake_kebab_camel_and_upper_case() -> None:
    assert key_words("aws_secret_access_key") == "aws_secret_access_key"
    assert key_words("Private-Key") == "private_key"
    assert key_words("clientSecret") == "client_secret"
    assert key_words("HFToken") == "hf_token"
    assert key_words("APIKey") == "api_key"


SECRET_VALUES = {
    "openai": "sk-proj-abcdefghijklmnopqrstuvwx0123",
    "anthropic": "sk-ant-api03-abcdefghijklmnopqrstuvwx",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "bearer lower case": "bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "bearer after a newline": "Bearer\neyJhbGciOiJIUzI1NiJ9.payload.sig",
    "basic": "Basic dXNlcjpodW50ZXIy",  # user:hunter2
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "a" * 36,
    "github fine-grained": "github_pat_" + "B" * 40,
    "slack": "xoxb-1234567890-abcdefghij",
    "google": "AIza" + "c" * 35,
    "huggingface": "hf_" + "d" * 34,
    "langsmith": "lsv2_pt_" + "b" * 32,
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
}


@pytest.mark.parametrize("kind", list(SECRET_VALUES))
@pytest.mark.parametrize("before", [" ", "\n", "\t", "key:\n", '"', "("])
def test_secret_values_are_redacted_after_any_separator(kind: str, before: str) -> None:
    secret = SECRET_VALUES[kind]
    text = Redactor().text(f"use{before}{secret} please")
    assert secret not in text and REPLACEMENT in text
    assert text.endswith(" please")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://api.example.com/v1?api_key=abc123&q=1", "?api_key=[REDACTED]&q=1"),
        ("https://x.io/?access_token=tok.en-1", "?access_token=[REDACTED]"),
        ("postgresql://admin:hunter2@db.internal:5432/app", "admin:[REDACTED]@db.internal"),
        ("redis://:s3cret@cache:6379", "://:[REDACTED]@cache"),
    ],
)
def test_url_secrets_keep_the_rest_of_the_url(text: str, expected: str) -> None:
    redacted = Redactor().text(text)
    assert expected in redacted and "hunter2" not in redacted and "abc123" not in redacted


def test_ordinary_text_is_kept() -> None:
    text = (
        "Basic information about Asia: see https://example.com/a?b=c, the sky-is-blue "
        "and mail me at a@b.c"
    )
    assert Redactor().text(text) == text


def _seconds(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


ADVERSARIAL = {
    "PEM headers without END": "-----BEGIN RSA PRIVATE KEY-----" + "A" * 20,
    "PEM near-miss headers": "-----BEGIN " + "X" * 70,
    "PEM blocks": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
    "bearer near-misses": "bearer " + " " * 10 + "x",
    "sk- prefixes": "sk-short ",
    "URL schemes": "a" * 30 + "://" + "b" * 10 + ":",
    "query near-misses": "?api_key",
    "basic near-misses": "Basic abcdefg ",
}


@pytest.mark.parametrize("kind", list(ADVERSARIAL))
def test_redaction_of_near_matches_finishes(kind: str) -> None:
    """Repeated pattern prefixes must not make a rule quadratic (the PEM rule took 52.6 s
    at 512 KB).  Linear, 1 MB takes milliseconds; the bound is 30 s, far from both, so a
    loaded machine cannot break it while a quadratic rule (minutes at 1 MB) still does."""
    unit = ADVERSARIAL[kind]
    large = unit * (1_000_000 // len(unit))
    redactor = Redactor(time_budget=None)
    took = _seconds(redactor.text, large)
    print(f"{kind}: 1 MB in {took * 1000:.1f} ms")
    assert took < 30


def test_a_walk_past_its_time_budget_never_keeps_a_value_in_clear() -> None:
    redactor = Redactor(time_budget=0.0)  # already over budget at the first string
    out = redactor({"a": "sk-proj-abcdefghijklmnopqrstuvwx0123", "b": ["plain"], "n": 3})
    assert out == {"a": BUDGET_EXCEEDED, "b": [BUDGET_EXCEEDED], "n": 3}


@pytest.mark.parametrize(
    "text", ["login password=hunter2 failed", "api_key: hunter2", "TOKEN = hunter2"]
)
def test_secrets_assigned_in_text_are_redacted(text: str) -> None:
    redacted = Redactor().text(text)
    assert "hunter2" not in redacted and REPLACEMENT in redacted


def test_adversarial_payloads_never_stall_the_app_and_the_writer_keeps_pace(tmp_path) -> None:
    """Megabytes of near-matches for every rule go through a real handler while the app's
    main thread keeps working: the longest gap between two of its steps is measured (the
    GIL held by one regex froze it for 31 s before), and the writer still catches up."""
    import threading

    from langchain_core.runnables import RunnableLambda

    from lc_observe import ObsHandler

    payloads = [unit * (1_000_000 // len(unit)) for unit in ADVERSARIAL.values()]
    payloads.append("-----BEGIN RSA PRIVATE KEY-----" * 12_000)  # 384 KB of headers
    handler = ObsHandler(tmp_path / "adv.db")
    stop = threading.Event()
    longest = 0.0

    def app_loop() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not stop.is_set():
            sum(range(200))  # a little work, then measure the gap since the last step
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now

    app = threading.Thread(target=app_loop)
    app.start()
    started = time.perf_counter()
    try:
        for payload in payloads:

            def fail(x: str, text: str = payload) -> None:
                raise ValueError(text)  # message and traceback: megabytes as well

            with contextlib.suppress(ValueError):
                RunnableLambda(fail, name="adv").invoke({"q": payload}, {"callbacks": [handler]})
        flushed = handler.flush(timeout=120)
    finally:
        stop.set()
        app.join()
        handler.close()
    took = time.perf_counter() - started
    print(
        f"{len(payloads)} adversarial MB-sized records written in {took:.2f} s; "
        f"longest stall of the app thread {longest * 1000:.1f} ms"
    )
    assert flushed and handler.stats["written"] == len(payloads)
    assert longest < 10.0  # generous on a loaded machine; it was 31 s with a quadratic rule


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"api_key": "abc123xyz"}', '{"api_key": "[REDACTED]"}'),
        ("{'password': 'hunter22'}", "{'password': '[REDACTED]'}"),
        ('{"q": 1, "access_token":"tok-abc-1"}', '{"q": 1, "access_token":"[REDACTED]"}'),
        # not a quoted value: left as it is, so JSON text stays JSON
        ('{"token": 5}', '{"token": 5}'),
        ('{"api_key": {"nested": 1}}', '{"api_key": {"nested": 1}}'),
    ],
)
def test_secrets_in_json_or_repr_text_are_redacted_inside_their_quotes(
    text: str, expected: str
) -> None:
    """A tool call's ``arguments`` string or a logged body: JSON text inside a string."""
    assert Redactor()(text) == expected.replace("[REDACTED]", REPLACEMENT)
