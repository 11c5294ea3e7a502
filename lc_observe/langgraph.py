"""TEMPORARY STUB written by the lead so the handler imports; helper: overwrite this file freely."""
from typing import Any
def graph_fields(metadata):
    return metadata.get("langgraph_node"), metadata.get("langgraph_step"), metadata.get("langgraph_checkpoint_ns")
def span_status_for_error(exc):
    return "interrupted" if type(exc).__name__ in ("GraphInterrupt", "NodeInterrupt") else "error"
class GraphTracker:
    def register_graph(self, graph): pass
    def on_start(self, record): pass
    def on_end(self, record): return []
    def on_trace_end(self, trace_id): return []
