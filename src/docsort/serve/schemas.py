"""Request and answer bodies. Limits are declared here so the OpenAPI schema states them and
pydantic refuses an oversized field before the model sees it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from docsort.serve.limits import MAX_BATCH, MAX_COMMENT_CHARS, MAX_KEY_CHARS, MAX_TEXT_CHARS

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Record = Annotated[dict[str, Text], Field(min_length=1, max_length=16)]


def _given(name: str, kind: str) -> dict[str, Any]:
    """JSON Schema: ``name`` is present and not null (an absent or null field is not given)."""
    return {"required": [name], "properties": {name: {"type": kind}}}


def _one_of(*fields: tuple[str, str]) -> list[dict[str, Any]]:
    """JSON Schema branches for "exactly one of ``fields`` is given": in each, one is given
    and every other is absent or null (``properties`` only constrain the fields present)."""
    return [
        {"required": [name], "properties": {other: {"type": kind if other == name else "null"}
                                            for other, kind in fields}}
        for name, kind in fields
    ]  # fmt: skip


class ClassifyRequest(BaseModel):
    """Exactly one of ``text``, ``texts`` or ``records`` (the columns the model was trained
    with: ``title``/``abstract``, or ``anchor``/``target``/``context`` for a pair model)."""

    # the rule of _one_input, stated in the schema too (so a generated client knows it)
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": _one_of(("text", "string"), ("texts", "array"),
                                            ("records", "array"))},
    )  # fmt: skip

    text: Text | None = None
    texts: Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH)] | None = None
    records: Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH)] | None = None
    top_k: Annotated[int, Field(ge=1, le=1000)] | None = None
    explain: bool = Field(
        False,
        description="Add each text's windows with their probabilities and, where the kind has "
        "them (tfidf), the n-grams that pushed it toward its labels",
    )

    @model_validator(mode="after")
    def _one_input(self) -> ClassifyRequest:
        given = [n for n in ("text", "texts", "records") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of text, texts or records")
        return self

    def inputs(self) -> list[str] | list[dict[str, str]]:
        if self.text is not None:
            return [self.text]
        return self.texts if self.texts is not None else self.records  # type: ignore[return-value]


class ModelInfo(BaseModel):
    name: str
    kind: str
    version: str


class Window(BaseModel):
    """A piece of the text as the model read it (a short text is one piece)."""

    start: int
    end: int
    tokens: int
    probabilities: dict[str, float]


class Feature(BaseModel):
    """An n-gram of the text and how far it pushed the text toward the label."""

    feature: str
    source: str
    weight: float


class Prediction(BaseModel):
    """One row exactly as ``docsort predict`` writes it, plus its id."""

    model_config = ConfigDict(extra="allow")

    id: str
    label: str | None = None
    labels: list[str] | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    stage: str | None = None
    score: float | None = None
    windows: list[Window] | None = None
    features: dict[str, list[Feature]] | None = None


class ClassifyAnswer(BaseModel):
    model: ModelInfo
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    """A correction (``label`` or ``labels``) and/or a ``rating`` of a prediction, named by
    its id or by the text it was about."""

    # the rules of _what_and_about, stated in the schema too
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                {"oneOf": _one_of(("prediction_id", "string"), ("text", "string"))},
                {"not": {"allOf": [_given("label", "string"), _given("labels", "array")]}},
                {"anyOf": [_given("label", "string"), _given("labels", "array"),
                           _given("rating", "integer")]},
            ]
        },
    )  # fmt: skip

    prediction_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    text: Text | None = None
    label: Label | None = None
    labels: Annotated[list[Label], Field(min_length=1, max_length=100)] | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    comment: Annotated[str, Field(max_length=MAX_COMMENT_CHARS)] | None = None
    idempotency_key: Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS)] | None = None

    @model_validator(mode="after")
    def _what_and_about(self) -> FeedbackRequest:
        if (self.prediction_id is None) == (self.text is None):
            raise ValueError("give exactly one of prediction_id or text")
        if self.label is not None and self.labels is not None:
            raise ValueError("give label or labels, not both")
        if self.label is None and self.labels is None and self.rating is None:
            raise ValueError("give a label, labels or a rating")
        return self

    def given_labels(self) -> list[str] | None:
        return [self.label] if self.label is not None else self.labels


class FeedbackAnswer(BaseModel):
    id: int
    prediction_id: str | None = None
    replayed: bool = Field(False, description="true: this idempotency key was stored before")


class Problem(BaseModel):
    """Every 4xx/5xx body: one line saying what to fix."""

    detail: str


class Extracted(BaseModel):
    """An uploaded file's text, to classify; nothing is stored."""

    text: str
    type: str
    pages: int
    language: str | None = None
    notes: list[str] = []


class Health(BaseModel):
    status: str
    model: bool = True
    store: bool | None = None


class ModelList(BaseModel):
    models: list[dict[str, Any]]


class TrafficBucket(BaseModel):
    start: str = Field(description="The bucket's first hour or day, UTC (YYYY-MM-DDTHH:00)")
    predictions: int = Field(description="Predictions logged (documents classified)")
    stages: dict[str, int] = Field(description="Predictions by the cascade stage that answered")
    feedback: int = Field(description="Feedback rows stored")
    corrected: int = Field(description="Feedback rows with a label for a logged prediction")
    correct: int = Field(description="Of those, the ones that name the predicted label(s)")
    accuracy: float | None = Field(description="correct / corrected; null without corrections")


class Traffic(BaseModel):
    """Recent traffic from the store, for the web page's second view."""

    since: str = Field(description="The window's start, UTC (ISO 8601)")
    bucket: str = Field(description="hour or day")
    predictions: int
    stages: dict[str, int]
    feedback: int
    corrected: int
    correct: int
    accuracy: float | None
    ratings: dict[str, int] = Field(description="Feedback rows by rating, 1 to 5")
    requests: dict[str, int] = Field(
        description="Requests answered since the server started, by route (/v1 routes)"
    )
    series: list[TrafficBucket]


class Drift(BaseModel):
    """The last served predictions against the drift reference (docsort.serve.drift)."""

    rows: int = Field(description="Predictions in the window (compared with the reference)")
    window: int = Field(description="The window's size: the last N predictions served")
    min_rows: int = Field(description="Predictions the window needs before it is compared")
    reference: dict[str, Any] = Field(
        description="rows and source: --drift-reference DATA, or the first N predictions served"
    )
    drifted: bool | None = Field(
        description="A signal past its threshold (PSI > 0.25, KS p < 0.01, a cascade over its "
        "escalation budget); null while the window or the reference is too small"
    )
    confidence: dict[str, float] | None = Field(
        description="Top probabilities: psi, ks_statistic, ks_pvalue, mean, reference_mean"
    )
    labels: dict[str, float] | None = Field(description="psi of the predicted label shares")
    stages: dict[str, float] | None = Field(description="psi of the answering stages' shares")
    review: dict[str, Any] | None = Field(
        description="A cascade's escalated share (to people, or else to its last stage) against "
        "its budget: stages, share, reference_share, budget, over_budget"
    )


class ReviewItem(BaseModel):
    prediction_id: str
    created: str = Field(description="When it was predicted, UTC (ISO 8601)")
    text: str | None = Field(description="The text, when the server logs it (--log-text full)")
    record: dict[str, str] | None = Field(None, description="The columns of a record, if one")
    label: str | None = Field(None, description="The model's suggestion")
    labels: list[str] | None = Field(None, description="Its suggestion (multi-label models)")
    confidence: float | None
    probabilities: dict[str, float] | None = None
    stage: str | None = Field(None, description="The stage that answered (a cascade's)")
    model_version: str


class ReviewQueue(BaseModel):
    """Predictions waiting for a person: a cascade's human stage, or low confidence, and no
    feedback yet (a correction or a rating takes one off the queue)."""

    stages: list[str] = Field(description="Stages whose answers are queued (the human stage)")
    max_confidence: float | None = Field(description="Predictions below it are queued too")
    items: list[ReviewItem]
