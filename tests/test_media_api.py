"""The `media` function with the Cloud Storage stand-in: signed upload URL ->
PUT -> register -> list / get (signed download URL) -> delete."""
import httpx
import pytest
from knowledge_support import bot, make_deployment, reset_caches

from shared import bot_credentials, repos
from shared.media import storage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


def upload(kb, caller, data=PNG, type_="image", mime="image/png", headers=None, send_type=None):
    r = kb("POST", "/media/uploads", caller, json={"type": type_, "mimeType": mime, "size": len(data)},
           headers=headers)
    assert r.status_code == 201, r.json
    up = r.json
    sent = {**up["headers"], **({"Content-Type": send_type} if send_type else {})}
    put = httpx.request(up["method"], up["uploadUrl"], content=data, headers=sent)
    assert put.status_code == 200, put.text
    return up


def register(kb, caller, up, type_="image", mime="image/png", headers=None, **extra):
    return kb("POST", "/media", caller, json={"storageId": up["storageId"], "type": type_, "mimeType": mime,
                                              "prompt": "a red fox", **extra}, headers=headers)


def test_upload_register_get_download_delete(kb, callers):
    owner = callers["owner"]
    up = upload(kb, owner)
    assert up["storageId"] == f"media/{owner.user_id}/{up['uploadId']}"
    assert "X-Goog-Signature=" in up["uploadUrl"] and up["headers"]["x-goog-content-length-range"] == f"0,{len(PNG)}"
    r = register(kb, owner, up)
    assert r.status_code == 201, r.json
    media = r.json
    assert media["_id"] == up["uploadId"] and media["type"] == "image" and media["driveUrl"] is None
    got = kb("GET", f"/media/{media['_id']}", owner).json
    assert got["storageId"] == up["storageId"] and "X-Goog-Expires=300" in got["downloadUrl"]
    assert httpx.get(got["downloadUrl"]).content == PNG
    assert kb("GET", f"/media/{media['_id']}", callers["other"]).status_code == 404
    assert kb("DELETE", f"/media/{media['_id']}", callers["other"]).status_code == 404
    assert kb("DELETE", f"/media/{media['_id']}", owner).status_code == 204
    assert storage.stat(up["storageId"]) is None and repos.media.get(media["_id"]) is None
    assert register(kb, owner, up).status_code == 409  # the object is gone


def test_bounds_on_type_and_size(kb, callers):
    owner = callers["owner"]
    for body, reason in (
        ({"type": "image", "mimeType": "text/plain", "size": 10}, "mimeType"),
        ({"type": "image", "mimeType": "video/mp4", "size": 10}, "not an image"),
        ({"type": "video", "mimeType": "image/png", "size": 10}, "not an video"),
        ({"type": "image", "mimeType": "image/png", "size": 0}, "size"),
        ({"type": "image", "mimeType": "image/png", "size": 4097}, "at most 4096"),
        ({"type": "audio", "mimeType": "audio/mpeg", "size": 10}, "type"),
    ):
        r = kb("POST", "/media/uploads", owner, json=body)
        assert r.status_code == 422 and reason in str(r.json["error"]), (body, r.json)
    # the stand-in does not enforce the signed headers, so registering checks the stored object
    wrong_type = upload(kb, owner, send_type="application/octet-stream")
    r = register(kb, owner, wrong_type)
    assert r.status_code == 422 and "application/octet-stream" in r.json["error"]["message"]
    assert storage.stat(wrong_type["storageId"]) is None  # rejected uploads are not kept
    up = kb("POST", "/media/uploads", owner, json={"type": "image", "mimeType": "image/png", "size": 100}).json
    httpx.put(up["uploadUrl"], content=b"x" * 5000, headers=up["headers"])
    r = register(kb, owner, up)
    assert r.status_code == 422 and "5000 bytes" in r.json["error"]["message"]
    assert repos.media.all({"userId": owner.user_id}, (("createdAt", "DESCENDING"),)) == []


def test_register_checks_ownership_and_only_once(kb, callers):
    up = upload(kb, callers["owner"])
    assert register(kb, callers["other"], up).status_code == 403
    r = kb("POST", "/media/uploads", callers["owner"], json={"type": "image", "mimeType": "image/png", "size": 9})
    assert register(kb, callers["owner"], r.json).status_code == 409  # nothing PUT yet
    assert register(kb, callers["owner"], up).status_code == 201
    assert register(kb, callers["owner"], up).status_code == 409


def test_list_by_type_newest_first_paginated(kb, callers):
    owner = callers["owner"]
    ids = []
    for i, (t, mime) in enumerate([("image", "image/png"), ("video", "video/mp4"), ("image", "image/webp"),
                                   ("image", "image/jpeg"), ("video", "video/webm")]):
        up = upload(kb, owner, PNG + bytes([i]), t, mime)
        ids.append((t, register(kb, owner, up, t, mime).json["_id"]))
    register(kb, callers["other"], upload(kb, callers["other"]))
    pages, cursor = [], None
    while True:
        r = kb("GET", "/media?type=image&limit=2" + (f"&cursor={cursor}" if cursor else ""), owner).json
        pages.append(r["items"])
        cursor = r["nextCursor"]
        if not cursor:
            break
    got = [m for p in pages for m in p]
    assert {m["_id"] for m in got} == {i for t, i in ids if t == "image"} and len(got) == 3
    assert [m["createdAt"] for m in got] == sorted((m["createdAt"] for m in got), reverse=True)
    everything = kb("GET", "/media", owner).json["items"]
    assert len(everything) == 5 and all(m["userId"] == owner.user_id for m in everything)
    assert kb("GET", "/media?type=audio", owner).status_code == 422


@pytest.mark.parametrize("backup", ["off", "on"])
def test_drive_url_kept_only_with_drive_backup(kb, callers, monkeypatch, backup):
    monkeypatch.setenv("MEDIA_DRIVE_BACKUP", backup)
    reset_caches()
    try:
        r = register(kb, callers["owner"], upload(kb, callers["owner"]),
                     driveUrl="https://drive.google.com/file/d/abc/view")
        assert r.status_code == 201
        assert r.json["driveUrl"] == ("https://drive.google.com/file/d/abc/view" if backup == "on" else None)
    finally:
        monkeypatch.undo()
        reset_caches()


def test_bot_uploads_and_registers_for_the_owner(kb, callers):
    owner = callers["owner"]
    assert kb("GET", "/users/me", owner).status_code == 200
    token = bot_credentials.issue(make_deployment(owner.user_id), owner.user_id)
    up = upload(kb, None, headers=bot(token))
    assert up["storageId"].startswith(f"media/{owner.user_id}/")
    r = register(kb, None, up, headers=bot(token))
    assert r.status_code == 201 and r.json["userId"] == owner.user_id
    assert [m["_id"] for m in kb("GET", "/media", owner).json["items"]] == [r.json["_id"]]


def test_list_costs_its_page_size_plus_a_constant(kb, callers):
    from devtools.firestore_meter import metered
    from shared.models import Media

    owner = callers["owner"]
    kb("GET", "/users/me", owner)  # the user exists and was just seen: no write while measured
    for i in range(30):
        repos.media.set(Media(_id=f"m{i:02d}", userId=owner.user_id, type="image", storageId=f"media/x/m{i}",
                              mimeType="image/png", createdAt=i))
    costs = []
    for n in (2, 7):
        with metered() as m:
            r = kb("GET", f"/media?type=image&limit={n}", owner)
        assert r.status_code == 200 and len(r.json["items"]) == n
        costs.append((m.reads, m.writes))
    (small_r, small_w), (big_r, big_w) = costs
    assert big_r - small_r == 5 and small_w == big_w == 1 and small_r <= 2 + 2
