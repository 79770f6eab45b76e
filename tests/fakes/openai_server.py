"""A local fake of the OpenAI REST API: a small router with recorded requests and scripted faults.

Served under ``/v1`` (point the SDK at ``OpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0)``):

- ``POST /v1/moderations``: ``{model, input: str | [str]}`` -> ``{id, model, results: [{flagged, categories,
  category_scores, category_applied_input_types}]}`` over the 13 categories; scores come from
  ``moderation_rules`` (substring -> {category: score}), flagged at 0.5.
- ``POST /v1/chat/completions``: answers ``chat_responder(body)`` if set, else ``chat_reply``, else echoes the
  last user message.
- ``POST /v1/files`` (multipart), ``GET /v1/files/{id}``: stores uploads in ``files``.
- ``POST /v1/fine_tuning/jobs``, ``GET /v1/fine_tuning/jobs`` (newest first, ``metadata[k]=v`` filters),
  ``GET /v1/fine_tuning/jobs/{id}``: a job that moves queued -> running ->
  succeeded, one step per retrieve (``job_running_polls`` retrieves in running; with ``job_error`` set it ends
  failed with that error instead). ``GET /v1/fine_tuning/jobs/{id}/events`` lists its events, newest first;
  ``POST /v1/fine_tuning/jobs/{id}/cancel`` cancels it.

More routes: ``fake.route("POST", r"/v1/embeddings", handler)``. Auth is ``Authorization: Bearer <api_key>``;
a wrong key gets OpenAI's 401 body, which here echoes the key it was sent (to make leak tests strict).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
import time
from collections.abc import Callable
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
    chat_responder: Callable[[dict[str, Any]], str] | None = None
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    job_events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    job_running_polls: int = 1
    job_error: dict[str, Any] | None = None
    _running_polls: dict[str, int] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.route("POST", r"/v1/moderations", self._moderations)
        self.route("POST", r"/v1/chat/completions", self._chat)
        self.route("POST", r"/v1/files", self._upload)
        self.route("GET", r"/v1/files/(?P<id>[^/]+)", self._file)
        self.route("POST", r"/v1/fine_tuning/jobs", self._create_job)
        self.route("GET", r"/v1/fine_tuning/jobs", self._list_jobs)
        self.route("GET", r"/v1/fine_tuning/jobs/(?P<id>[^/]+)", self._retrieve_job)
        self.route("GET", r"/v1/fine_tuning/jobs/(?P<id>[^/]+)/events", self._job_events)
        self.route("POST", r"/v1/fine_tuning/jobs/(?P<id>[^/]+)/cancel", self._cancel_job)

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
        if self.chat_responder is not None:
            content = self.chat_responder(body)
        else:
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
            "seed": body.get("seed", 42),
            "trained_tokens": None,
            "metadata": body.get("metadata"),
            "suffix": body.get("suffix"),
        }
        self.jobs[job_id] = job
        self._event(job_id, "info", f"Created fine-tuning job: {job_id}")
        return 200, job, {}

    def _list_jobs(self, request: Recorded, _: re.Match[str]) -> Reply:
        wanted = {
            k[len("metadata[") : -1]: v[0]
            for k, v in request.query.items()
            if k.startswith("metadata[") and k.endswith("]")
        }
        jobs = [
            j
            for j in reversed(self.jobs.values())
            if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        limit = int(request.param("limit") or 20)
        return 200, {"object": "list", "data": jobs[:limit], "has_more": len(jobs) > limit}, {}

    def _event(self, job_id: str, level: str, message: str) -> None:
        events = self.job_events.setdefault(job_id, [])
        events.append(
            {
                "id": f"ftevent-{job_id}-{len(events) + 1}",
                "object": "fine_tuning.job.event",
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "type": "message",
            }
        )

    def _job_events(self, request: Recorded, m: re.Match[str]) -> Reply:
        if m["id"] not in self.jobs:
            return _error(404, f"No such fine-tuning job: {m['id']}")
        limit = int(request.param("limit") or 20)
        newest_first = list(reversed(self.job_events.get(m["id"], [])))
        return (
            200,
            {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit},
            {},
        )

    def _cancel_job(self, request: Recorded, m: re.Match[str]) -> Reply:
        job = self.jobs.get(m["id"])
        if job is None:
            return _error(404, f"No such fine-tuning job: {m['id']}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return _error(400, f"Job {m['id']} has already completed")
        job.update(status="cancelled", finished_at=int(time.time()))
        self._event(m["id"], "info", "Fine-tuning job cancelled")
        return 200, job, {}

    def _retrieve_job(self, request: Recorded, m: re.Match[str]) -> Reply:
        job = self.jobs.get(m["id"])
        if job is None:
            return _error(404, f"No such fine-tuning job: {m['id']}")
        if job["status"] == "queued":
            job["status"] = "running"
            self._event(job["id"], "info", "Fine-tuning job started")
        elif job["status"] == "running":
            polls = self._running_polls[job["id"]] = self._running_polls.get(job["id"], 0) + 1
            if polls < self.job_running_polls:
                self._event(job["id"], "info", f"Step {polls}: training loss=0.{polls}")
            elif self.job_error is not None:
                job.update(status="failed", finished_at=int(time.time()), error=dict(self.job_error))
                self._event(job["id"], "error", f"The job failed: {self.job_error.get('message', '')}")
            else:
                job.update(
                    status="succeeded",
                    fine_tuned_model=f"ft:{job['model']}:fake::{job['id']}",
                    finished_at=int(time.time()),
                    trained_tokens=1234,
                )
                self._event(job["id"], "info", "The job has successfully completed")
        return 200, job, {}
