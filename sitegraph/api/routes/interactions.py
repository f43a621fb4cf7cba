"""Interactions: log one (authenticated), read one back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response

from sitegraph.api.deps import ApiKeyDep, StoreDep
from sitegraph.api.errors import error_responses
from sitegraph.api.record import log_interaction, read_interaction
from sitegraph.api.schemas import InteractionCreate, InteractionRecord

router = APIRouter(prefix="/interactions", tags=["interactions"], responses=error_responses(422, 500, 503))

_EXAMPLES = {
    "call": {
        "summary": "A call about a stalled budget negotiation",
        "value": {
            "site_id": "site:massachusetts-general-hospital-boston-massachusetts-unitedstates",
            "channel": "call",
            "occurred_at": "2025-03-14T15:30:00Z",
            "note": "Budget negotiation stalled again; the PI is frustrated with the delay.",
        },
    },
    "tactic": {
        "summary": "An email that applied a tactic",
        "value": {
            "site_id": "site:massachusetts-general-hospital-boston-massachusetts-unitedstates",
            "channel": "email",
            "occurred_at": "2025-03-15T09:00:00+01:00",
            "note": "Sent a fair-market-value budget benchmark to unblock the budget talks.",
            "tactic_id": "fair-market-value-budget",
            "outcome": "pending",
        },
    },
}


@router.post(
    "",
    response_model=InteractionRecord,
    status_code=201,
    summary="Log an interaction",
    responses=error_responses(400, 401, 413),
)
def create_interaction(
    body: Annotated[InteractionCreate, Body(openapi_examples=_EXAMPLES)],
    key: ApiKeyDep,
    store: StoreDep,
    request: Request,
    response: Response,
) -> InteractionRecord:
    """Validate (every referenced id must exist, else 422 naming the field), tag the note with barrier
    concepts, score its sentiment, store it durably and return the stored record with a generated id.

    Needs `Authorization: Bearer <key>` or `X-API-Key: <key>` with a key from `SITEGRAPH_API_KEYS`;
    without a valid key: 401 and nothing is stored. With no keys configured the endpoint answers 503.
    """
    record = log_interaction(store, body, recorded_by=key)
    response.headers["Location"] = f"/interactions/{record.id}"
    precomputer = getattr(request.app.state, "precomputer", None)
    if precomputer is not None:  # the answers of the new data version: computed ahead from now on
        precomputer.nudge()
    return record


@router.get("/{interaction_id}", response_model=InteractionRecord, summary="One interaction", responses=error_responses(404))
def get_interaction(
    interaction_id: Annotated[str, Path(min_length=1, max_length=200, description="The interaction's id.")],
    store: StoreDep,
) -> InteractionRecord:
    """An interaction as stored, with its tags and sentiment."""
    return read_interaction(store, interaction_id)
