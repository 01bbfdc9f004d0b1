"""The live dashboard: `data.DashboardData` (paginated chain queries -> JSON) and its page.

The page (`page.html`) is one self-contained file, its CSS and JS inline, so
it works with no internet: it only fetches the gateway's `/dashboard/api/*`
and draws its price chart as inline SVG.
"""

from __future__ import annotations

from importlib import resources


def page() -> str:
    """The dashboard's HTML, read from the package."""
    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
