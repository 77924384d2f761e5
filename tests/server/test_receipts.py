"""`GET /v1/transcripts/{id}/receipt`: a receipt bundle a third party can verify offline."""

from __future__ import annotations

import httpx2

from conclave.attestation import (
    AttestationPolicy,
    ReceiptBundle,
    SimulatedAttester,
    SimulatedIssuer,
    TrustAnchors,
    transcript_sha256,
    verify_receipt,
)

from .conftest import Served, ServeFactory

CHAT = {"model": "default", "messages": [{"role": "user", "content": "Capital of France?"}]}


def run_once(served: Served) -> str:
    response = httpx2.post(served.v1 + "/chat/completions", json=CHAT)
    assert response.status_code == 200
    return response.headers["x-conclave-transcript-id"]


def test_a_receipt_without_attestation_still_binds_the_transcript_hash(served: Served) -> None:
    transcript_id = run_once(served)
    response = httpx2.get(f"{served.v1}/transcripts/{transcript_id}/receipt")
    assert response.status_code == 200
    bundle = ReceiptBundle.from_json(response.content)
    assert bundle.receipt.mode == "none"
    assert bundle.receipt.transcript_id == transcript_id
    assert bundle.transcript is not None
    assert bundle.receipt.transcript_sha256 == transcript_sha256(bundle.transcript)
    # the same receipt on a second request: one attestation per transcript
    again = ReceiptBundle.from_json(
        httpx2.get(f"{served.v1}/transcripts/{transcript_id}/receipt").content
    )
    assert again.receipt == bundle.receipt


def test_a_simulated_receipt_verifies_offline_and_a_changed_transcript_does_not(
    serve: ServeFactory,
) -> None:
    issuer = SimulatedIssuer()
    served = serve(attester=SimulatedAttester(issuer))
    transcript_id = run_once(served)
    bundle = ReceiptBundle.from_json(
        httpx2.get(f"{served.v1}/transcripts/{transcript_id}/receipt").content
    )
    assert bundle.receipt.mode == "simulated"
    assert bundle.receipt.attestation_token
    policy = AttestationPolicy(allow_simulated=True)
    trust = TrustAnchors(jwks=issuer.jwks())

    assert verify_receipt(bundle.receipt, bundle.transcript, policy, trust).ok
    assert bundle.transcript is not None
    tampered = {**bundle.transcript, "answer": "The capital of France is Lyon."}
    assert not verify_receipt(bundle.receipt, tampered, policy, trust).ok


def test_no_receipt_for_an_unknown_transcript(served: Served) -> None:
    response = httpx2.get(f"{served.v1}/transcripts/not-a-run/receipt")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
