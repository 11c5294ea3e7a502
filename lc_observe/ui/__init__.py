"""``lc-observe ui``: a local trace browser and dashboard (the ``[ui]`` extra:
``pip install -e '.[ui]'`` in a checkout).

Pages (each with its JSON under ``/api``): traces (filter, search, sort, keyset pages),
one trace (errors first, branch decisions, tree, waterfall, conversation, scores; add a
score), the observed graph, stats over time, anomalies, and compare (two traces, two prompt
versions).

>>> from lc_observe.ui import create_app          # doctest: +SKIP
>>> app = create_app("lc_observe.db")             # any ASGI server  # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import sys
import threading
import webbrowser
from typing import Any


def _require() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ImportError(
            "lc-observe ui needs Starlette and uvicorn: pip install starlette uvicorn "
            "(the [ui] extra: pip install -e '.[ui]' in a checkout)"
        ) from None


def create_app(db_path: str, **kwargs: Any) -> Any:
    """The Starlette app over ``db_path`` (see `lc_observe.ui.app.create_app`)."""
    _require()
    from .app import create_app as create

    return create(db_path, **kwargs)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    db_path: str, *, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False
) -> None:
    """Serve the UI until Ctrl-C (uvicorn handles the signal and shuts down cleanly)."""
    _require()
    import uvicorn

    from .app import LOOPBACK_HOSTS
    from .app import create_app as create

    if not is_loopback(host):
        print(
            f"lc-observe ui: warning: serving on {host}, reachable from other machines; the "
            "pages show your prompts and outputs, with no login. Use --host 127.0.0.1 "
            "unless this network is trusted.",
            file=sys.stderr,
        )
    hosts = ["*"] if host in ("0.0.0.0", "::") else [*LOOPBACK_HOSTS, host]
    app = create(db_path, allowed_hosts=hosts)
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{port}/"
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print(f"lc-observe ui: {db_path} at {address} (Ctrl-C stops)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(address,)).start()
    try:
        server.run()  # returns, or re-raises the Ctrl-C once it has shut down
    finally:
        print("lc-observe ui: stopped", flush=True)
