#!/usr/bin/env python3
"""Mints an HS256 JWT for local development (standard library only).

Usage: scripts/dev_token.py --secret S [--sub 24HEX] [--username U] [--name N]
                            [--surname S] [--roles a,b] [--ttl SECONDS]

Never use this against a deployed service: production tokens come from the
Allmine auth service.
"""
import argparse
import base64
import hashlib
import hmac
import json
import secrets
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(secret: str, claims: dict) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secret", required=True, help="the HS256 secret chat-service verifies with")
    parser.add_argument("--sub", default=secrets.token_hex(12), help="user id (24 hex digits)")
    parser.add_argument("--username", default="johndoe")
    parser.add_argument("--name", default="John")
    parser.add_argument("--surname", default="Doe")
    parser.add_argument("--roles", default="", help="comma-separated roles")
    parser.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    args = parser.parse_args()
    now = int(time.time())
    claims = {
        "sub": args.sub,
        "iat": now,
        "exp": now + args.ttl,
        "username": args.username,
        "name": args.name,
        "surname": args.surname,
    }
    if args.roles:
        claims["roles"] = [role for role in args.roles.split(",") if role]
    print(mint(args.secret, claims))


if __name__ == "__main__":
    main()
