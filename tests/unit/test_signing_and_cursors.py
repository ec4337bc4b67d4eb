"""Signatures of outgoing webhooks (verified as a receiver would) and the opaque page cursors."""
from __future__ import annotations

import pytest

from shared import db
from shared.notifications import signing


def test_a_signed_delivery_verifies_and_tampering_does_not():
    body = b'{"kind":"deploy.failed"}'
    value = signing.header(["whsec_a"], body, timestamp=1_700_000_000)
    assert signing.verify("whsec_a", body, value, now=1_700_000_100) == 1_700_000_000
    for secret, data, now in (("whsec_b", body, 1_700_000_100), ("whsec_a", body + b" ", 1_700_000_100),
                              ("whsec_a", body, 1_700_000_000 + signing.TOLERANCE_S + 1)):
        with pytest.raises(signing.BadSignature):
            signing.verify(secret, data, value, now=now)
    for bad in ("", "t=1", "v1=00", "t=x,v1=00", "t=1,t=2,v1=00"):
        with pytest.raises(signing.BadSignature):
            signing.verify("whsec_a", body, bad, now=1)


def test_during_a_rotation_either_secret_verifies():
    value = signing.header(["whsec_old", "whsec_new"], b"x", timestamp=10)
    assert value.count("v1=") == 2
    assert signing.verify("whsec_old", b"x", value, now=10) == signing.verify("whsec_new", b"x", value, now=10) == 10


def test_cursors_round_trip_and_foreign_ones_are_refused():
    values = [1_700_000_000_000, "doc/id with spaces é"]
    cursor = db.encode_cursor(values)
    assert "=" not in cursor and db.decode_cursor(cursor, 2) == values
    for bad, n in ((cursor, 3), ("not base64!", 2), (db.encode_cursor([1, 2]), 2), (db.encode_cursor({"a": 1}), 1),
                   (db.encode_cursor([[1], "x"]), 2)):
        with pytest.raises(Exception) as info:
            db.decode_cursor(bad, n)
        assert getattr(info.value, "code", None) == "invalid_cursor", bad


def test_page_limits_and_document_ids():
    assert db.page_limit(None) == db.PAGE_DEFAULT and db.page_limit(db.PAGE_MAX) == db.PAGE_MAX
    for bad in (0, db.PAGE_MAX + 1):
        with pytest.raises(Exception) as info:
            db.page_limit(bad)
        assert getattr(info.value, "code", None) == "invalid_limit"
    assert db.valid_id("u_123") and not any(db.valid_id(i) for i in ("", "a/b", ".", "..", "__x__", "x" * 1501))
