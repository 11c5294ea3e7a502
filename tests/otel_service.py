"""A small HTTP service for the cross-service tests, run as its own process.

``python -m tests.otel_service DB PORT_FILE``: serves ``POST /ask`` on 127.0.0.1 (the
port is written to PORT_FILE).  Each request runs in an OpenTelemetry server span that
continues the caller's ``traceparent`` (W3C propagation, as an instrumented web framework
does), and, when the request carries LangSmith's ``langsmith-trace`` header, inside
``langsmith.tracing_context(parent=headers)``; a LangChain chain then runs there with
this process's own `ObsHandler` (its own database, exporting to ``OTLP_URL``).  The reply
is JSON: the answer and the server span's ids.  ``POST /stop`` ends it.
"""

from __future__ import annotations

import json
import sys
import threading
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableLambda
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider

from lc_observe import OTLP, ObsHandler


def main(db: str, port_file: str, otlp_url: str) -> None:
    tracer = TracerProvider().get_tracer("otel_service")
    obs = ObsHandler(db, sinks=[OTLP(otlp_url, timeout=30)])
    chain = RunnableLambda(lambda q: f"answer to {q}", name="answer") | RunnableLambda(
        lambda a: a.upper(), name="shout"
    )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if self.path == "/stop":
                self._reply({"stopped": True})
                threading.Thread(target=server.shutdown).start()
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            context = propagate.extract(headers)
            with tracer.start_as_current_span(
                "POST /ask", context=context, kind=trace.SpanKind.SERVER
            ) as span:
                if "langsmith-trace" in headers:
                    from langsmith.run_helpers import tracing_context

                    scope: Any = tracing_context(parent=headers)
                else:
                    scope = nullcontext()
                with scope:
                    answer = chain.invoke(body["question"], {"callbacks": [obs]})
                ids = span.get_span_context()
            obs.flush(30)
            self._reply(
                {
                    "answer": answer,
                    "server_trace_id": f"{ids.trace_id:032x}",
                    "server_span_id": f"{ids.span_id:016x}",
                }
            )

        def _reply(self, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    try:
        server.serve_forever()
    finally:
        obs.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
