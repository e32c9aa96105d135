"""Verifies a Lethe report with Python's `cryptography`, trusting nothing from Lethe.

    python3 verify_jws.py REPORT.json PUBLIC.jwk [SCHEMA.json]

Checks: the JWS signature over `protected.payload` (RFC 7515) with the Ed25519 key from the
JWK; that `kid` is the key's RFC 7638 thumbprint; that the readable `report` copy equals the
payload; optionally that the payload validates against a JSON Schema (Python's jsonschema).
Prints VALID or INVALID: <reason>; exit status 0 or 1.
"""
import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    try:
        report = json.load(open(sys.argv[1], encoding="utf-8"))
    except ValueError as error:
        print(f"INVALID: not JSON: {error}")
        return 1
    jwk = json.load(open(sys.argv[2], encoding="utf-8"))
    header = json.loads(b64d(report["protected"]))
    if header.get("alg") not in ("Ed25519", "EdDSA"):
        print(f"INVALID: alg {header.get('alg')}")
        return 1
    thumbprint = b64e(hashlib.sha256(
        json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"), sort_keys=True).encode()).digest())
    if header.get("kid") != thumbprint:
        print(f"INVALID: kid {header.get('kid')} is not this key ({thumbprint})")
        return 1
    key = Ed25519PublicKey.from_public_bytes(b64d(jwk["x"]))
    try:
        key.verify(b64d(report["signature"]), (report["protected"] + "." + report["payload"]).encode())
    except InvalidSignature:
        print("INVALID: bad signature")
        return 1
    payload = json.loads(b64d(report["payload"]))
    if "report" in report and report["report"] != payload:
        print("INVALID: readable copy differs from the payload")
        return 1
    if len(sys.argv) > 3:
        import jsonschema
        schema = json.load(open(sys.argv[3], encoding="utf-8"))
        try:
            jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(payload)
        except jsonschema.ValidationError as error:
            print(f"INVALID: schema: {error.message} at {list(error.absolute_path)}")
            return 1
    print(f"VALID {header['kid']} {payload['reportId']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
