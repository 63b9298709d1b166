"""A drift report as one self-contained HTML page: inline CSS and SVG, no scripts, no fetches.

The page has a summary line, one bar chart of every column's effect relative to its threshold
(a bar past the dashed line is over it; red bars drifted), a table of the statistics, and one
small histogram per column (reference grey, current blue: reference-quantile bins for numeric
columns, levels for categorical ones).
"""

from __future__ import annotations

import html
from typing import Any

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd}
th{text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.drift{color:#b00020;font-weight:600}.ok{color:#2e7d32}.grid{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ddd;padding:.5em;border-radius:4px}
"""


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and value != 0 and abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _effect_chart(columns: list[dict[str, Any]]) -> str:
    row, label_w, bar_w = 18, 180, 360
    height = row * len(columns) + 20
    parts = [f'<svg width="{label_w + bar_w + 80}" height="{height}" role="img">']
    scale = bar_w / 3  # 3× the threshold fills the bar area
    for i, col in enumerate(columns):
        y = i * row + 4
        ratio = (col["effect"] or 0.0) / col["threshold"] if col["threshold"] else 0.0
        width = min(ratio, 3.0) * scale
        color = "#b00020" if col["drift"] else "#90a4ae"
        name = html.escape(col["column"])
        parts.append(f'<text x="{label_w - 6}" y="{y + 11}" text-anchor="end">{name}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{row - 6}" fill="{color}">'
            f"<title>{name}: {html.escape(col['effect_name'])} {_num(col['effect'])}</title></rect>"
        )
        parts.append(f'<text x="{label_w + width + 4:.1f}" y="{y + 11}">{ratio:.2f}×</text>')
    x = label_w + scale
    parts.append(
        f'<line x1="{x}" y1="0" x2="{x}" y2="{height - 16}" stroke="#333" stroke-dasharray="4 3"/>'
    )
    parts.append(f'<text x="{x}" y="{height - 4}" text-anchor="middle">threshold</text></svg>')
    return "".join(parts)


def _histogram(col: dict[str, Any]) -> str:
    hist = col.get("histogram")
    if not hist:
        return "<p>no values</p>"
    ref, cur = hist["reference"], hist["current"]
    width, height, top = 300, 110, max(max(ref, default=0), max(cur, default=0)) or 1.0
    slot = width / max(len(ref), 1)
    parts = [f'<svg width="{width}" height="{height + 14}" role="img">']
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        label = hist["levels"][i] if "levels" in hist else f"bin {i + 1}"
        for j, (value, color) in enumerate(((r, "#b0bec5"), (c, "#1e88e5"))):
            h = value / top * height
            x = i * slot + j * slot / 2
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{max(slot / 2 - 1, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{color}"><title>{html.escape(label)}: '
                f"{'reference' if j == 0 else 'current'} {value:.3f}</title></rect>"
            )
    parts.append(f'<text x="0" y="{height + 12}" font-size="11">reference grey, current blue')
    parts.append("</text></svg>")
    return "".join(parts)


def _row(col: dict[str, Any]) -> str:
    verdict = '<span class="drift">drift</span>' if col["drift"] else '<span class="ok">ok</span>'
    power = "yes" if col["power_ok"] else "low"
    cells = [
        html.escape(col["column"]),
        col["kind"],
        col["test"],
        _num(col["statistic"]),
        _num(col["p_value"]),
        f"{html.escape(col['effect_name'])} {_num(col['effect'])}",
        _num(col["threshold"]),
        _num(col["psi"]),
        f"{power} (mde {_num(col['mde'])})",
        verdict,
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def drift_html(report: dict[str, Any], title: str = "Drift report") -> str:
    """The report of :func:`~learnloop.loop.drift.drift_report` as a standalone HTML page."""
    columns = list(report["columns"].values())
    verdict = "drift" if report["dataset_drift"] else "no drift"
    heads = ["column", "kind", "test", "statistic", "p-value", "effect", "threshold", "PSI"]
    heads += ["powered", "verdict"]
    cards = "".join(
        f'<div class="card"><b>{html.escape(c["column"])}</b><br>{_histogram(c)}</div>'
        for c in columns
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p><b>Dataset: {verdict}</b> — {report['n_drifted']} of {report['n_columns']} columns "
        f"drifted ({report['share_drifted']:.0%}; threshold "
        f"{report['config']['dataset_share']:.0%}). Reference {report['n_reference']:,} rows, "
        f"current {report['n_current']:,} rows; computed in {report['timings']['total_s']:.2f} s."
        f"</p><h2>Effect relative to threshold</h2>{_effect_chart(columns)}"
        "<p>A column drifts when its effect is at or over its threshold (or PSI over "
        f"{report['config']['psi_threshold']}) <i>and</i> its test's p-value is below "
        f"{report['config']['alpha']}.</p><h2>Columns</h2><table><tr>"
        + "".join(f"<th>{h}</th>" for h in heads)
        + "</tr>"
        + "".join(_row(c) for c in columns)
        + f"</table><h2>Distributions</h2><div class='grid'>{cards}</div></body></html>"
    )
