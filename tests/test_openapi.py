"""The OpenAPI document: generated from the routes' own models, and it matches what is served."""
import pytest

from devtools import openapi
from functions import FUNCTIONS


@pytest.fixture(scope="module")
def doc():
    return openapi.document()


def test_document_is_openapi_3_1_and_loads_in_schemathesis(doc):
    import schemathesis

    assert doc["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(doc)
    assert len(list(schema.get_all_operations())) == sum(len(v) for v in doc["paths"].values())


def test_every_served_route_is_documented_and_vice_versa(doc):
    apis = openapi.function_apis()
    assert [a.name for a in apis] == [f.name for f in FUNCTIONS if f.trigger == "http"]
    served = {(r.method.lower(), openapi.openapi_path(a, r)) for a in apis for r in a.routes}
    # a route whose body depends on a path parameter: also a path for each value with a body of its own
    served |= {(r.method.lower(), p) for a in apis for r in a.routes for p in openapi.documented_paths(a, r)}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented


def test_documented_paths_reach_their_route(client, doc):
    """Each documented method+path reaches a handler through the served app (no 'no route' 404, no 405)."""
    for path, ops in doc["paths"].items():
        concrete = path.replace("{", "x-").replace("}", "")
        for method in ops:
            r = client.open(concrete, method=method.upper())
            assert r.status_code != 405, (method, path)
            if r.status_code == 404:
                assert not r.json["error"]["message"].startswith("no route"), (method, path)


def test_success_responses_declare_a_model(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if status == "default" or status == "204":
                    continue
                if status.startswith("3"):
                    assert "Location" in resp["headers"], f"{method} {path} {status} documents no Location"
                else:
                    assert "content" in resp, f"{method} {path} {status} has no response model"


def test_dev_server_serves_document_and_docs_page(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.json["paths"]
    page = client.get("/docs")
    assert page.status_code == 200 and b"/openapi.json" in page.data


def test_docs_page_loads_nothing_from_outside(client):
    """Offline and behind a proxy: every script and style of /docs is served here."""
    import re

    page = client.get("/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200 and len(r.data) > 500, asset
    assert client.get("/docs/package.json").status_code == 404  # only the listed files
