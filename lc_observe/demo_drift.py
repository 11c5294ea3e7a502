"""A support-ticket LangGraph graph whose behaviour is a set of knobs: token counts, delays,
time to first token, errors and routing probabilities, all seeded.

The anomaly tests, the anomalies notebook and ``python -m lc_observe.demo_drift`` use it
to record a stable baseline and then a recent window with a change injected::

    classify --route--> answer --after_answer--> summarize (only when knobs.summarize)
             \\--------> human_review                 \\--> END

``classify`` calls the ``support-router`` model and routes a share ``review_rate`` of
the tickets to ``human_review``; ``answer`` streams from ``support-answer`` (so TTFT is
measured) and fails with probability ``error_rate``; ``summarize`` calls
``support-summarizer``.  No network, no API key: the models are fakes.

>>> knobs = Knobs(seed=1)                                       # doctest: +SKIP
>>> graph = build_graph(knobs)                                  # doctest: +SKIP
>>> run_tickets(graph, ObsHandler("drift.db", prices=PRICES), 200)  # doctest: +SKIP
>>> knobs.review_rate = 0.45                                    # inject a change
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypedDict

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langgraph.graph import END, START, StateGraph

#: Prices (USD per million tokens) of the fake models, for ``ObsHandler(prices=PRICES)``.
PRICES: dict[str, dict[str, float]] = {
    "support-router": {"input": 1.0, "output": 8.0},
    "support-answer": {"input": 2.0, "output": 10.0},
    "support-summarizer": {"input": 0.5, "output": 2.0},
}


class LookupFailed(RuntimeError):
    """The knowledge-base lookup of ``answer`` failed (the baseline's error)."""


class UpstreamTimeout(RuntimeError):
    """An upstream call of ``answer`` timed out (an error type to inject)."""


ERRORS: dict[str, type[Exception]] = {
    "LookupFailed": LookupFailed,
    "UpstreamTimeout": UpstreamTimeout,
}


@dataclass
class Knobs:
    """What the graph does; change a field between runs to inject a change.

    Token counts are drawn per call around their mean (+-20%); delays are in seconds.
    """

    seed: int = 0
    review_rate: float = 0.1
    router_tokens: tuple[int, int] = (400, 20)  # (input, output) of support-router
    answer_tokens: tuple[int, int] = (600, 200)  # of support-answer
    answer_delay: float = 0.002  # seconds of work in answer after the stream
    first_token_delay: float = 0.001  # before support-answer's first chunk
    error_rate: float = 0.02
    error_type: str = "LookupFailed"
    summarize: bool = False
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def tokens(self, mean: tuple[int, int]) -> tuple[int, int]:
        """Input and output tokens of one call: uniform within +-20% of ``mean``."""
        return tuple(max(1, round(m * self.rng.uniform(0.8, 1.2))) for m in mean)  # type: ignore[return-value]


class KnobChatModel(BaseChatModel):
    """A fake chat model whose usage and first-token delay come from `Knobs`."""

    knobs: Any
    model_name: str
    which: str = "router"  # router, answer or summarizer

    @property
    def _llm_type(self) -> str:
        return "knob-chat-model"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "fake"
        params["ls_model_name"] = self.model_name
        return params

    def _usage(self) -> UsageMetadata:
        knobs: Knobs = self.knobs
        means = {
            "router": knobs.router_tokens,
            "answer": knobs.answer_tokens,
            "summarizer": (300, 60),
        }
        i, o = knobs.tokens(means[self.which])
        return UsageMetadata(input_tokens=i, output_tokens=o, total_tokens=i + o)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(
            content="ok",
            usage_metadata=self._usage(),
            response_metadata={"model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        time.sleep(self.knobs.first_token_delay)
        for piece in ("Thanks ", "for ", "writing."):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=self._usage(),
                response_metadata={"model_name": self.model_name},
            )
        )


class Ticket(TypedDict, total=False):
    text: str
    answer: str
    summary: str


def build_graph(knobs: Knobs) -> Any:
    """The compiled support graph, reading ``knobs`` at every call."""
    router = KnobChatModel(knobs=knobs, model_name="support-router", which="router")
    answerer = KnobChatModel(knobs=knobs, model_name="support-answer", which="answer")
    summarizer = KnobChatModel(knobs=knobs, model_name="support-summarizer", which="summarizer")

    def classify(state: Ticket) -> Ticket:
        router.invoke([HumanMessage(content=state["text"])])
        return {}

    def route(state: Ticket) -> str:
        return "human_review" if knobs.rng.random() < knobs.review_rate else "answer"

    def answer(state: Ticket) -> Ticket:
        text = "".join(str(c.content) for c in answerer.stream([HumanMessage(state["text"])]))
        time.sleep(knobs.answer_delay)
        if knobs.rng.random() < knobs.error_rate:
            raise ERRORS[knobs.error_type]("the knowledge base did not answer")
        return {"answer": text}

    def after_answer(state: Ticket) -> str:
        return "summarize" if knobs.summarize else END

    def summarize(state: Ticket) -> Ticket:
        summarizer.invoke([HumanMessage(content=state.get("answer", ""))])
        return {"summary": "done"}

    def human_review(state: Ticket) -> Ticket:
        return {"answer": "a person will reply"}

    builder = StateGraph(Ticket)
    builder.add_node("classify", classify)
    builder.add_node("answer", answer)
    builder.add_node("summarize", summarize)
    builder.add_node("human_review", human_review)
    builder.add_edge(START, "classify")
    builder.add_conditional_edges("classify", route, ["answer", "human_review"])
    builder.add_conditional_edges("answer", after_answer, ["summarize", END])
    builder.add_edge("summarize", END)
    builder.add_edge("human_review", END)
    return builder.compile(name="support")


def run_tickets(graph: Any, handler: Any, count: int, *, metadata: dict | None = None) -> int:
    """Run ``count`` tickets through ``graph`` traced by ``handler``; returns how many failed
    (a failing ticket raises inside the graph; the error is recorded, not re-raised)."""
    failed = 0
    for i in range(count):
        config = {"callbacks": [handler], "metadata": dict(metadata or {})}
        try:
            graph.invoke({"text": f"ticket {i}: my order is late"}, config)
        except (LookupFailed, UpstreamTimeout):
            failed += 1
    return failed


def record_drift(
    db_path: str, *, baseline: int = 300, recent: int = 100, seed: int = 0, **changes: Any
) -> datetime:
    """Record ``baseline`` stable tickets, then ``recent`` tickets with ``changes`` applied to
    the `Knobs` (e.g. ``review_rate=0.45``); returns the time the recent window starts."""
    from lc_observe.capture.handler import ObsHandler

    from .config import Queue

    knobs = Knobs(seed=seed)
    graph = build_graph(knobs)
    handler = ObsHandler(db_path, prices=PRICES, queue=Queue(handle_sigterm=False))
    try:
        run_tickets(graph, handler, baseline)
        handler.flush()
        time.sleep(0.01)
        split = datetime.now(timezone.utc)
        for name, value in changes.items():
            if not hasattr(knobs, name) or name == "rng":
                raise ValueError(f"Knobs has no field {name!r}; see lc_observe.demo_drift.Knobs")
            setattr(knobs, name, value)
        run_tickets(graph, handler, recent)
    finally:
        handler.close()
    return split


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lc_observe.demo_drift DB [--review-rate 0.45]``: record a baseline and a
    recent window with the router sending more tickets to human review."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("db")
    parser.add_argument("--review-rate", type=float, default=0.45)
    parser.add_argument("--baseline", type=int, default=300)
    parser.add_argument("--recent", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    split = record_drift(
        args.db,
        baseline=args.baseline,
        recent=args.recent,
        seed=args.seed,
        review_rate=args.review_rate,
    )
    print(f"recent window starts {split.isoformat()}; now try:")
    print(f"  lc-observe anomalies --db {args.db} --since {split.isoformat()} --baseline 1h")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
