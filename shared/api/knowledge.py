"""`knowledge`: the caller's knowledge base (ingest, vector search, list, delete),
and the deployment owner's bot credentials. Accepts `Authorization: Bot <token>`
from a deployment's bot, acting as that deployment's owner."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared import bot_credentials, repos
from shared.api.inputs import Flag, Omittable, PageQuery, Strict
from shared.embeddings import DIMENSIONS
from shared.errors import Conflict, Malformed, Unavailable, not_found
from shared.http import Api, Request, list_of, page_of
from shared.knowledge import settings, store  # service and reembed (numpy) load on their routes' first call

MAX_DIMENSIONS = 4096
api = Api("knowledge", "Knowledge base with vector search",
          schemes={bot_credentials.SCHEME: bot_credentials.authenticate})

SourceName = Annotated[str, StringConstraints(min_length=1, max_length=500)]


class IngestBody(Strict):
    text: str = Field(min_length=1, max_length=settings.MAX_TEXT_CHARS)
    source: SourceName


class SearchBody(Strict):
    # exactly one of query and vector (said in the document too); neither may be null
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["query"]}, {"required": ["vector"]}]})
    query: Omittable[str] = Field(None, min_length=1, max_length=8000)
    vector: Omittable[list[float]] = Field(None, min_length=64, max_length=MAX_DIMENSIONS,
                                           description="as many numbers as your knowledge base's embedding model "
                                                       f"has dimensions ({DIMENSIONS} by default); 409 otherwise")
    limit: int = Field(10, ge=1, le=100)
    mmr: bool = False  # re-rank for diversity (maximal marginal relevance)
    mmrLambda: float = Field(0.5, ge=0.0, le=1.0)  # 1 = relevance only, 0 = diversity only

    @model_validator(mode="after")
    def _one_of(self):
        if (self.query is None) == (self.vector is None):
            raise ValueError("give exactly one of query or vector")
        return self


class ListQuery(PageQuery):
    source: SourceName | None = None


class DeleteQuery(Strict):
    # exactly one of ?source=... and ?all=true (said in the document too)
    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["source"]}, {"required": ["all"], "properties": {"all": {"const": True}}}]})
    source: SourceName | None = None
    all: Flag = False


# responses
class KnowledgeChunk(BaseModel):
    """A stored chunk as the API shows it: everything but its 1536-float embedding."""
    id: str = Field(alias="_id")
    userId: str
    text: str
    source: str
    createdAt: int


class SearchHit(KnowledgeChunk):
    score: float = Field(description="cosine similarity to the query")


class IngestResult(BaseModel):
    source: str
    chunks: int = Field(description="chunks the text made")
    stored: int
    duplicates: int = Field(description="chunks skipped as near-duplicates")
    ids: list[str] = Field(description="ids of the stored chunks")


class Deleted(BaseModel):
    deleted: int


class BotCredentialView(BaseModel):
    deploymentId: str
    userId: str
    createdAt: int
    revokedAt: int | None
    active: bool


class IssuedBotCredential(BotCredentialView):
    token: str = Field(description="shown only once: send it as `Authorization: Bot <token>`")


@api.route("POST", "/", body=IngestBody, status=201, response=IngestResult, idempotent=True,
           rate="embeddings")
def ingest(req: Request):
    """Chunk, embed and store a text under a source; near-duplicate chunks are skipped."""
    from shared.knowledge import service

    return service.ingest(req.caller.id, req.body.text, req.body.source)


@api.route("POST", "/search", body=SearchBody, response=list_of(SearchHit), rate="embeddings", reads=True)
def search(req: Request):
    """The caller's chunks nearest to a query text or vector, best first, with scores."""
    from shared.knowledge import service

    b = req.body
    return {"items": service.search(req.caller.id, b.query, b.vector, b.limit, b.mmr, b.mmrLambda)}


@api.route("GET", "/", query=ListQuery, response=page_of(KnowledgeChunk))
def list_chunks(req: Request):
    """The caller's chunks, newest first (optionally of one source)."""
    equals = {"userId": req.caller.id}
    if req.query.source:
        equals["source"] = req.query.source
    return repos.knowledge.page(equals, (("createdAt", "DESCENDING"),), req.query.limit, req.query.cursor,
                                fields=store.FIELDS)


@api.route("GET", "/{chunkId}", response=KnowledgeChunk)
def get_chunk(req: Request):
    """One chunk."""
    item = repos.knowledge.get(req.params["chunkId"])
    if item is None or not req.caller.can_access(item.userId):
        raise not_found("knowledge chunk")
    return item


@api.route("DELETE", "/{chunkId}", status=204)
def delete_chunk(req: Request):
    """Delete one chunk."""
    item = repos.knowledge.get(req.params["chunkId"])
    if item is None or not req.caller.can_access(item.userId):
        raise not_found("knowledge chunk")
    repos.knowledge.delete(item.id)
    return None


@api.route("DELETE", "/", query=DeleteQuery, response=Deleted)
def delete_many(req: Request):
    """Delete the caller's chunks of one source (?source=...) or all of them (?all=true)."""
    q = req.query
    if bool(q.source) == q.all:
        raise Malformed("invalid_delete", "give either ?source=... or ?all=true")
    equals = {"userId": req.caller.id, **({"source": q.source} if q.source else {})}
    return {"deleted": store.delete_where(equals)}


# bot credentials: the owner (or an admin) issues, inspects and revokes them; a bot never does
def _deployment_for(req: Request):
    bot_credentials.require_human(req.caller)
    dep = repos.deployments.get(req.params["deploymentId"])
    if dep is None or not req.caller.can_access(dep.userId):
        raise not_found("deployment")
    return dep


@api.route("POST", "/bot-credentials/{deploymentId}", status=201, response=IssuedBotCredential, idempotent=True)
def issue_credential(req: Request):
    """Issue (or rotate) the deployment bot's credential; the token is shown only here. It is also
    written where the bot's VM reads it (Secret Manager); the previous token keeps working for
    10 minutes, so the running bot picks the new one up without a 401."""
    dep = _deployment_for(req)
    with _credential_store():
        token = bot_credentials.issue(dep.id, dep.userId)
    status = bot_credentials.status(dep.id)
    assert status is not None  # just issued
    return {**status.to_api(), "token": token}


@contextmanager
def _credential_store():
    """Errors of the credential's two stores as API errors (nothing changed in either)."""
    from google.api_core import exceptions as gexc

    try:
        yield
    except bot_credentials.Busy:
        raise Conflict("credential_busy", "the bot credential is being changed by another request; "
                                          "try again") from None
    except gexc.GoogleAPICallError as exc:
        raise Unavailable("secret_store_unavailable", f"Secret Manager did not store the credential "
                                                      f"({exc.code}); nothing changed, try again") from None


@api.route("GET", "/bot-credentials/{deploymentId}", response=BotCredentialView)
def credential_status(req: Request):
    """Whether the deployment's bot has an active credential (never the token)."""
    dep = _deployment_for(req)
    cred = bot_credentials.status(dep.id)
    if cred is None:
        raise not_found("bot credential")
    return cred


@api.route("DELETE", "/bot-credentials/{deploymentId}", status=204)
def revoke_credential(req: Request):
    """Revoke the deployment bot's credential."""
    dep = _deployment_for(req)
    with _credential_store():
        revoked = bot_credentials.revoke(dep.id)
    if not revoked:
        raise not_found("active bot credential")
    return None


# re-embedding (shared/knowledge/reembed.py): an admin starts it and reads its progress
class EmbeddingSpace(BaseModel):
    model: str
    dimensions: int
    slot: str


class ReembedRun(BaseModel):
    model_config = ConfigDict(extra="allow")
    runId: str
    status: str = Field(description="running | completed")
    usersTotal: int = Field(description="users counted so far (final once pagesDone)")
    usersDone: int = Field(description="users switched to the new version")
    chunksEmbedded: int = Field(description="chunks embedded by the run's recorded batches")
    chunksSkipped: int = Field(description="chunks that already held the new version (ingested during the run, "
                                           "or written by a batch that crashed before recording itself)")
    pagesDone: bool


class ReembedReport(BaseModel):
    active: EmbeddingSpace = Field(description="the version users not yet switched search")
    target: EmbeddingSpace | None = Field(description="the version a running run moves to")
    run: ReembedRun | None
    started: bool | None = None


@api.route("POST", "/reembed", access="admin", status=(202, 200), response=ReembedReport)
def start_reembed(req: Request):
    """Admin: re-embed every chunk into the configured model and dimensions (EMBEDDINGS_MODEL,
    EMBEDDINGS_DIMENSIONS); 202 when started, 200 with the running (or last) run otherwise."""
    from shared.knowledge import reembed

    report, started = reembed.start(req.caller.id)
    return {**report, "started": started}, (202 if started else 200)


@api.route("GET", "/reembed", access="admin", response=ReembedReport)
def reembed_status(req: Request):
    """Admin: the version in use, the target of a running run, and the latest run's progress."""
    from shared.knowledge import reembed
    from shared.knowledge.space import installation

    return {**reembed.report(installation()[2]), "started": None}


@api.route("GET", "/reembed/{runId}", access="admin", response=ReembedReport)
def reembed_run(req: Request):
    """Admin: one run's progress."""
    from shared.knowledge import reembed

    return {**reembed.require_run(req.params["runId"]), "started": None}
