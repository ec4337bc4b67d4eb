"""A locally generated service-account key file, so the media code signs Cloud
Storage URLs exactly as with a real key (the storage stand-in accepts them)."""
from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def write_key(path: Path, project: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    email = f"media-signer@{project}.iam.gserviceaccount.com"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "local",
        "private_key": pem, "client_email": email, "client_id": "0",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))
    path.chmod(0o600)
    return path
