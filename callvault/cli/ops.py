"""``callvault bucket-policy`` and ``callvault doctor``: hardening and checks."""

from __future__ import annotations

import typer

from callvault.cli.base import (
    app,
    err,
    handle_errors,
    out,
    settings,
    writing,
)


# ------------------------------------------------------------------------------- operations checks
@app.command("bucket-policy")
@handle_errors
def bucket_policy_command(
    apply: bool = typer.Option(
        False, "--apply", help="Apply it, with Block Public Access and default encryption."
    ),
    exempt_arn: list[str] = typer.Option(  # noqa: B008 - typer's way to declare options
        [], "--exempt-arn", help="Principal allowed direct reads (the workers' role; repeatable)."
    ),
    no_tls: bool = typer.Option(
        False, "--no-tls", help="Omit the TLS-only statement (plain-http S3 servers)."
    ),
) -> None:
    """Print (or --apply) a bucket policy: object reads only through presigned URLs, TLS only.

    S3 authorizes HEAD as s3:GetObject, so the principal that verifies uploads must be exempt: by default
    the principal of callvault's own S3 credentials (STS GetCallerIdentity). Give the web processes a
    different, non-exempt role in production (docs/deployment.md).
    """
    import json

    from callvault.audit.trail import append
    from callvault.doctor import apply_policy, bucket_of, caller_arn, policy_for

    cfg = settings()
    bucket_of(cfg)  # the local store has no bucket: say so before asking STS anything
    arns = exempt_arn or [caller_arn(cfg)]
    policy = policy_for(cfg, exempt_arns=arns, require_tls=not no_tls)
    out.print(json.dumps(policy, indent=2), markup=False)
    if apply:
        apply_policy(cfg, policy)
        with writing(cfg) as session:
            append(session, actor="cli", action="bucket.harden", detail={"exempt": arns, "tls": not no_tls})
        err.print("applied: bucket policy, Block Public Access, default encryption")


@app.command("doctor")
@handle_errors
def doctor() -> None:
    """Check configuration, database, storage, Twilio credentials and the bucket's hardening; one line per
    check; exit non-zero when any fails."""
    from callvault.doctor import run_checks

    checks = run_checks(settings())
    for check in checks:
        mark = "[green]pass[/green]" if check.ok else "[red]FAIL[/red]"
        out.print(f"{mark}  {check.name}: ", end="")
        out.print(check.detail, markup=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
