"""Google-style ID tokens made locally: an RSA key, the certificate endpoint that publishes it
(what GOOGLE_CERTS_URL points at locally and in deploy-check runs), and tokens signed with it the
way Google signs the OIDC tokens of Cloud Tasks and Cloud Scheduler.

Used by the tests and by the Cloud Tasks stand-in (`--oidc-key`). A key file is a service-account
key JSON as `write_key` writes it (`private_key` PEM, `private_key_id` = the key id, `kid`, served by
the certificate endpoint and named in every token's header).

    python -m devtools.standins.google_tokens key FILE [PROJECT]       write a new key file
    python -m devtools.standins.google_tokens certs PORT FILE          serve its JWK Set on 127.0.0.1:PORT
    python -m devtools.standins.google_tokens token FILE AUDIENCE EMAIL  print a token (e.g. for curl)
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://accounts.google.com"


@dataclass(frozen=True)
class GoogleKey:
    private: rsa.RSAPrivateKey
    kid: str = "local"

    @classmethod
    def generate(cls, kid: str = "local") -> GoogleKey:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid)

    @classmethod
    def load(cls, path: Path | str) -> GoogleKey:
        """A service-account key JSON (as `write_key` writes it)."""
        data = json.loads(Path(path).read_text())
        key = serialization.load_pem_private_key(data["private_key"].encode(), password=None)
        return cls(key, data["private_key_id"])

    def jwks(self) -> dict:
        """The public key as Google's v3 certificate endpoint publishes its keys (a JWK Set)."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, *, audience: str, email: str, lifetime_s: int = 3600, **claims) -> str:
        """An ID token as Google issues it for a service account (Cloud Tasks, Cloud Scheduler);
        `claims` override or add claims (e.g. exp, email_verified); None leaves one out."""
        now = int(time.time())
        sub = str(int(hashlib.sha256(email.encode()).hexdigest()[:16], 16))  # numeric, stable per account
        body = {"iss": ISSUER, "aud": audience, "azp": email, "sub": sub, "email": email, "email_verified": True,
                "iat": now, "exp": now + lifetime_s, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": self.kid})

    def pem(self) -> str:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()

    def write(self, path: Path, email: str, project: str) -> Path:
        """This key as a service-account key file (mode 0600)."""
        path.write_text(json.dumps({
            "type": "service_account", "project_id": project, "private_key_id": self.kid,
            "private_key": self.pem(), "client_email": email, "client_id": "0",
            "token_uri": "https://oauth2.googleapis.com/token",
        }))
        path.chmod(0o600)
        return path


def write_key(path: Path, project: str, email: str | None = None, kid: str = "local") -> Path:
    """A new service-account key file (the media code signs Storage URLs with one; the Cloud Tasks
    stand-in signs its OIDC tokens with one)."""
    return GoogleKey.generate(kid).write(path, email or f"media-signer@{project}.iam.gserviceaccount.com", project)


def strip_signature(token: str) -> str:
    """The token as a private Cloud Run / Cloud Functions service receives it: Google's front has
    checked the signature and replaced it."""
    return token.rsplit(".", 1)[0] + ".SIGNATURE_REMOVED_BY_GOOGLE"


def main(argv: list[str]) -> None:
    cmd, *args = argv
    if cmd == "key":
        write_key(Path(args[0]), args[1] if len(args) > 1 else "demo-openclaw")
    elif cmd == "certs":
        from werkzeug.serving import run_simple

        from devtools.server import json_app

        run_simple("127.0.0.1", int(args[0]), json_app(GoogleKey.load(args[1]).jwks()), threaded=True)
    elif cmd == "token":
        print(GoogleKey.load(args[0]).token(audience=args[1], email=args[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
