"""firestore.rules (loaded by the emulator at start) deny every direct client access."""
import base64
import json

import httpx

from devtools.stack import PROJECT_ID


def fake_client_token(uid: str) -> str:
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    claims = {'sub': uid, 'user_id': uid, 'aud': PROJECT_ID, 'iss': 'https://securetoken.google.com/' + PROJECT_ID}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def test_clients_can_neither_read_nor_write(stack):
    from shared import repos
    from shared.models import CmsPage

    repos.cms_pages.set(CmsPage(_id="about", slug="about", title="t", body="b", published=True,
                                createdAt=1, updatedAt=1))
    base = f"http://{stack.env['FIRESTORE_EMULATOR_HOST']}/v1/projects/{PROJECT_ID}/databases/(default)/documents"
    for headers in ({}, {"Authorization": f"Bearer {fake_client_token('someone')}"}):
        assert httpx.get(f"{base}/cmsPages/about", headers=headers).status_code == 403
        assert httpx.get(f"{base}/users", headers=headers).status_code == 403
        r = httpx.patch(f"{base}/users/x", headers=headers,
                        json={"fields": {"role": {"stringValue": "admin"}}})
        assert r.status_code == 403
    # the Admin SDK (what the functions use) is not subject to rules
    assert repos.cms_pages.get("about") is not None
