"""Load time of the `lc-observe ui` traces page on a 1M-span database, as a ratio to 10k spans.

The databases are `query.py`'s (synthetic but realistic: 20 spans per trace over 7 days, 50
users, two models, 3% failed traces; raw ``executemany`` into the schema `ensure_schema`
creates).  Each page is requested through Starlette's TestClient, so a figure is the whole
request: the read-only store opened, the query, the HTML rendered.  Sizes are interleaved
round by round; the median is printed with the ratio of the largest size to the smallest.

    python benchmarks/ui.py                      # 10k and 1M spans
    python benchmarks/ui.py --sizes 10k,100k     # quicker
    python benchmarks/ui.py --keep /tmp/uibench  # keep (and reuse) the databases

Search (``TraceStore.search``: the ``/api/search`` endpoint and the traces page with a
query) is timed too.

The schema indexes the start time (and user, session), and since version 8 the sort keys
(latency, cost, tokens), so every page here is an index range scan.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

from _common import median, print_table
from query import build_db
from starlette.testclient import TestClient

from lc_observe.ui import create_app

PAGES: dict[str, str] = {
    "traces: first page": "/traces",
    "traces: errors, by latency": "/traces?errors=1&sort=latency",
    "traces: one user, by cost": "/traces?user=user-7&sort=cost",
    "traces: one model": "/traces?model=claude-3-5-haiku",
    "traces: 5 days ago": "/traces?since=5d",
    "api: by tokens, ascending": "/api/traces?sort=tokens&order=asc",
}


def size_arg(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


def page_after(client: TestClient, query: str, pages: int) -> str:
    """The traces page ``pages + 1`` of ``query``, reached by following the next cursors."""
    cursor = ""
    for _ in range(pages):
        body = client.get(f"/api/traces?{query}{cursor}").json()
        cursor = f"&after={body['next']}"
    return f"/traces?{query}{cursor}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,1M", help="span counts (default 10k,1M)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--keep", metavar="DIR", help="build into (and reuse from) DIR")
    args = parser.parse_args()
    sizes = [size_arg(s) for s in args.sizes.split(",")]
    tmp = None if args.keep else tempfile.TemporaryDirectory()
    directory = args.keep or tmp.name  # type: ignore[union-attr]
    os.makedirs(directory, exist_ok=True)
    clients: dict[int, TestClient] = {}
    try:
        print("building databases (benchmarks/query.py's build_db)")
        for size in sizes:
            path = os.path.join(directory, f"query-{size}.db")
            if not os.path.exists(path):
                begin = time.perf_counter()
                build_db(path, size)
                print(f"  {size:>9,} spans: {time.perf_counter() - begin:.1f} s")
            else:
                print(f"  {size:>9,} spans: reusing {path}")
            clients[size] = TestClient(create_app(path), base_url="http://127.0.0.1")
        pages: dict[str, Callable[[TestClient], str]] = {
            name: (lambda client, url=url: url) for name, url in PAGES.items()
        }
        pages["traces: page 6 by latency"] = lambda c: page_after(c, "sort=latency", 5)
        pages["trace page (newest trace)"] = lambda c: (
            "/traces/" + c.get("/api/traces?limit=1").json()["traces"][0]["trace_id"]
        )
        pages["search: 'Lisbon'"] = lambda c: "/api/search?q=Lisbon"
        pages["traces page with search"] = lambda c: "/traces?q=Lisbon"
        urls = {(size, name): make(clients[size]) for size in sizes for name, make in pages.items()}
        times: dict[tuple[int, str], list[float]] = {}
        for round_index in range(args.rounds):
            for size in sorted(sizes, reverse=bool(round_index % 2)):
                for name in pages:
                    begin = time.perf_counter()
                    response = clients[size].get(urls[(size, name)])
                    elapsed = time.perf_counter() - begin
                    assert response.status_code == 200, (name, response.text[:300])
                    if round_index:  # the first round warms the page cache
                        times.setdefault((size, name), []).append(elapsed)
        small, large = min(sizes), max(sizes)
        print(f"\nmedian ms per request ({args.rounds - 1} rounds after a warm-up, in-process)\n")
        rows = []
        for name in pages:
            medians = [median(times[(size, name)]) * 1e3 for size in sizes]
            ratio = median(times[(large, name)]) / median(times[(small, name)])
            rows.append([name, *(f"{m:.1f}" for m in medians), f"{ratio:.2f}x"])
        print_table(["page", *(f"{s:,} spans" for s in sizes), f"{large:,}/{small:,}"], rows)
    finally:
        for client in clients.values():
            client.close()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
