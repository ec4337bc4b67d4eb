"""`knowledgeReembedWorker`: one task of a re-embedding run (Cloud Tasks only; shared/knowledge/reembed.py).
Deployed private: Google's front checks the task's OIDC token, shared/google_identity.py its claims."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.api.inputs import Strict
from shared.errors import Unavailable
from shared.http import Api, Request, tasks_caller
from shared.knowledge import reembed, settings

Id = Annotated[str, StringConstraints(min_length=1, max_length=1500, pattern=r"^[^/\s]+$")]

api = Api("knowledgeReembedWorker", "One batch of a re-embedding run (Cloud Tasks target)")


class ReembedTask(Strict):
    runId: Id
    kind: Literal["users", "user"]
    page: int | None = Field(None, ge=0, le=10**7)
    userId: Id | None = None
    round: int = Field(0, ge=0, le=100)
    cursor: Id | None = Field(None, description="users: the page cursor; user: the last chunk id done")

    @model_validator(mode="after")
    def _shape(self):
        if (self.kind == "users") != (self.page is not None) or (self.kind == "user") != (self.userId is not None):
            raise ValueError("users tasks take page, user tasks take userId")
        return self


class ReembedTaskResult(BaseModel):
    model_config = ConfigDict(extra="allow")


@api.route("POST", "/", access="cloud_tasks", machine=tasks_caller(settings.reembed),
           body=ReembedTask, response=ReembedTaskResult)
def run_task(req: Request):
    """Run one task: a page of users (fan-out) or one batch of one user's chunks."""
    b = req.body
    try:
        if b.kind == "users":
            return reembed.users_page(b.runId, b.page, b.cursor)
        return reembed.user_batch(b.runId, b.userId, b.round, b.cursor)
    except reembed.Retry as exc:
        raise Unavailable("retry_later", str(exc), retry_after=10) from None
