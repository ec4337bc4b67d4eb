"""A local server speaking OpenAI's embeddings API (`POST /v1/embeddings`),
with deterministic vectors, for tests, `make dev` and the benchmark.

A text's vector is the normalised sum of one fixed pseudo-random vector per
lower-cased word, so texts sharing words are close and a query finds the
chunks that contain its words. Each model has its own word vectors (as real
models do: vectors of two models are not comparable); text-embedding-3-small's
are the ones this server always gave. Request and response follow OpenAI's wire
format: `input` as a string or list, `dimensions`, `encoding_format`
("float" or "base64" little-endian float32, which the openai client asks for),
`usage`, and `{"error": {...}}` bodies with OpenAI's statuses.

Usage: python -m devtools.standins.openai_embeddings PORT
The provider stand-in (devtools/standins/providers.py) serves the same answers at
/openai/v1/embeddings, so one OPENAI_BASE_URL serves costs and embeddings locally.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DIMENSIONS = 1536
MAX_INPUTS = 2048
DEFAULT_MODEL = "text-embedding-3-small"
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=100_000)
def word_vector(word: str, dims: int, model: str = DEFAULT_MODEL) -> np.ndarray:
    salted = word if model == DEFAULT_MODEL else f"{model}\0{word}"
    seed = int.from_bytes(hashlib.sha256(salted.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dims)


def embed(text: str, dims: int = DIMENSIONS, model: str = DEFAULT_MODEL) -> np.ndarray:
    """The vector this server returns for `text` (float32, unit length)."""
    words = _WORD.findall(text.lower()) or [text]
    v = np.sum([word_vector(w, dims, model) for w in words], axis=0)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _error(status: int, message: str, type_: str, code: str | None = None) -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": type_, "param": None, "code": code}}


def answer(authorization: str, body: bytes) -> tuple[int, dict]:
    """(status, JSON body) of `POST /v1/embeddings`, as OpenAI answers it."""
    if not authorization.startswith("Bearer "):
        return _error(401, "You didn't provide an API key.", "invalid_request_error")
    try:
        req = json.loads(body)
    except ValueError:
        return _error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
    inputs = req.get("input")
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not req.get("model") or not isinstance(inputs, list) or not inputs \
            or not all(isinstance(t, str) and t for t in inputs):
        return _error(400, "'input' must be a non-empty string or array of non-empty strings",
                      "invalid_request_error")
    if len(inputs) > MAX_INPUTS:
        return _error(400, f"'input' must have at most {MAX_INPUTS} items", "invalid_request_error")
    dims = req.get("dimensions") or DIMENSIONS
    fmt = req.get("encoding_format") or "float"
    data = []
    for i, text in enumerate(inputs):
        v = embed(text, dims, req["model"])
        value = base64.b64encode(v.astype("<f4").tobytes()).decode() if fmt == "base64" else v.tolist()
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(len(_WORD.findall(t)) or 1 for t in inputs)
    return 200, {"object": "list", "data": data, "model": req["model"],
                 "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: tests read results, not access logs
        pass

    def _send(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
            return self._send(*_error(404, f"Unknown request URL: POST {self.path}", "invalid_request_error",
                                      "unknown_url"))
        self._send(*answer(self.headers.get("Authorization", ""), body))


def main() -> None:
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()


if __name__ == "__main__":
    main()
