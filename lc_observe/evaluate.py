"""Evaluate stored traces: heuristic checks and an LLM judge, recorded as scores.

>>> from lc_observe.evaluate import judge, evaluate, max_length, refusal, contains
>>> evaluate(store, evaluators=[max_length(800), refusal(), contains()])   # doctest: +SKIP
>>> judge(store, model=chat_model, criteria=["relevance", "groundedness"])  # doctest: +SKIP

The code lives in `lc_observe.analysis` (``evaluate.py``, ``judge.py``, ``cases.py``); this
module is the public surface.  See docs/quality.md.
"""

from __future__ import annotations

from .analysis.cases import JUDGE_TAG, Case, text_of
from .analysis.evaluate import (
    REFUSAL_PATTERNS,
    EvalReport,
    EvalResult,
    EvaluationSink,
    Evaluator,
    Verdict,
    all_of,
    answer_length,
    any_of,
    contains,
    cost_slo,
    evaluate,
    heuristic,
    json_valid,
    latency_slo,
    max_length,
    no_errors,
    refusal,
    regex,
    token_slo,
)
from .analysis.judge import (
    CRITERIA,
    Criterion,
    JudgeReport,
    JudgeResult,
    JudgeVerdict,
    MalformedVerdict,
    ajudge,
    judge,
    parse_verdict,
)

__all__ = [
    "CRITERIA",
    "JUDGE_TAG",
    "REFUSAL_PATTERNS",
    "Case",
    "Criterion",
    "EvalReport",
    "EvalResult",
    "EvaluationSink",
    "Evaluator",
    "JudgeReport",
    "JudgeResult",
    "JudgeVerdict",
    "MalformedVerdict",
    "Verdict",
    "ajudge",
    "all_of",
    "answer_length",
    "any_of",
    "contains",
    "cost_slo",
    "evaluate",
    "heuristic",
    "json_valid",
    "judge",
    "latency_slo",
    "max_length",
    "no_errors",
    "parse_verdict",
    "refusal",
    "regex",
    "text_of",
    "token_slo",
]
