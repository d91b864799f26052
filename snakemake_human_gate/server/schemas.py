"""The REST API's shapes (pydantic): what /openapi.json publishes, what answers are checked
against."""

from typing import Any, Literal

from pydantic import BaseModel, Field

Scalar = float | int | str | bool


class Problem(BaseModel):
    """Every refusal: a message for people and a fixed code for programs."""

    detail: str
    reason: str


class Me(BaseModel):
    user: str


class FieldView(BaseModel):
    name: str
    type: Literal["float", "int", "str", "bool"]
    choices: list[Any] | None
    min: float | None
    max: float | None
    default: Any
    required: bool


class ArtifactView(BaseModel):
    index: int
    name: str
    path: str = Field(description="absolute path on the server")
    kind: Literal["image", "json", "csv", "text", "other"]
    size: int | None = Field(description="bytes; null when the file is gone")
    sha256: str = Field(description="digest recorded when the gate was asked")
    url: str


class VoteView(BaseModel):
    by: str
    choice: str
    fields: dict[str, Any]
    at: str
    comment: str


class DecisionView(BaseModel):
    gate: str
    choice: str
    fields: dict[str, Any]
    by: list[str]
    at: str
    comment: str
    timeout: bool


class GateView(BaseModel):
    id: str
    rule: str
    wildcards: dict[str, str]
    question: str
    choices: list[str]
    fields: list[FieldView]
    approvers: list[str] | None = Field(description="null: anyone may decide")
    quorum: int
    allow_self_approval: bool
    fail_on: list[str]
    requested_by: str
    status: Literal["pending", "decided", "expired"]
    asked_at: str
    waiting_seconds: float
    timeout_at: str | None
    on_timeout: str | None
    artifacts: list[ArtifactView]
    votes: list[VoteView]
    decision: DecisionView | None
    may_decide: bool = Field(description="whether the caller may answer it now")


class GateDetail(GateView):
    audit: list[dict[str, Any]] = Field(description="the gate's audit log entries, oldest first")


class GateList(BaseModel):
    gates: list[GateView]


class DecisionBody(BaseModel):
    """``POST /api/gates/{id}/decision``: read from the raw body by ``payload.parse_body``."""

    model_config = {"extra": "forbid"}

    choice: str = Field(max_length=200)
    fields: dict[str, Scalar] = Field(default_factory=dict)
    comment: str = Field(default="", max_length=10_000)


class HookDecisionBody(DecisionBody):
    """``POST /hooks/decision``: the same, naming the gate."""

    gate: str = Field(max_length=200)
