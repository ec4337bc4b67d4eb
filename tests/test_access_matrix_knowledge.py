"""Knowledge, media, bot credentials and the cost summary the bot reads: every endpoint x
{anonymous, other user, owner, admin, suspended, bot} with the expected status. "owner" owns the addressed item;
"bot" is the owner's deployment bot (`Authorization: Bot <token>`), which acts as the owner but never mints credentials.

Each call is metered like tests/test_access_matrix.py; `pytest --cost-table` prints these rows too."""
import http.server
import threading

import pytest
from knowledge_support import bot, make_deployment

from devtools import openapi
from devtools.firestore_meter import metered
from devtools.standins.openai_embeddings import embed
from shared import bot_credentials, clock, repos
from shared.knowledge import store, vectors
from shared.media import shares, storage
from shared.models import Knowledge, Media

CALLERS = ("anonymous", "other", "owner", "admin", "suspended", "bot")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
UPLOAD = {"type": "image", "mimeType": "image/png", "size": 100}
REGISTER = {"storageId": "media/{me}/up1", "type": "image", "mimeType": "image/png", "prompt": "a fox"}


def users(status: int) -> tuple:
    """Any signed-in, unsuspended caller (the bot as its owner), on the caller's own data."""
    return (401, status, status, status, 403, status)


def owned(status: int) -> tuple:
    """The owner's item: the owner, an admin and the owner's bot; another user sees nothing there."""
    return (401, 404, status, status, 403, status)


def humans_owned(status: int) -> tuple:
    """Like owned, but a bot may not (bot credentials are managed by people only)."""
    return (401, 404, status, status, 403, 403)


MATRIX = [
    # method, path, body, statuses in CALLERS order
    ("POST", "/knowledge", {"text": "Apples grow on trees.", "source": "notes"}, users(201)),
    ("POST", "/knowledge/search", {"query": "apple pie", "limit": 5}, users(200)),
    ("POST", "/knowledge/search", {"query": "apple pie", "mmr": True}, users(200)),
    ("GET", "/knowledge", None, users(200)),
    ("GET", "/knowledge?source=recipes", None, users(200)),
    ("GET", "/knowledge/chunk1", None, owned(200)),
    ("GET", "/knowledge/nope", None, (401, 404, 404, 404, 403, 404)),
    ("DELETE", "/knowledge/chunk1", None, owned(204)),
    ("DELETE", "/knowledge?source=recipes", None, users(200)),
    ("DELETE", "/knowledge?all=true", None, users(200)),
    ("DELETE", "/knowledge", None, users(400)),  # neither ?source= nor ?all=true
    ("POST", "/knowledge/bot-credentials/dep1", None, humans_owned(201)),
    ("GET", "/knowledge/bot-credentials/dep1", None, humans_owned(200)),
    ("DELETE", "/knowledge/bot-credentials/dep1", None, humans_owned(204)),
    ("GET", "/knowledge/bot-credentials/nope", None, (401, 404, 404, 404, 403, 403)),
    # re-embedding (admins; the model in use is the configured one here, so a start has nothing to do)
    ("POST", "/knowledge/reembed", None, (401, 403, 403, 200, 403, 403)),
    ("GET", "/knowledge/reembed", None, (401, 403, 403, 200, 403, 403)),
    ("GET", "/knowledge/reembed/nope", None, (401, 403, 403, 404, 403, 403)),
    ("POST", "/knowledgeReembedWorker", {"runId": "r", "kind": "user", "userId": "u"},
     (403, 403, 403, 403, 403, 403)),  # only Cloud Tasks (its headers; in production its OIDC token via IAM)
    ("POST", "/media/uploads", UPLOAD, users(201)),
    ("POST", "/media", REGISTER, users(201)),  # each caller registers its own stored upload
    ("POST", "/media", {**REGISTER, "storageId": "media/{owner}/up1"}, (401, 403, 201, 403, 403, 201)),
    ("GET", "/media", None, users(200)),
    ("GET", "/media?type=video", None, users(200)),
    ("GET", "/media/m1", None, owned(200)),
    ("DELETE", "/media/m1", None, owned(204)),
    ("POST", "/media/from-url", {"url": "{files}/fox.png", "type": "image"}, users(201)),
    ("POST", "/media/m1/share", None, owned(200)),  # m1 is shared already: the same link
    ("DELETE", "/media/m1/share", None, owned(204)),
    ("GET", "/media/s/{share}", None, (302, 302, 302, 302, 403, 302)),  # public (a suspended token is refused)
    ("GET", "/media/s/nope.png", None, (404, 404, 404, 404, 403, 404)),
    # the bot reads its owner's cost summary, and no other costs route
    ("GET", "/costs/summary", None, users(200)),
    ("GET", "/costs/summary?format=text", None, users(200)),
    ("GET", "/costs/snapshots", None, (401, 200, 200, 200, 403, 403)),
]

COST_ROWS: list[tuple] = []  # (method, path, caller, status, reads, writes) of every call made

CASES = [pytest.param(m, p, b, who, st, id=f"{m} {p} as {who}")
         for m, p, b, statuses in MATRIX for who, st in zip(CALLERS, statuses)]


@pytest.fixture(scope="module")
def files():
    """A file server on 127.0.0.1 for POST /media/from-url (loopback: the local stack's setting)."""
    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(kb, callers, files):
    """The owner's chunk `chunk1` (source recipes), image `m1`, deployment `dep1` with an active bot
    credential, and for each signed-in caller a stored, unregistered upload `media/<id>/up1`."""
    owner = callers["owner"].user_id
    for c in ("owner", "other"):  # their users exist, so no call below is metered with a user's creation
        kb("GET", "/users/me", callers[c])
    now = clock.now_ms()
    text = "Apple pie: bake for forty minutes."
    store.write_chunks([Knowledge(_id="chunk1", userId=owner, text=text, source="recipes", createdAt=now)],
                       vectors.normalise(embed(text)[None, :]))
    m1 = repos.media.set(Media(_id="m1", userId=owner, type="image", storageId=f"media/{owner}/m1",
                               mimeType="image/png", createdAt=now))
    share, _ = shares.ensure(m1)
    for name in (f"media/{owner}/m1", *(f"media/{callers[c].user_id}/up1" for c in ("owner", "other", "admin"))):
        storage._bucket().blob(name).upload_from_string(PNG, content_type="image/png")
    token = bot_credentials.issue(make_deployment(owner, "dep1"), owner)
    return {**callers, "bot": token, "{files}": files, "{share}": f"{share.token}.{share.ext}"}


def call(kb, world, who, method, path, body):
    if who == "bot":
        return kb(method, path, None, json=body, headers=bot(world["bot"]))
    return kb(method, path, world[who], json=body)


@pytest.mark.parametrize("method,path,body,who,status", CASES)
def test_access(kb, world, method, path, body, who, status):
    owner = world["owner"].user_id
    me = {"anonymous": "nobody", "bot": owner}.get(who) or world[who].user_id  # whose upload a body names
    if body and "storageId" in body:
        body = {**body, "storageId": body["storageId"].format(me=me, owner=owner)}
    if body and "url" in body:
        body = {**body, "url": body["url"].replace("{files}", world["{files}"])}
    with metered() as meter:
        r = call(kb, world, who, method, path.replace("{share}", world["{share}"]), body)
    COST_ROWS.append((method, path, who, r.status_code, meter.reads, meter.writes))
    assert r.status_code == status, r.get_data(as_text=True)
    if status >= 400:
        assert set(r.json["error"]) >= {"code", "message"}


def bot_refused_elsewhere():
    """One signed-in route of every function that does not accept the Bot scheme."""
    out = []
    for api in openapi.function_apis():
        if "bot" in api.schemes:
            continue
        route = next((r for r in api.routes if r.access in ("user", "admin") and "{" not in r.path), None)
        if route is not None:
            out.append(pytest.param(route.method, openapi.openapi_path(api, route), id=api.name))
    return out


@pytest.mark.parametrize("method,path", bot_refused_elsewhere())
def test_bot_credential_is_refused_by_other_functions(kb, world, method, path):
    r = call(kb, world, "bot", method, path, {} if method in ("POST", "PUT", "PATCH") else None)
    assert r.status_code == 401, (method, path, r.get_data(as_text=True))
