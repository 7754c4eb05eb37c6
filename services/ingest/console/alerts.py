"""The alerts pages: `/alerts` (the list, filtered from its URL) and `/alerts/{id}` (one alert).

The pages carry only what the URL says; the alerts themselves come from the
JSON API in the browser (`GET /api/alerts`, `/api/alerts/{id}`,
`/api/notifications`), which narrows a `miner:<name>` key to its own miner's
alerts. Writes (resolve, silence) are the API's too, and refused there to a
key without the admin scope whatever the page shows.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import Depends, Path, Query, Request
from starlette.responses import Response

from services.ingest.console.access import Viewer, viewer
from services.ingest.console.render import render
from shared.events import MINER_PATTERN
from shared.http.auth import Scope
from shared.http.guard import guarded_router

router = guarded_router(include_in_schema=False)

STATUSES: Final = ("firing", "pending", "resolved")
SEVERITIES: Final = ("info", "warning", "error", "critical")
MAX_ALERT_ID: Final = 2**63 - 1

# "" is the form's "any": the filter form sends every field, chosen or not.
Status = Annotated[Literal["", "firing", "pending", "resolved"] | None, Query()]
Severity = Annotated[Literal["", "info", "warning", "error", "critical"] | None, Query()]
# Free text matched in the browser against names and labels: bounded like the API's names.
RuleText = Annotated[str | None, Query(max_length=200)]
LabelText = Annotated[str | None, Query(max_length=200)]
Fingerprint = Annotated[str | None, Query(max_length=200)]
MinerName = Annotated[str | None, Query(min_length=1, max_length=128, pattern=MINER_PATTERN)]
AlertId = Annotated[int, Path(ge=1, le=MAX_ALERT_ID)]


def _blank_to_none(text: str | None) -> str | None:
    # An empty form field arrives as `rule=`: the same as no filter at all.
    return text if text else None


@router.get("/alerts")
async def alerts_page(request: Request, status: Status = None, severity: Severity = None, rule: RuleText = None,
                      label: LabelText = None, fingerprint: Fingerprint = None, miner: MinerName = None,
                      who: Viewer = Depends(viewer(Scope.READ, miner=True))) -> Response:
    if miner is not None:
        who.ensure_miner(miner)
    filters = {"status": _blank_to_none(status), "severity": _blank_to_none(severity), "rule": _blank_to_none(rule),
               "label": _blank_to_none(label), "fingerprint": _blank_to_none(fingerprint),
               "miner": miner if miner is not None else who.miner}
    page = {"filters": filters, "live_miner": who.miner}
    return render(request, "alerts.html", who, {"filters": filters, "statuses": STATUSES,
                                                "severities": SEVERITIES, "page": page})


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: AlertId,
                     who: Viewer = Depends(viewer(Scope.READ, miner=True))) -> Response:
    can_write = who.miner is None and who.can(Scope.ADMIN)
    page = {"alert_id": alert_id, "can_write": can_write, "live_miner": who.miner}
    return render(request, "alert.html", who, {"alert_id": alert_id, "can_write": can_write, "page": page})
