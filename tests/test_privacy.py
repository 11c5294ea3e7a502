"""Secrets are redacted before storage; inputs/outputs can be hidden; traces sampled whole."""

from __future__ import annotations

import sqlite3

import pytest
from langchain_core.runnables import RunnableLambda

from lc_observe import ObsHandler, TraceStore
from lc_observe.redact import Redactor, make_redactor

from .runs import chat_chain, nested_lambdas

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
    obs = ObsHandler(db_path, redact=False)
    RunnableLambda(lambda x: x, name="echo").invoke({"password": "hunter2"}, {"callbacks": [obs]})
    obs.close()
    assert TraceStore(db_path).spans()[0].inputs == {"password": "hunter2"}


def test_hide_inputs_and_outputs(db_path) -> None:
    obs = ObsHandler(db_path, hide_inputs=True, hide_outputs=lambda out: {"kept": "shape only"})
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
    assert len(redactor._text_cache) <= 4_096
