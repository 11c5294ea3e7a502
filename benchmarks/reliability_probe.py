"""Measure the nine reliability problems (issue 15) against a code tree.

    python benchmarks/reliability_probe.py TREE [p1 ... p9 p3b]

TREE is a checkout of lc_observe (put first on PYTHONPATH of each scenario subprocess).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

TREE = sys.argv[1]
ENV = {**os.environ, "PYTHONPATH": TREE}
TMP = tempfile.mkdtemp(prefix="nine-")


def py(code, *args, timeout=120, wait=True):
    script = os.path.join(TMP, f"s{time.monotonic_ns()}.py")
    with open(script, "w") as f:
        f.write(textwrap.dedent(code))
    cmd = [sys.executable, script, *args]
    if not wait:
        return subprocess.Popen(
            cmd, env=ENV, cwd=TMP, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(cmd, env=ENV, cwd=TMP, capture_output=True, text=True, timeout=timeout)


def p1():
    done = py(
        """
    import json, sqlite3, sys
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    from lc_observe.pipeline.redact import Redactor
    secrets = ["sk-proj-abcdefghijklmnopqrstuvwx0123", "hunter2pw", "s3cr3tvalue", "AKIAIOSFODNN7EXAMPLE",
               "ghp_" + "a" * 36, "Zq9token", "dXNlcjpodW50ZXIy", "Zq8dsnpw"]
    class Capture:
        items = []
        def export(self, b): Capture.items.extend(b); return len(b)
        def close(self): pass
    db = sys.argv[1]
    h = ObsHandler(db, sinks=[Capture()])
    payload = {"api_key": secrets[0], "secret_key": "hunter2pw", "Private-Key": "s3cr3tvalue",
               "note": "key:\\n" + secrets[0], "tab": "\\t" + secrets[3], "clientSecret": "s3cr3tvalue",
               "HF_TOKEN": secrets[4], "url": "https://x.io/?api_key=Zq9token", "auth": "Basic dXNlcjpodW50ZXIy",
               "dsn": "postgres://u:Zq8dsnpw@h/db", "lower": "bearer " + secrets[0]}
    RunnableLambda(lambda x: "ok", name="r").invoke(payload, {"callbacks": [h], "metadata": {"user_id": secrets[0]}})
    h.close()
    user = json.dumps(Capture.items, default=repr)
    private = sorted({k for _, r in Capture.items for k in r if k.startswith("_")})
    dump = "\\n".join(sqlite3.connect(db).iterdump())
    print(json.dumps({"user sink: secrets in clear": sum(s in user for s in secrets),
                      "user sink: private keys": private,
                      "sqlite: secrets in clear": sum(s in dump for s in secrets), "planted": len(secrets)}))
    """,
        os.path.join(TMP, "p1.db"),
    )
    return done.stdout.strip() or done.stderr[-500:]


def p2():
    out = {}
    done = py(
        """
    import os, sys
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    db = sys.argv[1]
    def fail(x): raise ValueError("x" * 5_000_000)
    chain = RunnableLambda(lambda x: x) | RunnableLambda(lambda x: x) | RunnableLambda(fail)
    with ObsHandler(db) as h:
        try: chain.invoke(1, {"callbacks": [h]})
        except ValueError: pass
    size = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
    print(f"{size/1e6:.1f} MB")
    """,
        os.path.join(TMP, "p2.db"),
    )
    out["5 MB error through a 3-run chain: file size"] = done.stdout.strip()
    done = py(
        """
    import time
    from lc_observe.pipeline.redact import Redactor
    r = Redactor()
    for kb in (32, 128):
        text = ("-----BEGIN RSA PRIVATE KEY-----" + "A" * 20) * (kb * 1024 // 51)
        t = time.perf_counter(); r.text(text); print(f"{kb} KB: {time.perf_counter()-t:.2f} s", end="; ")
    """,
        timeout=600,
    )
    out["PEM-header redaction time"] = done.stdout.strip()
    done = py(
        """
    import threading, time
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    import sys
    h = ObsHandler(sys.argv[1])
    longest = 0.0; stop = threading.Event()
    def loop():
        global longest
        last = time.perf_counter()
        while not stop.is_set():
            now = time.perf_counter(); longest = max(longest, now - last); last = now
    t = threading.Thread(target=loop); t.start()
    def fail(x): raise ValueError("-----BEGIN RSA PRIVATE KEY-----" * 12_000)
    try: RunnableLambda(fail).invoke(1, {"callbacks": [h]})
    except ValueError: pass
    start = time.perf_counter(); ok = h.flush(timeout=20); took = time.perf_counter() - start
    stop.set(); t.join()
    print(f"flush(timeout=20) returned {ok} after {took:.1f} s; longest app-thread stall {longest:.2f} s")
    """,
        os.path.join(TMP, "p2b.db"),
        timeout=600,
    )
    out["384 KB of PEM headers as an error message"] = done.stdout.strip() or done.stderr[-300:]
    return json.dumps(out)


def p3():
    proc = py(
        """
    import sys, time
    from concurrent.futures import ThreadPoolExecutor
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    h = ObsHandler(sys.argv[1])
    for i in range(10): RunnableLambda(lambda x: x).invoke(i, {"callbacks": [h]})
    ThreadPoolExecutor(1).submit(time.sleep, 30)
    print("ready", flush=True)
    """,
        os.path.join(TMP, "p3.db"),
        wait=False,
    )
    proc.stdout.readline()
    time.sleep(0.3)
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
    return f"ended {time.monotonic() - t:.1f} s after SIGTERM (task: 30 s), returncode {proc.returncode}"


def p3b():
    proc = py(
        """
    import sys, time
    from concurrent.futures import ThreadPoolExecutor
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    h = ObsHandler(sys.argv[1])
    for i in range(10): RunnableLambda(lambda x: x).invoke(i, {"callbacks": [h]})
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(time.sleep, 30) for _ in range(2)]  # parallel 30 s "nodes"
        print("ready", flush=True)
        for f in futures: f.result()
    """,
        os.path.join(TMP, "p3b.db"),
        wait=False,
    )
    proc.stdout.readline()
    time.sleep(0.3)
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
    import sqlite3

    n = (
        sqlite3.connect(os.path.join(TMP, "p3b.db"))
        .execute("select count(*) from spans")
        .fetchone()[0]
    )
    return f"main waiting on futures: ended {time.monotonic() - t:.1f} s after SIGTERM (tasks: 30 s), returncode {proc.returncode}, {n} of 10 spans stored"


def p4():
    db = os.path.join(TMP, "p4.db")
    proc = py(
        """
    import sys, time
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    from lc_observe.pipeline import processor as dispatch
    class Slow:
        said = False
        def export(self, b):
            if getattr(dispatch, "_exiting", False) or sys.is_finalizing() or not Slow.said and len(b) < 0: pass
            time.sleep(0.1); return len(b)
        def close(self): pass
    import atexit
    h = ObsHandler(sys.argv[1], sinks=[Slow()], queue=Queue(batch_size=100, schedule_delay=60, exit_timeout=60))
    atexit.register(lambda: print("exiting", flush=True))  # runs before lc_observe's exit flush
    for i in range(3000): RunnableLambda(lambda x: x).invoke(i, {"callbacks": [h]})
    """,
        db,
        wait=False,
    )
    proc.stdout.readline()
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    import sqlite3

    n = sqlite3.connect(db).execute("select count(*) from spans").fetchone()[0]
    return f"{n} of 3000 spans stored; returncode {proc.returncode}"


GRAPH = """
import sys
from typing import TypedDict
from langgraph.graph import END, START, StateGraph
from lc_observe import ObsHandler, Queue
class State(TypedDict):
    n: int
def route(s): return "a" if s["n"] % 2 else "b"
def build():
    g = StateGraph(State)
    g.add_node("s", lambda s: s); g.add_node("a", lambda s: s); g.add_node("b", lambda s: s)
    g.add_edge(START, "s"); g.add_conditional_edges("s", route, ["a", "b"]); g.add_edge("a", END); g.add_edge("b", END)
    return g.compile()
def work(args):
    db, n = args
    h = ObsHandler(db); g = build()
    for i in range(n): g.invoke({"n": i}, {"callbacks": [h]})
    return n
"""


def p5():
    out = {}
    for label, body in [
        (
            "fork Process x2, 200 invokes (branch events stored of 400)",
            "ps=[ctx.Process(target=work, args=((sys.argv[1], 200),)) for _ in range(2)]\n    [p.start() for p in ps]; [p.join() for p in ps]",
        ),
        (
            "ProcessPoolExecutor(fork), 200 invokes (branch events of 200)",
            "from concurrent.futures import ProcessPoolExecutor\n    with ProcessPoolExecutor(2, mp_context=ctx) as ex: list(ex.map(work, [(sys.argv[1], 50)] * 4))",
        ),
    ]:
        db = os.path.join(TMP, f"p5-{len(out)}.db")
        done = py(
            GRAPH
            + f"""
if __name__ == "__main__":
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    {body}
""",
            db,
        )
        import sqlite3

        try:
            n = sqlite3.connect(db).execute("select count(*) from branch_events").fetchone()[0]
        except Exception as exc:
            n = f"no table ({exc})"
        out[label] = n if done.returncode == 0 else done.stderr[-300:]
    return json.dumps(out)


def p6():
    db = os.path.join(TMP, "p6.db")
    done = py(
        GRAPH
        + """
import os
h = ObsHandler(sys.argv[1], queue=Queue(schedule_delay=60)); g = build()
for i in range(20): g.invoke({"n": i}, {"callbacks": [h]})
pid = os.fork()
if pid == 0:
    for i in range(10): g.invoke({"n": i}, {"callbacks": [h]})
    sys.exit(0)
os.waitpid(pid, 0)
""",
        db,
    )
    import sqlite3

    n = sqlite3.connect(db).execute("select count(*) from branch_events").fetchone()[0]
    return (
        f"{n} branch events stored for 30 decisions (20 parent + 10 child)"
        if done.returncode == 0
        else done.stderr[-300:]
    )


def p7():
    done = py(
        """
    import sys, threading, time
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, TraceStore, Queue
    db = sys.argv[1]
    h = ObsHandler(db, queue=Queue(batch_size=50, schedule_delay=0.01))
    c = RunnableLambda(lambda x: x)
    for i in range(3000): c.invoke(i, {"callbacks": [h]})
    h.flush(); stop = threading.Event()
    def app():
        while not stop.is_set(): c.invoke(0, {"callbacks": [h]}); time.sleep(0.001)
    t = threading.Thread(target=app); t.start()
    seen = []
    for tr in TraceStore(db):
        seen.append(tr.trace_id)
        if len(seen) % 100 == 0: time.sleep(0.05)
    stop.set(); t.join(); h.close()
    print(f"iter(store): {len(seen)} rows, {len(set(seen))} distinct (3000 traces before reading)")
    """,
        os.path.join(TMP, "p7.db"),
    )
    return done.stdout.strip() or done.stderr[-300:]


def p8():
    done = py("""
    import time
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    class Slow:
        def export(self, b): time.sleep(3600)  # a sink that hangs: nothing gets written
        def close(self): pass
    h = ObsHandler(None, sinks=[Slow()], queue=Queue(batch_size=100, exit_timeout=0.5))
    for i in range(5000): RunnableLambda(lambda x: x).invoke(i, {"callbacks": [h]})
    import logging; logging.basicConfig(level=logging.DEBUG)
    """)
    lines = [
        line
        for line in done.stderr.splitlines()
        if "lc_observe" in line and ("not written" in line or "lost" in line)
    ]
    return f"{len(lines)} log line(s) about the loss: {lines[:1]}"


def p9():
    db = os.path.join(TMP, "p9.db")
    py(
        """
    import sys
    from langchain_core.runnables import RunnableLambda
    from lc_observe import ObsHandler, Queue
    with ObsHandler(sys.argv[1]) as h: RunnableLambda(lambda x: x).invoke(1, {"callbacks": [h]})
    """,
        db,
    )
    import sqlite3
    import threading

    locked, release = threading.Event(), threading.Event()

    def hold():
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(60)
        conn.execute("COMMIT")

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    locked.wait()
    # a lock held 14 s: past the 10 s busy timeout of one attempt
    threading.Timer(14, release.set).start()
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "lc_observe.cli", "purge", "--db", db, "--older-than", "0s"],
        env=ENV,
        cwd=TMP,
        capture_output=True,
        text=True,
        timeout=200,
    )
    took = time.monotonic() - start
    t.join()
    err = done.stderr.strip().splitlines()
    return f"purge behind a 14 s lock: exit {done.returncode} after {took:.1f} s; stderr {len(err)} line(s): {err[-1][:160] if err else ''!r}; stdout {done.stdout.strip()[:80]!r}"


which = sys.argv[2:] or [f"p{i}" for i in range(1, 10)]
for name in which:
    started = time.monotonic()
    try:
        result = globals()[name]()
    except Exception as exc:
        result = f"failed: {exc!r}"
    print(f"{name} ({time.monotonic() - started:.0f} s): {result}", flush=True)
