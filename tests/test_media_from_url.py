"""The `media` function fetching a file from a URL (guarded by shared/outbound.py, whose own tests
prove each refusal) and share links. Files are served by a real HTTP server on 127.0.0.1 (loopback
allowed by the local-only setting); storage is the Cloud Storage stand-in."""
import http.server
import threading

import httpx
import pytest
from knowledge_support import bot, make_deployment

from shared import bot_credentials, outbound, repos
from shared.media import shares, storage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 300
FILES: dict[str, tuple[int, str, bytes, list]] = {}  # path -> (status, content type, body, extra headers)
HITS: list[str] = []


class Files(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        HITS.append(self.path)
        status, ctype, body, extra = FILES.get(self.path, (404, "text/plain", b"no", []))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def files():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FILES.clear()
    FILES.update({
        "/fox.png": (200, "image/png", PNG, []),
        "/fox-generic": (200, "application/octet-stream", PNG, []),
        "/clip.mp4": (200, "video/mp4", MP4, []),
        "/page.png": (200, "text/html", b"<html><script>alert(1)</script></html>", []),
        "/lying.png": (200, "image/png", b"<svg onload=alert(1)>" + b" " * 50, []),
        "/big.png": (200, "image/png", PNG + b"\x00" * 5000, []),
        "/gone.png": (404, "text/plain", b"expired", []),
        "/down.png": (503, "text/plain", b"busy", []),
        "/to-metadata": (302, "text/plain", b"", [("Location", "http://169.254.169.254/computeMetadata/v1/")]),
        "/to-fox": (302, "text/plain", b"", [("Location", "/fox.png")]),
    })
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def fetch(kb, caller, url, type_="image", headers=None, **extra):
    return kb("POST", "/media/from-url", caller, json={"url": url, "type": type_, **extra}, headers=headers)


def test_fetched_file_is_stored_and_recorded_like_an_upload(kb, callers, files):
    owner = callers["owner"]
    r = fetch(kb, owner, f"{files}/fox.png", prompt="a red fox", mimeType="image/png")
    assert r.status_code == 201, r.json
    media = r.json
    assert (media["type"], media["mimeType"], media["prompt"]) == ("image", "image/png", "a red fox")
    assert media["storageId"] == f"media/{owner.user_id}/{media['_id']}"
    assert storage.stat(media["storageId"]) == (len(PNG), "image/png")
    got = kb("GET", f"/media/{media['_id']}", owner).json
    assert httpx.get(got["downloadUrl"]).content == PNG
    video = fetch(kb, owner, f"{files}/clip.mp4", "video").json
    assert video["mimeType"] == "video/mp4"
    # a provider's generic content type: the bytes decide; a redirect is followed
    assert fetch(kb, owner, f"{files}/fox-generic").json["mimeType"] == "image/png"
    assert fetch(kb, owner, f"{files}/to-fox").status_code == 201
    assert len(kb("GET", "/media", owner).json["items"]) == 4


def test_the_bot_fetches_for_its_owner(kb, callers, files):
    owner = callers["owner"]
    kb("GET", "/users/me", owner)
    token = bot_credentials.issue(make_deployment(owner.user_id), owner.user_id)
    r = fetch(kb, None, f"{files}/fox.png", headers=bot(token))
    assert r.status_code == 201 and r.json["userId"] == owner.user_id


@pytest.mark.parametrize("path, type_, extra, status, code, words", [
    ("/page.png", "image", {}, 422, "wrong_content_type", "not an image of a known format"),
    ("/lying.png", "image", {}, 422, "wrong_content_type", "not an image"),
    ("/fox.png", "video", {}, 422, "wrong_content_type", "image/png, not an video"),
    ("/fox.png", "image", {"mimeType": "image/jpeg"}, 422, "wrong_content_type", "declared"),
    ("/clip.mp4", "image", {}, 422, "wrong_content_type", "not an image"),
    ("/big.png", "image", {}, 422, "too_large", "at most 4096 bytes"),
    ("/gone.png", "image", {}, 422, "fetch_failed", "HTTP 404"),
    ("/down.png", "image", {}, 502, "fetch_failed", "HTTP 503"),
    ("/to-metadata", "image", {}, 422, "unsafe_url", "169.254.169.254"),
])
def test_refused_downloads_store_nothing(kb, callers, files, path, type_, extra, status, code, words):
    owner = callers["owner"]
    r = fetch(kb, owner, f"{files}{path}", type_, **extra)
    assert (r.status_code, r.json["error"]["code"]) == (status, code), r.json
    assert words in r.json["error"]["message"]
    assert kb("GET", "/media", owner).json["items"] == []
    assert list(storage._bucket().list_blobs()) == []  # nothing stored either


def test_urls_refused_before_any_request(kb, callers, files, monkeypatch):
    asked = []
    monkeypatch.setattr(outbound, "resolve", lambda host, port: asked.append(host) or ["10.1.2.3"])
    owner = callers["owner"]
    HITS.clear()
    for url, words in (("https://cdn.example.com/a.png", "10.1.2.3 is a private address"),
                       ("http://cdn.example.com/a.png", "10.1.2.3"),  # http: allowed only on the local stack
                       ("https://169.254.169.254/latest/meta-data", "link-local"),
                       ("https://metadata.google.internal/computeMetadata/v1/", "internal name"),
                       ("https://[::ffff:a00:1]/a.png", "10.0.0.1")):
        r = fetch(kb, owner, url)
        assert (r.status_code, r.json["error"]["code"]) == (422, "unsafe_url"), (url, r.json)
        assert words in r.json["error"]["message"], (url, r.json)
    r = fetch(kb, owner, "ftp://example.com/a.png")  # the schema's pattern refuses another scheme first
    assert (r.status_code, r.json["error"]["code"]) == (422, "invalid_body"), r.json
    assert asked == ["cdn.example.com", "cdn.example.com"] and HITS == []
    for body in ({"url": "x" * 2049, "type": "image"}, {"url": f"{files}/fox.png", "type": "audio"},
                 {"url": f"{files}/fox.png", "type": "image", "mimeType": "video/mp4"},
                 {"url": f"{files}/fox.png", "type": "image", "extra": 1}):
        assert kb("POST", "/media/from-url", owner, json=body).status_code == 422, body


def test_share_link_is_stable_public_revocable(kb, callers, files, client):
    owner, other = callers["owner"], callers["other"]
    media = fetch(kb, owner, f"{files}/fox.png").json
    r = kb("POST", f"/media/{media['_id']}/share", owner)
    assert r.status_code == 201, r.json
    link = r.json["url"]
    assert "/media/s/" in link and link.endswith(".png") and len(link.split("/")[-1]) == 36
    again = kb("POST", f"/media/{media['_id']}/share", owner)
    assert (again.status_code, again.json["url"]) == (200, link)
    assert kb("POST", f"/media/{media['_id']}/share", other).status_code == 404
    path = "/media/s/" + link.split("/media/s/")[1]  # FUNCTIONS_URL's host, or this request's (locally)
    opened = client.get(path)  # no Authorization: public
    assert opened.status_code == 302 and opened.headers["Cache-Control"] == "no-store"
    assert httpx.get(opened.headers["Location"]).content == PNG
    for wrong in (path[:-4] + ".jpg", path[:-8] + "AAAA.png", "/media/s/short.png", "/media/s/" + "A" * 32 + ".png"):
        assert client.get(wrong).status_code == 404, wrong
    assert kb("DELETE", f"/media/{media['_id']}/share", other).status_code == 404
    assert kb("DELETE", f"/media/{media['_id']}/share", owner).status_code == 204
    assert client.get(path).status_code == 404  # revoked: at once
    assert kb("DELETE", f"/media/{media['_id']}/share", owner).status_code == 404
    fresh = kb("POST", f"/media/{media['_id']}/share", owner).json["url"]
    fresh_path = "/media/s/" + fresh.split("/media/s/")[1]
    assert fresh != link and client.get(fresh_path).status_code == 302
    assert kb("DELETE", f"/media/{media['_id']}", owner).status_code == 204
    assert client.get(fresh_path).status_code == 404  # media deleted
    assert shares.shares.get(media["_id"]) is None


def test_the_bot_shares_and_a_video_link_ends_in_mp4(kb, callers, files):
    owner = callers["owner"]
    kb("GET", "/users/me", owner)
    token = bot_credentials.issue(make_deployment(owner.user_id), owner.user_id)
    video = fetch(kb, None, f"{files}/clip.mp4", "video", headers=bot(token)).json
    r = kb("POST", f"/media/{video['_id']}/share", None, headers=bot(token))
    assert r.status_code == 201 and r.json["url"].endswith(".mp4")
    assert repos.media.get(video["_id"]).userId == owner.user_id
