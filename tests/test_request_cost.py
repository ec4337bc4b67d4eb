"""What one call costs in Firestore reads and writes; a list costs its page size plus a constant."""
import pytest

from devtools.firestore_meter import metered
from shared import clock, repos
from shared.models import CmsPage, User


def cost(api, *args, **kwargs):
    with metered() as m:
        r = api(*args, **kwargs)
    assert r.status_code < 400, r.json
    return m.reads, m.writes


def test_meter_counts_what_firestore_bills(api, callers):
    with metered() as m:
        repos.cms_pages.get("missing")
        repos.cms_pages.first(slug="missing")
        repos.cms_pages.set(CmsPage(_id="a", slug="a", title="t", body="b", createdAt=1, updatedAt=1))
    assert (m.reads, m.writes) == (2, 1)


@pytest.mark.parametrize("path", ["/users", "/cmsPages"])
def test_list_costs_page_size_plus_constant(api, callers, path):
    admin = callers["admin"]
    now = clock.now_ms()
    for i in range(30):
        repos.cms_pages.set(CmsPage(_id=f"p{i}", slug=f"p{i}", title="t", body="b", createdAt=now, updatedAt=now + i))
        repos.users.set(User(_id=f"u{i}", clerkId=f"c{i}", createdAt=now + i))
    api("GET", "/users/me", admin)  # lastSeenAt fresh: no write during the measured calls
    small = cost(api, "GET", f"{path}?limit=2", admin)
    big = cost(api, "GET", f"{path}?limit=7", admin)
    assert big[0] - small[0] == 5 and small[1] == big[1] == 1  # the caller's rate-limit counter (one write)
    assert small[0] <= 2 + 2  # page + one look-ahead row + the caller's user lookup


def test_public_read_is_one_query(api, callers):
    now = clock.now_ms()
    repos.cms_pages.set(CmsPage(_id="about", slug="about", title="t", body="b", published=True,
                                createdAt=now, updatedAt=now))
    assert cost(api, "GET", "/cmsPages/about") == (1, 0)
