"""The ``lc-observe`` command line: ``demo``, ``traces``, ``show``, ``branches``, ``paths``,
``stats``, ``anomalies``, ``alerts``, ``metrics`` (Prometheus), ``ui`` (web pages),
``budgets``, ``scores``, ``score``, ``compare``, ``diff``, ``purge``, ``push`` (to
LangSmith) and ``export`` (JSON lines, OpenTelemetry).

Every command takes ``--db`` (default ``$LC_OBSERVE_DB`` or ``./lc_observe.db``) and
``--json`` for output a script can read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from lc_observe.storage.ids import short_id
from lc_observe.storage.store import TraceStore
from lc_observe.views.tree import describe_branch, format_conversation

from . import __version__
from .checks import KINDS, STATUSES
from .conversation import cut
from .errors import LcObserveError
from .times import to_datetime


def _default_db() -> str:
    return os.environ.get("LC_OBSERVE_DB", "lc_observe.db")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _width() -> int:
    """The terminal's width (100 when not a terminal)."""
    return shutil.get_terminal_size((100, 24)).columns


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    left: int = 1,
    drop: Sequence[str] = (),
    flex: str | None = None,
    width: int | None = None,
) -> None:
    """Print a table that fits ``width`` (the terminal's): the first ``left`` columns
    left-aligned, the others right; the ``drop`` columns (least needed first) are left
    out while it does not fit, then the ``flex`` column is cut.  Says what it left out."""
    width = width or _width()
    columns = list(headers)
    widths = {h: max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)}

    def total() -> int:
        return sum(widths[h] for h in columns) + 2 * (len(columns) - 1)

    hidden = []
    for name in drop:
        if total() <= width:
            break
        if name in columns:
            columns.remove(name)
            hidden.append(name)
    if flex in columns and total() > width:
        widths[flex] = max(len(flex), 8, widths[flex] - (total() - width))
    index = {h: i for i, h in enumerate(headers)}
    for cells in [list(headers), *rows]:
        out = []
        for h in columns:
            text = cut(cells[index[h]], widths[h])
            out.append(text.ljust(widths[h]) if index[h] < left else text.rjust(widths[h]))
        print("  ".join(out).rstrip())
    if hidden:
        print(f"({', '.join(hidden)} left out to fit {width} columns; --json has everything)")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    trace_ids = run_demo(args.db)
    with TraceStore(args.db) as store:
        if args.json:
            _print_json([store.trace(t).model_dump(mode="json") for t in trace_ids])
            return 0
        for trace_id in trace_ids:
            store.print_trace(trace_id)
            print()
    print(f"Traced {len(trace_ids)} runs of the demo agent into {args.db}")
    return 0


def cmd_traces(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        traces = store.traces(
            limit=args.limit,
            name=args.name,
            status=args.status,
            user_id=args.user_id,
            session_id=args.session_id,
            tag=args.tag,
            since=args.since,
            until=args.until,
            has_errors=True if args.errors else None,
        )
        if args.json:
            _print_json([t.model_dump(mode="json") for t in traces])
            return 0
        if not traces:
            print("(no traces)")
            return 0
        rows = [
            [
                short_id(t.trace_id),
                t.start_time.strftime("%Y-%m-%d %H:%M:%S"),
                t.name,
                t.status,
                str(t.error_count) if t.error_count else "-",
                "-" if t.latency_ms is None else f"{t.latency_ms:.1f} ms",
                str(t.span_count),
                "-" if t.total_tokens is None else str(t.total_tokens),
                "-" if t.cost_usd is None else f"{t.cost_usd:.6f}",
            ]
            for t in traces
        ]
        headers = ["id", "start (UTC)", "name", "status", "errors", "latency", "spans"]
        print_table(
            [*headers, "tokens", "cost $"],
            rows,
            left=4,
            drop=("spans", "cost $", "tokens"),
            flex="name",
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        trace_id = store.resolve_trace_id(args.trace_id)
        if args.json:
            _print_json(
                {
                    "spans": [s.model_dump(mode="json") for s in store.spans(trace_id=trace_id)],
                    "branches": [
                        b.model_dump(mode="json") for b in store.branches(trace_id=trace_id)
                    ],
                    "scores": [s.model_dump(mode="json") for s in store.scores(trace_id)],
                }
            )
            return 0
        print(store.format_trace(trace_id, width=_width()))
        print()
        print(format_conversation(store.spans(trace_id=trace_id), full=args.full))
        for score in store.scores(trace_id):
            on = "" if score.span_id is None else f" (span {short_id(score.span_id)})"
            print(
                f"score {score.name} = {_score_value_text(score.value)}  [{score.source}]{on}"
                + (f"  {score.comment}" if score.comment else "")
            )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        order = "newest" if args.newest else "rank"
        hits = store.search(
            args.text, since=args.since, kind=args.kind, limit=args.limit, order=order
        )
    if args.json:
        _print_json([hit.model_dump(mode="json") for hit in hits])
        return 0
    if not hits:
        print(f"(no span matches {args.text!r})")
        return 0
    rows = [
        [
            short_id(h.trace_id),
            short_id(h.span_id),
            h.start_time.strftime("%Y-%m-%d %H:%M"),
            h.name,
            h.kind,
            h.field,
            " ".join(h.snippet.split()),
        ]
        for h in hits
    ]
    headers = ["trace", "span", "start (UTC)", "name", "kind", "field", "match"]
    print_table(headers, rows, left=7, drop=("span", "start (UTC)"), flex="match")
    return 0


def cmd_branches(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        if args.trace_id:
            events = store.branches(trace_id=args.trace_id)
            if args.json:
                _print_json([e.model_dump(mode="json") for e in events])
                return 0
            for event in events:
                print(f"step {event.step}  {describe_branch(event)}")
            if not events:
                print("(no branch decisions in this trace)")
            return 0
        stats = store.branch_stats(source=args.source, since=args.since)
        if args.json:
            _print_json([s.model_dump(mode="json") for s in stats])
            return 0
        print(
            f"{'source':<24}  {'destination':<24}  {'count':>7}  {'tasks':>7}  "
            f"{'decisions':>9}  {'rate':>6}"
        )
        for stat in stats:
            print(
                f"{stat.source or '?':<24}  {stat.destination or '(unknown)':<24}  "
                f"{stat.count:>7}  {stat.tasks:>7}  {stat.decisions:>9}  {stat.rate:>6.1%}"
            )
        if not stats:
            print("(no branch decisions)")
    return 0


def cmd_paths(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        paths = store.paths(name=args.name, since=args.since)[: args.limit]
    if args.json:
        _print_json([{"path": list(path), "count": count} for path, count in paths])
        return 0
    total = sum(count for _, count in paths) or 1
    for path, count in paths:
        print(f"{count:>6}  {count / total:>6.1%}  {' -> '.join(path)}")
    if not paths:
        print("(no LangGraph traces)")
    return 0


#: ``stats`` table: (header, StatRow field, format).
_STATS_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("count", "count", "{:,}"),
    ("errors", "error_rate", "{:.1%}"),
    ("p50 ms", "latency_p50_ms", "{:,.1f}"),
    ("p95 ms", "latency_p95_ms", "{:,.1f}"),
    ("p99 ms", "latency_p99_ms", "{:,.1f}"),
    ("ttft p95", "ttft_p95_ms", "{:,.1f}"),
    ("tok/s", "tokens_per_s", "{:,.0f}"),
    ("in tok", "input_tokens", "{:,}"),
    ("out tok", "output_tokens", "{:,}"),
    ("cached", "cached_tokens", "{:,}"),
    ("reason", "reasoning_tokens", "{:,}"),
    ("cost $", "cost_usd", "{:.6f}"),
    ("cache hits", "cache_hit_rate", "{:.0%}"),
)


def _stats_cells(row: Any) -> list[str]:
    cells = [str(row.group) if row.group is not None else "(none)"]
    for _, field, fmt in _STATS_COLUMNS:
        value = getattr(row, field)
        cells.append("-" if value is None else fmt.format(value))
    return cells


def print_stats_table(rows: Sequence[Any], by: str) -> None:
    """Print `TraceStore.stats` rows as a table that fits the terminal (`print_table`)."""
    headers = [by] + [header for header, _, _ in _STATS_COLUMNS]
    body = [_stats_cells(row) for row in rows]
    drop = ("reason", "cached", "cache hits", "tok/s", "ttft p95", "p99 ms", "p50 ms")
    print_table(headers, body, drop=drop, flex=by)


def cmd_stats(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        rows = store.stats(by=args.by, since=args.since, until=args.until)
    if args.json:
        _print_json([row.model_dump(mode="json") for row in rows])
        return 0
    if not rows:
        print("(nothing recorded in this time window)")
        return 0
    print_stats_table(rows, args.by)
    scored = [row for row in rows if row.scores]
    if scored:
        print("mean scores (booleans: pass rate; n in brackets):")
        for row in scored:
            means = ", ".join(
                f"{name} {mean:.3g} [{row.score_counts[name]}]" for name, mean in row.scores.items()
            )
            print(f"  {row.group if row.group is not None else '(none)'}: {means}")
    return 0


def cmd_budgets(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        events = store.budget_events(since=_since(args.since))
    if args.json:
        _print_json([event.model_dump(mode="json") for event in events])
        return 0
    for event in events:
        unit = "$" if event.metric == "cost_usd" else "tokens "
        print(
            f"{event.time:%Y-%m-%d %H:%M:%S}  {event.budget}  {event.per}={event.scope}  "
            f"spent {unit}{event.spent:.6g} of {unit}{event.limit_value:.6g}  "
            f"[{event.action}]  trace {event.trace_id}"
        )
    if not events:
        print("(no budget used up)")
    return 0


def _score_value_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cmd_scores(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        if args.trace_id or args.list:
            trace_id = store.resolve_trace_id(args.trace_id) if args.trace_id else None
            scores = store.scores(
                trace_id,
                name=args.name,
                source=args.source,
                since=_since(args.since),
                limit=args.limit,
            )
            if args.json:
                _print_json([score.model_dump(mode="json") for score in scores])
                return 0
            for score in scores:
                note = score.comment or ""
                if score.error:
                    note = f"malformed: {score.error.get('message', '')}"
                print(
                    f"{score.time:%Y-%m-%d %H:%M:%S}  {score.trace_id[:8]}  "
                    f"{score.name:<16} {_score_value_text(score.value):>8}  {score.source:<9} "
                    f"{(score.author or '-'):<14} {note[:60]}"
                )
            if not scores:
                print("(no scores)")
            return 0
        summary = store.score_stats(name=args.name, source=args.source, since=_since(args.since))
    if args.json:
        _print_json([row.model_dump(mode="json") for row in summary])
        return 0
    if not summary:
        print("(no scores)")
        return 0
    width = max(4, *(len(row.name) for row in summary))
    header = f"{'name':<{width}} {'source':<9} {'type':<11} {'count':>6} {'traces':>6} "
    print(header + f"{'mean':>7} {'min':>7} {'max':>7} {'malformed':>9}  categories")
    for row in summary:
        cells = [_score_value_text(v) for v in (row.mean, row.min, row.max)]
        labels = ", ".join(f"{k}: {v}" for k, v in list(row.labels.items())[:4])
        print(
            f"{row.name:<{width}} {row.source:<9} {row.value_type[:11]:<11} {row.count:>6} "
            f"{row.traces:>6} {cells[0]:>7} {cells[1]:>7} {cells[2]:>7} {row.malformed:>9}  "
            f"{labels}"
        )
    return 0


def _parse_score_value(text: str) -> bool | float | str:
    """A score given on the command line: true/false, a number, or a category."""
    from lc_observe.storage.scores import parse_score_text

    return parse_score_text(text)


def cmd_score(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        trace_id = store.resolve_trace_id(args.trace_id)
        score = store.add_score(
            trace_id,
            args.name,
            _parse_score_value(args.value),
            comment=args.comment,
            source=args.source,
            author=args.author,
        )
    if args.json:
        _print_json(score.model_dump(mode="json"))
    else:
        print(f"Scored trace {trace_id}: {score.name} = {_score_value_text(score.value)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        comparison = store.compare(
            args.by, args.a, args.b, since=_since(args.since), alpha=args.alpha
        )
    if args.json:
        _print_json(comparison.model_dump(mode="json"))
    else:
        print(comparison)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        result = store.diff(args.trace_a, args.trace_b)  # both resolved by the store
    if args.json:
        _print_json(result.model_dump(mode="json"))
    else:
        print(result)
    return 0


def cmd_anomalies(args: argparse.Namespace) -> int:
    from .analysis.anomalies import AnomalyConfig

    settings: dict[str, Any] = {}
    for item in args.set or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE (e.g. --set token_ratio=2), not {item!r}")
        settings[key.strip().replace("-", "_")] = value.strip()
    if "kinds" in settings:
        settings["kinds"] = tuple(k.strip() for k in settings["kinds"].split(","))
    try:
        config = AnomalyConfig(**settings)
    except Exception as exc:  # pydantic's message names the field and what it expects
        raise ValueError(f"bad --set value: {exc}") from None
    with TraceStore(args.db) as store:
        found = store.anomalies(
            since=_since(args.since),
            until=_since(args.until),
            baseline=args.baseline,
            by=args.by,
            config=config,
        )
    if args.json:
        _print_json([anomaly.model_dump(mode="json") for anomaly in found])
        return 0
    for anomaly in found:
        examples = ", ".join(anomaly.trace_ids)
        print(f"{anomaly.kind:<20}  {anomaly.explanation}")
        if examples:
            print(f"{'':<20}  e.g. traces {examples}")
    if not found:
        print(
            f"(no anomalies: the recent window {args.since} looks like the {args.baseline} before)"
        )
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from .sinks.prometheus import serve_file

    TraceStore(args.db).close()  # a clear error for a missing or foreign file, before serving
    try:
        server, thread = serve_file(args.db, port=args.port, addr=args.addr)
    except OSError as exc:
        raise ValueError(
            f"cannot serve on {args.addr}:{args.port}: {exc}; pick a free port with --port"
        ) from None
    host, port = server.server_address[:2]
    print(f"Serving Prometheus metrics of {args.db} at http://{host}:{port}/metrics", flush=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from .ui import serve

    TraceStore(args.db, read_only=True).close()  # a clear error for a missing or old file
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops on Ctrl-C itself; not twice
        serve(args.db, host=args.host, port=args.port, open_browser=args.open)
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    with TraceStore(args.db) as store:
        alerts = store.alerts(rule=args.rule, since=_since(args.since))
    if args.json:
        _print_json([alert.model_dump(mode="json") for alert in alerts])
        return 0
    for alert in alerts:
        print(f"{alert.time:%Y-%m-%d %H:%M:%S}  {alert.message}  [{', '.join(alert.actions)}]")
    if not alerts:
        print("(no alerts fired)")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    with TraceStore(args.db, busy_timeout=args.busy_timeout) as store:
        deleted = store.purge(to_datetime(args.older_than), vacuum=args.vacuum)
    if args.json:
        _print_json({"deleted_traces": deleted})
    else:
        print(f"Deleted {deleted} traces older than {args.older_than} from {args.db}")
    return 0


def _since(text: str | None) -> Any:
    """``--since``/``--until``: an age like ``30d`` / ``12h`` or an ISO time, read by
    `lc_observe.times` (checked here so a typo fails before any work)."""
    return None if text is None else to_datetime(text)


def cmd_push(args: argparse.Namespace) -> int:
    from lc_observe.export.push import push_traces

    with TraceStore(args.db) as store:
        trace_id = None if args.trace is None else store.resolve_trace_id(args.trace)
    result = push_traces(
        args.db,
        project_name=args.project,
        since=_since(args.since),
        trace_id=trace_id,
        force=args.force,
        busy_timeout=args.busy_timeout,
    )
    if args.json:
        _print_json(result.__dict__)
    else:
        print(
            f"Pushed {len(result.pushed)} traces ({result.runs} runs) to {result.destination}; "
            f"{len(result.skipped)} pushed before (skipped), {len(result.failed)} failed"
        )
    return 1 if result.failed else 0


def _headers(pairs: list[str]) -> dict[str, str]:
    """``--header NAME=VALUE`` (repeatable) as a dict; a malformed one names the fix."""
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(
                f"--header {pair!r} is not NAME=VALUE (e.g. --header x-mlflow-experiment-id=0)"
            )
        headers[name.strip()] = value.strip()
    return headers


def cmd_export(args: argparse.Namespace) -> int:
    from lc_observe.export.exporters import DEFAULT_EXPORT_TIMEOUT, export_jsonl, export_otlp

    with TraceStore(args.db) as store:
        trace_id = None if args.trace is None else store.resolve_trace_id(args.trace)
    since = _since(args.since)
    if args.otlp is None and (args.header or args.timeout is not None):
        raise ValueError("--header and --timeout go with --otlp URL")
    if args.jsonl is not None:
        count = export_jsonl(args.db, args.jsonl, since=since, trace_id=trace_id)
        if args.jsonl == "-":
            return 0  # stdout holds the JSON lines themselves
        if args.json:
            _print_json({"spans": count, "file": args.jsonl})
        else:
            print(f"Wrote {count} spans to {args.jsonl}", file=sys.stderr)
        return 0
    headers = _headers(args.header) if args.header else None
    timeout = args.timeout if args.timeout is not None else DEFAULT_EXPORT_TIMEOUT
    result = export_otlp(
        args.db, args.otlp, since=since, trace_id=trace_id, headers=headers, timeout=timeout
    )
    if args.json:
        _print_json(result.__dict__)
    else:
        print(f"Exported {result.sent} spans to {args.otlp}; {result.failed} failed")
    return 1 if result.failed else 0


def _grouping(text: str) -> str:
    """``--by``: a stats grouping (``metadata.KEY`` included), checked up front."""
    from lc_observe.storage.stats import check_group

    try:
        check_group(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="lc-observe",
        description="Local-first traces of LangChain and LangGraph runs.  Times (--since, "
        "--until) are ages like 1d, 2h, 30m or ISO times; trace ids may be any unique "
        "piece of an id, such as the short ids `traces` prints.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--db", default=_default_db(), help="SQLite file (default %(default)s)"
        )
        command.add_argument("--json", action="store_true", help="print JSON instead of text")
        command.add_argument(
            "--busy-timeout",
            type=float,
            default=10.0,
            metavar="SECONDS",
            help="how long each write waits for another writer's lock before it retries "
            "(default %(default)s)",
        )
        return command

    add("demo", "run the demo LangGraph agent (fake model), trace it and print the trees")
    traces = add("traces", "list recent traces, newest first")
    traces.add_argument("--limit", type=int, default=20, help="at most N traces (default 20)")
    traces.add_argument("--name", help="only traces whose root run has this name")
    traces.add_argument("--status", choices=STATUSES, help="only traces whose root run ended so")
    traces.add_argument(
        "--errors", action="store_true", help="only traces in which any span failed"
    )
    traces.add_argument("--user-id", help="only traces of this user (metadata user_id)")
    traces.add_argument("--session-id", help="only traces of this session (metadata session_id)")
    traces.add_argument("--tag", help="only traces whose root run has this tag")
    traces.add_argument("--since", help="only traces started since an age (1d) or ISO time")
    traces.add_argument("--until", help="only traces started before an age ago or ISO time")
    show = add("show", "print the span tree of one trace, then its conversation")
    show.add_argument("trace_id", help="a trace id or any unique piece of one")
    show.add_argument(
        "--full", action="store_true", help="print every message in full (default: cut)"
    )
    search = add("search", "find spans by what was said: names, inputs, outputs, errors")
    search.add_argument("text", help='words that must all appear; "a phrase"; prefix*')
    search.add_argument("--since", help="only spans started since an age (7d) or ISO time")
    search.add_argument("--kind", choices=KINDS, help="only spans of this run type")
    search.add_argument("--limit", type=int, default=20, help="at most N hits (default 20)")
    search.add_argument(
        "--newest",
        action="store_true",
        help="most recently written first instead of best match first (faster on big files)",
    )
    branches = add("branches", "branch decisions of one trace, or rates per source/destination")
    branches.add_argument("trace_id", nargs="?", help="a trace id or piece (omit for rates)")
    branches.add_argument("--source", help="only decisions taken at this node")
    branches.add_argument("--since", help="only decisions since an age (1d) or ISO time")
    paths = add("paths", "the most frequent LangGraph node paths, with counts")
    paths.add_argument("--name", help="only traces of this graph (root run name)")
    paths.add_argument("--since", help="only traces since an age (1d) or ISO time")
    paths.add_argument("--limit", type=int, default=20, help="at most N paths (default 20)")
    stats = add("stats", "latency percentiles, TTFT, tokens, cost and cache hits per group")
    stats.add_argument(
        "--by",
        default="model",
        type=_grouping,
        help="model, name, kind, graph_node, user_id, session_id, tag or metadata.KEY",
    )
    stats.add_argument("--since", help="only runs started since an ISO time or an age (1d)")
    stats.add_argument("--until", help="only runs started before an ISO time or an age ago")
    scores = add("scores", "scores per name and source, or the scores of one trace")
    scores.add_argument("trace_id", nargs="?", help="a trace id or prefix: list its scores")
    scores.add_argument("--name", help="only scores with this name")
    scores.add_argument(
        "--source", choices=("human", "judge", "heuristic", "feedback"), help="only this source"
    )
    scores.add_argument("--since", help="only scores given since an ISO time or an age (7d)")
    scores.add_argument("--list", action="store_true", help="list scores instead of a summary")
    scores.add_argument("--limit", type=int, default=None, help="list at most N scores")
    score = add("score", "attach a score to a trace (true/false, a number, or a category)")
    score.add_argument("trace_id", help="a trace id or a unique prefix of one")
    score.add_argument("name", help="the score's name, e.g. helpful")
    score.add_argument("value", help="true, false, a number, or a category like 'good'")
    score.add_argument("--comment", help="a note kept with the score")
    score.add_argument(
        "--source",
        default="human",
        choices=("human", "judge", "heuristic", "feedback"),
        help="who scored (default human)",
    )
    score.add_argument("--author", help="the scorer's name")
    compare = add("compare", "two groups of traces side by side, with significance")
    compare.add_argument("a", help="the first group's value, e.g. v1")
    compare.add_argument("b", help="the second group's value, e.g. v2")
    compare.add_argument(
        "--by", required=True, help="metadata.KEY, tag, name, user_id, session_id or graph_name"
    )
    compare.add_argument("--since", help="only traces started since an ISO time or an age")
    compare.add_argument("--alpha", type=float, default=0.05, help="significance level")
    diff = add("diff", "what differs between two traces (path, decisions, spans, outputs)")
    diff.add_argument("trace_a", help="a trace id or prefix")
    diff.add_argument("trace_b", help="a trace id or prefix")
    anomalies = add("anomalies", "what changed and got worse: recent window vs the one before")
    anomalies.add_argument("--since", default="1h", help="recent window start: age or ISO (1h)")
    anomalies.add_argument("--until", help="recent window end: age ago or ISO (default now)")
    anomalies.add_argument("--baseline", default="7d", help="baseline length before --since (7d)")
    anomalies.add_argument(
        "--by", default="name", help="name, model, graph_node or metadata.<key> (default name)"
    )
    anomalies.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a threshold of AnomalyConfig, e.g. --set min_samples=50 --set token_ratio=2",
    )
    alerts = add("alerts", "alerts that fired (ObsHandler(alerts=...)), oldest first")
    alerts.add_argument("--rule", help="only this rule's alerts")
    alerts.add_argument("--since", help="only alerts since an ISO time or an age (1d)")
    metrics = add("metrics", "serve Prometheus /metrics from the SQLite file (read-only)")
    metrics.add_argument("--port", type=int, default=9464, help="port (default %(default)s)")
    metrics.add_argument("--addr", default="127.0.0.1", help="address (default %(default)s)")
    ui = add("ui", "browse traces, graph, stats, anomalies in a local web page (needs [ui])")
    ui.add_argument("--host", default="127.0.0.1", help="address (default %(default)s)")
    ui.add_argument("--port", type=int, default=8765, help="port (default %(default)s)")
    ui.add_argument("--open", action="store_true", help="open the page in the web browser")
    budgets = add("budgets", "budgets used up (Budget events), oldest first")
    budgets.add_argument("--since", help="only events since an ISO time or an age (7d)")
    purge = add("purge", "delete traces older than an age (retention)")
    purge.add_argument("--older-than", required=True, help="age like 30d, 12h, 90m")
    purge.add_argument("--vacuum", action="store_true", help="shrink the file afterwards")
    push = add("push", "upload finished traces to LangSmith (skips traces pushed before)")
    push.add_argument("--since", help="only traces started since an ISO time or an age (30d)")
    push.add_argument("--trace", help="only this trace (an id or a unique prefix of one)")
    push.add_argument("--project", help="LangSmith project (default $LANGSMITH_PROJECT)")
    push.add_argument("--force", action="store_true", help="push traces pushed before again")
    export = add("export", "export finished traces as JSON lines or to an OpenTelemetry collector")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--jsonl", metavar="FILE", help="one JSON object per span ('-': stdout)")
    target.add_argument("--otlp", metavar="URL", help="an OTLP/HTTP collector (needs [otlp])")
    export.add_argument("--since", help="only traces started since an ISO time or an age (30d)")
    export.add_argument("--trace", help="only this trace (an id or a unique prefix of one)")
    export.add_argument(
        "--header",
        action="append",
        metavar="NAME=VALUE",
        help="an HTTP header of every OTLP request, e.g. an API key or "
        "x-mlflow-experiment-id=0 (repeatable)",
    )
    export.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds one OTLP request may take, retries included (default 30: a cold "
        "server can take several seconds to answer its first request)",
    )
    return parser


COMMANDS = {
    "demo": cmd_demo,
    "traces": cmd_traces,
    "show": cmd_show,
    "search": cmd_search,
    "branches": cmd_branches,
    "paths": cmd_paths,
    "stats": cmd_stats,
    "anomalies": cmd_anomalies,
    "alerts": cmd_alerts,
    "metrics": cmd_metrics,
    "ui": cmd_ui,
    "budgets": cmd_budgets,
    "scores": cmd_scores,
    "score": cmd_score,
    "compare": cmd_compare,
    "diff": cmd_diff,
    "purge": cmd_purge,
    "push": cmd_push,
    "export": cmd_export,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lc-observe`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `lc-observe export --jsonl - | head`: the reader is gone
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no error when Python flushes stdout at exit
        return 0
    except LcObserveError as exc:
        print(f"lc-observe: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:  # one line, never a traceback
        print(f"lc-observe: SQLite error on {args.db}: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, ImportError) as exc:
        print(f"lc-observe: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
