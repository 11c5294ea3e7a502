"""The same tool-calling agent in Phoenix and MLflow: lc_observe's OTLP export vs
OpenInference's LangChain instrumentor, field by field.

Runs the test agent (tests/otel_agent.py: create_agent, two tools, a retriever, a failing
tool call) once through ``ObsHandler(sinks=[OTLP(...)])`` and once through
``openinference.instrumentation.langchain.LangChainInstrumentor``, into the same Phoenix
(projects ``lc_observe`` / ``openinference``) and the same MLflow server (one experiment
each), then prints a Markdown table per backend of what each span kind shows.  Starts
both servers on 127.0.0.1 unless ``--phoenix`` / ``--mlflow`` name running ones.

    PYTHONPATH=. python scripts/otel_side_by_side.py [--phoenix URL] [--mlflow URL]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tests.backends import phoenix_graphql, start_mlflow, start_phoenix, wait_until
from tests.otel_agent import run_agent

KINDS = ("agent root", "graph node", "chat model", "tool", "retriever", "failed tool")


def _kind_of(name: str, is_root: bool, error: bool, kind: str) -> str:
    if is_root:
        return "agent root"
    if kind in ("LLM", "CHAT_MODEL"):
        return "chat model"
    if kind in ("TOOL",):
        return "failed tool" if error else "tool"
    if kind == "RETRIEVER":
        return "retriever"
    return "graph node"


def run_lc_observe(phoenix: str, mlflow: str, experiment: str, project: str, workdir: Path) -> None:
    from lc_observe import OTLP, ObsHandler

    os.environ["OTEL_RESOURCE_ATTRIBUTES"] = f"openinference.project.name={project}"
    with ObsHandler(workdir / "p.db", sinks=[OTLP(phoenix, timeout=60)]) as obs:
        run_agent(obs, user="ann")
    os.environ["OTEL_EXPORTER_OTLP_TRACES_HEADERS"] = f"x-mlflow-experiment-id={experiment}"
    try:
        with ObsHandler(workdir / "m.db", sinks=[OTLP(mlflow, timeout=60)]) as obs:
            run_agent(obs, user="ann")
    finally:
        del os.environ["OTEL_EXPORTER_OTLP_TRACES_HEADERS"]


def run_openinference(phoenix: str, mlflow: str, experiment: str, project: str) -> None:
    from openinference.instrumentation.langchain import LangChainInstrumentor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource({"service.name": "openinference", "openinference.project.name": project})
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=phoenix + "/v1/traces"))
    )
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=mlflow + "/v1/traces",
                headers={"x-mlflow-experiment-id": experiment},
                timeout=60,
            )
        )
    )
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        from langchain_core.callbacks import BaseCallbackHandler

        run_agent(BaseCallbackHandler(), user="ann")  # traced by the instrumentor alone
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def phoenix_table(url: str, projects: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    """project -> span kind -> field -> what Phoenix shows (first span of that kind)."""
    from phoenix.client import Client

    client = Client(base_url=url)
    costs = {}
    data = phoenix_graphql(
        url,
        "{ projects { edges { node { name spans(first: 1000) { edges { node "
        "{ context { spanId } costSummary { total { cost } } } } } } } } }",
    )
    for project in data["projects"]["edges"]:
        for edge in project["node"]["spans"]["edges"]:
            summary = edge["node"]["costSummary"]
            costs[edge["node"]["context"]["spanId"]] = summary and summary["total"]["cost"]
    table: dict[str, dict[str, dict[str, str]]] = {}
    for label, project in projects.items():
        frame = wait_until(
            lambda p=project: (
                f if len(f := client.spans.get_spans_dataframe(project_identifier=p)) else None
            ),
            timeout=120,
        )
        shown: dict[str, dict[str, str]] = {}
        frame = frame.assign(_failed=frame["status_code"] == "ERROR").sort_values("_failed")
        for span_id, row in frame.iterrows():
            kind = _kind_of(
                row["name"],
                row["parent_id"] is None or row["parent_id"] != row["parent_id"],
                row["status_code"] == "ERROR",
                row["span_kind"],
            )
            if kind in shown or (kind == "agent root" and row["status_code"] == "ERROR"):
                continue

            def get(key: str, row: Any = row) -> Any:
                value = row.get(f"attributes.{key}")
                return None if isinstance(value, float) and value != value else value

            messages = get("llm.input_messages")
            out = get("llm.output_messages")
            calls = sum(len(m.get("message.tool_calls") or []) for m in out or [])
            docs = get("retrieval.documents")
            shown[kind] = {
                "name": row["name"],
                "span kind": row["span_kind"],
                "status": row["status_code"],
                "input": _short(get("input.value")),
                "output": _short(get("output.value")),
                "messages in/out": f"{len(messages or [])}/{len(out or [])}" if messages else "-",
                "tool calls shown": str(calls) if out else "-",
                "tokens in/out": (
                    f"{_int(get('llm.token_count.prompt'))}/"
                    f"{_int(get('llm.token_count.completion'))}"
                ),
                "model": str(get("llm.model_name") or "-"),
                "cost (Phoenix)": f"{costs.get(span_id):.2e}" if costs.get(span_id) else "-",
                "documents": str(len(docs)) if docs else "-",
                "tool name/id": f"{get('tool.name') or '-'} / {get('tool.id') or '-'}",
                "session / user": f"{get('session.id') or '-'} / {get('user.id') or '-'}",
                "exception event": "yes"
                if any(e["name"] == "exception" for e in row["events"])
                else "-",
            }
        table[label] = shown
    return table


def mlflow_table(url: str, experiments: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    import mlflow

    mlflow.set_tracking_uri(url)
    table: dict[str, dict[str, dict[str, str]]] = {}
    for label, experiment in experiments.items():
        traces = wait_until(
            lambda e=experiment: mlflow.search_traces(locations=[e], return_type="list") or None,
            timeout=120,
        )
        shown: dict[str, dict[str, str]] = {}
        for trace in sorted(traces, key=lambda t: t.info.state != "OK"):
            meta = trace.info.trace_metadata
            spans = sorted(trace.data.spans, key=lambda s: s.status.status_code.value == "ERROR")
            for span in spans:
                error = span.status.status_code.value == "ERROR"
                kind = _kind_of(span.name, span.parent_id is None, error, span.span_type)
                if kind in shown or (kind == "agent root" and error):
                    continue
                usage = span.attributes.get("mlflow.chat.tokenUsage") or {}
                cost = span.attributes.get("mlflow.llm.cost") or {}
                shown[kind] = {
                    "name": span.name,
                    "span type": str(span.span_type),
                    "status": span.status.status_code.value,
                    "inputs": _short(span.inputs),
                    "outputs": _short(span.outputs),
                    "tokens in/out": (
                        f"{usage.get('input_tokens', '-')}/{usage.get('output_tokens', '-')}"
                    ),
                    "model": str(span.attributes.get("mlflow.llm.model") or "-"),
                    "cost (MLflow)": f"{cost['total_cost']:.2e}" if cost else "-",
                    "trace session / user": (
                        f"{meta.get('mlflow.trace.session', '-')} / "
                        f"{meta.get('mlflow.trace.user', '-')}"
                        if span.parent_id is None
                        else ""
                    ),
                    "request/response preview": (
                        ("yes" if trace.info.request_preview else "None")
                        + " / "
                        + ("yes" if trace.info.response_preview else "None")
                        if span.parent_id is None
                        else ""
                    ),
                    "exception event": "yes"
                    if any(e.name == "exception" for e in span.events)
                    else "-",
                }
        table[label] = shown
    return table


def _short(value: Any, width: int = 40) -> str:
    if value is None:
        return "None"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _int(value: Any) -> str:
    return "-" if value is None else str(int(value))


def markdown(title: str, table: dict[str, dict[str, dict[str, str]]]) -> str:
    lines = [f"### {title}", ""]
    for kind in KINDS:
        rows = {label: shown.get(kind, {}) for label, shown in table.items()}
        fields = list(dict.fromkeys(f for r in rows.values() for f in r))
        if not fields:
            continue
        lines += [
            f"**{kind}**",
            "",
            "| field | " + " | ".join(rows) + " |",
            "|---" * (len(rows) + 1) + "|",
        ]
        for field in fields:
            lines.append(
                f"| {field} | " + " | ".join(r.get(field, "") or "" for r in rows.values()) + " |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phoenix", help="a running Phoenix (default: start one)")
    parser.add_argument("--mlflow", help="a running MLflow tracking server (default: start one)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="side_by_side_"))
    servers = []
    phoenix, mlflow_url = args.phoenix, args.mlflow
    if phoenix is None:
        (workdir / "phoenix").mkdir()
        servers.append(start_phoenix(workdir / "phoenix"))
        phoenix = servers[-1].url
    if mlflow_url is None:
        (workdir / "mlflow").mkdir()
        servers.append(start_mlflow(workdir / "mlflow"))
        mlflow_url = servers[-1].url
    try:
        from mlflow import MlflowClient

        client = MlflowClient(mlflow_url)
        suffix = os.urandom(3).hex()
        experiments = {
            "lc_observe": client.create_experiment(f"lc_observe-{suffix}"),
            "openinference": client.create_experiment(f"openinference-{suffix}"),
        }
        projects = {label: f"{label}-{suffix}" for label in experiments}
        run_openinference(
            phoenix, mlflow_url, experiments["openinference"], projects["openinference"]
        )
        run_lc_observe(
            phoenix, mlflow_url, experiments["lc_observe"], projects["lc_observe"], workdir
        )
        print(markdown("Phoenix", phoenix_table(phoenix, projects)))
        print(markdown("MLflow", mlflow_table(mlflow_url, experiments)))
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
