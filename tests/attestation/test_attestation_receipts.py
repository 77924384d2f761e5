"""Receipts: issued for a transcript, written as a bundle, verified offline by a third party."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import conclave.attestation.receipts as receipts_module
from conclave.attestation import (
    AttestationPolicy,
    CheckStatus,
    ConfidentialSpaceAttester,
    Jwks,
    LauncherClient,
    NoAttester,
    Receipt,
    ReceiptBundle,
    SimulatedAttester,
    SimulatedIssuer,
    TrustAnchors,
    VerificationReport,
    issue_receipt,
    read_receipt_file,
    transcript_sha256,
    verify_receipt,
    verify_receipt_file,
    write_receipt_file,
)
from conclave.consensus.transcript import CallRecord, RoundRecord, Transcript
from conclave.errors import LauncherError, ReceiptFormatError
from conclave.types import Message, Usage

from .attestation_fakes import AUDIENCE, IMAGE_DIGEST, FakeGoogle, FakeLauncher


@pytest.fixture
def transcript() -> Transcript:
    member = CallRecord(
        model="openrouter:meta-llama/llama-3-8b",
        messages=(Message(role="user", content="Capital of France?"),),
        text="Paris — «la Ville Lumière» 🗼",
        finish_reason="stop",
        usage=Usage(prompt_tokens=12, completion_tokens=9, cost_usd=1.5e-7),
        latency_s=0.123456789,
    )
    aggregate = CallRecord(model="local:qwen2.5-0.5b", role="aggregator", text="Paris.")
    return Transcript(
        id="run-2025-0001",
        created_at=datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        config={"iterations": 1, "temperature": 0.7, "models": ["a", "b"]},
        conversation=(Message(role="user", content="Capital of France?"),),
        rounds=(RoundRecord(index=0, responses=(member,), aggregate=aggregate),),
        answer="Paris.",
        stop_reason="iterations",
        usage=Usage(prompt_tokens=12, completion_tokens=9, cost_usd=1.5e-7),
        duration_s=1.25,
    )


def failed(report: VerificationReport) -> list[str]:
    return [check.name for check in report.failures]


def confidential_attester(
    launcher: FakeLauncher, token_type: str = "PKI"
) -> ConfidentialSpaceAttester:
    return ConfidentialSpaceAttester(
        audience=AUDIENCE,
        token_type=token_type,  # type: ignore[arg-type]
        client=LauncherClient(launcher.socket_path, timeout_s=5),
    )


# --- issuing -------------------------------------------------------------------------------


async def test_the_token_is_requested_with_the_transcript_hash_as_nonce(
    launcher: FakeLauncher, transcript: Transcript
) -> None:
    receipt = await issue_receipt(transcript, confidential_attester(launcher))

    digest = transcript_sha256(transcript)
    assert launcher.requests[0][2] == {
        "audience": AUDIENCE,
        "token_type": "PKI",
        "nonces": [digest],
    }
    assert receipt.transcript_sha256 == digest
    assert receipt.transcript_id == transcript.id
    assert receipt.mode == "confidential-space"
    assert (receipt.token_type, receipt.audience) == ("PKI", AUDIENCE)
    assert receipt.attestation_token == launcher.issued[0]


async def test_a_launcher_failure_is_not_hidden_behind_a_weaker_receipt(
    launcher: FakeLauncher, transcript: Transcript
) -> None:
    launcher.behaviour = "error"

    with pytest.raises(LauncherError):
        await issue_receipt(transcript, confidential_attester(launcher))


async def test_a_receipt_without_attestation_holds_only_the_hash(transcript: Transcript) -> None:
    receipt = await issue_receipt(transcript, NoAttester())

    assert receipt.mode == "none"
    assert receipt.attestation_token is None
    assert receipt.transcript_sha256 == transcript_sha256(transcript)


async def test_the_token_stays_out_of_the_receipts_repr(transcript: Transcript) -> None:
    receipt = await issue_receipt(transcript, SimulatedAttester(audience=AUDIENCE))

    assert receipt.attestation_token is not None
    assert receipt.attestation_token not in repr(receipt)
    assert receipt.attestation_token not in str(receipt)


# --- verifying: happy paths ----------------------------------------------------------------


@pytest.mark.parametrize("token_type", ["PKI", "OIDC"])
async def test_a_third_party_verifies_a_receipt_file_with_the_issuers_anchors(
    launcher: FakeLauncher,
    transcript: Transcript,
    anchor_files: tuple[Path, Path],
    tmp_path: Path,
    token_type: str,
) -> None:
    receipt = await issue_receipt(transcript, confidential_attester(launcher, token_type))
    path = write_receipt_file(tmp_path / "receipt.json", receipt, transcript)
    jwks_path, root_path = anchor_files

    report = verify_receipt_file(
        path,
        jwks_path=jwks_path,
        root_cert_path=root_path,
        audience=AUDIENCE,
        expected_image_digest=IMAGE_DIGEST,
    )

    assert report.ok, report.render()
    assert report.token_type == token_type
    for name in ("transcript_hash", "transcript_id", "nonce", "image_digest", "mode"):
        assert report.check(name).status is CheckStatus.PASSED
    assert report.render().startswith(f"Receipt verification ({token_type} token): VERIFIED")


async def test_an_old_receipt_verifies_after_its_token_expired(
    launcher: FakeLauncher, transcript: Transcript, google: FakeGoogle
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=5)  # the token lasted one hour
    launcher.claim_overrides = {"now": long_ago}
    receipt = await issue_receipt(transcript, confidential_attester(launcher), now=long_ago)

    report = verify_receipt(receipt, transcript, AttestationPolicy(audience=AUDIENCE), google.trust)
    today = verify_receipt(
        receipt,
        transcript,
        AttestationPolicy(audience=AUDIENCE),
        google.trust,
        at=datetime.now(UTC),
    )

    assert report.ok, report.render()
    assert failed(today) == ["expiry"]


async def test_a_simulated_receipt_verifies_only_when_simulation_is_allowed(
    transcript: Transcript, tmp_path: Path
) -> None:
    issuer = SimulatedIssuer(tmp_path / "keys")
    receipt = await issue_receipt(transcript, SimulatedAttester(issuer, audience=AUDIENCE))
    path = write_receipt_file(tmp_path / "receipt.json", receipt, transcript)

    refused = verify_receipt_file(path, jwks_path=issuer.jwks_path, audience=AUDIENCE)
    allowed = verify_receipt_file(
        path, jwks_path=issuer.jwks_path, audience=AUDIENCE, allow_simulated=True
    )

    assert receipt.mode == "simulated"
    assert failed(refused) == ["simulated", "issuer"]
    assert allowed.ok, allowed.render()


async def test_an_unattested_receipt_fails_unless_attestation_is_not_required(
    transcript: Transcript, tmp_path: Path
) -> None:
    receipt = await issue_receipt(transcript, NoAttester())
    path = write_receipt_file(tmp_path / "receipt.json", receipt, transcript)

    required = verify_receipt_file(path)
    integrity_only = verify_receipt_file(path, require_attestation=False)

    assert failed(required) == ["attestation"]
    assert integrity_only.ok
    assert integrity_only.check("transcript_hash").status is CheckStatus.PASSED


# --- verifying: rejections -----------------------------------------------------------------


async def test_a_tampered_transcript_is_caught(
    launcher: FakeLauncher,
    transcript: Transcript,
    anchor_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    receipt = await issue_receipt(transcript, confidential_attester(launcher))
    path = write_receipt_file(tmp_path / "receipt.json", receipt, transcript)
    bundle = json.loads(path.read_text())
    bundle["transcript"]["answer"] = "Lyon."
    path.write_text(json.dumps(bundle))

    report = verify_receipt_file(path, root_cert_path=anchor_files[1], audience=AUDIENCE)

    assert failed(report) == ["transcript_hash"]
    assert "altered" in report.check("transcript_hash").detail


async def test_a_tampered_transcript_with_a_rewritten_hash_fails_the_nonce(
    launcher: FakeLauncher,
    transcript: Transcript,
    anchor_files: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    receipt = await issue_receipt(transcript, confidential_attester(launcher))
    path = write_receipt_file(tmp_path / "receipt.json", receipt, transcript)
    bundle = json.loads(path.read_text())
    bundle["transcript"]["answer"] = "Lyon."
    bundle["receipt"]["transcript_sha256"] = transcript_sha256(bundle["transcript"])
    path.write_text(json.dumps(bundle))

    report = verify_receipt_file(path, root_cert_path=anchor_files[1], audience=AUDIENCE)

    assert failed(report) == ["nonce"]


async def test_a_token_for_another_transcript_fails_the_nonce(
    launcher: FakeLauncher, transcript: Transcript, google: FakeGoogle
) -> None:
    other = transcript.model_copy(update={"id": "run-2025-0002"})
    theirs = await issue_receipt(other, confidential_attester(launcher))
    mine = await issue_receipt(transcript, NoAttester())
    forged = mine.model_copy(
        update={
            "mode": "confidential-space",
            "token_type": "PKI",
            "attestation_token": theirs.attestation_token,
        }
    )

    report = verify_receipt(forged, transcript, AttestationPolicy(audience=AUDIENCE), google.trust)

    assert failed(report) == ["nonce"]


async def test_a_transcript_with_another_id_is_caught(
    transcript: Transcript, google: FakeGoogle
) -> None:
    receipt = await issue_receipt(transcript, NoAttester())
    renamed = receipt.model_copy(update={"transcript_id": "run-other"})

    report = verify_receipt(
        renamed, transcript, AttestationPolicy(), google.trust, require_attestation=False
    )

    assert failed(report) == ["transcript_id"]


async def test_a_receipt_is_checked_at_its_tokens_signed_iat_not_its_created_at(
    launcher: FakeLauncher, transcript: Transcript, google: FakeGoogle
) -> None:
    receipt = await issue_receipt(transcript, confidential_attester(launcher))
    policy = AttestationPolicy(audience=AUDIENCE)
    # created_at is not signed: moving it (later or earlier) changes nothing in the verdict.
    for shift in (timedelta(hours=3), timedelta(days=-30)):
        moved = receipt.model_copy(update={"created_at": receipt.created_at + shift})
        report = verify_receipt(moved, transcript, policy, google.trust)
        assert report.ok, report.render()
    # Checked at the verifier's own clock, long after the token expired, it is refused.
    later = receipt.created_at + timedelta(hours=3)
    report = verify_receipt(receipt, transcript, policy, google.trust, at=later)
    assert failed(report) == ["expiry"]


async def test_a_receipt_claiming_a_real_tee_with_a_simulated_token_fails_the_mode(
    transcript: Transcript,
) -> None:
    issuer = SimulatedIssuer()
    receipt = await issue_receipt(transcript, SimulatedAttester(issuer, audience=AUDIENCE))
    dressed_up = receipt.model_copy(update={"mode": "confidential-space"})
    policy = AttestationPolicy(audience=AUDIENCE, allow_simulated=True)

    report = verify_receipt(dressed_up, transcript, policy, TrustAnchors(jwks=issuer.jwks()))

    assert failed(report) == ["mode"]


async def test_without_the_transcript_the_receipt_is_incomplete(
    launcher: FakeLauncher, transcript: Transcript, google: FakeGoogle
) -> None:
    receipt = await issue_receipt(transcript, confidential_attester(launcher))

    report = verify_receipt(receipt, None, AttestationPolicy(audience=AUDIENCE), google.trust)

    assert not report.ok
    assert failed(report) == []
    assert report.check("transcript_hash").status is CheckStatus.NOT_CHECKED
    assert report.check("nonce").status is CheckStatus.PASSED
    assert "INCOMPLETE" in report.render()


async def test_an_unknown_canonical_form_is_refused(
    transcript: Transcript, google: FakeGoogle
) -> None:
    receipt = await issue_receipt(transcript, NoAttester())
    future = receipt.model_copy(update={"canonical_version": 2})

    report = verify_receipt(
        future, transcript, AttestationPolicy(), google.trust, require_attestation=False
    )

    assert failed(report) == ["canonical_form"]


async def test_a_token_with_the_wrong_audience_fails_the_receipt(
    launcher: FakeLauncher, transcript: Transcript, google: FakeGoogle
) -> None:
    receipt = await issue_receipt(transcript, confidential_attester(launcher))

    report = verify_receipt(receipt, transcript, AttestationPolicy(audience="other"), google.trust)

    assert failed(report) == ["audience"]


# --- the file ------------------------------------------------------------------------------


async def test_the_bundle_round_trips_and_parses_back_to_the_transcript(
    transcript: Transcript, tmp_path: Path
) -> None:
    receipt = await issue_receipt(transcript, SimulatedAttester(audience=AUDIENCE))
    path = write_receipt_file(tmp_path / "deep" / "receipt.json", receipt, transcript)

    bundle = read_receipt_file(path)

    assert bundle.receipt == receipt
    assert bundle.parsed_transcript() == transcript
    assert json.loads(path.read_text())["format"] == "conclave.receipt-bundle"
    assert transcript_sha256(bundle.transcript or {}) == receipt.transcript_sha256


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "must be JSON"),
        ('{"format": "something-else"}', "not a conclave receipt bundle"),
        ('{"format": "conclave.receipt-bundle", "version": 1}', "receipt"),
        ('{"format": "conclave.receipt-bundle", "version": 1, "x": NaN}', "must be JSON"),
        (
            '{"format": "conclave.receipt-bundle", "version": 1, "receipt": {"transcript_id": "t",'
            ' "transcript_sha256": "' + "0" * 64 + '", "created_at": "2025-01-01T00:00:00",'
            ' "mode": "none"}}',
            "timezone",
        ),
    ],
)
def test_a_file_that_is_not_a_receipt_is_refused_clearly(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(content)

    with pytest.raises(ReceiptFormatError, match=message):
        verify_receipt_file(path)


def test_a_missing_file_is_a_receipt_format_error(tmp_path: Path) -> None:
    with pytest.raises(ReceiptFormatError, match="cannot read"):
        read_receipt_file(tmp_path / "nope.json")


async def test_keys_are_fetched_only_when_asked_and_only_for_oidc(
    launcher: FakeLauncher,
    transcript: Transcript,
    google: FakeGoogle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetched: list[str] = []

    def fake_fetch(issuer: str) -> Jwks:
        fetched.append(issuer)
        return Jwks.from_json(google.jwks_json)

    monkeypatch.setattr(receipts_module, "fetch_jwks", fake_fetch)
    receipt = await issue_receipt(transcript, confidential_attester(launcher, "OIDC"))
    path = write_receipt_file(tmp_path / "receipt.json", receipt, transcript)

    offline = verify_receipt_file(path, audience=AUDIENCE)
    online = verify_receipt_file(path, audience=AUDIENCE, fetch_keys=True)

    assert failed(offline) == ["signing_key"]
    assert online.ok, online.render()
    assert fetched == ["https://confidentialcomputing.googleapis.com"]


def test_the_bundle_repr_leaves_the_transcript_and_token_out() -> None:
    receipt = Receipt(
        transcript_id="t",
        transcript_sha256="0" * 64,
        created_at=datetime.now(UTC),
        mode="confidential-space",
        attestation_token="eyJhbGciOiJSUzI1NiJ9.eyJzZWNyZXQiOjF9.c2lnbmF0dXJl",
    )
    bundle = ReceiptBundle(receipt=receipt, transcript={"answer": "secret answer"})

    assert "eyJ" not in repr(bundle)
    assert "secret answer" not in repr(bundle)
