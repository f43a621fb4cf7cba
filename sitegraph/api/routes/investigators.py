"""Investigators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from sitegraph.api.deps import ReaderDep
from sitegraph.api.errors import error_responses
from sitegraph.queries.profile import InvestigatorProfile, investigator_profile

router = APIRouter(prefix="/investigators", tags=["investigators"], responses=error_responses(422, 500, 503))


@router.get(
    "/{investigator_id}", response_model=InvestigatorProfile, summary="Investigator profile", responses=error_responses(404)
)
async def get_investigator(
    investigator_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=200,
            description="The investigator's id.",
            examples=["inv:alessandro-morabito"],
            openapi_examples={"an investigator": {"value": "inv:alessandro-morabito"}},
        ),
    ],
    read: ReaderDep,
) -> Response:
    """The investigator's sites, studies with roles, centrality and interaction count."""
    return await read.json(InvestigatorProfile, investigator_profile, investigator_id)
