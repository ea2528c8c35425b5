"""``vtp-identity``: run the identity service, or administer projects and tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid

from vtp_identity.bootstrap import create_app
from vtp_identity.settings import IdentitySettings
from vtp_runtime.serve import serve


def main() -> None:
    if len(sys.argv) > 1:
        _admin_cli(sys.argv[1:])
        return
    settings = IdentitySettings()
    serve(settings, lambda: create_app(settings))


def _admin_cli(argv: list[str]) -> None:
    """Offline administration straight on the database (no token needed: you hold the DB)."""
    from vtp_identity.cli import create_project, create_token

    parser = argparse.ArgumentParser(prog="vtp-identity", description="Administer projects and API tokens.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("create-project", help="create a project and print it as JSON")
    p.add_argument("name")
    p.add_argument("--slug")
    t = sub.add_parser("create-token", help="issue a token for a project and print it as JSON (secret shown once)")
    t.add_argument("project_id", type=uuid.UUID)
    t.add_argument("--name", default="cli")
    t.add_argument("--admin", action="store_true")
    args = parser.parse_args(argv)
    settings = IdentitySettings()
    if args.command == "create-project":
        out = asyncio.run(create_project(settings, args.name, args.slug))
    else:
        out = asyncio.run(create_token(settings, args.project_id, args.name, args.admin))
    print(json.dumps(out, default=str, indent=2))
