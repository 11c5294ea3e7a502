"""Shared pieces of every HTML view: escaping, number formats, the stylesheet.

Every view is self-contained HTML + CSS: no script, no external resource, nothing
that needs a network.  All CSS is scoped under the ``lco`` class, so a view embedded in
a notebook or an exported page never restyles its host.

Every piece of user content goes through `esc` (text and attribute values alike).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

#: Characters of an input/output/metadata payload shown before it is cut.
PAYLOAD_CHARS = 4_000

KIND_COLORS: dict[str, str] = {
    "chain": "#54aeff",
    "chat_model": "#bf8700",
    "llm": "#bf8700",
    "tool": "#1a7f37",
    "retriever": "#8250df",
    "embedding": "#bc4c00",
    "prompt": "#8c959f",
    "parser": "#8c959f",
}
NODE_COLOR = "#0969da"
ERROR_COLOR = "#cf222e"
OTHER_COLOR = "#6e7781"


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML content and inside a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def kind_color(kind: str | None, *, is_node: bool = False) -> str:
    """The bar/badge colour of a span kind (graph nodes get their own)."""
    if is_node:
        return NODE_COLOR
    return KIND_COLORS.get(kind or "", OTHER_COLOR)


def fmt_ms(value: float | None) -> str:
    """``12.3 ms``, ``4.56 s``, or an en dash when unknown."""
    if value is None:
        return "–"
    if value < 1:
        return f"{value:.2f} ms"
    if value < 1_000:
        return f"{value:.1f} ms"
    if value < 60_000:
        return f"{value / 1000:.2f} s"
    return f"{value / 60_000:.1f} min"


def fmt_tokens(value: int | None) -> str:
    """``1,234 tok`` or an en dash."""
    return "–" if value is None else f"{value:,} tok"


def fmt_cost(value: float | None) -> str:
    """``$0.000123`` (six decimals under a cent) or an en dash when unknown (never 0)."""
    if value is None:
        return "–"
    return f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


def to_text(value: Any, limit: int = PAYLOAD_CHARS, *, compact: bool = False) -> str:
    """A payload as JSON (strings as they are), cut at ``limit`` characters.

    Indented, or on one line with ``compact=True``.
    """
    if isinstance(value, str):
        text = value
    else:
        try:
            indent = None if compact else 2
            text = json.dumps(value, indent=indent, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > limit:
        text = f"{text[:limit]}…[{len(text) - limit:,} more chars]"
    return text


def badge(text: str, css_class: str, title: str | None = None) -> str:
    """A small rounded label."""
    tip = f' title="{esc(title)}"' if title else ""
    return f'<span class="lco-badge {css_class}"{tip}>{esc(text)}</span>'


def kind_badge(kind: str) -> str:
    """The kind of a span as a coloured badge."""
    color = kind_color(kind)
    return (
        f'<span class="lco-badge lco-kind" style="border-color:{color};color:{color}">'
        f"{esc(kind)}</span>"
    )


def status_badge(status: str) -> str:
    """``ok`` / ``error`` / ``interrupted`` / ``running`` as a badge (errors in red)."""
    safe = status if status in ("ok", "error", "interrupted", "running") else "other"
    return badge(status, f"lco-status lco-s-{safe}")


def wrap(body: str, css_class: str = "") -> str:
    """``body`` inside the scoped root element, with the stylesheet and inline styles."""
    extra = f" {css_class}" if css_class else ""
    return inline(f'<div class="lco{extra}">') + STYLE + inline(body) + "</div>"


def page(body: str, title: str = "lc_observe") -> str:
    """A complete standalone HTML document around a view (for files and screenshots)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{margin:16px;background:#f6f8fa}</style></head>"
        f"<body>{body}</body></html>\n"
    )


class HTML:
    """A piece of HTML that notebooks display as HTML (and ``str()`` returns as text).

    >>> HTML("<b>hi</b>")._repr_html_()
    '<b>hi</b>'
    """

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return f"HTML({len(self.markup):,} chars)"


_MONO = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px"

#: The look of each class, written onto every element that has it (see `inline`): notebook
#: front ends that sanitize HTML (an untrusted notebook in JupyterLab) drop ``<style>``
#: but keep ``style`` attributes, so the views keep their layout there too.
INLINE: dict[str, str] = {
    "lco": (
        "font-family:-apple-system,BlinkMacSystemFont,Segoe UI,Roboto,Helvetica,Arial,"
        "sans-serif;font-size:13px;line-height:1.45;color:#1f2328;background:#fff;"
        "border:1px solid #d0d7de;border-radius:6px;padding:10px 12px;margin:4px 0;"
        "max-width:100%;overflow-x:auto;text-align:left"
    ),
    "lco-h": "margin:0 0 6px 0;padding:0;font-size:14px;font-weight:600;color:#1f2328",
    "lco-head": "margin:0 0 4px 0",
    "lco-hi": "display:inline-block;margin-right:12px",
    "lco-title": "font-size:15px;font-weight:600",
    "lco-sub": "color:#656d76;font-size:12px",
    "lco-mono": _MONO,
    "lco-badge": (
        "display:inline-block;padding:0 6px;margin:0 2px;border:1px solid #d0d7de;"
        "border-radius:10px;font-size:11px;line-height:16px;white-space:nowrap;"
        "background:#fff;vertical-align:1px"
    ),
    "lco-s-ok": "color:#1a7f37;border-color:#4ac26b",
    "lco-s-error": "color:#fff;background:#cf222e;border-color:#cf222e;font-weight:600",
    "lco-s-interrupted": "color:#9a6700;border-color:#d4a72c",
    "lco-s-running": "color:#8250df;border-color:#c297ff",
    "lco-s-other": "color:#656d76",
    "lco-row": "padding:1px 2px;border-radius:4px;cursor:pointer;white-space:nowrap",
    "lco-row-failed": "background:#ffebe9",
    "lco-name": "font-weight:600;margin-right:4px",
    "lco-node": "color:#0969da",
    "lco-step": "color:#656d76;font-size:11px;margin:0 4px;white-space:nowrap",
    "lco-metrics": "float:right;color:#424a53;font-size:12px;white-space:nowrap",
    "lco-m": "display:inline-block;width:6.4em;text-align:right;white-space:nowrap",
    "lco-model": (
        "width:9em;color:#656d76;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom"
    ),
    "lco-body": "margin-left:6px;padding-left:10px;border-left:1px dashed #d0d7de",
    "lco-error": (
        "background:#ffebe9;border-left:3px solid #cf222e;padding:4px 8px;margin:2px 0;"
        "color:#82071e;white-space:pre-wrap;word-break:break-word"
    ),
    "lco-decision": (
        "color:#6639ba;background:#fbefff;border-left:3px solid #8250df;padding:2px 8px;"
        "margin:2px 0;white-space:pre-wrap;word-break:break-word"
    ),
    "lco-decision-error": "background:#ffebe9;border-left-color:#cf222e;color:#82071e",
    "lco-payload": "margin:2px 0;color:#424a53",
    "lco-payload-summary": "font-size:11px;line-height:1.3;color:#656d76;cursor:pointer",
    # span details (views/payload.py): divs and spans only, so host stylesheets that
    # style dl/dt/dd/pre (JupyterLab output areas) have nothing to float or restyle
    "lco-span-detail": "margin:2px 0 4px 0;max-width:100%;overflow-wrap:anywhere",
    "lco-io": "display:block;margin:3px 0",
    "lco-io-label": (
        "display:block;color:#656d76;font-size:11px;font-weight:600;text-transform:uppercase;"
        "letter-spacing:.03em;margin:2px 0 1px 0"
    ),
    "lco-conv": "display:block;margin:0",
    "lco-msg": (
        "display:block;margin:2px 0;padding:2px 8px;border-left:3px solid #d0d7de;background:#fff"
    ),
    "lco-role": ("display:block;font-size:11px;font-weight:600;color:#424a53;margin:0 0 1px 0"),
    "lco-text": (
        "display:block;white-space:pre-wrap;word-break:break-word;overflow-wrap:anywhere;"
        "max-height:24em;overflow:auto;color:#1f2328"
    ),
    "lco-code": (
        f"display:block;margin:1px 0;padding:4px 6px;background:#f6f8fa;"
        f"border:1px solid #eaeef2;border-radius:4px;{_MONO};white-space:pre-wrap;"
        "word-break:break-word;overflow-wrap:anywhere;max-height:20em;overflow:auto;"
        "color:#1f2328;max-width:100%"
    ),
    "lco-call": (
        "display:block;margin:3px 0;padding:4px 8px;border:1px solid #d0d7de;"
        "border-radius:6px;background:#fff8f0;max-width:100%"
    ),
    "lco-call-name": "font-weight:600;color:#953800;margin-right:8px",
    "lco-call-id": f"color:#656d76;{_MONO};font-size:11px",
    "lco-call-result": "display:block;margin-top:3px;padding-top:3px;border-top:1px dashed #d0d7de",
    "lco-docs": "display:block;margin:2px 0",
    "lco-doc": (
        "display:block;margin:2px 0;padding:2px 8px;border-left:3px solid #8250df;"
        "background:#fbf8ff"
    ),
    "lco-doc-meta": f"display:block;color:#656d76;{_MONO};font-size:11px",
    "lco-vars": "display:block;margin:2px 0",
    "lco-var": "display:flex;gap:8px;margin:1px 0",
    "lco-var-k": "flex:0 0 auto;font-weight:600;color:#424a53",
    "lco-var-v": "flex:1 1 auto;white-space:pre-wrap;word-break:break-word;min-width:0",
    "lco-facts": (
        "display:grid;grid-template-columns:max-content minmax(0,1fr);column-gap:12px;"
        "font-size:12px;margin:3px 0"
    ),
    "lco-fact-k": "color:#656d76;font-weight:600",
    "lco-fact-v": "overflow-wrap:anywhere;min-width:0",
    "lco-preview": (
        "display:inline-block;max-width:40%;overflow:hidden;text-overflow:ellipsis;"
        "white-space:nowrap;vertical-align:bottom;color:#656d76;font-size:12px;margin-left:6px"
    ),
    "lco-section-summary": "font-weight:600;margin:8px 0 4px 0;cursor:pointer",
    "lco-wf-row": "display:flex;align-items:center;min-height:18px",
    "lco-wf-label": (
        "flex:0 0 30%;min-width:140px;white-space:nowrap;overflow:hidden;"
        "text-overflow:ellipsis;font-size:12px;padding-right:6px;box-sizing:border-box"
    ),
    "lco-track": (
        "flex:1 1 auto;position:relative;height:16px;background:#f6f8fa;border-radius:2px"
    ),
    "lco-axis": "flex:1 1 auto;position:relative;height:16px;font-size:11px;color:#656d76",
    "lco-tick": "position:absolute;top:0;white-space:nowrap",
    "lco-wf-ms": "flex:0 0 6.4em;text-align:right;font-size:12px;color:#424a53",
    "lco-bar": "position:absolute;top:3px;height:10px;border-radius:2px;min-width:2px",
    "lco-bar-error": "box-shadow:0 0 0 1px #82071e",
    "lco-bar-running": (
        "background-image:repeating-linear-gradient(45deg,rgba(255,255,255,.55) 0 3px,"
        "transparent 3px 6px)"
    ),
    "lco-mark": (
        "position:absolute;top:0;width:0;height:0;border-left:5px solid transparent;"
        "border-right:5px solid transparent;border-top:7px solid #8250df;margin-left:-5px"
    ),
    "lco-legend": "margin-top:4px;font-size:11px;color:#656d76",
    "lco-legend-item": "display:inline-block;margin-right:10px",
    "lco-key": (
        "display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:3px;"
        "vertical-align:-1px"
    ),
    "lco-more": "color:#656d76;font-size:12px;margin-top:4px",
    "lco-table": "border-collapse:collapse;margin:2px 0;font-size:12px;width:auto",
    "lco-th": (
        "text-align:left;padding:3px 8px;border:0;border-bottom:1px solid #d0d7de;"
        "font-weight:600;color:#424a53;white-space:nowrap;background:transparent"
    ),
    "lco-td": (
        "text-align:left;padding:3px 8px;border:0;border-bottom:1px solid #eaeef2;"
        "white-space:nowrap;max-width:32em;overflow:hidden;text-overflow:ellipsis;"
        "color:#1f2328;vertical-align:top;background:transparent"
    ),
    "lco-num": "text-align:right;font-variant-numeric:tabular-nums",
    "lco-row-error": "background:#ffebe9",
    # font-size 0: where a sanitizer drops the <svg>, its loose label text stays invisible
    "lco-graph": "overflow-x:auto;font-size:0;line-height:0",
}

#: What cannot be written inline: the disclosure markers, hover, the SVG's fit.
STYLE = """<style>
.lco *{box-sizing:border-box}
.lco details>summary{list-style:none;outline:none}
.lco details>summary::-webkit-details-marker{display:none}
.lco details>summary::before{content:"\\25B8";display:inline-block;width:12px;color:#6e7781}
.lco details[open]>summary::before{content:"\\25BE"}
.lco details.lco-leaf>summary::before{content:"\\2022";color:#d0d7de}
.lco .lco-row:hover,.lco .lco-wf-row:hover{background:#f6f8fa}
.lco .lco-row-failed:hover{background:#ffd8d3}
.lco .lco-table tr:hover td{background:#f6f8fa}
.lco .lco-table tbody tr:nth-child(odd){background:transparent}
.lco .lco-graph svg{max-width:100%;height:auto;display:block}
</style>"""

_START_TAG = re.compile(r"<([a-zA-Z][\w-]*)((?:\s+[\w:-]+(?:=\"[^\"]*\")?)*)\s*(/?)>")
_CLASS = re.compile(r'\sclass="([^"]*)"')
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')


def inline(markup: str) -> str:
    """Copy the `INLINE` declarations of each element's classes into its ``style``
    attribute (its own ``style`` comes last and wins).

    Only markup built by this package goes through here: user text is escaped, so it holds
    no ``<`` or ``"`` that could look like a tag or an attribute.
    """

    def fix(match: re.Match[str]) -> str:
        name, attrs, slash = match.groups()
        found = _CLASS.search(attrs)
        if not found:
            return match.group(0)
        declarations = [INLINE[c] for c in found.group(1).split() if c in INLINE]
        if not declarations:
            return match.group(0)
        own = _STYLE_ATTR.search(attrs)
        if own:
            attrs = attrs[: own.start()] + attrs[own.end() :]
            declarations.append(own.group(1))
        return f'<{name}{attrs} style="{";".join(declarations)}"{slash}>'

    return _START_TAG.sub(fix, markup)
