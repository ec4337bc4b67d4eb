"""Per-deployment bot credentials: issued for a deployment, stored as a hash,
revocable, acting as the owner on the knowledge and media functions only."""
import threading
import time

import pytest
from google.api_core import exceptions as gexc
from knowledge_support import bot, make_deployment

from shared import bot_credentials, clock, repos
from shared.deploy import secrets


def issue(kb, caller, dep):
    r = kb("POST", f"/knowledge/bot-credentials/{dep}", caller)
    assert r.status_code == 201, r.json
    return r.json["token"]


def test_issue_stores_only_a_hash_and_the_bot_acts_as_owner(kb, callers):
    dep = make_deployment(callers["owner"].user_id)
    token = issue(kb, callers["owner"], dep)
    stored = bot_credentials.credentials.col.document(dep).get().to_dict()
    assert token not in str(stored) and stored["tokenHash"] and stored["userId"] == callers["owner"].user_id
    r = kb("POST", "/knowledge", None, json={"text": "the bot remembers this", "source": "bot"}, headers=bot(token))
    assert r.status_code == 201, r.json
    assert repos.knowledge.require(r.json["ids"][0]).userId == callers["owner"].user_id
    found = kb("POST", "/knowledge/search", None, json={"query": "remembers"}, headers=bot(token)).json["items"]
    assert [i["source"] for i in found] == ["bot"]
    listed = kb("GET", "/media", None, headers=bot(token))
    assert listed.status_code == 200 and listed.json["items"] == []
    status = kb("GET", f"/knowledge/bot-credentials/{dep}", callers["owner"]).json
    assert status["active"] is True and "token" not in status and "tokenHash" not in status


def test_bot_cannot_reach_other_functions_or_mint_credentials(kb, callers):
    dep = make_deployment(callers["owner"].user_id)
    token = issue(kb, callers["owner"], dep)
    assert kb("GET", "/users/me", None, headers=bot(token)).status_code == 401
    assert kb("POST", f"/knowledge/bot-credentials/{dep}", None, headers=bot(token)).status_code == 403
    assert kb("DELETE", f"/knowledge/bot-credentials/{dep}", None, headers=bot(token)).status_code == 403


def test_bot_of_an_admin_is_not_an_admin(kb, callers):
    admin = callers["admin"]
    mine = kb("POST", "/knowledge", callers["owner"], json={"text": "private note", "source": "s"}).json["ids"][0]
    token = issue(kb, admin, make_deployment(admin.user_id, "dep-admin"))
    assert kb("GET", f"/knowledge/{mine}", admin).status_code == 200  # the admin may
    assert kb("GET", f"/knowledge/{mine}", None, headers=bot(token)).status_code == 404  # its bot may not


def test_revoke_rotate_and_foreign_deployments(kb, callers):
    dep = make_deployment(callers["owner"].user_id)
    assert kb("POST", f"/knowledge/bot-credentials/{dep}", callers["other"]).status_code == 404
    old = issue(kb, callers["owner"], dep)
    new = issue(kb, callers["owner"], dep)  # rotating replaces the old token, after a short overlap
    assert secrets.access(dep, bot_credentials.TOKEN_KEY) == new  # where the VM reads it
    assert kb("GET", "/knowledge", None, headers=bot(old)).status_code == 200  # in-flight calls still work
    assert kb("GET", "/knowledge", None, headers=bot(new)).status_code == 200
    stored = bot_credentials.status(dep)
    assert stored.previousValidUntil - stored.createdAt == bot_credentials.OVERLAP_MS
    bot_credentials.credentials.update(dep, {"previousValidUntil": clock.now_ms() - 1})  # 10 minutes later
    assert kb("GET", "/knowledge", None, headers=bot(old)).status_code == 401
    newer = issue(kb, callers["owner"], dep)
    assert kb("DELETE", f"/knowledge/bot-credentials/{dep}", callers["owner"]).status_code == 204
    r = kb("GET", "/knowledge", None, headers=bot(newer))
    assert r.status_code == 401 and "revoked" in r.json["error"]["message"]
    assert kb("GET", "/knowledge", None, headers=bot(new)).status_code == 401  # no overlap after a revoke
    with pytest.raises(gexc.NotFound):  # and the VM has no token to read any more
        secrets.access(dep, bot_credentials.TOKEN_KEY)
    assert kb("DELETE", f"/knowledge/bot-credentials/{dep}", callers["owner"]).status_code == 404
    assert kb("GET", f"/knowledge/bot-credentials/{dep}", callers["owner"]).json["active"] is False


def test_issue_at_deploy_and_deleted_deployment(kb, callers):
    """The deploy flow calls issue() itself (in its transaction or not)."""
    assert kb("GET", "/users/me", callers["owner"]).status_code == 200  # the owner's users document
    dep = make_deployment(callers["owner"].user_id, "dep2")
    token = bot_credentials.issue(dep, callers["owner"].user_id)
    assert kb("GET", "/media", None, headers=bot(token)).status_code == 200
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    malformed = ("ocb.__x__.secret", "ocb...secret", "ocb." + "d" * 1600 + ".secret", f"ocb.{dep}.")
    for bad in (forged, "ocb.nope.secret", "garbage", *malformed):  # ids Firestore refuses are 401, not 404
        r = kb("GET", "/media", None, headers=bot(bad))
        assert r.status_code == 401 and r.json["error"]["code"] == "unauthenticated", (bad[:40], r.json)
    repos.deployments.delete(dep)
    assert kb("GET", "/media", None, headers=bot(token)).status_code == 401


def test_bot_of_a_suspended_owner_is_refused(kb, callers):
    sus = callers["suspended"]
    token = bot_credentials.issue(make_deployment(sus.user_id, "dep-s"), sus.user_id)
    r = kb("GET", "/knowledge", None, headers=bot(token))
    assert r.status_code == 403 and r.json["error"]["code"] == "suspended"


def test_rotating_while_the_bot_calls_never_gives_it_a_401(kb, callers):
    """The bot re-reads its token from Secret Manager now and then (the VM's timer) and calls all
    the time; the owner rotates three times meanwhile: every call succeeds."""
    dep = make_deployment(callers["owner"].user_id, "dep-rot")
    issue(kb, callers["owner"], dep)
    statuses, stop = [], threading.Event()

    def bot_loop():
        token, read_at = secrets.access(dep, bot_credentials.TOKEN_KEY), time.monotonic()
        while not stop.is_set():
            if time.monotonic() - read_at > 0.3:  # the VM's periodic re-read (every 2 minutes on a VM)
                token, read_at = secrets.access(dep, bot_credentials.TOKEN_KEY), time.monotonic()
            statuses.append(kb("GET", "/knowledge", None, headers=bot(token)).status_code)

    t = threading.Thread(target=bot_loop)
    t.start()
    try:
        for _ in range(3):
            time.sleep(0.4)
            issue(kb, callers["owner"], dep)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(10)
    assert len(statuses) > 10 and set(statuses) == {200}, statuses


def test_concurrent_issues_leave_one_credential_in_both_places(kb, callers):
    """Two rotations at once: one lease at a time, so Secret Manager's newest token is the one
    Firestore holds as current."""
    from concurrent.futures import ThreadPoolExecutor

    assert kb("GET", "/users/me", callers["owner"]).status_code == 200  # the owner's users document
    dep = make_deployment(callers["owner"].user_id, "dep-race")
    with ThreadPoolExecutor(4) as pool:
        tokens = list(pool.map(lambda _: bot_credentials.issue(dep, callers["owner"].user_id), range(4)))
    assert len(set(tokens)) == 4
    latest = secrets.access(dep, bot_credentials.TOKEN_KEY)
    assert bot_credentials.status(dep).tokenHash == bot_credentials._hash(latest)
    r = kb("GET", "/knowledge", None, headers=bot(latest))
    assert r.status_code == 200, (r.json, bot_credentials.status(dep))
