"""`conclave verify RECEIPT`: check a receipt offline (hash, token signature, claims)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conclave.cli.common import fail, out
from conclave.errors import ConclaveError


def register(app: typer.Typer) -> None:
    app.command()(verify)


def verify(
    receipt: Annotated[Path, typer.Argument(help="A receipt file (receipt and transcript).")],
    root_cert: Annotated[
        Path | None, typer.Option(help="The pinned root certificate (PEM) for PKI tokens.")
    ] = None,
    jwks: Annotated[
        Path | None, typer.Option(help="The issuer's JWKS (JSON) for OIDC tokens.")
    ] = None,
    audience: Annotated[
        str,
        typer.Option(
            envvar="CONCLAVE_ATTESTATION_AUDIENCE", help="The audience the token must name."
        ),
    ] = "conclave-receipt",
    image_digest: Annotated[
        str | None, typer.Option(help="The container image digest that must have produced it.")
    ] = None,
    require_image_digest: Annotated[
        bool,
        typer.Option(help="Fail when no --image-digest pins the workload (else only a warning)."),
    ] = False,
    allow_debug: Annotated[
        bool, typer.Option(help="Accept debug images (never in production).")
    ] = False,
    allow_simulated: Annotated[
        bool, typer.Option(help="Accept simulated tokens (development only).")
    ] = False,
    allow_unattested: Annotated[
        bool, typer.Option(help="Accept a receipt without a token (checks only the hash).")
    ] = False,
    fetch_keys: Annotated[
        bool, typer.Option(help="Fetch the issuer's OIDC keys over HTTPS if --jwks is not given.")
    ] = False,
) -> None:
    """Check a receipt offline: the transcript's hash, the token's signature and every claim."""
    from conclave.attestation import verify_receipt_file

    try:
        report = verify_receipt_file(
            receipt,
            jwks_path=jwks,
            root_cert_path=root_cert,
            audience=audience,
            allow_simulated=allow_simulated,
            allow_debug=allow_debug,
            expected_image_digest=image_digest,
            require_image_digest=require_image_digest,
            require_attestation=not allow_unattested,
            fetch_keys=fetch_keys,
        )
    except ConclaveError as exc:
        fail(str(exc))
    out.print(report.render(), markup=False)
    if not report.ok:
        raise typer.Exit(1)
