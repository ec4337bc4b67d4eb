"""shared/outbound.py: every refusal happens before any connection (the resolver is stubbed and a
connection to anything is recorded), redirects are checked hop by hop, the connection goes to the
checked address with the name kept for Host, SNI and the certificate, and size and time are bounded.
Servers here are real ones on 127.0.0.1 (loopback allowed through the local-only setting)."""
from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import socket
import ssl
import threading
import time

import pytest

from shared import config, outbound, startup


@pytest.fixture(autouse=True)
def local_env(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-test")
    monkeypatch.setenv("APP_ENV", "local")
    monkeypatch.delenv("OUTBOUND_ALLOW_LOOPBACK", raising=False)
    config.reset()
    outbound.reset()
    yield
    config.reset()
    outbound.reset()


@pytest.fixture
def loopback(monkeypatch):
    monkeypatch.setenv("OUTBOUND_ALLOW_LOOPBACK", "on")
    outbound.reset()


@pytest.fixture
def dns(monkeypatch):
    """A stub resolver: name -> addresses; every lookup is recorded."""
    table: dict[str, list[str]] = {}
    asked: list[str] = []

    def resolve(host, port):
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    monkeypatch.setattr(outbound, "resolve", resolve)
    table["asked"] = asked  # type: ignore[assignment]
    return table


@pytest.fixture
def connects(monkeypatch):
    """Every connection attempt (address, port); the real connect still happens."""
    seen: list[tuple[str, int]] = []
    real = outbound._connect

    def spy(target, address, deadline):
        seen.append((address, target.port))
        return real(target, address, deadline)

    monkeypatch.setattr(outbound, "_connect", spy)
    return seen


REFUSED_ADDRESSES = [
    "127.0.0.1", "127.8.9.10", "::1", "10.0.0.7", "172.16.3.4", "192.168.1.1", "169.254.169.254",
    "169.254.1.1", "100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "255.255.255.255", "240.0.0.1", "fe80::1",
    "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1",
    "2002:7f00:1::1", "2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "192.0.2.1", "198.18.0.1", "2001:db8::1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_a_name_resolving_to_a_non_public_address_is_refused_without_connecting(dns, connects, address):
    dns["files.example.com"] = [address]
    with pytest.raises(outbound.UnsafeUrl) as err:
        outbound.request("GET", "https://files.example.com/a.png", max_bytes=100, timeout_s=2)
    assert "refused address" in err.value.reason and ipaddress.ip_address(address).compressed in err.value.reason
    assert connects == []


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.169.254", "10.1.2.3", "[::1]", "[::ffff:7f00:1]",
                                     "[fe80::1]"])
def test_an_ip_literal_that_is_not_public_is_refused_without_resolving(dns, connects, address):
    with pytest.raises(outbound.UnsafeUrl):
        outbound.check_url(f"https://{address}/x")
    assert dns["asked"] == [] and connects == []


def test_one_non_public_address_among_public_ones_refuses_the_name(dns, connects):
    dns["mixed.example.com"] = ["93.184.216.34", "10.0.0.1"]
    with pytest.raises(outbound.UnsafeUrl, match="10.0.0.1"):
        outbound.request("GET", "https://mixed.example.com/", max_bytes=10, timeout_s=2)
    assert connects == []


@pytest.mark.parametrize("url, reason", [
    ("http://files.example.com/a.png", "only https"),
    ("ftp://files.example.com/a.png", "only https"),
    ("file:///etc/passwd", "only https"),
    ("gopher://files.example.com/", "only https"),
    ("https://user:pw@files.example.com/", "credentials"),
    ("https://metadata.google.internal/computeMetadata/v1/", "internal name"),
    ("https://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/", "internal name"),
    ("https://metadata/computeMetadata/v1/", "internal name"),
    ("https://2130706433/", "not a valid host"),
    ("https://127.1/", "not a valid host"),
    ("https://0x7f.1/", "not a valid host"),
    ("https:///nohost", "no host"),
    ("https://exa mple.com/", "well-formed"),
    ("https://files.example.com:99999/", "well-formed"),
    ("https://nowhere.example.com/", "does not resolve"),
])
def test_urls_refused_by_their_shape(dns, connects, url, reason):
    dns["files.example.com"] = ["93.184.216.34"]
    with pytest.raises(outbound.UnsafeUrl, match=reason):
        outbound.check_url(url)
    assert connects == []


def test_a_public_name_passes_and_keeps_its_addresses(dns):
    dns["files.example.com"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.34"]
    t = outbound.check_url("https://Files.Example.com/a.png?x=1")
    assert (t.host, t.port, t.path) == ("files.example.com", 443, "/a.png?x=1")
    assert t.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")


def test_loopback_and_http_only_through_the_local_setting(dns, loopback):
    dns["localhost"] = ["127.0.0.1", "::1"]
    assert outbound.check_url("http://localhost:8080/x", allow_http=True).addresses == ("127.0.0.1", "::1")
    with pytest.raises(outbound.UnsafeUrl, match="only https"):
        outbound.check_url("http://localhost:8080/x")  # the caller did not ask for http
    dns["intranet.example.com"] = ["10.0.0.1"]
    with pytest.raises(outbound.UnsafeUrl, match="private"):
        outbound.check_url("https://intranet.example.com/")  # private addresses stay refused locally


def test_the_loopback_setting_refuses_to_start_under_production_rules(monkeypatch):
    for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):  # set once the stack ran
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OUTBOUND_ALLOW_LOOPBACK", "on")
    monkeypatch.setenv("APP_ENV", "production")
    assert "OUTBOUND_ALLOW_LOOPBACK" in startup.check(outbound.settings)
    monkeypatch.setenv("APP_ENV", "deploy-check")
    assert "OUTBOUND_ALLOW_LOOPBACK" in startup.check(outbound.settings)
    monkeypatch.setenv("OUTBOUND_ALLOW_LOOPBACK", "off")
    assert startup.check(outbound.settings) is None


# --- real servers on 127.0.0.1 ---

class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    seen: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append((self.command, self.path, dict(self.headers)))
        self.routes.get(self.path, _not_found)(self)

    do_POST = do_GET


def _not_found(h):
    h.send_response(404)
    h.send_header("Content-Length", "0")
    h.end_headers()


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def plain_server():
    server = _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def routes(plain_server):
    Handler.routes, Handler.seen = {}, []
    return Handler.routes


def _reply(body: bytes, ctype="image/png", status=200, headers=()):
    def handle(h):
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    return handle


def _redirect(location, status=302):
    return _reply(b"", status=status, headers=[("Location", location)])


def test_fetch_returns_status_headers_and_body(dns, loopback, routes, plain_server, connects):
    routes["/a.png"] = _reply(b"\x89PNG data")
    r = outbound.request("GET", f"http://{plain_server}/a.png", max_bytes=100, timeout_s=5, allow_http=True)
    assert (r.status, r.body, r.headers["content-type"]) == (200, b"\x89PNG data", "image/png")
    assert connects == [("127.0.0.1", int(plain_server.split(":")[1]))]


def test_a_redirect_to_a_refused_address_is_refused_before_connecting_there(dns, loopback, routes, plain_server,
                                                                          connects):
    port = int(plain_server.split(":")[1])
    for location in ("http://169.254.169.254/computeMetadata/v1/", "https://10.0.0.5/x",
                     "https://metadata.google.internal/", "file:///etc/passwd", "http://inner.example.com/"):
        dns["inner.example.com"] = ["192.168.0.10"]
        routes["/go"] = _redirect(location)
        connects.clear()
        with pytest.raises(outbound.UnsafeUrl):
            outbound.request("GET", f"http://{plain_server}/go", max_bytes=100, timeout_s=5, allow_http=True)
        assert connects == [("127.0.0.1", port)]  # only the first hop was connected to


def test_redirects_are_followed_up_to_the_limit(dns, loopback, routes, plain_server):
    base = f"http://{plain_server}"
    routes["/r1"], routes["/r2"], routes["/r3"] = _redirect("/r2", 301), _redirect(f"{base}/r3", 307), _redirect("/f")
    routes["/f"] = _reply(b"final")
    r = outbound.request("GET", f"{base}/r1", max_bytes=100, timeout_s=5, allow_http=True)
    assert (r.body, r.url) == (b"final", f"{base}/f")
    routes["/r0"] = _redirect("/r1")
    with pytest.raises(outbound.FetchFailed, match="more than 3 redirects"):
        outbound.request("GET", f"{base}/r0", max_bytes=100, timeout_s=5, allow_http=True)
    with pytest.raises(outbound.FetchFailed, match="more than 1 redirects"):
        outbound.request("GET", f"{base}/r2", max_bytes=100, timeout_s=5, allow_http=True, max_redirects=1)


def test_a_303_turns_a_post_into_a_get_and_credentials_stay_with_their_host(dns, loopback, routes, plain_server):
    port = plain_server.split(":")[1]
    dns["other.localhost.test"] = ["127.0.0.1"]
    routes["/post"] = _redirect(f"http://other.localhost.test:{port}/landed", 303)
    routes["/landed"] = _reply(b"ok", "text/plain")
    r = outbound.request("POST", f"http://{plain_server}/post", body=b"{}", max_bytes=100, timeout_s=5,
                         headers={"Authorization": "Bearer s3cret", "Content-Type": "application/json"},
                         allow_http=True)
    assert r.body == b"ok"
    (m1, _, h1), (m2, _, h2) = Handler.seen
    assert (m1, m2) == ("POST", "GET") and h1["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in h2 and "Content-Type" not in h2 and h2["Host"] == f"other.localhost.test:{port}"


def test_size_is_bounded_with_and_without_content_length(dns, loopback, routes, plain_server):
    routes["/big"] = _reply(b"x" * 101)

    def chunked(h):
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for _ in range(5):
            h.wfile.write(b"20\r\n" + b"y" * 32 + b"\r\n")
        h.wfile.write(b"0\r\n\r\n")

    routes["/chunked"] = chunked
    routes["/ok"] = _reply(b"x" * 100)
    for path in ("/big", "/chunked"):
        with pytest.raises(outbound.TooLarge, match="100 bytes allowed|more than the 100"):
            outbound.request("GET", f"http://{plain_server}{path}", max_bytes=100, timeout_s=5, allow_http=True)
    assert len(outbound.request("GET", f"http://{plain_server}/ok", max_bytes=100, timeout_s=5,
                                allow_http=True).body) == 100


def test_time_is_bounded_in_total_even_when_bytes_keep_dripping(dns, loopback, routes, plain_server):
    def drip(h):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        try:
            for _ in range(40):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    routes["/drip"] = drip
    started = time.monotonic()
    with pytest.raises(outbound.FetchFailed, match="in time"):
        outbound.request("GET", f"http://{plain_server}/drip", max_bytes=10_000, timeout_s=0.6, allow_http=True)
    assert time.monotonic() - started < 1.2


# --- TLS: connect to the checked address, verify the name ---

def _pki(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cdn")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("cdn.example.com")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("pki")
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    d = _pki(tmp_path_factory)
    snis: list = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    ctx.sni_callback = lambda sock, name, _ctx: snis.append(name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    _serve(server)
    yield server.server_port, str(d / "ca.pem"), snis
    server.shutdown()
    server.server_close()


@pytest.fixture
def trust_test_ca(monkeypatch, tls_server):
    _, ca, _ = tls_server
    monkeypatch.setattr(outbound, "ssl_context", lambda: ssl.create_default_context(cafile=ca))


def test_https_connects_to_the_checked_address_with_the_name_for_sni_host_and_certificate(
        dns, loopback, routes, tls_server, trust_test_ca, connects):
    port, _, snis = tls_server
    dns["cdn.example.com"] = ["127.0.0.1"]
    routes["/v.mp4"] = _reply(b"video", "video/mp4")
    snis.clear()
    r = outbound.request("GET", f"https://cdn.example.com:{port}/v.mp4", max_bytes=100, timeout_s=5)
    assert (r.status, r.body) == (200, b"video")
    assert snis == ["cdn.example.com"] and Handler.seen[0][2]["Host"] == f"cdn.example.com:{port}"
    assert connects == [("127.0.0.1", port)] and dns["asked"] == ["cdn.example.com"]  # resolved once, pinned


def test_a_certificate_for_another_name_is_refused(dns, loopback, routes, tls_server, trust_test_ca):
    port, _, _ = tls_server
    dns["images.example.org"] = ["127.0.0.1"]
    routes["/a.png"] = _reply(b"png")
    with pytest.raises(outbound.FetchFailed, match="certificate"):
        outbound.request("GET", f"https://images.example.org:{port}/a.png", max_bytes=100, timeout_s=5)
    with pytest.raises(outbound.FetchFailed, match="certificate"):  # an IP literal is not the name in the certificate
        outbound.request("GET", f"https://127.0.0.1:{port}/a.png", max_bytes=100, timeout_s=5)
