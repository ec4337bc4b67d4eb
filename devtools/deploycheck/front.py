"""Google's front of Cloud Functions (gen2), on 127.0.0.1, for `make deploy-check`.

One HTTP server: `/<name>/<rest>` reaches the function `name` with path `/<rest>`, as
`https://<region>-<project>.cloudfunctions.net/<name>/<rest>` does. What Google's front does, done here:
- a PUBLIC function (deployed --allow-unauthenticated) gets the request unchanged;
- a PRIVATE function (--no-allow-unauthenticated) is reached only with `Authorization: Bearer <ID token>`
  signed by Google's key (here the local one, given as a JWK Set), `aud` = the function's URL, not expired,
  issued by Google to an account that holds roles/run.invoker on the function in the control plane.
  Otherwise the answer is Google's plain 401 (no or bad token) or 403 (valid token, no invoker role) and the
  function never sees the request. An admitted token reaches the function with its signature replaced by
  `SIGNATURE_REMOVED_BY_GOOGLE`, as Cloud Run forwards it.
Every answer is recorded (`Front.calls`), refusals with the reason Google keeps to itself, so the check can
say why a caller was turned away.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx
import jwt
from werkzeug.wrappers import Request, Response

from devtools.standins.google_tokens import strip_signature

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
LEEWAY_S = 30
# hop-by-hop headers (RFC 9110 7.6.1) and what the HTTP client sets itself
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "host", "content-length"}


@dataclass
class Target:
    """One deployed function as the front sees it."""
    name: str
    url: str  # https://<region>-<project>.cloudfunctions.net/<name>: a private function's token audience
    port: int  # where its process listens on 127.0.0.1
    public: bool
    invokers: set[str] = field(default_factory=set)  # members with roles/run.invoker ("serviceAccount:<email>")
    timeout: float = 60  # the function's --timeout: Google ends the request with a 504 after it


@dataclass
class Call:
    function: str
    method: str
    path: str
    status: int
    caller: str = ""  # the token's e-mail, for a private function
    refused: str = ""  # why the front answered 401/403 itself
    answer: str = ""  # the start of the function's own answer when it is an error


def _google_error(status: int, path: str) -> Response:
    """Google's own refusal (its front does not say why)."""
    text = {401: f"Error: Unauthorized\nYour client does not have permission to the requested URL {path}.\n",
            403: f"Error: Forbidden\nYour client does not have permission to get URL {path} from this server.\n",
            404: f"Error: Page not found\nThe requested URL {path} was not found on this server.\n"}[status]
    return Response(text, status=status, mimetype="text/plain")


class Front:
    """The WSGI app of the front; `targets` by function name, `jwks` the key set Google signs with."""

    def __init__(self, targets: dict[str, Target], jwks: dict, host: str):
        self.targets = targets
        self.keys = jwt.PyJWKSet.from_dict(jwks)
        self.host = host  # <region>-<project>.cloudfunctions.net: the Host functions see
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self.http = httpx.Client(follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def refusals(self, function: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.refused and (function is None or c.function == function)]

    def errors(self, function: str) -> list[Call]:
        """Calls the front let through that the function itself answered with an error."""
        with self._lock:
            return [c for c in self.calls if c.function == function and not c.refused and c.status >= 400]

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def admit(self, target: Target, authorization: str) -> tuple[str, str, str]:
        """(forwarded Authorization header, caller e-mail, refusal reason or "") for a private function."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "", "", "401 no bearer token"
        token = token.strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((k for k in self.keys.keys if k.key_id == kid), None)
            if key is None:
                return "", "", f"401 token not signed by a Google key (kid {kid!r})"
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=target.url, leeway=LEEWAY_S,
                                options={"require": ["exp", "iat", "aud", "iss"]})
        except jwt.InvalidTokenError as exc:
            return "", "", f"401 invalid token for {target.url}: {type(exc).__name__}: {exc}"
        email = str(claims.get("email", ""))
        if claims.get("iss") not in GOOGLE_ISSUERS:
            return "", email, f"401 token issued by {claims.get('iss')!r}, not Google"
        if not email or claims.get("email_verified") is not True:
            return "", email, "401 token without a verified e-mail"
        if f"serviceAccount:{email}" not in target.invokers and f"user:{email}" not in target.invokers:
            return "", email, f"403 {email} does not have roles/run.invoker on {target.name}"
        return f"Bearer {strip_signature(token)}", email, ""

    def __call__(self, environ, start_response):
        request = Request(environ)
        name, _, rest = request.path.lstrip("/").partition("/")
        target = self.targets.get(name)
        if target is None:
            self._record(Call(name, request.method, request.path, 404, refused="404 no such function"))
            return _google_error(404, request.path)(environ, start_response)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        caller = ""
        if not target.public:
            forwarded, caller, refused = self.admit(target, request.headers.get("Authorization", ""))
            if refused:
                status = int(refused[:3])
                self._record(Call(name, request.method, request.path, status, caller, refused))
                return _google_error(status, request.path)(environ, start_response)
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = forwarded
        headers.update({"Host": self.host, "X-Forwarded-Proto": "https",
                        "X-Forwarded-For": request.remote_addr or "127.0.0.1"})
        url = f"http://127.0.0.1:{target.port}/{rest}"
        try:
            upstream = self.http.request(request.method, url, params=request.query_string.decode() or None,
                                         headers=headers, content=request.get_data(),
                                         timeout=httpx.Timeout(target.timeout, connect=10))
        except httpx.TimeoutException:
            self._record(Call(name, request.method, request.path, 504, caller,
                              f"504 no answer within the function's timeout ({target.timeout:.0f}s)"))
            return Response("upstream request timeout\n", status=504, mimetype="text/plain")(environ, start_response)
        except httpx.HTTPError as exc:  # the instance died or never answered: Google's 503
            self._record(Call(name, request.method, request.path, 503, caller, f"503 function unreachable: {exc}"))
            return Response("Service Unavailable\n", status=503, mimetype="text/plain")(environ, start_response)
        answer = upstream.text[:300] if upstream.status_code >= 400 else ""
        self._record(Call(name, request.method, request.path, upstream.status_code, caller, answer=answer))
        out = [(k, v) for k, v in upstream.headers.items()
               if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"]
        return Response(upstream.content, status=upstream.status_code, headers=out)(environ, start_response)
