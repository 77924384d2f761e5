"""The kept runs over HTTP, from the store every worker shares:

- `GET /v1/transcripts`: the history, newest first, paged and filtered (preset, strategy,
  date, words, thread);
- `GET /v1/transcripts/{id}`: a run's whole transcript;
- `GET /v1/transcripts/{id}/receipt`: a receipt bundle binding that transcript's canonical
  sha256 to an attestation (none, simulated, or Confidential Space, by `CONCLAVE_ATTESTATION`),
  issued once and kept in the store;
- `GET /v1/transcripts/{id}/verification`: that receipt checked here against the kept
  transcript (what the page shows beside the download).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator, computed_field
from starlette.responses import Response

from conclave.attestation.keys import TrustAnchors
from conclave.attestation.policy import AttestationPolicy
from conclave.attestation.receipt_format import Receipt, ReceiptBundle, bundle_receipt
from conclave.attestation.receipts import (
    Attester,
    SimulatedAttester,
    issue_receipt,
    verify_receipt,
)
from conclave.attestation.verification_report import VerificationReport
from conclave.consensus.transcript import Transcript
from conclave.errors import AttestationError
from conclave.server.api_errors import ApiError, not_found
from conclave.server.responses import json_response
from conclave.server.runs import ConsensusService
from conclave.server.schemas import ErrorBody
from conclave.server.transcript_store import TranscriptStore
from conclave.store.history import RunPage, RunQuery


def _not_a_number(value: object) -> object:
    """Dates are ISO 8601 here; pydantic alone would take a number as a Unix time."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("expected a date such as 2026-11-27 or 2026-11-27T18:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]


class ReceiptDesk:
    """Issues a transcript's receipt once and keeps it in the store (one attestation per run,
    whichever worker is asked)."""

    def __init__(self, attester: Attester, store: TranscriptStore) -> None:
        self.attester = attester
        self._store = store

    async def receipt_for(self, transcript: Transcript) -> Receipt:
        receipt = await self._store.receipt(transcript.id)
        if receipt is None:
            receipt = await issue_receipt(transcript, self.attester)
            await self._store.keep_receipt(receipt)
        return receipt

    def verify(self, receipt: Receipt, transcript: Transcript) -> VerificationReport:
        """The receipt checked against the kept transcript, with the keys this service has
        (a simulated issuer's own; a Confidential Space token needs `conclave verify` with
        Google's keys, so its signature shows as not checked here)."""
        trust = TrustAnchors()
        policy = AttestationPolicy(audience=receipt.audience or "conclave-receipt")
        if isinstance(self.attester, SimulatedAttester):
            issuer = self.attester.issuer
            trust = TrustAnchors(jwks=issuer.jwks(), pki_root=issuer.root_certificate())
            policy = policy.model_copy(update={"allow_simulated": True})
        return verify_receipt(receipt, transcript, policy, trust, require_attestation=False)


class RunHistory(RunPage):
    """A page of kept runs (`runs`, newest first) and how many match in all (`total`)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def more(self) -> bool:
        """Whether a later page has more (ask again with `offset` + `limit`)."""
        return self.has_more


class ReceiptVerification(VerificationReport):
    """Every check of a run's receipt, and whether all held (`verified`)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verified(self) -> bool:
        return self.ok


def transcript_router(service: ConsensusService, desk: ReceiptDesk) -> APIRouter:
    router = APIRouter(prefix="/v1/transcripts", tags=["transcripts"])
    missing: dict[int | str, dict[str, object]] = {
        404: {"model": ErrorBody, "description": "No transcript of that id is kept"}
    }
    unavailable: dict[int | str, dict[str, object]] = {
        503: {"model": ErrorBody, "description": "The attestation could not be obtained"}
    }

    async def kept(transcript_id: str) -> Transcript:
        found = await service.store.get(transcript_id)
        if found is None:
            raise not_found(f"no transcript {transcript_id!r} is kept here")
        return found

    async def receipt_of(transcript: Transcript) -> Receipt:
        try:
            return await desk.receipt_for(transcript)
        except AttestationError as exc:
            raise ApiError(
                503, str(exc), type="server_error", code="attestation_unavailable"
            ) from None

    invalid: dict[int | str, dict[str, object]] = {
        400: {"model": ErrorBody, "description": "A query parameter is invalid (`param` names it)"}
    }

    @router.get(
        "", response_model=RunHistory, responses=invalid, summary="The kept runs, newest first"
    )
    async def history(
        preset: Annotated[str | None, Query(description="Only runs of this preset")] = None,
        strategy: Annotated[str | None, Query(description="Only runs of this strategy")] = None,
        since: Annotated[
            IsoDatetime | None, Query(description="Runs at or after (ISO 8601)")
        ] = None,
        until: Annotated[IsoDatetime | None, Query(description="Runs before (ISO 8601)")] = None,
        q: Annotated[
            str | None,
            Query(max_length=500, description="Words that must all appear (prompt or answer)"),
        ] = None,
        thread: Annotated[str | None, Query(description="Only the turns of this thread")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Every run kept (from any worker, the CLI included), paged, with a summary of each:
        its prompt, answer, preset, thread and turn, calls and failures, cost and time."""
        query = RunQuery(
            preset=preset,
            strategy=strategy,
            since=since,
            until=until,
            text=q,
            thread_id=thread,
            limit=limit,
            offset=offset,
        )
        page = await service.store.runs(query)
        return json_response(RunHistory.model_validate(page.model_dump()))

    @router.get(
        "/{transcript_id}",
        response_model=Transcript,
        responses=missing,
        summary="A run's transcript",
    )
    async def transcript(transcript_id: str) -> Response:
        """Every call of a kept run (answered or failed): messages, text, tokens, errors."""
        return json_response(await kept(transcript_id))

    @router.get(
        "/{transcript_id}/receipt",
        response_model=ReceiptBundle,
        responses={**missing, **unavailable},
        summary="A receipt for a run's transcript",
    )
    async def receipt(transcript_id: str) -> Response:
        """The receipt (transcript sha256, attestation token) with the transcript itself: the
        one file a third party needs, with the issuer's keys, to verify the run offline."""
        found = await kept(transcript_id)
        return json_response(bundle_receipt(await receipt_of(found), found))

    @router.get(
        "/{transcript_id}/verification",
        response_model=ReceiptVerification,
        responses={**missing, **unavailable},
        summary="A run's receipt, verified",
    )
    async def verification(transcript_id: str) -> Response:
        """The run's receipt checked against its kept transcript: the hash, and the token
        with the keys this service has. Third parties check the file with `conclave verify`."""
        found = await kept(transcript_id)
        report = desk.verify(await receipt_of(found), found)
        return json_response(ReceiptVerification.model_validate(report.model_dump()))

    return router
