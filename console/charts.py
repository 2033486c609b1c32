"""Plotly trends for the KPI pages and the monthly report, drawn offline.

The console serves Plotly's own script from the plotly wheel (`PLOTLY_JS`, at /static/plotly.min.js);
the report inlines it, so the file opens anywhere without a network. Plotly draws from floats:
the floats here are for the picture only, and the hover text shows the mart's DECIMAL as text.
The x axis is the list of months that exist (a category axis), so it starts at the first month
with data rather than at some calendar origin.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import plotly
import plotly.graph_objects as go

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def shown(value, kind: str) -> str:
    """The text a person reads for a value (from its Decimal): money, a percentage, or the number."""
    if value is None:
        return "—"
    if kind == "money":
        return f"${Decimal(value):,.2f}"
    if kind == "rate":
        return f"{(Decimal(value) * 100).quantize(Decimal('0.01'))} %"
    return f"{value:,}" if isinstance(value, int) else str(value)


def trend_html(name: str, months: list[date], values: list, kind: str, include_js: bool = False) -> str:
    """A small line chart of one KPI over the months, as an HTML fragment (no script tag for Plotly itself
    unless `include_js`: the page loads it once)."""
    labels = [m.strftime("%Y-%m") for m in months]
    ys = [None if v is None else float(v) * (100 if kind == "rate" else 1) for v in values]  # drawing only
    figure = go.Figure(go.Scatter(x=labels, y=ys, mode="lines+markers", text=[shown(v, kind) for v in values],
                                  hovertemplate="%{x}: %{text}<extra></extra>", connectgaps=False))
    figure.update_layout(height=180, margin=dict(l=40, r=10, t=10, b=30), showlegend=False,
                         xaxis=dict(type="category", title=None), yaxis=dict(title="%" if kind == "rate" else None,
                                                                             rangemode="tozero"),
                         template="plotly_white")
    return figure.to_html(full_html=False, include_plotlyjs=include_js, div_id=f"chart-{name}",
                          config={"displayModeBar": False, "responsive": True})
