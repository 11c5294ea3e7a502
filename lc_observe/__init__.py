"""lc_observe: local-first observability for LangChain and LangGraph.

>>> from lc_observe import ObsHandler, TraceStore
>>> handler = ObsHandler("traces.db")                       # doctest: +SKIP
>>> graph.invoke(state, config={"callbacks": [handler]})   # doctest: +SKIP
>>> TraceStore("traces.db").print_trace(...)               # doctest: +SKIP
"""

from ._version import __version__
from .analysis.alerts import AlertRule, Webhook
from .analysis.anomalies import AnomalyConfig
from .budgets import Budget
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
from .handler import ObsHandler
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
from .serialize import Limits
from .store import TraceStore

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
