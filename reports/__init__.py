"""reports: accepted rows and reference data in, underlag lines and workbooks out.

Never imports the ledger, Airflow or the web framework.
"""

from reports.underlag import (
    COMPONENT_LABELS,
    Component,
    UnderlagLine,
    contact_points,
    first_visits,
    listing_counts,
    listing_points,
    points_of,
    rattelse_line,
    reh_underlag,
    reh_visits,
    round_ore,
    total,
    underlag_for,
    vgp_underlag,
    vgp_visits,
)

__all__ = [
    "COMPONENT_LABELS",
    "Component",
    "UnderlagLine",
    "contact_points",
    "first_visits",
    "listing_counts",
    "listing_points",
    "points_of",
    "rattelse_line",
    "reh_underlag",
    "reh_visits",
    "round_ore",
    "total",
    "underlag_for",
    "vgp_underlag",
    "vgp_visits",
]
