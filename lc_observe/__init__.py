"""lc_observe: local-first observability for LangChain and LangGraph.

>>> from lc_observe import ObsHandler, TraceStore
>>> handler = ObsHandler("traces.db")                       # doctest: +SKIP
>>> graph.invoke(state, config={"callbacks": [handler]})   # doctest: +SKIP
>>> TraceStore("traces.db").print_trace(...)               # doctest: +SKIP
"""

from lc_observe.capture.budgets import Budget
from lc_observe.capture.handler import ObsHandler
from lc_observe.pipeline.serialize import Limits
from lc_observe.storage.store import TraceStore

from ._version import __version__
from .analysis.alerts import AlertRule, Webhook
from .analysis.anomalies import AnomalyConfig
from .config import OTLP, LangSmith, Privacy, Queue, Runs
from .errors import (
    AmbiguousIdError,
    BudgetExceededError,
    DatabaseLockedError,
    DatabaseNotFoundError,
    ForeignDatabaseError,
    LcObserveError,
    MissingApiKeyError,
    SchemaVersionError,
    StoreError,
    TraceNotFoundError,
)
from .model import (
    Alert,
    Anomaly,
    BranchEvent,
    BudgetExceeded,
    ErrorInfo,
    Score,
    ScoreStat,
    SearchHit,
    Span,
    StatRow,
    Trace,
)

__all__ = [
    "OTLP",
    "Alert",
    "AlertRule",
    "AmbiguousIdError",
    "Anomaly",
    "AnomalyConfig",
    "BranchEvent",
    "Budget",
    "BudgetExceeded",
    "BudgetExceededError",
    "DatabaseLockedError",
    "DatabaseNotFoundError",
    "ErrorInfo",
    "ForeignDatabaseError",
    "LangSmith",
    "LcObserveError",
    "Limits",
    "MissingApiKeyError",
    "ObsHandler",
    "Privacy",
    "Queue",
    "Runs",
    "SchemaVersionError",
    "Score",
    "ScoreStat",
    "SearchHit",
    "Span",
    "StatRow",
    "StoreError",
    "Trace",
    "TraceNotFoundError",
    "TraceStore",
    "Webhook",
    "__version__",
]
