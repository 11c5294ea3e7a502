"""Cost in USD of a model call, from an offline price table plus your own prices.

Where prices come from, first match wins:

1. ``overrides`` you pass to `PriceTable` (USD per million tokens).
2. The genai-prices package (``pip install genai-prices``, the ``[prices]`` extra), when it
   is installed and at least as new as the bundled data: ~2,000 models of ~50 providers,
   maintained by Pydantic, updated with each release of that package.  Never downloads anything.
3. The bundled table ``lc_observe/data/prices.json``: a snapshot of the same MIT-licensed
   genai-prices data (https://github.com/pydantic/genai-prices, Copyright (c) Pydantic
   Services Inc.) taken by ``scripts/refresh_prices.py`` when lc_observe was released.

Model names are matched by the table's own rules (exact ids and the aliases the data set
lists, dated ids like ``gpt-4o-2024-08-06`` included), never by fuzzy guessing: a dated id
the table does not know is unknown, not priced like its neighbour (``gpt-4o-2024-05-13``
costs twice ``gpt-4o``).  A provider given by LangChain (``ls_provider``) that the table
does not know makes the model unknown too.  Unknown means ``cost`` returns ``None``, never a
made-up 0, and the model is logged once.

How tokens are priced (field names of `lc_observe.records.TOKEN_FIELDS`): cache reads
(``cached_tokens``) at the cached-input price, cache writes (``cache_creation_tokens``) at
the cache-write price, except the part written with a 1-hour TTL
(``cache_creation_1h_tokens``) at the 1-hour cache-write price; the rest of
``input_tokens`` at the input price; ``reasoning_tokens`` at the reasoning price, the rest of
``output_tokens`` at the output price; audio tokens (`lc_observe.capture.usage.AUDIO_FIELDS`)
at the audio prices.  A part without its own price is charged as its whole (cache reads at
the input price, reasoning at the output price, 1-hour writes at the 5-minute write price
...), except where a provider publishes a rule for it (`derive_rates`: Claude's 1-hour
cache writes cost twice the input price).  Tiered prices ("above 200k input tokens") apply
to the whole call, as providers bill them.  A ``service_tier`` of ``"flex"`` or
``"priority"`` in the fields selects that tier's prices, which only genai-prices 0.2.5+
carries (the bundled snapshot does not): a tier the table has no price for makes the cost
``None``.  Batch rates and time-of-day discounts are not applied.

>>> prices = PriceTable(overrides={"my-model": {"input": 1.0, "output": 2.0}})
>>> prices.cost("my-model", None, {"input_tokens": 1_000_000, "output_tokens": 500_000})
2.0
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

__all__ = ["PRICE_KEYS", "PriceTable", "Rates", "derive_rates"]

logger = logging.getLogger("lc_observe.capture.pricing")

#: A price in USD per million tokens, or ``(base, ((start, price), ...))`` when the price
#: changes once a call's input tokens exceed ``start``.
Price = float | tuple[float, tuple[tuple[int, float], ...]]
#: Prices of one model, keyed by `PRICE_KEYS`; ``input`` and ``output`` always present.
Rates = dict[str, Price]

#: Price keys: USD per million tokens, except ``request``: USD per call (a fixed fee).
PRICE_KEYS: tuple[str, ...] = (
    "input",
    "output",
    "cached_input",
    "cache_write",
    "cache_write_1h",
    "reasoning",
    "input_audio",
    "output_audio",
    "request",
)

#: genai-prices' price attribute for each of our keys (used by this module and the refresh
#: script).
GENAI_PRICE_KEYS: dict[str, str] = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cached_input",
    "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h",
    "output_reasoning_mtok": "reasoning",
    "input_audio_mtok": "input_audio",
    "output_audio_mtok": "output_audio",
    "requests_kcount": "request",  # per thousand calls; divided by 1000 on import
}

BUNDLED = Path(__file__).parents[1] / "data" / "prices.json"

Source = Literal["auto", "genai-prices", "bundled"]


class PriceTable:
    """Cost of model calls in USD; lookups cached per (model, provider).

    Args:
        overrides: ``{model: {"input": usd_per_mtok, "output": usd_per_mtok, ...}}`` with
            optional ``cached_input``, ``cache_write``, ``cache_write_1h``, ``reasoning``,
            ``input_audio``, ``output_audio``.  A key matches the model name case-insensitively, or
            ``"provider/model"`` for one provider only.  Overrides win over the table.
        source: ``"auto"`` (genai-prices if installed and not older than the bundled data,
            else the bundled data), ``"genai-prices"`` or ``"bundled"``.
        path: a price file written by ``scripts/refresh_prices.py --out``, used instead of
            the bundled one.

    Raises ``ValueError`` for a bad override or source, ``ImportError`` for
    ``source="genai-prices"`` without that package.  `cost` and `rates` never raise.
    The table loads on first use (a few milliseconds for
    the bundled file, ~0.2 s to import genai-prices); call `load` up front to keep that
    off the first model call.

    >>> prices = PriceTable(source="bundled")
    >>> prices.cost("gpt-4o", "openai", {"input_tokens": 1000, "output_tokens": 100})
    0.0035
    """

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, float]] | None = None,
        *,
        source: Source = "auto",
        path: str | Path | None = None,
    ) -> None:
        if source not in ("auto", "genai-prices", "bundled"):
            raise ValueError(f"source must be 'auto', 'genai-prices' or 'bundled', not {source!r}")
        if source == "genai-prices" and path is None and _genai_prices_version() is None:
            raise ImportError(
                "genai-prices is not installed: pip install genai-prices (the [prices] extra)"
            )
        self._overrides = {
            str(name).strip().lower(): _check_override(name, rates)
            for name, rates in (overrides or {}).items()
        }
        self._source: Source = source
        self._path = Path(path) if path is not None else None
        self._backend: _Backend | None = None
        self._load_lock = threading.Lock()
        self._cache: dict[tuple[str | None, str | None, str | None], _Pricing | None] = {}
        self._day = _today_number()

    # -- public ------------------------------------------------------------------------------

    def cost(
        self, model: str | None, provider: str | None, fields: Mapping[str, Any]
    ) -> float | None:
        """USD cost of one call with these token counts, or ``None`` when it cannot be known.

        ``fields`` is what `lc_observe.capture.usage.usage_from_result` returns (or a span record).
        ``None`` when the model is unknown (or has no price for the ``service_tier`` the
        fields name), when no token count was reported, or when the counts contradict each
        other (more cached than input tokens).
        """
        try:
            rates = self.rates(model, provider, service_tier=fields.get("service_tier"))
            return None if rates is None else _cost(rates, fields)
        except Exception:
            logger.debug("lc_observe: cost of %r failed", model, exc_info=True)
            return None

    def call_cost(
        self,
        requested: str | None,
        served: str | None,
        provider: str | None,
        fields: Mapping[str, Any],
    ) -> float | None:
        """USD cost of one model call, priced on the model the provider billed.

        The one rule: the *served* model (the response's name, e.g. a dated snapshot
        ``gpt-4o-mini-2024-07-18`` or an Azure deployment's real model) where the table
        knows it, else the *requested* one.  Never raises.
        """
        tier = fields.get("service_tier")
        if (
            served
            and served != requested
            and self.rates(served, provider, warn=False, service_tier=tier)
        ):
            return self.cost(served, provider, fields)
        return self.cost(requested or served, provider, fields)

    def rates(
        self,
        model: str | None,
        provider: str | None,
        *,
        warn: bool = True,
        service_tier: str | None = None,
    ) -> Rates | None:
        """The prices in force now for ``model`` (USD per million tokens), ``None`` if unknown
        (logged once per model unless ``warn`` is False).

        ``service_tier`` (``"flex"``, ``"priority"``): that tier's prices, ``None`` when the
        table has none for this model (an override applies to every tier).  The returned
        dict is shared by later calls: do not modify it.
        """
        if not isinstance(model, str) or not model.strip():
            return None
        today = _today_number()
        if today != self._day:  # a dated price change may start at midnight UTC
            self._cache = {}
            self._day = today
        tier = service_tier if isinstance(service_tier, str) and service_tier else None
        key = (model, provider, tier)
        try:
            pricing = self._cache[key]
        except KeyError:
            pricing = self._lookup(model, provider, tier)
            if pricing is not None or warn:  # an unknown name is warned about once
                self._cache[key] = pricing
            if pricing is None and warn:
                logger.warning(
                    "lc_observe: no price for model %r (provider %r%s) in %s; cost_usd stays "
                    "empty. Pass ObsHandler(prices={%r: {'input': ..., 'output': ...}}) (USD per "
                    "million tokens).",
                    model,
                    provider,
                    f", service tier {tier!r}" if tier else "",
                    self._backend.description if self._backend else "the price table",
                    model,
                )
        except TypeError:  # an unhashable provider
            return None
        return None if pricing is None else pricing.now()

    def load(self) -> PriceTable:
        """Load the price data now rather than on first use; returns ``self``."""
        self._get_backend()
        return self

    @property
    def source(self) -> str:
        """Where prices come from, e.g. ``"bundled genai-prices 0.2.3 data of 2026-11-25"``."""
        return self._get_backend().description

    # -- internals ---------------------------------------------------------------------------

    def _lookup(self, model: str, provider: str | None, tier: str | None) -> _Pricing | None:
        if provider is not None and not isinstance(provider, str):
            return None
        name = model.strip().lower()
        prov = provider.strip().lower() if provider and provider.strip() else None
        for key in ((f"{prov}/{name}" if prov else None), name):
            if key is not None and key in self._overrides:
                return _Pricing(derive_rates(self._overrides[key], name, prov))
        try:
            backend = self._get_backend()
            if tier is not None:
                rates = backend.find_tier(name, prov, tier)
                return None if rates is None else _Pricing(derive_rates(rates, name, prov))
            entries = backend.find(name, prov)
            if entries is None:
                return None
            pricing = _resolve(entries, dt.datetime.now(dt.timezone.utc))
            if pricing is not None:
                pricing.default = derive_rates(pricing.default, name, prov)
                pricing.windows = tuple(
                    (hours, derive_rates(rates, name, prov)) for hours, rates in pricing.windows
                )
            return pricing
        except Exception:
            logger.debug("lc_observe: price lookup of %r failed", model, exc_info=True)
            return None

    def _get_backend(self) -> _Backend:
        if self._backend is None:
            with self._load_lock:
                if self._backend is None:
                    self._backend = _make_backend(self._source, self._path)
        return self._backend


# -- cost arithmetic ---------------------------------------------------------------------------


def _cost(rates: Rates, fields: Mapping[str, Any]) -> float | None:
    """Sum of tokens x prices; ``None`` if no count was reported or counts contradict."""
    inp, out = _count(fields, "input_tokens"), _count(fields, "output_tokens")
    if inp is None and out is None:
        return None
    inp, out = inp or 0, out or 0
    cached = _count(fields, "cached_tokens") or 0
    written = _count(fields, "cache_creation_tokens") or 0
    one_hour = _count(fields, "cache_creation_1h_tokens") or 0
    if one_hour > written:
        logger.debug("lc_observe: inconsistent token counts %r", dict(fields))
        return None
    if "cache_write_1h" not in rates:  # priced as the other writes
        one_hour = 0
    reasoning = _count(fields, "reasoning_tokens") or 0
    audio_in = _count(fields, "input_audio_tokens") or 0
    audio_out = _count(fields, "output_audio_tokens") or 0

    def price(key: str) -> float:
        return _price_at(rates[key], inp)

    parts_in = {
        "cached_input": cached,
        "cache_write": written - one_hour,
        "cache_write_1h": one_hour,
        "input_audio": audio_in,
    }
    parts_out = {"reasoning": reasoning, "output_audio": audio_out}
    # A part priced like its whole stays in the whole (so its count may be unreported).
    rest_in = inp - sum(n for key, n in parts_in.items() if key in rates)
    rest_out = out - sum(n for key, n in parts_out.items() if key in rates)
    if rest_in < 0 or rest_out < 0 or max(parts_in.values()) > inp or max(parts_out.values()) > out:
        logger.debug("lc_observe: inconsistent token counts %r", dict(fields))
        return None
    usd = rest_in * price("input") + rest_out * price("output")
    for key, n in (*parts_in.items(), *parts_out.items()):
        if n and key in rates:
            usd += n * price(key)
    return usd / 1_000_000 + (price("request") if "request" in rates else 0.0)


#: Prices a provider publishes as a rule on its input price, where a table may lack them:
#: ``{rate key: (provider id, text in the model name, multiple of the input price)}``.
#: Anthropic: a 1-hour cache write costs 2x the base input price (a 5-minute write 1.25x,
#: which every table carries), https://docs.claude.com/en/docs/build-with-claude/prompt-caching#pricing
#: -- for Claude served by other providers too (Bedrock's ``anthropic.claude-...`` ids,
#: Vertex AI), which bill the same multiples.
DERIVED_PRICES: dict[str, tuple[str, str, float]] = {"cache_write_1h": ("anthropic", "claude", 2.0)}


def derive_rates(rates: Rates, model: str, provider: str | None) -> Rates:
    """``rates`` plus the `DERIVED_PRICES` that apply to this model and that it lacks.

    The one place where a price is computed rather than read: a rule applies to the
    provider named, or to its models (by a text in their name) wherever they are served.
    ``model`` is lowercased.  Returns ``rates`` itself when nothing is added.

    >>> derive_rates({"input": 3.0, "output": 15.0}, "claude-sonnet-4-6", "anthropic")
    {'input': 3.0, 'output': 15.0, 'cache_write_1h': 6.0}
    """
    added: Rates = {}
    for key, (rule_provider, name_part, multiple) in DERIVED_PRICES.items():
        if key in rates or "input" not in rates:
            continue
        if provider == rule_provider or name_part in model:
            added[key] = _times(rates["input"], multiple)
    return {**rates, **added} if added else rates


def _times(price: Price, multiple: float) -> Price:
    if isinstance(price, tuple):
        base, tiers = price
        return (base * multiple, tuple((start, p * multiple) for start, p in tiers))
    return price * multiple


def _price_at(price: Price, input_tokens: int) -> float:
    """The price that applies to a call with ``input_tokens`` (tiers by input size)."""
    if isinstance(price, tuple):
        base, tiers = price
        for start, tier_price in reversed(tiers):
            if input_tokens > start:
                return tier_price
        return base
    return price


def _count(fields: Mapping[str, Any], key: str) -> int | None:
    value = fields.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_override(name: Any, rates: Any) -> Rates:
    if not isinstance(rates, Mapping):
        raise ValueError(f"override for {name!r} must be a dict of USD per million tokens")
    unknown = set(rates) - set(PRICE_KEYS)
    missing = {"input", "output"} - set(rates)
    if unknown or missing:
        raise ValueError(
            f"override for {name!r}: needs 'input' and 'output' (USD per million tokens), "
            f"may have {', '.join(PRICE_KEYS[2:])}; "
            f"missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    out: Rates = {}
    for key, value in rates.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"override for {name!r}: {key} must be a number >= 0, not {value!r}")
        out[key] = float(value)
    return out


def _today_number() -> int:
    return int(time.time() // 86_400)


# -- dated and time-of-day prices --------------------------------------------------------------

#: One price entry of a model: ``(since, hours, rates)`` where ``since`` is an ISO date or
#: None, and ``hours`` None or a daily UTC window ``(start_minute, end_minute)`` (end may be
#: past midnight, i.e. smaller than start).  As in the data set, the last entry in force
#: wins, and the first entry applies when none is.
Entry = tuple[str | None, tuple[int, int] | None, Rates]


class _Pricing:
    """A model's prices from today on: fixed rates, plus daily windows with other rates."""

    __slots__ = ("default", "windows")

    def __init__(
        self, default: Rates, windows: tuple[tuple[tuple[int, int], Rates], ...] = ()
    ) -> None:
        self.default = default
        self.windows = windows

    def now(self) -> Rates:
        if not self.windows:
            return self.default
        now = time.gmtime()
        minute = now.tm_hour * 60 + now.tm_min
        for window, rates in self.windows:
            if _in_window(minute, window):
                return rates
        return self.default


def _resolve(entries: list[Entry], now: dt.datetime) -> _Pricing | None:
    """Prices in force at ``now``'s date; time windows stay open until a cost is computed."""
    today = now.date().isoformat()
    windows: list[tuple[tuple[int, int], Rates]] = []
    default: Rates | None = None
    for since, hours, rates in reversed(entries):
        if since is not None and since > today:
            continue
        if hours is None:
            default = rates
            break
        windows.append((hours, rates))
    if default is None:
        if not entries:
            return None
        default = entries[0][2]
    if any("input" not in r or "output" not in r for r in (default, *(r for _, r in windows))):
        return None  # not a text model (embeddings, audio by the second ...)
    return _Pricing(default, tuple(windows))


def _in_window(minute: int, window: tuple[int, int]) -> bool:
    start, end = window
    return start <= minute < end if start <= end else minute >= start or minute < end


# -- backends ----------------------------------------------------------------------------------


class _Backend:
    """A price data set: ``find`` a model's dated price entries by name and provider id."""

    description = ""

    def find(self, model: str, provider: str | None) -> list[Entry] | None:
        """Entries of the model ``model`` (lowercased) names, ``None`` if it is unknown."""
        raise NotImplementedError

    def find_tier(self, model: str, provider: str | None, tier: str) -> Rates | None:
        """Prices in force now on a service tier (``"flex"`` ...), ``None`` if not known."""
        return None


@functools.lru_cache(maxsize=8)  # backends are read-only: share them between tables
def _make_backend(source: Source, path: Path | None) -> _Backend:
    if path is not None:
        return _JsonBackend(_read_json(path), str(path))
    if source == "bundled":
        return _JsonBackend(_read_json(BUNDLED), "bundled")
    installed = _genai_prices_version()
    if source == "genai-prices" and installed is not None:
        return _GenaiPricesBackend(installed)
    bundled = _read_json(BUNDLED)
    if installed is not None and _version_key(installed) >= _version_key(
        bundled["source"]["version"]
    ):
        try:
            return _GenaiPricesBackend(installed)
        except Exception:  # a future genai-prices we cannot read: keep the bundled data
            logger.warning("lc_observe: cannot use genai-prices %s", installed, exc_info=True)
    return _JsonBackend(bundled, "bundled")


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _genai_prices_version() -> str | None:
    try:
        return version("genai-prices")
    except PackageNotFoundError:
        return None


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


class _JsonBackend(_Backend):
    """lc_observe's price file (see ``scripts/refresh_prices.py``), matched by its rules.

    Semantics follow the data set's: the provider is found by id, else by its
    ``provider_match`` rule; without a provider, by the first provider whose
    ``model_match`` accepts the model; then the first model of that provider (or of its
    ``fallback`` providers) whose ``match`` accepts the name; a compact date suffix
    (``-20251211``) is retried as ``-2025-12-11``.
    """

    def __init__(self, document: Mapping[str, Any], origin: str) -> None:
        if document.get("schema") != 1:
            raise ValueError(f"{origin}: unsupported price file schema {document.get('schema')!r}")
        self._providers: list[dict[str, Any]] = list(document["providers"])
        self._by_id = {p["id"]: p for p in self._providers}
        src = document.get("source", {})
        self.description = (
            f"{origin} {src.get('name', '?')} {src.get('version', '?')} "
            f"data of {src.get('generated', '?')}"
        )

    def find(self, model: str, provider: str | None) -> list[Entry] | None:
        if provider is None:
            entry = self._first_matching("model_match", model)
        else:
            entry = self._provider(provider)
        if entry is None:
            return None
        found = self._model(entry, model, fallback=True)
        if found is None:
            dashed = _dashed_date(model)
            if dashed != model:
                found = self._model(entry, dashed, fallback=True)
        return None if found is None else [_json_entry(p) for p in found["prices"]]

    def _provider(self, ident: str) -> dict[str, Any] | None:
        ident = ident.strip().lower()
        if ident in self._by_id:
            return self._by_id[ident]
        return self._first_matching("provider_match", ident)

    def _first_matching(self, rule: str, text: str) -> dict[str, Any] | None:
        return next((p for p in self._providers if p[rule] and _match(p[rule], text)), None)

    def _model(self, entry: Mapping[str, Any], model: str, fallback: bool) -> dict[str, Any] | None:
        for candidate in entry["models"]:
            if _match(candidate["match"], model):
                return candidate
        if fallback:
            for other_id in entry.get("fallback") or ():
                other = self._by_id.get(other_id)
                found = other and self._model(other, model, fallback=False)
                if found:
                    return found
        return None


def _json_entry(entry: Mapping[str, Any]) -> Entry:
    hours = entry.get("hours")
    window = None if hours is None else (_minute(hours[0]), _minute(hours[1]))
    rates = {key: _price(entry[key]) for key in PRICE_KEYS if key in entry}
    return entry.get("from"), window, rates


def _minute(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _price(value: Any) -> Price:
    if isinstance(value, Mapping):
        return (float(value["base"]), tuple((int(s), float(p)) for s, p in value["tiers"]))
    return float(value)


def _match(rule: Mapping[str, Any], text: str) -> bool:
    """Evaluate one match rule (``equals``, ``starts_with``, ``or`` ...) on a lowercased text."""
    ((kind, arg),) = rule.items()
    if kind == "equals":
        return text == arg.lower()
    if kind == "starts_with":
        return text.startswith(arg.lower())
    if kind == "ends_with":
        return text.endswith(arg.lower())
    if kind == "contains":
        return arg.lower() in text
    if kind == "regex":
        return _regex(arg).search(text) is not None
    if kind == "or":
        return any(_match(part, text) for part in arg)
    if kind == "and":
        return all(_match(part, text) for part in arg)
    raise ValueError(f"unknown match rule {kind!r}")


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_COMPACT_DATE = re.compile(r"(-)(\d{4})(\d{2})(\d{2})(?=$|[^0-9])")


def _dashed_date(model: str) -> str:
    """``gpt-5.2-20251211`` -> ``gpt-5.2-2025-12-11`` (only for a real calendar date)."""

    def dashed(m: re.Match[str]) -> str:
        try:
            dt.date(int(m[2]), int(m[3]), int(m[4]))
        except ValueError:
            return m[0]
        return f"{m[1]}{m[2]}-{m[3]}-{m[4]}"

    return _COMPACT_DATE.sub(dashed, model)


class _GenaiPricesBackend(_Backend):
    """The installed genai-prices package (its bundled data; nothing is downloaded)."""

    def __init__(self, installed: str) -> None:
        from genai_prices import data_snapshot

        self._snapshot = data_snapshot.get_snapshot
        self._snapshot()  # import and build the data now
        self.description = f"genai-prices {installed}"

    def find(self, model: str, provider: str | None) -> list[Entry] | None:
        try:
            _, info = self._snapshot().find_provider_model(model, None, provider, None)
        except LookupError:
            return None
        if not isinstance(info.prices, list):
            return [(None, None, _genai_rates(info.prices))]
        entries: list[Entry] = []
        for conditional in info.prices:
            constraint = conditional.constraint
            since, window = None, None
            if hasattr(constraint, "start_date"):
                since = constraint.start_date.isoformat()
            elif hasattr(constraint, "start_time"):
                window = (_utc_minute(constraint.start_time), _utc_minute(constraint.end_time))
            entries.append((since, window, _genai_rates(conditional.prices)))
        return entries

    def find_tier(self, model: str, provider: str | None, tier: str) -> Rates | None:
        """The data set's price variant for ``service_tier == tier`` over the standard
        prices (as genai-prices applies it), only when such a variant is in force."""
        try:
            _, info = self._snapshot().find_provider_model(model, None, provider, None)
        except LookupError:
            return None
        now = dt.datetime.now(dt.timezone.utc)
        when = {"service_tier": tier}
        if not any(
            variant.when == when and (variant.constraint is None or variant.constraint.active(now))
            for variant in getattr(info, "price_variants", None) or ()
        ):
            return None
        rates = _genai_rates(info.get_prices(now, when))
        return rates if "input" in rates and "output" in rates else None


def _genai_rates(model_price: Any) -> Rates:
    rates: Rates = {}
    for theirs, ours in GENAI_PRICE_KEYS.items():
        value = getattr(model_price, theirs, None)
        if value is not None:
            rates[ours] = _from_genai(value, 1000 if ours == "request" else 1)
    return rates


def _utc_minute(value: dt.time) -> int:
    """Minute of the day in UTC of a time of day (naive times are UTC)."""
    if value.tzinfo is not None:
        value = dt.datetime.combine(dt.date(2000, 1, 1), value).astimezone(dt.timezone.utc).time()
    return value.hour * 60 + value.minute


def _from_genai(value: Any, per: int = 1) -> Price:
    tiers: Iterable[Any] | None = getattr(value, "tiers", None)
    if tiers is None:
        return float(value) / per
    return (float(value.base) / per, tuple((int(t.start), float(t.price) / per) for t in tiers))
