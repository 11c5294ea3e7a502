"""Capture: the LangChain callback handler and what it reads off the framework.

`handler` (the ``on_*`` callbacks, open runs, roll-ups), `langgraph` and `langgraph_hook`
(nodes, steps, routing decisions), `usage` and `pricing` (tokens and cost), `budgets`.
Capture knows no sink: it hands plain records (`lc_observe.records`) to the pipeline.
"""
