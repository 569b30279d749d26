"""A stand-in for the OpenAI API, served over real HTTP on 127.0.0.1 for the real SDK.

Point the SDK at `base_url` (`http://127.0.0.1:<port>/v1`). It answers:

- `POST /v1/images/generations` (JSON) and `POST /v1/images/edits` (multipart, the images as
  `image[]` or `image` parts): `n` small distinct 64x64 PNGs, as `b64_json`, or as URLs under
  `GET /files/<name>.png` when `url_mode` is set, with GPT-Image-shaped `usage`: text tokens
  `len(prompt) // 4` (at least 1), 100 image tokens per input image, 1056 output tokens per
  image returned. `response_format` is refused (400), as for GPT Image models.
- `POST /v1/chat/completions`: a description naming how many images the messages hold
  ("A description of 2 reference images: …"), with `prompt_tokens`/`completion_tokens`.
- `GET /v1/models` and `GET /v1/models/<id>`, from `models` (id → shutdown date or None).

Streaming: an image request with `stream: true` (a JSON boolean for generations, the form field
`stream=true` for edits, as the SDK sends them) is answered `text/event-stream`, in HTTP/1.1
chunks written as they are made: for each image, `partial_images` (0 to 3) partial events, then
its completed event, each as

    event: image_generation.partial_image
    data: {"type": "image_generation.partial_image", "b64_json": ..., "partial_image_index": 0,
           "background": "opaque", "created_at": ..., "output_format": "png", "quality": ...,
           "size": ...}

    event: image_generation.completed
    data: {"type": "image_generation.completed", "b64_json": ..., "usage": {...}, ...}

(`image_edit.partial_image` / `image_edit.completed` for edits; `data` is one line of JSON, an
empty line ends each event). A partial is a 64x64 PNG, a pixelated version of the final image,
coarsest first. A completed event's usage is its image's: input tokens as above (on the first
image's only), output tokens IMAGE_OUTPUT_TOKENS plus PARTIAL_OUTPUT_TOKENS for each partial
sent of it. There is no `[DONE]`: the stream ends after the last completed event. `url_mode` and
`revised_prompt` do not apply to streams; `rewrite` is given each event's JSON in turn.

Every API call must carry `Authorization: Bearer <api_key>`, else 401 `invalid_api_key`.
Errors are OpenAI-shaped: `{"error": {"message", "type", "param", "code"}}`; an error in a stream
is the event `error` with data `{"type": "error", "error": {"message", "type", "param", "code"}}`.

Tests configure it through attributes (`latency`, `image_call_latency`, `seconds_per_image`,
`partial_delays`, `gather`, `url_mode`, `short_by`, `revised_prompt`, `chat_answer`, `models`,
`rewrite`) and scripted failures (`fail`, and `fail_stream` for failures mid-stream), hold API
requests in flight with `pause` until `resume`, hold streams between partials with
`hold_stream`, and read `requests`, `requests_to`, `in_flight` and `max_in_flight`. Endpoint
names, for `fail`, `fail_stream` and `requests_to`: `generations`, `edits`, `images` (either of
those), `chat`, `models` and `files`.
"""

from __future__ import annotations

import base64
import dataclasses
import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Final, Literal, TypeVar, cast

import pytest
from PIL import Image, ImageDraw

from tests.support.loopback import Answer, LoopbackServer, Request, Streamed

DEFAULT_API_KEY = "sk-fake-openai-key-0123456789"
IMAGE_SIDE = 64
TEXT_TOKENS_PER_CHAR = 0.25
IMAGE_INPUT_TOKENS = 100
"""Input tokens per reference image of an edit."""
IMAGE_OUTPUT_TOKENS = 1056
"""Output tokens per image made (a medium 1024x1024 image)."""
CHAT_IMAGE_TOKENS = 85
"""Prompt tokens per image of a chat message."""
PARTIAL_OUTPUT_TOKENS = 100
"""Output tokens per partial image a stream sends, on top of the image's own."""
MAX_PARTIAL_IMAGES = 3

GATHER_SECONDS = 10.0
"""How long a gathered request waits for the others (see `FakeOpenAI.gather`)."""
PAUSE_SECONDS = 30.0
"""How long a paused request waits for `FakeOpenAI.resume` before answering anyway."""
ENDPOINTS = frozenset({"generations", "edits", "images", "chat", "models", "files"})

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
}


@dataclass(frozen=True)
class FilePart:
    """One file part of a multipart request."""

    name: str
    """The form field: `image[]` as the SDK sends a list of images."""
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    endpoint: str
    """`generations`, `edits`, `chat`, `models`, `files`, or `` for an unknown path."""
    headers: dict[str, str]
    """Lower-cased names."""
    json: dict[str, Any] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    """Form fields of a multipart request (the last value of a repeated name)."""
    files: list[FilePart] = field(default_factory=list)
    status: int = 0
    """The status it was answered with (0 while it is unanswered)."""

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")

    @property
    def params(self) -> dict[str, Any]:
        """The JSON body, or the form fields."""
        return dict(self.json) if self.json is not None else dict(self.fields)


@dataclass
class ScriptedFailure:
    endpoint: str
    status: int
    code: str | None
    type: str
    message: str
    param: str | None
    headers: dict[str, str]
    times: int
    """How many matching requests it still fails."""
    on_call: int | None
    """Fails only the matching request with this number (counted from `base`)."""
    base: int
    body: bytes | None = None

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        if self.body is not None:
            return self.status, {"Content-Type": "text/html", **self.headers}, self.body
        payload = _error_body(self.message, self.type, self.code, self.param)
        return self.status, {"Content-Type": "application/json", **self.headers}, payload


StreamBreak = Literal["error", "drop", "end"]
"""How a scripted stream fails: an `error` event, the connection dropped mid-body (the HTTP/1.1
chunked body left unfinished), or the stream ended cleanly without its completed event."""


@dataclass
class ScriptedStreamFailure:
    endpoint: str
    after_partials: int
    """Partials sent before the failure (counted over the whole stream)."""
    how: StreamBreak
    code: str | None
    type: str
    message: str
    times: int
    on_call: int | None
    base: int

    def event(self) -> bytes:
        error = _error_json(self.message, self.type, self.code)["error"]
        return _sse("error", {"type": "error", "error": error})


class StreamHold:
    """Holds the streams it matches once they have sent `after_partials` partials (0: right
    after the answer's headers, before any event), until `release` (or the fake's `resume`).
    `reached` is set when a stream first stops at it."""

    def __init__(self, fake: FakeOpenAI, after_partials: int, image_calls: frozenset[int]) -> None:
        self._fake = fake
        self.after_partials = after_partials
        self.image_calls = image_calls
        """The image requests (from 1) it holds; every one if empty."""
        self.reached = threading.Event()
        self.released = False
        self.held = 0
        """How many streams it holds now."""

    def holds(self, image_call: int | None, sent: int) -> bool:
        return (
            not self.released
            and sent == self.after_partials
            and (not self.image_calls or image_call in self.image_calls)
        )

    def is_released(self) -> bool:
        return self.released

    def wait(self, timeout: float = PAUSE_SECONDS) -> bool:
        """Blocks until a stream stops here (or `timeout`); True if one did. From async code:
        `await asyncio.to_thread(hold.wait)`."""
        return self.reached.wait(timeout)

    def release(self) -> None:
        """Lets the held streams go on, and lets later ones pass."""
        with self._fake.lock:
            self.released = True
            self._fake._arrivals.notify_all()


_DROP: Final = b""


class _Answered(Exception):
    """An error answer, raised from deep in a route."""

    def __init__(
        self, status: int, message: str, code: str | None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


class FakeOpenAI:
    """One account with one API key. A context manager: serves from `__enter__` to `__exit__`.

    Settable at any time (read once per request): `latency` seconds every API answer takes (one
    request for n images takes it once: images of a call are made together, as on the real
    service); `url_mode` to answer image URLs instead of base64; `short_by` images fewer than
    asked (never fewer than none); `revised_prompt` to add to every image; `chat_answer` to
    replace the text of chat answers; `models` (id → "YYYY-MM-DD" or None); `rewrite`, a
    function given the endpoint and the JSON answer about to be sent that returns the one to
    send instead (to corrupt answers; for a stream, each event's JSON).

    Time: an API answer takes `latency` (or `image_call_latency[k]` for the k-th image request)
    plus, for image requests, `seconds_per_image` for each image asked (`n`), so that a call's
    time grows with `n`. A stream waits its latency after its headers, `partial_delays[k]`
    before its k-th partial (from 0, counted over the stream), and `seconds_per_image` before
    each completed event.
    """

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self.latency = 0.0
        self.image_call_latency: dict[int, float] = {}
        """Seconds the k-th image request (either image endpoint, from 1) takes instead."""
        self.seconds_per_image = 0.0
        """Seconds an image request takes for each image asked, on top of its latency."""
        self.partial_delays: list[float] = []
        """Seconds a stream waits before its k-th partial (none for those not listed)."""
        self.gather = 0
        """The first `gather` API requests wait (up to GATHER_SECONDS) until that many are in
        flight together before answering: requests made concurrently are seen to overlap
        however slow the machine, and requests made one after another are not."""
        self.url_mode = False
        self.short_by = 0
        self.revised_prompt: str | None = None
        self.chat_answer: str | None = None
        self.models: dict[str, str | None] = {
            "gpt-image-2.6-flare": None,
            "gpt-image-1.5": "2026-12-01",
            "gpt-5.4-mini": None,
        }
        self.rewrite: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
        self.requests: list[RecordedRequest] = []
        self.files: dict[str, bytes] = {}
        """Images served under `/files/<name>` (url mode)."""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most API requests (not file downloads) seen in flight at once."""
        self.lock = threading.Lock()
        self._arrivals = threading.Condition(self.lock)
        self._api_requests = 0
        self._gathered = False
        self._paused = False
        self._paused_image_calls: frozenset[int] = frozenset()
        self._failures: list[ScriptedFailure] = []
        self._stream_failures: list[ScriptedStreamFailure] = []
        self._holds: list[StreamHold] = []
        self._counts: dict[str, int] = dict.fromkeys(ENDPOINTS, 0)
        self._images = itertools.count(1)
        self._ids = itertools.count(1)
        self._server = LoopbackServer(
            self._serve, name="fake OpenAI", thread_name="fake-openai", quiet=True
        )

    def pause(self, *image_calls: int) -> None:
        """API requests from now on (or only the k-th image requests, from 1, if numbers are
        given) stay in flight, unanswered, until `resume`: a test can act while a call is under
        way however slow the machine. A stream is held so before its headers; see `hold_stream`
        to hold one between its partials."""
        with self.lock:
            if image_calls:
                self._paused_image_calls = frozenset(image_calls)
            else:
                self._paused = True

    def resume(self) -> None:
        """Answers the requests held by `pause`, and those to come; releases every
        `hold_stream` hold."""
        with self.lock:
            self._paused = False
            self._paused_image_calls = frozenset()
            for hold in self._holds:
                hold.released = True
            self._arrivals.notify_all()

    def hold_stream(self, after_partials: int, *image_calls: int) -> StreamHold:
        """Streams from now on (or only the k-th image requests', from 1, if numbers are given)
        stop once they have sent `after_partials` partials, their connection open, until the
        hold's `release` (or `resume`): a test sees the partials sent so far arrive while the
        call is still under way. With 0 they stop right after the headers, before any event
        (`pause` holds a request before it is answered at all)."""
        with self.lock:
            hold = StreamHold(self, after_partials, frozenset(image_calls))
            self._holds.append(hold)
            return hold

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What the SDK takes as `base_url`."""
        return f"{self.origin}/v1"

    def fail(
        self,
        endpoint: str,
        *,
        status: int,
        code: str | None = None,
        type: str | None = None,
        message: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        on_call: int | None = None,
        body: bytes | None = None,
    ) -> None:
        """Answer the next `times` requests to `endpoint` with this error, before any normal
        answer; with `on_call=k`, only the k-th request to it from now. Scripted failures are
        used in the order they were given. `body` replaces the JSON error body (e.g. HTML)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(ENDPOINTS)}")
        with self.lock:
            self._failures.append(
                ScriptedFailure(
                    endpoint=endpoint,
                    status=status,
                    code=code,
                    type=type or _STATUS_TYPES.get(status, "server_error"),
                    message=message or f"Scripted failure {status} ({code or 'no code'}).",
                    param=param,
                    headers=dict(headers or {}),
                    times=1 if on_call is not None else times,
                    on_call=on_call,
                    base=self._counts[endpoint],
                )
            )

    def fail_stream(
        self,
        endpoint: str = "images",
        *,
        after_partials: int = 0,
        how: StreamBreak = "error",
        code: str | None = "server_error",
        type: str = "server_error",
        message: str | None = None,
        times: int = 1,
        on_call: int | None = None,
    ) -> None:
        """Break the next `times` streams to `endpoint` (with `on_call=k`, only the k-th
        request to it from now, if it streams) once they have sent `after_partials` partials:
        with an `error` event carrying `code`, `type` and `message`, by dropping the
        connection (`drop`), or by ending the stream without its completed event (`end`). The
        answer's headers say 200: the failure comes after them. Requests that do not stream
        neither use nor match these."""
        if endpoint not in ("generations", "edits", "images"):
            raise ValueError(f"unknown image endpoint {endpoint!r}")
        with self.lock:
            self._stream_failures.append(
                ScriptedStreamFailure(
                    endpoint=endpoint,
                    after_partials=after_partials,
                    how=how,
                    code=code,
                    type=type,
                    message=message or f"Scripted stream failure ({code or 'no code'}).",
                    times=1 if on_call is not None else times,
                    on_call=on_call,
                    base=self._counts[endpoint],
                )
            )

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """The requests to an endpoint (`images` for both image endpoints), in arrival order."""
        with self.lock:
            return [r for r in self.requests if endpoint in _groups(r.endpoint)]

    def __enter__(self) -> FakeOpenAI:
        self._server.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self.resume()  # a test that failed while paused holds no request thread
        self._server.__exit__()

    # Requests -------------------------------------------------------------------------------

    def _serve(self, request: Request) -> Answer:
        return self.handle(request.method, request.path, request.headers, request.body)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body of the answer."""
        endpoint = _endpoint(method, path)
        api = endpoint not in ("files", "")
        request = _parse(method, path, endpoint, headers, body)
        with self.lock:
            for group in _groups(endpoint):
                self._counts[group] += 1
            numbers = {group: self._counts[group] for group in _groups(endpoint)}
            # recorded as it arrives (its status once answered): a client that timed out has
            # been seen, however slowly this thread runs
            index = len(self.requests)
            self.requests.append(request)
            if api:
                self._api_requests += 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                if self.in_flight >= self.gather:
                    # a latch: those released may finish before every waiter has looked
                    self._gathered = True
                    self._arrivals.notify_all()
                if self._api_requests <= self.gather:
                    self._arrivals.wait_for(lambda: self._gathered, GATHER_SECONDS)
                image_call = numbers.get("images")
                self._arrivals.wait_for(
                    lambda: not self._paused and image_call not in self._paused_image_calls,
                    PAUSE_SECONDS,
                )
            latency = self.latency if api else 0.0
            if "images" in numbers and numbers["images"] in self.image_call_latency:
                latency = self.image_call_latency[numbers["images"]]
            per_image = self.seconds_per_image if "images" in numbers else 0.0
        streamed = False
        try:
            status, answer_headers, payload = self._answer(request, numbers)
            with self.lock:
                self.requests[index] = dataclasses.replace(request, status=status)
            if isinstance(payload, Streamed):
                # in flight until the stream ends; its latency is waited as it is sent
                streamed = True
                return status, answer_headers, Streamed.of(self._timed(payload.chunks, latency))
            latency += per_image * _images_asked(request)
            if latency > 0:
                time.sleep(latency)
            return status, answer_headers, payload
        finally:
            if api and not streamed:
                with self.lock:
                    self.in_flight -= 1

    def _timed(
        self, chunks: Generator[bytes, None, None], latency: float
    ) -> Generator[bytes, None, None]:
        """A stream's chunks after `latency`; the request leaves `in_flight` when it ends."""
        try:
            if latency > 0:
                time.sleep(latency)
            yield from chunks
        finally:
            chunks.close()
            with self.lock:
                self.in_flight -= 1

    def _answer(
        self, request: RecordedRequest, numbers: dict[str, int]
    ) -> tuple[int, dict[str, str], bytes]:
        if request.endpoint == "files":
            return self._file(request.path.removeprefix("/files/"), numbers)
        if request.endpoint == "":
            return _json_answer(404, _error_json("Unknown request URL.", None, "unknown_url"))
        if not _bearer_matches(request.authorization, self.api_key):
            shown = request.authorization.removeprefix("Bearer ")
            masked = f"{shown[:3]}***{shown[-4:]}" if len(shown) > 8 else "***"
            return _json_answer(
                401,
                _error_json(
                    f"Incorrect API key provided: {masked}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )
        scripted = self._scripted(request.endpoint, numbers)
        if scripted is not None:
            return scripted
        try:
            if request.endpoint in ("generations", "edits") and _streams(request):
                return self._stream_answer(request, numbers)
            payload = self._route(request)
        except _Answered as error:
            return _json_answer(
                error.status,
                _error_json(error.message, "invalid_request_error", error.code, error.param),
            )
        rewrite = self.rewrite
        if rewrite is not None:
            payload = rewrite(request.endpoint, payload)
        return _json_answer(200, payload)

    def _scripted(
        self, endpoint: str, numbers: dict[str, int]
    ) -> tuple[int, dict[str, str], bytes] | None:
        with self.lock:
            failure = _use_up(self._failures, numbers)
        return failure.answer() if failure is not None else None

    def _route(self, request: RecordedRequest) -> dict[str, Any]:
        if request.endpoint in ("generations", "edits"):
            return self._images_answer(request)
        if request.endpoint == "chat":
            return self._chat(request)
        if request.endpoint == "models":
            model_id = request.path.removeprefix("/v1/models").strip("/")
            with self.lock:
                models = dict(self.models)
            if not model_id:
                return {"object": "list", "data": [_model(i, d) for i, d in models.items()]}
            if model_id not in models:
                raise _Answered(
                    404, f"The model '{model_id}' does not exist", "model_not_found", "model"
                )
            return _model(model_id, models[model_id])
        raise _Answered(404, "Unknown request URL.", "unknown_url")

    def _images_answer(self, request: RecordedRequest) -> dict[str, Any]:
        params = request.params
        prompt, n = _checked_image_request(request)
        with self.lock:
            count = max(n - self.short_by, 0)
            url_mode, revised = self.url_mode, self.revised_prompt
            numbers = [next(self._images) for _ in range(count)]
        data: list[dict[str, Any]] = []
        for number in numbers:
            png = _png(number)
            item: dict[str, Any]
            if url_mode:
                name = f"image-{number}.png"
                with self.lock:
                    self.files[name] = png
                item = {"url": f"{self.origin}/files/{name}"}
            else:
                item = {"b64_json": base64.b64encode(png).decode("ascii")}
            if revised is not None:
                item["revised_prompt"] = revised
            data.append(item)
        return {
            "created": int(time.time()),
            "data": data,
            "background": "opaque",
            "output_format": "png",
            "quality": params.get("quality", "auto"),
            "size": params.get("size", "auto"),
            "usage": _image_usage(prompt, len(request.files), IMAGE_OUTPUT_TOKENS * count),
        }

    # Streams --------------------------------------------------------------------------------

    def _stream_answer(
        self, request: RecordedRequest, numbers: dict[str, int]
    ) -> tuple[int, dict[str, str], bytes]:
        """The answer to an image request with `stream: true`: its headers now, its events as
        `Streamed` chunks (raises `_Answered` for a request refused before streaming)."""
        prompt, n = _checked_image_request(request)
        try:
            partials = int(request.params.get("partial_images", 0))
        except (TypeError, ValueError):
            raise _Answered(
                400, "Invalid type for 'partial_images'.", "invalid_type", "partial_images"
            ) from None
        if not 0 <= partials <= MAX_PARTIAL_IMAGES:
            raise _Answered(
                400,
                f"{partials} is out of range for 'partial_images' (0 to {MAX_PARTIAL_IMAGES}).",
                "invalid_value",
                "partial_images",
            )
        with self.lock:
            count = max(n - self.short_by, 0)
            images = [next(self._images) for _ in range(count)]
            failure = self._scripted_stream(numbers)
        chunks = self._events(request, prompt, images, partials, numbers.get("images"), failure)
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        return 200, headers, Streamed.of(chunks)

    def _scripted_stream(self, numbers: dict[str, int]) -> ScriptedStreamFailure | None:
        """The scripted stream failure this request uses up, if any (lock held)."""
        return _use_up(self._stream_failures, numbers)

    def _events(
        self,
        request: RecordedRequest,
        prompt: str,
        images: list[int],
        partials: int,
        image_call: int | None,
        failure: ScriptedStreamFailure | None,
    ) -> Generator[bytes, None, None]:
        """The stream's chunks, one event each; the holds, delays and failure on the way."""
        prefix = "image_generation" if request.endpoint == "generations" else "image_edit"
        params = request.params
        common = {
            "background": "opaque",
            "output_format": "png",
            "quality": params.get("quality", "auto"),
            "size": params.get("size", "auto"),
        }
        sent = 0
        for position, number in enumerate(images):
            for index in range(partials):
                if (yield from self._checkpoint(image_call, sent, failure)):
                    return
                with self.lock:
                    delays = list(self.partial_delays)
                if sent < len(delays) and delays[sent] > 0:
                    time.sleep(delays[sent])
                event = {
                    "type": f"{prefix}.partial_image",
                    "b64_json": _b64(_partial_png(number, index, partials)),
                    "partial_image_index": index,
                    "created_at": int(time.time()),
                    **common,
                }
                yield self._event(request.endpoint, event)
                sent += 1
            if (yield from self._checkpoint(image_call, sent, failure)):
                return
            with self.lock:
                per_image = self.seconds_per_image
            if per_image > 0:
                time.sleep(per_image)
            output = IMAGE_OUTPUT_TOKENS + PARTIAL_OUTPUT_TOKENS * partials
            event = {
                "type": f"{prefix}.completed",
                "b64_json": _b64(_png(number)),
                "created_at": int(time.time()),
                "usage": _image_usage(prompt, len(request.files), output, inputs=position == 0),
                **common,
            }
            yield self._event(request.endpoint, event)

    def _checkpoint(
        self, image_call: int | None, sent: int, failure: ScriptedStreamFailure | None
    ) -> Generator[bytes, None, bool]:
        """Where a stream that has sent `sent` partials waits for the holds on it, then breaks
        if its scripted failure is due there: True if the stream ends here."""
        with self.lock:
            for hold in list(self._holds):
                if hold.holds(image_call, sent):
                    hold.held += 1
                    hold.reached.set()
                    self._arrivals.wait_for(hold.is_released, PAUSE_SECONDS)
                    hold.held -= 1
        if failure is None or failure.after_partials != sent:
            return False
        if failure.how == "error":
            yield failure.event()
        elif failure.how == "drop":
            yield _DROP
        return True

    def _event(self, endpoint: str, payload: dict[str, Any]) -> bytes:
        rewrite = self.rewrite
        if rewrite is not None:
            payload = rewrite(endpoint, payload)
        return _sse(str(payload.get("type", "")), payload)

    def _chat(self, request: RecordedRequest) -> dict[str, Any]:
        body = request.json or {}
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list) or not messages:
            raise _Answered(400, "Missing required parameter: 'messages'.", None, "messages")
        text = " ".join(_texts(messages))
        images = len(image_urls(request))
        with self.lock:
            answer = self.chat_answer
        if answer is None:
            answer = f"A description of {images} reference images: {text[:60]}"
        prompt_tokens = max(1, len(text) // 4) + CHAT_IMAGE_TOKENS * images
        completion_tokens = len(answer) // 4
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": f"{model}-2026-01-01",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _file(self, name: str, numbers: dict[str, int]) -> tuple[int, dict[str, str], bytes]:
        scripted = self._scripted("files", numbers)
        if scripted is not None:
            return scripted
        with self.lock:
            data = self.files.get(name)
        if data is None:
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        return 200, {"Content-Type": "image/png"}, data


def image_urls(request: RecordedRequest) -> list[str]:
    """The `image_url` URLs of a chat request's messages, in order."""
    urls: list[str] = []
    for message in (request.json or {}).get("messages", []):
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                urls.append(str(part.get("image_url", {}).get("url", "")))
    return urls


# Helpers ------------------------------------------------------------------------------------


def _endpoint(method: str, path: str) -> str:
    if method == "POST" and path == "/v1/images/generations":
        return "generations"
    if method == "POST" and path == "/v1/images/edits":
        return "edits"
    if method == "POST" and path == "/v1/chat/completions":
        return "chat"
    if method == "GET" and re.fullmatch(r"/v1/models(/[^/]+)?", path):
        return "models"
    if method == "GET" and re.fullmatch(r"/files/[^/]+", path):
        return "files"
    return ""


def _streams(request: RecordedRequest) -> bool:
    """Whether an image request asks for a stream: `stream: true` in JSON, `stream=true` as a
    form field."""
    stream = request.params.get("stream")
    return stream is True or (isinstance(stream, str) and stream.lower() == "true")


def _checked_image_request(request: RecordedRequest) -> tuple[str, int]:
    """The prompt and `n` of an image request, or `_Answered` with the 400 it deserves."""
    params = request.params
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _Answered(400, "Missing required parameter: 'prompt'.", None, "prompt")
    if "response_format" in params:
        raise _Answered(
            400, "Unknown parameter: 'response_format'.", "unknown_parameter", "response_format"
        )
    if request.endpoint == "edits" and not request.files:
        raise _Answered(400, "Missing required parameter: 'image'.", None, "image")
    try:
        n = int(params.get("n", 1))
    except (TypeError, ValueError):
        raise _Answered(400, "Invalid type for 'n'.", "invalid_type", "n") from None
    if not 1 <= n <= 10:
        raise _Answered(400, f"{n} is out of range for 'n' (1 to 10).", "invalid_value", "n")
    return prompt, n


def _images_asked(request: RecordedRequest) -> int:
    """The `n` of an image request (1 if absent), 0 for any other request or a bad `n`."""
    if request.endpoint not in ("generations", "edits"):
        return 0
    try:
        return max(int(request.params.get("n", 1)), 0)
    except (TypeError, ValueError):
        return 0


def _image_usage(
    prompt: str, references: int, output_tokens: int, *, inputs: bool = True
) -> dict[str, Any]:
    """GPT-Image-shaped usage; with `inputs` False, no input tokens (a stream's later images)."""
    text_tokens = max(1, int(len(prompt) * TEXT_TOKENS_PER_CHAR)) if inputs else 0
    image_tokens = IMAGE_INPUT_TOKENS * references if inputs else 0
    return {
        "input_tokens": text_tokens + image_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
        "output_tokens": output_tokens,
        "total_tokens": text_tokens + image_tokens + output_tokens,
    }


def _sse(event: str, payload: dict[str, Any]) -> bytes:
    """One server-sent event: its name, its data as one line of JSON, an empty line."""
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _groups(endpoint: str) -> tuple[str, ...]:
    if endpoint in ("generations", "edits"):
        return (endpoint, "images")
    return (endpoint,) if endpoint else ()


def _parse(
    method: str, path: str, endpoint: str, headers: dict[str, str], body: bytes
) -> RecordedRequest:
    kept = {
        name: value
        for name, value in headers.items()
        if name in ("authorization", "content-type", "x-stainless-retry-count", "user-agent")
    }
    content_type = headers.get("content-type", "")
    if method != "POST" or not body:
        return RecordedRequest(method, path, endpoint, kept)
    if content_type.startswith("multipart/form-data"):
        fields, files = _multipart(content_type, body)
        return RecordedRequest(method, path, endpoint, kept, fields=fields, files=files)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return RecordedRequest(
        method, path, endpoint, kept, json=parsed if isinstance(parsed, dict) else None
    )


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[FilePart]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    files: list[FilePart] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = cast(bytes, part.get_payload(decode=True))
        filename = part.get_filename()
        if not isinstance(name, str):
            continue
        if filename is not None:
            files.append(FilePart(name, filename, part.get_content_type(), data))
        else:
            fields[name] = data.decode()
    return fields, files


def _bearer_matches(authorization: str, api_key: str) -> bool:
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and token == api_key


def _texts(messages: list[Any]) -> list[str]:
    texts: list[str] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text", "")))
    return texts


def _png(number: int) -> bytes:
    """A 64x64 PNG unlike any other number's: a colour and stripes from the number, and the
    number itself in the first pixel."""
    background = ((number * 67) % 256, (number * 131 + 40) % 256, (number * 199 + 80) % 256)
    image = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), background)
    draw = ImageDraw.Draw(image)
    stripe = 4 + number % 12
    for x in range(0, IMAGE_SIDE, stripe * 2):
        draw.rectangle((x, 0, x + stripe - 1, IMAGE_SIDE - 1), fill=(255 - background[0], 0, 0))
    image.putpixel((0, 0), (number % 256, (number // 256) % 256, (number // 65536) % 256))
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _partial_png(number: int, index: int, partials: int) -> bytes:
    """The `index`-th of `partials` previews of image `number`: its 64x64 PNG pixelated to
    blocks of 32, 16 or 8 pixels (the last partial the finest)."""
    with Image.open(BytesIO(_png(number))) as final:
        block = 8 << (partials - 1 - index)
        side = max(1, IMAGE_SIDE // block)
        coarse = final.convert("RGB").resize((side, side), Image.Resampling.BOX)
    image = coarse.resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.NEAREST)
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _model(model_id: str, shutdown_date: str | None) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": 1_700_000_000,
        "owned_by": "system",
        "shutdown_date": shutdown_date,
    }


def _error_json(
    message: str, type: str | None, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _error_body(message: str, type: str | None, code: str | None, param: str | None) -> bytes:
    return json.dumps(_error_json(message, type, code, param)).encode()


def _json_answer(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


Scripted = TypeVar("Scripted", "ScriptedFailure", "ScriptedStreamFailure")


def _use_up(failures: Sequence[Scripted], numbers: dict[str, int]) -> Scripted | None:
    """The first scripted failure that applies to a request of these numbers (its endpoint's,
    on the call it names if it names one), with one use less; None when none applies."""
    for failure in failures:
        if failure.endpoint not in numbers or failure.times <= 0:
            continue
        if failure.on_call is not None and numbers[failure.endpoint] != (
            failure.base + failure.on_call
        ):
            continue
        failure.times -= 1
        return failure
    return None


@pytest.fixture(name="fake_openai")
def fake_openai_fixture() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI, stopped (server shut down, threads joined) at teardown."""
    with FakeOpenAI() as fake:
        yield fake
