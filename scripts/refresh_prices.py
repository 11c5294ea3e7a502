"""Regenerate ``lc_observe/data/prices.json`` from the genai-prices data set.

The price table lc_observe ships is a snapshot of the MIT-licensed genai-prices data
(https://github.com/pydantic/genai-prices, Copyright (c) Pydantic Services Inc.), converted
to lc_observe's own small JSON schema: per provider, the model match rules in their order and
the token prices in USD per million tokens.  No code is copied: only data is exported, read
through the installed package, offline (no download happens here).

Usage::

    pip install -U genai-prices
    python scripts/refresh_prices.py               # writes lc_observe/data/prices.json
    python scripts/refresh_prices.py --out my.json # then PriceTable(path="my.json")

Prices kept: input, output, cache read, cache write (5 minute and 1 hour), reasoning, audio
input/output,
with their ">N input tokens" tiers, dated changes and daily (off-peak) windows.  Dropped:
non-token units (web searches, images, pages ...) and request variants (batch, flex,
priority), which a span cannot tell apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from decimal import Decimal
from importlib.metadata import distribution, version
from pathlib import Path
from typing import Any

from lc_observe.capture.pricing import GENAI_PRICE_KEYS as PRICE_KEYS

SCHEMA = 1
OUT = Path(__file__).resolve().parents[1] / "lc_observe" / "data" / "prices.json"

CLAUSES = ("equals", "starts_with", "ends_with", "contains", "regex")


def clause(logic: Any) -> dict[str, Any] | None:
    """A genai-prices match clause as plain JSON (``{"or": [...]}``, ``{"equals": "x"}`` ...)."""
    if logic is None:
        return None
    for name in CLAUSES:
        if hasattr(logic, name):
            return {name: getattr(logic, name)}
    for name in ("or", "and"):
        parts = getattr(logic, f"{name}_", None)
        if parts is not None:
            return {name: [clause(part) for part in parts]}
    raise ValueError(f"unknown match clause {logic!r}")


def price_value(value: Any, per: int) -> float | dict[str, Any]:
    if isinstance(value, Decimal):
        return float(value / per)
    return {
        "base": float(value.base / per),
        "tiers": [[tier.start, float(tier.price / per)] for tier in value.tiers],
    }


def prices(model_price: Any) -> dict[str, Any]:
    """Our price keys: USD per million tokens; ``request`` in USD per call."""
    out: dict[str, Any] = {}
    for key, ours in PRICE_KEYS.items():
        value = getattr(model_price, key, None)
        if value is not None:
            out[ours] = price_value(value, 1000 if ours == "request" else 1)
    return out


def model_prices(model: Any) -> list[dict[str, Any]]:
    """Dated price list, oldest first: ``[{"from": None | "YYYY-MM-DD", "input": ...}]``."""
    if not isinstance(model.prices, list):
        return [{"from": None, **prices(model.prices)}]
    out = []
    for conditional in model.prices:
        constraint = conditional.constraint
        entry: dict[str, Any] = {"from": None}
        if hasattr(constraint, "start_date"):
            entry["from"] = constraint.start_date.isoformat()
        elif hasattr(constraint, "start_time"):  # a daily window, e.g. off-peak hours
            entry["hours"] = [utc_hhmm(constraint.start_time), utc_hhmm(constraint.end_time)]
        elif constraint is not None:
            raise ValueError(f"unknown price constraint {constraint!r}")
        out.append({**entry, **prices(conditional.prices)})
    return out


def utc_hhmm(value: dt.time) -> str:
    """``HH:MM`` in UTC (naive times are UTC, as in genai-prices)."""
    if value.tzinfo is not None:
        value = dt.datetime.combine(dt.date(2000, 1, 1), value).astimezone(dt.timezone.utc).time()
    return value.strftime("%H:%M")


def license_text() -> str:
    """genai-prices' MIT license, which must travel with copies of its data."""
    dist = distribution("genai-prices")
    for file in dist.files or ():
        if file.name.upper().startswith("LICENSE"):
            return file.read_text()
    raise FileNotFoundError("genai-prices ships no LICENSE file")


def export() -> dict[str, Any]:
    """The whole price table as lc_observe's JSON document."""
    from genai_prices import data_snapshot

    providers = []
    for provider in data_snapshot.get_snapshot().providers:
        models = []
        for model in provider.models:
            entry = {"id": model.id, "match": clause(model.match), "prices": model_prices(model)}
            if any(k in p for p in entry["prices"] for k in ("input", "output")):
                models.append(entry)
        providers.append(
            {
                "id": provider.id,
                "provider_match": clause(provider.provider_match),
                "model_match": clause(provider.model_match),
                "fallback": list(provider.fallback_model_providers or []),
                "models": models,
            }
        )
    return {
        "schema": SCHEMA,
        "unit": "USD per million tokens",
        "source": {
            "name": "genai-prices",
            "version": version("genai-prices"),
            "url": "https://github.com/pydantic/genai-prices",
            "license": "MIT, Copyright (c) Pydantic Services Inc. 2025 to present",
            "license_text": license_text(),
            "generated": dt.date.today().isoformat(),
        },
        "providers": providers,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output file (default {OUT})")
    args = parser.parse_args(argv)
    document = export()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, separators=(",", ":"), sort_keys=False) + "\n")
    count = sum(len(p["models"]) for p in document["providers"])
    size = args.out.stat().st_size
    print(f"{args.out}: {len(document['providers'])} providers, {count} models, {size:,} bytes")


if __name__ == "__main__":
    main()
