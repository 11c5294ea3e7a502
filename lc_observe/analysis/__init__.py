"""Analysis of stored traces: evaluation (heuristics, LLM judges), comparison of groups
(prompt versions ...) and the difference between two traces.

Dependencies point one way: views -> analysis -> storage (`TraceStore`) -> model.
The public entry points are `lc_observe.evaluate` and `TraceStore.compare` / `.diff`.
"""
