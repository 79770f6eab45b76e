"""A local fake of the OpenAI REST API: a small router with recorded requests and scripted faults.

Served under ``/v1`` (point the SDK at ``OpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0)``):

- ``POST /v1/moderations``: ``{model, input: str | [str]}`` -> ``{id, model, results: [{flagged, categories,
  category_scores, category_applied_input_types}]}`` over the 13 categories; scores come from
  ``moderation_rules`` (substring -> {category: score}), flagged at 0.5.
- ``POST /v1/chat/completions``: answers ``chat_reply`` (default: echoes the last user message).
- ``POST /v1/files`` (multipart), ``GET /v1/files/{id}``: stores uploads in ``files``.
- ``POST /v1/fine_tuning/jobs``, ``GET /v1/fine_tuning/jobs/{id}``: a job that moves queued -> running ->
  succeeded, one step per retrieve.

More routes: ``fake.route("POST", r"/v1/embeddings", handler)``. Auth is ``Authorization: Bearer <api_key>``;
a wrong key gets OpenAI's 401 body, which here echoes the key it was sent (to make leak tests strict).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._http import FakeHTTPServer, Recorded, Reply

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
IMAGE_CATEGORIES = {
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "violence",
    "violence/graphic",
}


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> Reply:
    return status, {"error": {"message": message, "type": type_, "param": None, "code": code}}, {}


@dataclass
class FakeOpenAI(FakeHTTPServer):
    api_key: str = "sk-fake-openai-key-0123456789"
    moderation_rules: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "kill you": {"violence": 0.93, "harassment/threatening": 0.81, "harassment": 0.6},
            "hate speech": {"hate": 0.88},
            "explicit": {"sexual": 0.72},
            "hurt myself": {"self-harm": 0.9, "self-harm/intent": 0.85},
            "steal a car": {"illicit": 0.77},
        }
    )
    chat_reply: str | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.route("POST", r"/v1/moderations", self._moderations)
        self.route("POST", r"/v1/chat/completions", self._chat)
        self.route("POST", r"/v1/files", self._upload)
        self.route("GET", r"/v1/files/(?P<id>[^/]+)", self._file)
        self.route("POST", r"/v1/fine_tuning/jobs", self._create_job)
        self.route("GET", r"/v1/fine_tuning/jobs/(?P<id>[^/]+)", self._retrieve_job)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def authorize(self, request: Recorded) -> Reply | None:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            sent = auth.removeprefix("Bearer ")
            return _error(401, f"Incorrect API key provided: {sent}.", code="invalid_api_key")
        return None

    # -- moderation --------------------------------------------------------------------------------------

    def moderate(self, text: str) -> dict[str, Any]:
        scores = dict.fromkeys(CATEGORIES, 0.0001)
        for marker, hits in self.moderation_rules.items():
            if marker in text.lower():
                for category, score in hits.items():
                    scores[category] = max(scores[category], score)
        return {
            "flagged": any(s >= 0.5 for s in scores.values()),
            "categories": {c: s >= 0.5 for c, s in scores.items()},
            "category_scores": scores,
            "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
        }

    def _moderations(self, request: Recorded, _: re.Match[str]) -> Reply:
        body = request.json
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            return _error(400, "input must be a string or a non-empty list of strings")
        model = body.get("model", "omni-moderation-latest")
        return (
            200,
            {"id": f"modr-{next(self._ids)}", "model": model, "results": [self.moderate(t) for t in inputs]},
            {},
        )

    # -- chat --------------------------------------------------------------------------------------------

    def _chat(self, request: Recorded, _: re.Match[str]) -> Reply:
        body = request.json or {}
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty list")
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        content = self.chat_reply if self.chat_reply is not None else f"echo: {last}"
        return (
            200,
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "gpt-4o-mini"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": len(str(last).split()),
                    "completion_tokens": len(content.split()),
                    "total_tokens": len(str(last).split()) + len(content.split()),
                },
            },
            {},
        )

    # -- files -------------------------------------------------------------------------------------------

    def _upload(self, request: Recorded, _: re.Match[str]) -> Reply:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return _error(400, "files must be uploaded as multipart/form-data")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + request.body
        )
        fields: dict[str, Any] = {}
        filename = "upload"
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                filename = part.get_filename()
                fields[name] = part.get_payload(decode=True)
            else:
                fields[name] = part.get_content()
        if "file" not in fields or "purpose" not in fields:
            return _error(400, "file and purpose are required")
        file_id = f"file-{next(self._ids)}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(fields["file"]),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": str(fields["purpose"]).strip(),
            "status": "processed",
        }
        self.files[file_id] = {**meta, "content": fields["file"]}
        return 200, meta, {}

    def _file(self, request: Recorded, m: re.Match[str]) -> Reply:
        f = self.files.get(m["id"])
        if f is None:
            return _error(404, f"No such File object: {m['id']}")
        return 200, {k: v for k, v in f.items() if k != "content"}, {}

    # -- fine-tuning -------------------------------------------------------------------------------------

    def _create_job(self, request: Recorded, _: re.Match[str]) -> Reply:
        body = request.json or {}
        if body.get("training_file") not in self.files:
            return _error(400, f"invalid training_file: {body.get('training_file')}")
        job_id = f"ftjob-{next(self._ids)}"
        job = {
            "id": job_id,
            "object": "fine_tuning.job",
            "model": body.get("model"),
            "created_at": int(time.time()),
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "status": "queued",
            "fine_tuned_model": None,
            "finished_at": None,
            "error": None,
            "hyperparameters": {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"},
            "organization_id": "org-fake",
            "result_files": [],
            "seed": 42,
            "trained_tokens": None,
        }
        self.jobs[job_id] = job
        return 200, job, {}

    def _retrieve_job(self, request: Recorded, m: re.Match[str]) -> Reply:
        job = self.jobs.get(m["id"])
        if job is None:
            return _error(404, f"No such fine-tuning job: {m['id']}")
        if job["status"] == "queued":
            job["status"] = "running"
        elif job["status"] == "running":
            job.update(
                status="succeeded",
                fine_tuned_model=f"ft:{job['model']}:fake::{job['id']}",
                finished_at=int(time.time()),
                trained_tokens=1234,
            )
        return 200, job, {}
