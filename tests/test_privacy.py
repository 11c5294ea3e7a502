"""Secrets are redacted before storage; inputs/outputs can be hidden; traces sampled whole."""

from __future__ import annotations

import sqlite3

import pytest
from langchain_core.runnables import RunnableLambda

from lc_observe import OTLP, LangSmith, ObsHandler, Privacy, Queue, TraceStore
from lc_observe.pipeline.redact import Redactor, make_redactor

from .runs import chat_chain, nested_lambdas
from .tiers import examples

SECRETS = {
    "openai": "sk-proj-abcdefghijklmnopqrstuvwx0123",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_" + "a" * 36,
    "langsmith": "lsv2_pt_" + "b" * 32,
}


@pytest.mark.parametrize("kind", list(SECRETS))
def test_secret_patterns_are_redacted_in_text(kind: str) -> None:
    secret = SECRETS[kind]
    assert Redactor().text(f"use {secret} please") == "use [REDACTED] please"


def test_secret_keys_are_redacted_but_token_counts_are_not() -> None:
    redact = Redactor()
    data = {
        "api_key": "x",
        "OPENAI-API-KEY": "x",
        "password": 1,
        "Authorization": "x",
        "token": "x",
        "nested": [{"client_secret": "x"}],
        "input_tokens": 5,
        "max_tokens": 10,
        "model": "gpt-4o",
    }
    assert redact(data) == {
        "api_key": "[REDACTED]",
        "OPENAI-API-KEY": "[REDACTED]",
        "password": "[REDACTED]",
        "Authorization": "[REDACTED]",
        "token": "[REDACTED]",
        "nested": [{"client_secret": "[REDACTED]"}],
        "input_tokens": 5,
        "max_tokens": 10,
        "model": "gpt-4o",
    }


def test_make_redactor_options() -> None:
    assert make_redactor(False) is None and make_redactor(None) is None
    extra = make_redactor([r"EMP-\d{4}"])
    assert extra("id EMP-1234 key sk-abcdefghijklmnopqrstuv") == "id [REDACTED] key [REDACTED]"
    with pytest.raises(TypeError, match="list of patterns"):
        make_redactor(r"EMP-\d+")
    with pytest.raises(ValueError, match="invalid redaction pattern"):
        make_redactor(["("])


def test_redaction_applies_before_storage(db_path) -> None:
    obs = ObsHandler(db_path)
    key = SECRETS["openai"]

    def leak(x: dict) -> str:
        raise RuntimeError(f"auth failed for {key}")

    chain = RunnableLambda(lambda x: {**x, "echo": x["prompt"]}, name="echo")
    config = {"callbacks": [obs], "metadata": {"api_key": key}, "tags": [f"k={key}"]}
    chain.invoke({"prompt": f"my key is {key}", "password": "hunter2"}, config)
    with pytest.raises(RuntimeError):
        RunnableLambda(leak, name="leak").invoke({}, {"callbacks": [obs]})
    obs.close()

    with sqlite3.connect(db_path) as conn:
        dump = "\n".join(conn.iterdump())
    assert key not in dump and "hunter2" not in dump
    spans = {s.name: s for s in TraceStore(db_path).spans()}
    assert spans["echo"].inputs == {"prompt": "my key is [REDACTED]", "password": "[REDACTED]"}
    assert spans["echo"].metadata["api_key"] == "[REDACTED]"
    assert spans["echo"].tags == ["k=[REDACTED]"]
    assert spans["leak"].error.message == "auth failed for [REDACTED]"


def test_redaction_can_be_turned_off(db_path) -> None:
    obs = ObsHandler(db_path, privacy=Privacy(redact=False))
    RunnableLambda(lambda x: x, name="echo").invoke({"password": "hunter2"}, {"callbacks": [obs]})
    obs.close()
    assert TraceStore(db_path).spans()[0].inputs == {"password": "hunter2"}


def test_hide_inputs_and_outputs(db_path) -> None:
    obs = ObsHandler(
        db_path, privacy=Privacy(hide_inputs=True, hide_outputs=lambda out: {"kept": "shape only"})
    )
    assert chat_chain(["secret answer"]).invoke({"q": "secret question"}, {"callbacks": [obs]})
    obs.close()
    spans = TraceStore(db_path).spans()
    assert len(spans) == 4
    assert {str(s.inputs) for s in spans} == {"…[hidden]"}
    assert {str(s.outputs) for s in spans} == {"{'kept': 'shape only'}"}


def test_sampling_keeps_or_drops_whole_traces_consistently(db_path) -> None:
    obs = ObsHandler(db_path, sample_rate=0.3)
    chain = nested_lambdas()
    for i in range(200):
        chain.invoke(i, {"callbacks": [obs]})
    obs.close()
    store = TraceStore(db_path)
    traces = store.traces(limit=1000)
    kept = len(traces)
    assert 30 <= kept <= 90  # ~60 expected; the decision is a hash of the run id
    spans = store.spans()
    assert len(spans) == 4 * kept  # whole traces only
    assert obs.stats["sampled_out"] == 4 * (200 - kept)

    import zlib

    threshold = int(0.3 * 2**32)
    assert all(zlib.crc32(t.trace_id.encode()) < threshold for t in traces)


def test_sample_rate_validated() -> None:
    with pytest.raises(ValueError, match="sample_rate must be between 0 and 1"):
        ObsHandler(None, sinks=[object()], sample_rate=1.5)


def test_pem_blocks_stay_inside_their_string_and_a_cut_one_is_redacted(db_path) -> None:
    """Redaction walks the structure: a PEM block never runs from one string into the next,
    and a block whose END marker is missing (a string cut by the limits) is redacted to the
    end of its string."""
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    inputs = {
        "a": "starts -----BEGIN RSA PRIVATE KEY----- MIIEow",
        "b": "ends -----END RSA PRIVATE KEY----- there",
        "key_file": f"see {pem} above",
    }
    with ObsHandler(db_path) as handler:
        RunnableLambda(lambda x: "ok", name="pem").invoke(inputs, {"callbacks": [handler]})
    (span,) = TraceStore(db_path).spans(name="pem")
    assert span.inputs == {
        "a": "starts [REDACTED]",
        "b": inputs["b"],
        "key_file": "see [REDACTED] above",
    }


def test_string_verdicts_are_remembered_within_a_bound() -> None:
    redactor = Redactor()
    for _ in range(3):  # the second and third answers come from the cache: still right
        assert redactor.text("key sk-abcdefghijklmnopqrstuv") == "key [REDACTED]"
        assert redactor.text("nothing to hide") == "nothing to hide"
    for i in range(10_000):
        redactor.text(f"n={i}")
    assert len(redactor._text_cache) <= 1_024


# -- one privacy stage before every sink -------------------------------------------------------

LEAKS = {
    "sk-proj-abcdefghijklmnopqrstuvwx0123",
    "eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "AKIAIOSFODNN7EXAMPLE",
    "hunter2",
    "MIIEowIBAAKCAQEA",
    "dXNlcjpodW50ZXIy",
    "s3cr3t-value",
}


class CaptureSink:
    """A user's own sink: keeps every batch it receives."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def export(self, batch) -> int:
        self.items.extend(batch)
        return len(batch)

    def close(self) -> None:
        pass


PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"


def _leaky_run(handler: ObsHandler) -> None:
    """Secrets everywhere a run can carry them: inputs, outputs, metadata (also the ids
    copied to columns), tags, error message and traceback, a chat model's messages."""
    key = "sk-proj-abcdefghijklmnopqrstuvwx0123"
    config = {
        "callbacks": [handler],
        "metadata": {
            "api_key": key,
            "clientSecret": "s3cr3t-value",
            "user_id": key,
            "session_id": "AKIAIOSFODNN7EXAMPLE",
            "dsn": "postgresql://admin:hunter2@db/app",
        },
        "tags": [f"k={key}"],
    }
    echo = RunnableLambda(lambda x: {**x, "auth": "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig"})
    echo.invoke(
        {
            "prompt": f"my key is\n{key}",
            "Private-Key": PEM,
            "url": "https://x.io/?api_key=hunter2",
            "header": "Basic dXNlcjpodW50ZXIy",
        },
        config,
    )
    chat_chain([f"the key is {key}"]).invoke({"q": f"\t{key}"}, config)

    def leak(x: dict) -> str:
        raise RuntimeError(f"auth failed for {key} with password=hunter2 (Bearer\n{key})")

    with pytest.raises(RuntimeError):
        RunnableLambda(leak, name="leak").invoke({}, config)


def _public(value) -> None:
    """JSON-safe and free of private keys, all the way down."""
    import json

    json.dumps(value, allow_nan=False)
    if isinstance(value, dict):
        assert all(isinstance(k, str) and not k.startswith("_") for k in value), list(value)


def test_every_kind_of_sink_receives_only_public_redacted_records(tmp_path) -> None:
    """SQLite, a user's sink, LangSmithSink passed by hand, the LangSmith mirror and the
    OTLP mirror all receive the one public form: no secret, no private key."""
    import json

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lc_observe.sinks.langsmith import LangSmithSink
    from lc_observe.testing import LangSmithStandIn

    from .loopback import langsmith_client

    db = tmp_path / "t.db"
    capture = CaptureSink()
    exporter = InMemorySpanExporter()
    with LangSmithStandIn() as server, langsmith_client(server.url) as client:
        by_hand = LangSmithSink(client, project_name="by-hand")
        with ObsHandler(
            db,
            sinks=[
                capture,
                by_hand,
                LangSmith(client, project_name="mirror"),
                OTLP(exporter=exporter),
            ],
        ) as handler:
            _leaky_run(handler)
            assert handler.flush(30)
        sent = json.dumps([run for _, _, run in server.ops], default=str)
    with sqlite3.connect(db) as conn:
        stored = "\n".join(conn.iterdump())
    spans = exporter.get_finished_spans()
    otlp = json.dumps(
        [{**dict(s.attributes), "events": [dict(e.attributes) for e in s.events]} for s in spans]
    )
    user = json.dumps(capture.items)
    assert len(capture.items) == 6 and len(spans) == 6 and server.ops
    for _, record in capture.items:
        _public(record)
        for value in record.values():
            _public(value)
    for name, text in {
        "sqlite": stored,
        "user sink": user,
        "langsmith": sent,
        "otlp": otlp,
    }.items():
        found = [secret for secret in LEAKS if secret in text]
        assert not found, (name, found)
        assert "[REDACTED]" in text, name
    store = TraceStore(db)
    assert {s.user_id for s in store.spans()} == {"[REDACTED]"}
    assert {t.session_id for t in store.traces()} == {"[REDACTED]"}


def test_errors_are_bounded_like_every_other_string(db_path) -> None:
    """A 5 MB exception message was stored whole, as message and traceback, on every span
    it crossed (41 MB file)."""
    import os

    huge = "x" * 5_000_000

    def fail(x: int) -> int:
        raise ValueError(huge)

    chain = RunnableLambda(lambda x: x) | RunnableLambda(fail, name="fail")
    with ObsHandler(db_path) as handler, pytest.raises(ValueError):
        chain.invoke(1, {"callbacks": [handler]})
    spans = TraceStore(db_path).spans()
    errors = [s.error for s in spans if s.error is not None]
    assert len(errors) == 2
    for error in errors:
        assert len(error.message) < 20_100 and "…[truncated" in error.message
        assert len(error.traceback) < 20_100
    size = os.path.getsize(db_path) + os.path.getsize(f"{db_path}-wal")
    print(f"database with two 5 MB errors: {size / 1e6:.2f} MB")
    assert size < 3_000_000


def test_a_custom_redaction_function_sees_public_data_once_per_value(db_path) -> None:
    seen: list = []

    def redact(value):
        seen.append(value)
        return "hidden" if value == {"secret": 1} else value

    with ObsHandler(db_path, privacy=Privacy(redact=redact)) as handler:
        RunnableLambda(lambda x: "ok", name="r").invoke({"secret": 1}, {"callbacks": [handler]})
    (span,) = TraceStore(db_path).spans()
    assert span.inputs == "hidden" and span.outputs == {"output": "ok"}
    for value in seen:
        _public(value)


# -- property: nothing a sink receives is left for the Redactor to replace ----------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lc_observe.pipeline.privacy import PrivacyStage  # noqa: E402
from lc_observe.pipeline.serialize import Limits  # noqa: E402
from lc_observe.records import new_span_record  # noqa: E402

#: (text planted in a payload, the part of it that must never reach a sink), per built-in rule
PLANTED = [
    ("sk-proj-abcdefghijklmnopqrstuvwx0123", "abcdefghijklmnopqrstuvwx0123"),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwx"),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ("bearer\teyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
    ("Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
    ("AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
    ("ghp_" + "a1" * 18, "a1" * 18),
    ("github_pat_" + "B2" * 20, "B2" * 20),
    ("xoxb-1234567890-abcdefghij", "1234567890-abcdefghij"),
    ("AIza" + "c3" * 17 + "c", "c3" * 17),
    ("hf_" + "d4" * 17, "d4" * 17),
    ("lsv2_pt_" + "e5" * 16, "e5" * 16),
    ("https://x.io/v1?api_key=Zq9hunter2", "Zq9hunter2"),
    ("postgresql://admin:Zq8hunter2@db:5432/app", "Zq8hunter2"),
    ("password=Zq7hunter2", "Zq7hunter2"),
    (PEM, "MIIEowIBAAKCAQEA"),
]
SEPARATORS = [" ", "\n", "\t", '"', "(", ": ", "\r\n"]
KEYS = [
    "q",
    "messages",
    "input_tokens",
    "api_key",
    "Private-Key",
    "accessToken",
    "clientSecret",
    "userPassword",
    "HF_TOKEN",
    "aws_secret_access_key",
]
SECRET_KEY_VALUES = ("Zq6kept-in-clear", "Zq6kept-in-clear")

_noise = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_planted = st.builds(
    lambda before, pick, sep_a, sep_b, after: f"{before}{sep_a}{pick[0]}{sep_b}{after}",
    _noise,
    st.sampled_from(PLANTED),
    st.sampled_from(SEPARATORS),
    st.sampled_from(SEPARATORS),
    _noise,
)
_leaf = st.one_of(_planted, _noise, st.integers(), st.none(), st.just(SECRET_KEY_VALUES[0]))
_keys = st.one_of(st.sampled_from(KEYS), _noise)
payloads = st.recursive(
    _leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=20,
)


def _must_not_leak(public: object) -> None:
    import json

    text = json.dumps(public, ensure_ascii=False)
    for _, core in PLANTED:
        assert core not in text, core
    assert Redactor(time_budget=None)(public) == public  # nothing left to replace


def _record(payload: object) -> dict:
    record = new_span_record(
        "s", "s", None, "n", "chain", 0.0, payload, ["t", _tag(payload)], {"m": payload}
    )
    record.update(outputs={"out": payload}, user_id=_tag(payload), end_time=1.0)
    record["error"] = {"type": "E", "message": _tag(payload), "traceback": _tag(payload)}
    record["_private"] = payload
    return record


def _tag(payload: object) -> str:
    return payload if isinstance(payload, str) else repr(payload)


@settings(max_examples=examples(500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads)
def test_the_privacy_stage_leaves_nothing_for_the_redactor(payload: object) -> None:
    public = PrivacyStage(Limits(), Redactor()).record("span", _record(payload))
    assert not any(key.startswith("_") for key in public)
    _must_not_leak(public)


_shared: dict = {}


def _shared_handler(tmp_path_factory) -> tuple:
    if not _shared:
        capture = CaptureSink()
        db = tmp_path_factory.mktemp("prop") / "t.db"
        _shared["handler"] = ObsHandler(db, sinks=[capture], queue=Queue(schedule_delay=0.01))
        _shared["capture"], _shared["db"] = capture, db
    return _shared["handler"], _shared["capture"], _shared["db"]


@settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads)
def test_what_every_sink_receives_holds_nothing_the_redactor_would_replace(
    tmp_path_factory, payload: object
) -> None:
    """Through a real handler: the user's sink and the SQLite file both get the public
    form, for any payload and any built-in rule."""
    import json

    handler, capture, db = _shared_handler(tmp_path_factory)
    capture.items.clear()
    config = {"callbacks": [handler], "metadata": {"payload": payload, "user_id": _tag(payload)}}
    RunnableLambda(lambda x: {"echo": x}, name="echo").invoke({"in": payload}, config)
    assert handler.flush(30)
    (item,) = capture.items
    _must_not_leak(item[1])
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT inputs, outputs, metadata, user_id FROM spans WHERE span_id = ?",
            (item[1]["span_id"],),
        ).fetchone()
    _must_not_leak([json.loads(row[0]), json.loads(row[1]), json.loads(row[2]), row[3]])
