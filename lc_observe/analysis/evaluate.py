"""Heuristic evaluators: cheap, deterministic checks of stored traces, written as scores.

Each factory returns an `Evaluator`: a name and a function of a `Case` that returns a value
(bool, number or category), a `Verdict` (value and comment), or None when the check does not
apply.  Evaluators compose with ``&`` / ``|`` (`all_of` / `any_of`) and `heuristic` turns
any function into one.

>>> from lc_observe.evaluate import contains, json_valid, latency_slo, max_length, evaluate
>>> checks = [max_length(500), contains("42"), latency_slo(2_000)]
>>> report = evaluate(store, evaluators=checks)                  # doctest: +SKIP
>>> report.summary()                                             # doctest: +SKIP

Live, as the handler records (on the writer thread, after each trace is written; never on
the callback path): ``ObsHandler(evaluators=checks)``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..model import Trace
from .cases import JUDGE_TAG, Case, References, select_traces

if TYPE_CHECKING:
    from lc_observe.storage.store import TraceStore

logger = logging.getLogger("lc_observe")

Value = bool | float | int | str


@dataclass(frozen=True)
class Verdict:
    """What an evaluator found: a value and, optionally, why."""

    value: Value
    comment: str | None = None


class Evaluator:
    """A named check of a `Case`.  ``fn(case)`` returns a value, a `Verdict` or None (the
    check does not apply to this case: nothing is recorded).

    >>> short = Evaluator("short", lambda case: len(case.answer or "") < 100)
    >>> both = short & Evaluator("polite", lambda case: "please" in (case.answer or ""))
    >>> both.name
    'short_and_polite'
    """

    def __init__(self, name: str, fn: Callable[[Case], Value | Verdict | None]) -> None:
        if not name:
            raise ValueError("an evaluator needs a name (the score name it records)")
        self.name = name
        self.fn = fn

    def __call__(self, case: Case) -> Verdict | None:
        result = self.fn(case)
        if result is None or isinstance(result, Verdict):
            return result
        return Verdict(result)

    def __and__(self, other: Evaluator) -> Evaluator:
        return all_of(self, other)

    def __or__(self, other: Evaluator) -> Evaluator:
        return any_of(self, other)

    def named(self, name: str) -> Evaluator:
        """The same check recording under another score name."""
        return Evaluator(name, self.fn)

    def __repr__(self) -> str:
        return f"Evaluator({self.name!r})"


def heuristic(name: str) -> Callable[[Callable[[Case], Any]], Evaluator]:
    """Decorator: a function of a `Case` as an `Evaluator` named ``name``.

    >>> @heuristic("mentions_source")
    ... def mentions_source(case):
    ...     return "source:" in (case.answer or "")
    >>> mentions_source.name
    'mentions_source'
    """

    def wrap(fn: Callable[[Case], Any]) -> Evaluator:
        return Evaluator(name, fn)

    return wrap


def _combine(name: str, evaluators: Sequence[Evaluator], want_all: bool) -> Evaluator:
    if not evaluators:
        raise ValueError("all_of()/any_of() need at least one evaluator")

    def run(case: Case) -> Verdict | None:
        failed, passed = [], []
        for evaluator in evaluators:
            verdict = evaluator(case)
            if verdict is None:
                continue
            if not isinstance(verdict.value, bool):
                raise TypeError(
                    f"all_of/any_of combine pass/fail checks; {evaluator.name!r} gave "
                    f"{verdict.value!r}: wrap it in a check that returns a bool"
                )
            (passed if verdict.value else failed).append(evaluator.name)
        if not failed and not passed:
            return None
        ok = not failed if want_all else bool(passed)
        return Verdict(ok, None if ok or not failed else "failed: " + ", ".join(failed))

    return Evaluator(name, run)


def all_of(*evaluators: Evaluator, name: str | None = None) -> Evaluator:
    """Passes when every pass/fail check passes (checks that do not apply are skipped)."""
    return _combine(name or "_and_".join(e.name for e in evaluators), evaluators, True)


def any_of(*evaluators: Evaluator, name: str | None = None) -> Evaluator:
    """Passes when at least one pass/fail check passes."""
    return _combine(name or "_or_".join(e.name for e in evaluators), evaluators, False)


# -- the heuristics ---------------------------------------------------------------------------


def answer_length(name: str = "answer_length") -> Evaluator:
    """The answer's length in characters (a number)."""
    return Evaluator(name, lambda case: None if case.answer is None else len(case.answer))


def max_length(max_chars: int, *, min_chars: int = 0, name: str = "length_ok") -> Evaluator:
    """Passes when the answer has between ``min_chars`` and ``max_chars`` characters."""

    def check(case: Case) -> Verdict | None:
        if case.answer is None:
            return None
        n = len(case.answer)
        ok = min_chars <= n <= max_chars
        return Verdict(ok, None if ok else f"{n} chars, allowed {min_chars}..{max_chars}")

    return Evaluator(name, check)


def _json_problem(value: Any, schema: dict[str, Any], path: str = "$") -> str | None:
    """A small JSON Schema subset: type, required, properties, items, enum (no $ref)."""
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    wanted = schema.get("type")
    if wanted is not None:
        names = wanted if isinstance(wanted, list) else [wanted]
        ok = any(
            isinstance(value, types[t]) and not (t in ("integer", "number") and value is True)
            for t in names
            if t in types
        )
        if isinstance(value, bool) and "boolean" not in names:
            ok = False
        if not ok:
            return f"{path}: expected {wanted}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                return f"{path}: missing required key {key!r}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problem = _json_problem(value[key], sub, f"{path}.{key}")
                if problem:
                    return problem
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = _json_problem(item, schema["items"], f"{path}[{i}]")
            if problem:
                return problem
    return None


def _strip_fences(text: str) -> str:
    match = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", text, re.S)
    return match.group(1) if match else text


def json_valid(schema: Any = None, *, name: str | None = None) -> Evaluator:
    """Passes when the answer is JSON (a fenced ```json block counts) and, with ``schema``,
    matches it: a JSON Schema dict (type, required, properties, items, enum) or a pydantic
    model class.

    >>> from pydantic import BaseModel
    >>> class Answer(BaseModel):
    ...     city: str
    >>> json_valid(Answer).name
    'json_schema'
    """
    score_name = name or ("json_valid" if schema is None else "json_schema")

    def check(case: Case) -> Verdict | None:
        if case.answer is None:
            return None
        text = _strip_fences(case.answer)
        try:
            value = json.loads(text)
        except ValueError as exc:
            return Verdict(False, f"not JSON: {exc}")
        if schema is None:
            return Verdict(True)
        if isinstance(schema, dict):
            problem = _json_problem(value, schema)
            return Verdict(problem is None, problem)
        try:
            schema.model_validate(value)
        except Exception as exc:  # pydantic.ValidationError
            return Verdict(False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return Verdict(True)

    return Evaluator(score_name, check)


def regex(
    pattern: str, *, name: str = "regex", must_match: bool = True, flags: int = 0
) -> Evaluator:
    """Passes when the answer matches ``pattern`` (``re.search``), or does not with
    ``must_match=False``."""
    compiled = re.compile(pattern, flags)

    def check(case: Case) -> Verdict | None:
        if case.answer is None:
            return None
        found = compiled.search(case.answer) is not None
        ok = found if must_match else not found
        return Verdict(ok, None if ok else f"{'no ' if must_match else ''}match for {pattern!r}")

    return Evaluator(name, check)


#: Phrases that mark a refusal (case-insensitive regular expressions).
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"i (?:can(?:no|')t|am unable to|'m unable to|won't|will not) "
    r"(?:help|assist|do|provide|answer|comply)",
    r"i(?: am|'m) (?:sorry|afraid),? (?:but )?i (?:can(?:no|')t|am unable|'m unable)",
    r"as an ai(?: language model)?,? i",
    r"i(?: must|'ll have to) (?:decline|refuse)",
    r"(?:this|that) (?:request )?(?:is|goes) against (?:my|the) (?:guidelines|policy|policies)",
)


def refusal(*, name: str = "refusal", patterns: Iterable[str] = REFUSAL_PATTERNS) -> Evaluator:
    """True when the answer is a refusal ("I can't help with that", "As an AI ...")."""
    compiled = re.compile("|".join(f"(?:{p})" for p in patterns), re.I)

    def check(case: Case) -> Verdict | None:
        if case.answer is None:
            return None
        match = compiled.search(case.answer.replace("\u2019", "'"))
        return Verdict(match is not None, f"matched {match.group(0)!r}" if match else None)

    return Evaluator(name, check)


def contains(
    expected: str | Sequence[str] | None = None,
    *,
    name: str = "contains",
    case_sensitive: bool = False,
) -> Evaluator:
    """Passes when the answer contains ``expected`` (every one of several strings), or the
    case's reference answer when ``expected`` is None (skipped when there is none)."""

    def check(case: Case) -> Verdict | None:
        wanted = case.reference if expected is None else expected
        if case.answer is None or wanted is None:
            return None
        needles = [wanted] if isinstance(wanted, str) else list(wanted)
        answer = case.answer if case_sensitive else case.answer.lower()
        missing = [n for n in needles if (n if case_sensitive else n.lower()) not in answer]
        return Verdict(not missing, f"missing {missing!r}" if missing else None)

    return Evaluator(name, check)


def latency_slo(max_ms: float, *, name: str = "latency_slo") -> Evaluator:
    """Passes when the whole trace took at most ``max_ms`` milliseconds."""

    def check(case: Case) -> Verdict | None:
        latency = case.trace.latency_ms
        if latency is None:
            return None
        ok = latency <= max_ms
        return Verdict(ok, None if ok else f"{latency:.1f} ms > {max_ms:g} ms")

    return Evaluator(name, check)


def cost_slo(max_usd: float, *, name: str = "cost_slo") -> Evaluator:
    """Passes when the trace cost at most ``max_usd`` (skipped when its cost is unknown)."""

    def check(case: Case) -> Verdict | None:
        cost = case.trace.cost_usd
        if cost is None:
            return None
        ok = cost <= max_usd
        return Verdict(ok, None if ok else f"${cost:.6f} > ${max_usd:g}")

    return Evaluator(name, check)


def token_slo(max_tokens: int, *, name: str = "token_slo") -> Evaluator:
    """Passes when the trace used at most ``max_tokens`` tokens in total."""

    def check(case: Case) -> Verdict | None:
        tokens = case.trace.total_tokens
        if tokens is None:
            return None
        ok = tokens <= max_tokens
        return Verdict(ok, None if ok else f"{tokens} tokens > {max_tokens}")

    return Evaluator(name, check)


def no_errors(*, name: str = "no_errors") -> Evaluator:
    """Passes when no span of the trace failed."""
    return Evaluator(name, lambda case: case.trace.error_count == 0)


# -- running them -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalResult:
    """One evaluator's verdict on one trace (``error``: the evaluator raised)."""

    trace_id: str
    name: str
    value: Value | None
    comment: str | None = None
    error: str | None = None


@dataclass
class EvalReport:
    """What `evaluate` found: one result per (trace, evaluator) that applied."""

    results: list[EvalResult] = field(default_factory=list)
    traces: int = 0

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per score name: ``n``, ``mean`` (pass rate for checks), ``errors``."""
        out: dict[str, dict[str, Any]] = {}
        for result in self.results:
            entry = out.setdefault(result.name, {"n": 0, "mean": None, "errors": 0, "_v": []})
            entry["n"] += 1
            if result.error is not None:
                entry["errors"] += 1
            elif isinstance(result.value, (bool, int, float)):
                entry["_v"].append(float(result.value))
        for entry in out.values():
            values = entry.pop("_v")
            entry["mean"] = sum(values) / len(values) if values else None
        return out

    def __str__(self) -> str:
        lines = [f"{self.traces} traces evaluated"]
        for name, entry in self.summary().items():
            mean = "-" if entry["mean"] is None else f"{entry['mean']:.3f}"
            lines.append(f"  {name:<24} n={entry['n']:<5} mean={mean}  errors={entry['errors']}")
        return "\n".join(lines)


def run_evaluators(case: Case, evaluators: Sequence[Evaluator]) -> list[EvalResult]:
    """Every evaluator on one case; an evaluator that raises gives an error result."""
    results = []
    for evaluator in evaluators:
        try:
            verdict = evaluator(case)
        except Exception as exc:
            results.append(
                EvalResult(
                    case.trace_id, evaluator.name, None, error=f"{type(exc).__name__}: {exc}"
                )
            )
            continue
        if verdict is not None:
            results.append(
                EvalResult(case.trace_id, evaluator.name, verdict.value, verdict.comment)
            )
    return results


def score_records(results: Iterable[EvalResult], source: str = "heuristic") -> list[dict[str, Any]]:
    """Score records of the results that have a value (errors are logged, not stored)."""
    from lc_observe.storage.scores import score_record

    records = []
    for result in results:
        if result.error is not None or result.value is None:
            continue
        records.append(
            score_record(
                result.trace_id, result.name, result.value, comment=result.comment, source=source
            )
        )
    return records


def evaluate(
    store: TraceStore,
    traces: Iterable[Trace | str] | Trace | str | None = None,
    *,
    evaluators: Sequence[Evaluator],
    references: References | None = None,
    since: Any = None,
    limit: int | None = None,
    write: bool = True,
) -> EvalReport:
    """Run heuristic evaluators over stored traces and record their verdicts as scores
    (``source="heuristic"``).

    Args:
        store: the `TraceStore` to read and write.
        traces: trace ids or `Trace` objects; default the stored traces (``since``,
            ``limit``), an LLM judge's own traces left out.
        evaluators: the checks to run (`max_length`, `json_valid`, `contains` ...).
        references: expected answers per trace id (or a function of the `Case`), for
            `contains()` without an argument.
        write: False to only return the report.

    >>> report = evaluate(store, evaluators=[refusal(), json_valid()])   # doctest: +SKIP
    >>> print(report)                                                    # doctest: +SKIP
    """
    if not evaluators:
        raise ValueError("evaluate() needs evaluators=[...], e.g. [max_length(500), refusal()]")
    report = EvalReport()
    for trace in select_traces(store, traces, since=since, limit=limit):
        case = Case.load(store, trace, references=references)
        report.results.extend(run_evaluators(case, evaluators))
        report.traces += 1
    for result in report.results:
        if result.error is not None:
            logger.warning(
                "lc_observe: evaluator %s raised on trace %s: %s",
                result.name,
                result.trace_id,
                result.error,
            )
    if write:
        store._insert_scores(score_records(report.results))
    return report


class EvaluationSink:
    """Runs evaluators live: after the SQLite sink wrote a finished trace, on the writer
    thread (never on the callback path), it reads the trace back and records the verdicts.

    Made by ``ObsHandler(evaluators=[...])``.  An evaluator that raises is logged once and
    counted in `errors`; nothing reaches the application.
    """

    def __init__(
        self, path: str, evaluators: Sequence[Evaluator], references: References | None = None
    ) -> None:
        self.path = path
        self.evaluators = list(evaluators)
        self.references = references
        self.evaluated = 0
        self.errors = 0
        self._store: Any = None
        self._logged: set[str] = set()

    def export(self, batch: Sequence[tuple[str, dict[str, Any]]]) -> int:
        from ..records import RECORD_SPAN

        roots = [
            record["trace_id"]
            for kind, record in batch
            if kind == RECORD_SPAN
            and record["parent_id"] is None
            and JUDGE_TAG not in (record["tags"] or ())
        ]
        for trace_id in roots:
            try:
                self._evaluate(trace_id)
            except Exception as exc:  # the writer must go on
                self.errors += 1
                key = type(exc).__name__
                if key not in self._logged:
                    self._logged.add(key)
                    logger.warning(
                        "lc_observe: live evaluation of trace %s failed: %s", trace_id, exc
                    )
        return len(batch)

    def _evaluate(self, trace_id: str) -> None:
        from lc_observe.storage.store import TraceStore

        if self._store is None:
            self._store = TraceStore(self.path)
        case = Case.load(self._store, trace_id, references=self.references)
        results = run_evaluators(case, self.evaluators)
        for result in results:
            if result.error is not None:
                self.errors += 1
                if result.name not in self._logged:
                    self._logged.add(result.name)
                    logger.warning("lc_observe: evaluator %s raised: %s", result.name, result.error)
        self._store._insert_scores(score_records(results))
        self.evaluated += 1

    def shutdown(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    close = shutdown  # the older name of the exporter contract's shutdown
