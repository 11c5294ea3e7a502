"""Analysis of stored traces: evaluation (heuristics, LLM judges), comparison of groups
(prompt versions ...), the difference between two traces, anomalies (what changed and what
got worse) and alerts.

Dependencies point one way: views -> analysis -> storage (`TraceStore`) -> model.
The public entry points are `lc_observe.evaluate`, `TraceStore.compare` / `.diff` /
`.anomalies` and `ObsHandler(alerts=...)`.
"""
