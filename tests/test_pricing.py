"""`lc_observe.capture.pricing`: expected costs come from the price table's own numbers."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from lc_observe.capture import pricing
from lc_observe.capture.pricing import BUNDLED, PriceTable
from lc_observe.capture.usage import model_and_provider, usage_from_result

from .fakes import CaptureHandler, UsageChatModel, usage


@pytest.fixture(autouse=True)
def _fresh_backends():
    """Price backends are shared per process; each test sees them built anew."""
    pricing._make_backend.cache_clear()
    yield
    pricing._make_backend.cache_clear()


ROOT = Path(__file__).resolve().parents[1]
TABLE = json.loads(BUNDLED.read_text())
TODAY = dt.datetime.now(dt.timezone.utc).date().isoformat()


def published(provider: str, model_id: str) -> dict[str, Any]:
    """The bundled table's entry in force today for a model id (its published numbers)."""
    entry = next(p for p in TABLE["providers"] if p["id"] == provider)
    model = next(m for m in entry["models"] if m["id"] == model_id)
    dated = [p for p in model["prices"] if "hours" not in p]
    return next(p for p in reversed(dated) if p["from"] is None or p["from"] <= TODAY)


@pytest.fixture
def bundled() -> PriceTable:
    return PriceTable(source="bundled")


# -- the bundled table ---------------------------------------------------------------------


def test_bundled_table_names_its_source_and_license(bundled: PriceTable) -> None:
    source = TABLE["source"]
    assert source["name"] == "genai-prices" and "MIT" in source["license"]
    assert dt.date.fromisoformat(source["generated"])
    assert sum(len(p["models"]) for p in TABLE["providers"]) > 1000
    assert (
        bundled.source == f"bundled genai-prices {source['version']} data of {source['generated']}"
    )


def test_known_model_costs_table_price_times_tokens(bundled: PriceTable) -> None:
    price = published("openai", "gpt-4o")
    fields = {"input_tokens": 12_345, "output_tokens": 678}
    expected = (12_345 * price["input"] + 678 * price["output"]) / 1e6
    assert bundled.cost("gpt-4o", "openai", fields) == pytest.approx(expected, rel=1e-12)


def test_cache_reads_writes_and_reasoning_priced_apart(bundled: PriceTable) -> None:
    price = published("anthropic", "claude-sonnet-4-0")
    assert {"cached_input", "cache_write"} <= set(price)
    fields = {
        "input_tokens": 10_000,  # includes the 6,000 read from and 1,000 written to the cache
        "output_tokens": 2_000,  # includes 500 reasoning tokens
        "cached_tokens": 6_000,
        "cache_creation_tokens": 1_000,
        "reasoning_tokens": 500,
    }
    expected = (
        3_000 * price["input"]
        + 6_000 * price["cached_input"]
        + 1_000 * price["cache_write"]
        + 2_000 * price.get("reasoning", price["output"])  # reasoning is billed as output
    ) / 1e6
    cost = bundled.cost("claude-sonnet-4-20250514", "anthropic", fields)
    assert cost == pytest.approx(expected, rel=1e-12)
    no_cache = bundled.cost("claude-sonnet-4-20250514", "anthropic", {**fields, "cached_tokens": 0})
    assert no_cache is not None and cost is not None and no_cache > cost


def test_dated_ids_are_matched_by_the_table_not_by_stripping(bundled: PriceTable) -> None:
    """``gpt-4o-2024-05-13`` is its own model (twice ``gpt-4o``'s price), not ``gpt-4o``."""
    assert bundled.rates("gpt-4o-2024-08-06", "openai") == bundled.rates("gpt-4o", "openai")
    old = published("openai", "gpt-4o-2024-05-13")
    assert bundled.rates("gpt-4o-2024-05-13", "openai") == {
        "input": old["input"],
        "output": old["output"],
    }
    assert old["input"] != published("openai", "gpt-4o")["input"]
    assert bundled.rates("gpt-4o-1999-01-01", "openai") is None


def test_tiered_price_applies_above_the_threshold(bundled: PriceTable) -> None:
    tiered = published("google", "gemini-2.5-pro")["input"]
    (start, high), base = tiered["tiers"][0], tiered["base"]
    out = published("google", "gemini-2.5-pro")["output"]
    out_high = out["tiers"][0][1]
    below = bundled.cost(
        "gemini-2.5-pro", "google_genai", {"input_tokens": start, "output_tokens": 0}
    )
    above = bundled.cost(
        "gemini-2.5-pro", "google_genai", {"input_tokens": start + 1, "output_tokens": 10}
    )
    assert below == pytest.approx(start * base / 1e6)
    assert above == pytest.approx(((start + 1) * high + 10 * out_high) / 1e6)


@pytest.mark.parametrize(
    ("model", "provider", "table_provider", "table_model"),
    [
        ("gpt-4o", None, "openai", "gpt-4o"),  # provider found from the model name
        ("GPT-4o ", "OpenAI", "openai", "gpt-4o"),
        ("gpt-4o", "azure", "openai", "gpt-4o"),  # Azure falls back to OpenAI's prices
        ("o1", "azure", "azure", "o1"),
        ("claude-3-5-sonnet-20241022", "google_vertexai", "google", "claude-3-5-sonnet"),
        ("claude-sonnet-4-5", "google_anthropic_vertex", "anthropic", "claude-sonnet-4-5"),
        ("claude-sonnet-4-20250514", "anthropic", "anthropic", "claude-sonnet-4-0"),
    ],
)
def test_langchain_provider_ids_resolve(
    bundled: PriceTable, model: str, provider: str | None, table_provider: str, table_model: str
) -> None:
    price = published(table_provider, table_model)
    rates = bundled.rates(model, provider)
    assert rates is not None
    assert rates["input"] == pricing._price(price["input"])
    assert rates["output"] == pricing._price(price["output"])


def test_unknown_model_is_none_and_logged_once(
    bundled: PriceTable, caplog: pytest.LogCaptureFixture
) -> None:
    fields = {"input_tokens": 10, "output_tokens": 5}
    with caplog.at_level(logging.WARNING, logger="lc_observe.capture.pricing"):
        assert bundled.cost("my-inhouse-model", "openai", fields) is None
        assert bundled.cost("my-inhouse-model", "openai", fields) is None
        assert bundled.cost("my-inhouse-model", None, fields) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2  # once per (model, provider)
    assert all("my-inhouse-model" in m for m in messages)


@pytest.mark.parametrize("provider", ["ollama", "usagechatmodel", "fake"])
def test_provider_the_table_does_not_know_is_unknown(bundled: PriceTable, provider: str) -> None:
    """A local or unknown provider serving "llama"/"gpt-4o" is not priced like someone else."""
    assert bundled.cost("gpt-4o", provider, {"input_tokens": 10, "output_tokens": 5}) is None


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"input_tokens": None, "output_tokens": None},
        {"input_tokens": "10", "output_tokens": 5.0},
        {"input_tokens": 10, "output_tokens": 5, "cached_tokens": 11},  # more cached than input
        {"input_tokens": 10, "output_tokens": 5, "reasoning_tokens": 6},
    ],
)
def test_unusable_counts_give_none(bundled: PriceTable, fields: dict[str, Any]) -> None:
    assert bundled.cost("gpt-4o", "openai", fields) is None


@pytest.mark.parametrize("model", [None, "", "   ", 42, ["gpt-4o"]])
def test_no_model_gives_none(bundled: PriceTable, model: Any) -> None:
    assert bundled.cost(model, "openai", {"input_tokens": 10, "output_tokens": 5}) is None


@pytest.mark.parametrize("provider", [42, ["openai"], {"id": "openai"}])
def test_odd_provider_never_raises(bundled: PriceTable, provider: Any) -> None:
    assert bundled.rates("gpt-4o", provider) is None
    assert bundled.cost("gpt-4o", provider, {"input_tokens": 10, "output_tokens": 5}) is None


# -- overrides -------------------------------------------------------------------------------


def test_overrides_win_over_the_table() -> None:
    prices = PriceTable(
        overrides={
            "GPT-4o": {"input": 1.0, "output": 2.0},
            "my-model": {"input": 3.0, "output": 4.0, "cached_input": 0.5, "reasoning": 8.0},
        },
        source="bundled",
    )
    assert prices.cost("gpt-4o", "openai", {"input_tokens": 1_000_000, "output_tokens": 0}) == 1.0
    fields = {
        "input_tokens": 1_000_000,
        "cached_tokens": 400_000,
        "output_tokens": 1_000_000,
        "reasoning_tokens": 250_000,
    }
    expected = 0.6 * 3.0 + 0.4 * 0.5 + 0.75 * 4.0 + 0.25 * 8.0
    assert prices.cost("my-model", "whoever", fields) == pytest.approx(expected)


def test_provider_scoped_override() -> None:
    prices = PriceTable(overrides={"vllm/llama-3": {"input": 0.0, "output": 0.0}}, source="bundled")
    assert prices.cost("llama-3", "vllm", {"input_tokens": 5, "output_tokens": 5}) == 0.0
    assert prices.cost("llama-3", "ollama", {"input_tokens": 5, "output_tokens": 5}) is None


@pytest.mark.parametrize(
    "override",
    [
        {"input": 1.0},
        {"input": 1.0, "output": 2.0, "cache_read": 0.1},
        {"input": -1.0, "output": 2.0},
        {"input": "1", "output": 2.0},
        {"input": True, "output": 2.0},
        [1.0, 2.0],
    ],
)
def test_bad_override_is_rejected_up_front(override: Any) -> None:
    with pytest.raises(ValueError, match="override for 'm'"):
        PriceTable(overrides={"m": override})


def test_bad_source_is_rejected() -> None:
    with pytest.raises(ValueError, match="source must be"):
        PriceTable(source="internet")  # type: ignore[arg-type]


# -- from a real model run to a cost --------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_cost_of_a_real_chat_model_run(bundled: PriceTable, stream: bool) -> None:
    handler = CaptureHandler()
    model = UsageChatModel(
        model_name="gpt-4o",
        provider="openai",
        response_model="gpt-4o-2024-08-06",
        usage=usage(5_000, 400, cache_read=4_096),
    )
    config = {"callbacks": [handler]}
    if stream:
        list(model.stream("hi", config=config))
    else:
        model.invoke("hi", config=config)
    start = handler.starts[handler.order[-1]]
    model_name, provider = model_and_provider(
        start["serialized"], start["metadata"], start["invocation_params"]
    )
    fields = usage_from_result(handler.last)
    assert fields["model"] == "gpt-4o-2024-08-06"
    price = published("openai", "gpt-4o")
    expected = (
        (5_000 - 4_096) * price["input"] + 4_096 * price["cached_input"] + 400 * price["output"]
    ) / 1e6
    assert bundled.cost(fields["model"], provider, fields) == pytest.approx(expected, rel=1e-12)
    assert bundled.cost(model_name, provider, fields) == pytest.approx(expected, rel=1e-12)


# -- price file semantics, on a synthetic table ----------------------------------------------


def _write_table(tmp_path: Path, models: list[dict[str, Any]]) -> Path:
    document = {
        "schema": 1,
        "source": {"name": "test", "version": "0", "generated": TODAY},
        "providers": [
            {
                "id": "acme",
                "provider_match": {"contains": "acme"},
                "model_match": {"starts_with": "acme-"},
                "fallback": [],
                "models": models,
            }
        ],
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(document))
    return path


def test_dated_price_changes_and_future_prices(tmp_path: Path) -> None:
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    path = _write_table(
        tmp_path,
        [
            {
                "id": "acme-1",
                "match": {"or": [{"equals": "acme-1"}, {"regex": "^acme-1-\\d{8}$"}]},
                "prices": [
                    {"from": None, "input": 10.0, "output": 20.0},
                    {"from": "2020-01-01", "input": 1.0, "output": 2.0},
                    {"from": later, "input": 100.0, "output": 200.0},
                ],
            }
        ],
    )
    prices = PriceTable(path=path)
    assert prices.rates("acme-1", "acme") == {"input": 1.0, "output": 2.0}
    assert prices.rates("acme-1-20250101", "my-acme-cloud") == {"input": 1.0, "output": 2.0}
    assert prices.rates("acme-1", None) == {"input": 1.0, "output": 2.0}
    assert prices.rates("acme-1-preview", "acme") is None
    assert prices.source == f"{path} test 0 data of {TODAY}"


def test_daily_window_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_table(
        tmp_path,
        [
            {
                "id": "acme-2",
                "match": {"equals": "acme-2"},
                "prices": [
                    {"from": None, "input": 0.5, "output": 1.0},  # off-peak
                    {"from": None, "hours": ["22:30", "06:00"], "input": 2.0, "output": 4.0},
                ],
            }
        ],
    )
    prices = PriceTable(path=path)
    fields = {"input_tokens": 1_000_000, "output_tokens": 0}
    for hour, minute, expected in [(23, 0, 2.0), (5, 59, 2.0), (6, 0, 0.5), (12, 0, 0.5)]:
        fake = time.struct_time((2026, 1, 1, hour, minute, 0, 3, 1, 0))
        monkeypatch.setattr(pricing.time, "gmtime", lambda fake=fake: fake)
        assert prices.cost("acme-2", "acme", fields) == expected


def test_lookups_are_cached_per_model_and_provider(
    bundled: PriceTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = bundled.load()._get_backend()
    calls: list[tuple[str, str | None]] = []
    real_find = backend.find

    def counting_find(model: str, provider: str | None) -> Any:
        calls.append((model, provider))
        return real_find(model, provider)

    monkeypatch.setattr(backend, "find", counting_find)
    fields = {"input_tokens": 10, "output_tokens": 5}
    for _ in range(3):
        bundled.cost("gpt-4o", "openai", fields)
        bundled.cost("gpt-4o", None, fields)
    assert calls == [("gpt-4o", "openai"), ("gpt-4o", None)]
    monkeypatch.setattr(pricing, "_today_number", lambda: bundled._day + 1)  # a new UTC day
    bundled.cost("gpt-4o", "openai", fields)
    assert len(calls) == 3


# -- genai-prices (the optional extra) ---------------------------------------------------------

needs_genai_prices = pytest.mark.skipif(
    importlib.util.find_spec("genai_prices") is None,
    reason='genai-prices is not installed (pip install -e ".[dev]")',
)


def test_auto_uses_bundled_data_without_genai_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing, "_genai_prices_version", lambda: None)
    assert PriceTable().source.startswith("bundled genai-prices")
    with pytest.raises(ImportError, match="pip install genai-prices"):
        PriceTable(source="genai-prices")


def test_auto_ignores_an_older_genai_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing, "_genai_prices_version", lambda: "0.0.1")
    assert PriceTable().source.startswith("bundled genai-prices")


@needs_genai_prices
def test_auto_prefers_installed_genai_prices() -> None:
    from importlib.metadata import version

    if pricing._version_key(version("genai-prices")) < pricing._version_key(
        TABLE["source"]["version"]
    ):
        pytest.skip("installed genai-prices is older than the bundled data")
    assert PriceTable().source == f"genai-prices {version('genai-prices')}"


REFS = [
    ("gpt-4o", "openai"),
    ("gpt-4o-2024-05-13", "openai"),
    ("gpt-4o-mini-2024-07-18", None),
    ("o3", "openai"),
    ("claude-3-5-sonnet-20241022", "anthropic"),
    ("claude-sonnet-4-20250514", "anthropic"),
    ("claude-3-5-sonnet-20241022", "google_vertexai"),
    ("gemini-2.5-pro", "google_genai"),
    ("gemini-2.5-flash", None),
    ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock"),
    ("mistral-large-latest", "mistralai"),
    ("deepseek-chat", "deepseek"),
    ("grok-4", "xai"),
    ("llama-3.1-8b-instant", "groq"),
    ("gpt-4o", "azure_openai"),
    ("llama3.2", "ollama"),
    ("nonexistent-model", None),
]
USAGES = [
    {"input_tokens": 1_000, "output_tokens": 200},
    {
        "input_tokens": 300_000,
        "output_tokens": 5_000,
        "cached_tokens": 100_000,
        "cache_creation_tokens": 20_000,
        "reasoning_tokens": 3_000,
    },
]


def _genai_cost(model: str, provider: str | None, fields: dict[str, Any]) -> float | None:
    from genai_prices import Usage, calc_price

    usage_ = Usage(
        input_tokens=fields["input_tokens"],
        output_tokens=fields["output_tokens"],
        cache_read_tokens=fields.get("cached_tokens"),
        cache_write_tokens=fields.get("cache_creation_tokens"),
        output_reasoning_tokens=fields.get("reasoning_tokens"),
    )
    try:
        return float(calc_price(usage_, model, provider_id=provider).total_price)
    except LookupError:
        return None


@needs_genai_prices
@pytest.mark.parametrize("source", ["bundled", "genai-prices", "exported"])
@pytest.mark.parametrize(("model", "provider"), REFS)
def test_same_cost_as_genai_prices(
    source: str, model: str, provider: str | None, tmp_path: Path
) -> None:
    """Our matcher and arithmetic agree with genai-prices' own calc_price on its data."""
    if source == "exported":  # what scripts/refresh_prices.py writes from the installed data
        spec = importlib.util.spec_from_file_location(
            "refresh", ROOT / "scripts" / "refresh_prices.py"
        )
        assert spec is not None and spec.loader is not None
        refresh = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(refresh)
        path = tmp_path / "prices.json"
        refresh.main(["--out", str(path)])
        prices = PriceTable(path=path)
    else:
        prices = PriceTable(source=source)  # type: ignore[arg-type]
        if source == "bundled":
            from importlib.metadata import version

            if version("genai-prices") != TABLE["source"]["version"]:
                pytest.skip("bundled data comes from another genai-prices version")
    for fields in USAGES:
        expected = _genai_cost(model, provider, fields)
        got = prices.cost(model, provider, fields)
        if expected is None or provider == "ollama":
            assert got is None
        else:
            assert got == pytest.approx(expected, rel=1e-9), (model, provider, fields)
