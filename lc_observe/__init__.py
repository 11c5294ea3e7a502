"""lc_observe: local-first observability for LangChain and LangGraph.

>>> from lc_observe import ObsHandler, TraceStore
>>> handler = ObsHandler("traces.db")                       # doctest: +SKIP
>>> graph.invoke(state, config={"callbacks": [handler]})   # doctest: +SKIP
>>> TraceStore("traces.db").print_trace(...)               # doctest: +SKIP
"""

from .analysis.alerts import AlertRule, Webhook
from .analysis.anomalies import AnomalyConfig
from .budgets import Budget
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

__version__ = "0.1.0"

__all__ = [
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
    "LcObserveError",
    "Limits",
    "MissingApiKeyError",
    "ObsHandler",
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
