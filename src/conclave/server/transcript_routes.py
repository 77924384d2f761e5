"""`GET /v1/transcripts/{id}`: a recent run's whole transcript; and
`GET /v1/transcripts/{id}/receipt`: a receipt bundle binding that transcript's canonical
sha256 to an attestation (none, simulated, or Confidential Space, by `CONCLAVE_ATTESTATION`).
"""

from __future__ import annotations

from collections import OrderedDict

from fastapi import APIRouter
from starlette.responses import Response

from conclave.attestation.receipts import (
    Attester,
    Receipt,
    ReceiptBundle,
    bundle_receipt,
    issue_receipt,
)
from conclave.consensus.transcript import Transcript
from conclave.errors import AttestationError
from conclave.server.api_errors import ApiError, not_found
from conclave.server.responses import json_response
from conclave.server.runs import ConsensusService
from conclave.server.schemas import ErrorBody


class ReceiptDesk:
    """Issues a transcript's receipt once and keeps it (one attestation per transcript)."""

    def __init__(self, attester: Attester, capacity: int) -> None:
        self.attester = attester
        self._capacity = capacity
        self._receipts: OrderedDict[str, Receipt] = OrderedDict()

    async def receipt_for(self, transcript: Transcript) -> Receipt:
        receipt = self._receipts.get(transcript.id)
        if receipt is None:
            receipt = await issue_receipt(transcript, self.attester)
            self._receipts[transcript.id] = receipt
            while len(self._receipts) > self._capacity:
                self._receipts.popitem(last=False)
        return receipt


def transcript_router(service: ConsensusService, desk: ReceiptDesk) -> APIRouter:
    router = APIRouter(prefix="/v1/transcripts", tags=["transcripts"])
    missing: dict[int | str, dict[str, object]] = {
        404: {"model": ErrorBody, "description": "No transcript of that id is kept"}
    }

    async def kept(transcript_id: str) -> Transcript:
        found = await service.store.get(transcript_id)
        if found is None:
            raise not_found(f"no transcript {transcript_id!r} is kept here")
        return found

    @router.get(
        "/{transcript_id}",
        response_model=Transcript,
        responses=missing,
        summary="A run's transcript",
    )
    async def transcript(transcript_id: str) -> Response:
        """Every call of a recent run (answered or failed): messages, text, tokens, errors."""
        return json_response(await kept(transcript_id))

    @router.get(
        "/{transcript_id}/receipt",
        response_model=ReceiptBundle,
        responses={
            **missing,
            503: {"model": ErrorBody, "description": "The attestation could not be obtained"},
        },
        summary="A receipt for a run's transcript",
    )
    async def receipt(transcript_id: str) -> Response:
        """The receipt (transcript sha256, attestation token) with the transcript itself: the
        one file a third party needs, with the issuer's keys, to verify the run offline."""
        found = await kept(transcript_id)
        try:
            issued = await desk.receipt_for(found)
        except AttestationError as exc:
            raise ApiError(
                503, str(exc), type="server_error", code="attestation_unavailable"
            ) from None
        return json_response(bundle_receipt(issued, found))

    return router
