"""A stand-in for Cloudinary's Upload and Admin APIs, served over real HTTP on 127.0.0.1.

It answers exactly what `storyframe.storage.cloudinary` makes the official SDK ask:

- `POST /v1_1/<cloud>/image/upload`: a signed multipart form (`file`, `public_id`, `overwrite`,
  `timestamp`, `api_key`, `signature`, …). The signature is checked as Cloudinary does: the
  SHA-1 (SHA-256 when the signature is 64 hex digits) of the sorted `key=value` pairs, joined
  by `&`, followed by the API secret; `file`, `api_key`, `resource_type`, `cloud_name` and
  `signature` are left out. With `overwrite=0` an existing asset is returned as it is.
- `POST /v1_1/<cloud>/image/destroy`: signed form; `{"result": "ok" | "not found"}`.
- `GET /v1_1/<cloud>/resources/image/upload?prefix=&max_results=&next_cursor=` and
  `GET /v1_1/<cloud>/resources/image/upload/<public_id>`: HTTP basic auth `api_key:api_secret`.
- `GET /<cloud>/image/upload/v<version>/<public_id>.<format>`: the stored bytes, so `secure_url`
  (which points here) can be fetched.

Errors are Cloudinary-shaped: `{"error": {"message": …}}` with 400, 401 or 404.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, cast
from urllib.parse import parse_qs, quote

import pytest
from PIL import Image, UnidentifiedImageError

from tests.support.loopback import Answer, LoopbackServer, Request

_UNSIGNED = frozenset({"file", "api_key", "resource_type", "cloud_name", "signature"})
_ADMIN_MAX_RESULTS = 500


@dataclass
class FakeAsset:
    public_id: str
    data: bytes
    format: str
    width: int
    height: int
    version: int


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it; `fields` holds form fields, with `file` as its filename."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


class _Failure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeCloudinary:
    """One cloud with one API key. A context manager: serves from `__enter__` to `__exit__`."""

    def __init__(
        self,
        cloud_name: str = "fake-cloud",
        api_key: str = "111111111111111",
        api_secret: str = "fake-api-secret",
        *,
        page_size: int = _ADMIN_MAX_RESULTS,
    ) -> None:
        self.cloud_name = cloud_name
        self.api_key = api_key
        self.api_secret = api_secret
        self.page_size = page_size
        """Largest page of a listing, whatever `max_results` asks."""
        self.fail_with: int | None = None
        """When set, every API call answers this status with an error."""
        self.deliver_with: int | None = None
        """When set, every delivery (a GET of an asset's URL) answers this status."""
        self.deliveries = threading.Event()
        """Cleared (`hold_deliveries`), deliveries wait until it is set again."""
        self.deliveries.set()
        self.deliveries_waiting = 0
        """Deliveries being held now."""
        self._let_through = 0
        """Deliveries that still pass while they are held."""
        self.assets: dict[str, FakeAsset] = {}
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self._versions = itertools.count(1_700_000_000)
        self._server = LoopbackServer(
            self._serve, name="fake Cloudinary", thread_name=f"fake-cloudinary-{cloud_name}"
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def url(self) -> str:
        """A CLOUDINARY_URL for this fake."""
        return self.url_with()

    def url_with(self, *, api_key: str | None = None, api_secret: str | None = None) -> str:
        key = quote(api_key or self.api_key, safe="")
        secret = quote(api_secret or self.api_secret, safe="")
        prefix = quote(self.base_url, safe="")
        return f"cloudinary://{key}:{secret}@{self.cloud_name}?upload_prefix={prefix}"

    def hold_deliveries(self, after: int = 0) -> None:
        """Deliveries wait from now on (but the next `after`), until `release_deliveries`."""
        with self.lock:
            self._let_through = after
        self.deliveries.clear()

    def release_deliveries(self) -> None:
        self.deliveries.set()

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        with self.lock:
            return [request for request in self.requests if request.path.endswith(path_suffix)]

    def __enter__(self) -> FakeCloudinary:
        self._server.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.__exit__()

    # Requests -------------------------------------------------------------------------------

    def _serve(self, request: Request) -> Answer:
        status, content_type, payload = self.handle(
            request.method, request.path, request.query, request.headers, request.body
        )
        return status, {"Content-Type": content_type}, payload

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        """Status, content type and body of the answer."""
        fields, file = (
            _form(headers.get("content-type", ""), body) if method == "POST" else ({}, None)
        )
        logged = dict(fields)
        if file is not None:
            logged["file"] = file[0]
        with self.lock:
            self.requests.append(RecordedRequest(method, path, query, logged))
        try:
            return self._route(method, path, query, headers, fields, file)
        except _Failure as failure:
            return _json(failure.status, {"error": {"message": failure.message}})

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        fields: dict[str, str],
        file: tuple[str, bytes] | None,
    ) -> tuple[int, str, bytes]:
        api = f"/v1_1/{self.cloud_name}/"
        if path.startswith("/v1_1/") and self.fail_with is not None:
            raise _Failure(self.fail_with, "injected failure")
        if method == "POST" and path == api + "image/upload":
            self._check_signature(fields)
            return _json(200, self._upload(fields, file))
        if method == "POST" and path == api + "raw/upload":
            self._check_signature(fields)
            return _json(200, self._upload(fields, file, raw=True))
        if method == "POST" and path in (api + "image/destroy", api + "raw/destroy"):
            self._check_signature(fields)
            return _json(200, self._destroy(fields))
        for kind in ("image", "raw"):
            listing = api + f"resources/{kind}/upload"
            if method == "GET" and path == listing:
                self._check_basic_auth(headers)
                return _json(200, self._list(query, raw=kind == "raw"))
            if method == "GET" and path.startswith(listing + "/"):
                self._check_basic_auth(headers)
                return _json(200, self._resource(path.removeprefix(listing + "/")))
        raw = re.fullmatch(rf"/{re.escape(self.cloud_name)}/raw/upload/v(\d+)/(.+)", path)
        if method == "GET" and raw:
            return self._deliver_raw(int(raw[1]), raw[2])
        delivery = re.fullmatch(rf"/{re.escape(self.cloud_name)}/image/upload/v(\d+)/(.+)", path)
        if method == "GET" and delivery:
            self._wait_to_deliver()
            if self.deliver_with is not None:
                return self.deliver_with, "text/plain", b"injected failure"
            return self._deliver(int(delivery[1]), delivery[2])
        if path.startswith("/v1_1/"):
            raise _Failure(401 if path.split("/")[2] != self.cloud_name else 404, "no such API")
        return 404, "text/plain", b"Not Found"

    def _wait_to_deliver(self) -> None:
        with self.lock:
            if self._let_through > 0:
                self._let_through -= 1
                return
            self.deliveries_waiting += 1
        try:
            # bounded, so a test that forgets to release does not hang the fake's shutdown
            self.deliveries.wait(timeout=120)
        finally:
            with self.lock:
                self.deliveries_waiting -= 1

    def _check_signature(self, fields: dict[str, str]) -> None:
        if fields.get("api_key") != self.api_key:
            raise _Failure(401, f"Unknown API key {fields.get('api_key')}")
        if "timestamp" not in fields:
            raise _Failure(400, "Missing required parameter - timestamp")
        signed = "&".join(
            sorted(
                f"{key}={value}".replace("&", "%26")
                for key, value in fields.items()
                if key not in _UNSIGNED and value
            )
        )
        signature = fields.get("signature", "")
        digest = hashlib.sha256 if len(signature) == 64 else hashlib.sha1
        expected = digest((signed + self.api_secret).encode()).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise _Failure(401, f"Invalid Signature {signature}. String to sign - '{signed}'.")

    def _check_basic_auth(self, headers: dict[str, str]) -> None:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            credentials = ""
        if scheme.lower() != "basic" or not hmac.compare_digest(
            credentials, f"{self.api_key}:{self.api_secret}"
        ):
            raise _Failure(401, "Invalid credentials")

    def _upload(
        self, fields: dict[str, str], file: tuple[str, bytes] | None, *, raw: bool = False
    ) -> dict[str, Any]:
        if file is None:
            raise _Failure(400, "Missing required parameter - file")
        public_id = fields.get("public_id") or hashlib.sha1(file[1]).hexdigest()[:20]
        with self.lock:
            existing = self.assets.get(public_id)
            if existing is not None and fields.get("overwrite", "1") == "0":
                return {**self._describe(existing), "existing": True}
        if raw:  # kept as sent, its format the public id's extension
            with self.lock:
                asset = FakeAsset(public_id, file[1], "raw", 0, 0, next(self._versions))
                self.assets[public_id] = asset
                return {**self._describe(asset), "existing": False}
        try:
            with Image.open(BytesIO(file[1])) as image:
                image_format = (image.format or "").lower().replace("jpeg", "jpg")
                width, height = image.size
        except UnidentifiedImageError:
            raise _Failure(400, "Invalid image file") from None
        with self.lock:
            asset = FakeAsset(public_id, file[1], image_format, width, height, next(self._versions))
            self.assets[public_id] = asset
            return {**self._describe(asset), "existing": False, "original_filename": file[0]}

    def _destroy(self, fields: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            removed = self.assets.pop(fields.get("public_id", ""), None)
        return {"result": "ok" if removed else "not found"}

    def _list(self, query: dict[str, str], *, raw: bool = False) -> dict[str, Any]:
        prefix = query.get("prefix", "")
        size = min(int(query.get("max_results", "10")), _ADMIN_MAX_RESULTS, self.page_size)
        after = (
            base64.urlsafe_b64decode(query["next_cursor"]).decode()
            if "next_cursor" in query
            else ""
        )
        with self.lock:
            matching = sorted(
                public_id
                for public_id in self.assets
                if public_id.startswith(prefix)
                and public_id > after
                and (self.assets[public_id].format == "raw") == raw
            )
            page = [self._describe(self.assets[public_id]) for public_id in matching[:size]]
        answer: dict[str, Any] = {"resources": page}
        if len(matching) > size:
            answer["next_cursor"] = base64.urlsafe_b64encode(matching[size - 1].encode()).decode()
        return answer

    def _resource(self, public_id: str) -> dict[str, Any]:
        with self.lock:
            asset = self.assets.get(public_id)
            if asset is None:
                raise _Failure(404, f"Resource not found - {public_id}")
            return self._describe(asset)

    def _deliver(self, version: int, source: str) -> tuple[int, str, bytes]:
        public_id, _, extension = source.rpartition(".")
        with self.lock:
            asset = self.assets.get(public_id)
        if asset is None or asset.version != version or asset.format != extension:
            return 404, "text/plain", b"Not Found"
        return 200, f"image/{asset.format.replace('jpg', 'jpeg')}", asset.data

    def _deliver_raw(self, version: int, public_id: str) -> tuple[int, str, bytes]:
        with self.lock:
            asset = self.assets.get(public_id)
        if asset is None or asset.version != version or asset.format != "raw":
            return 404, "text/plain", b"Not Found"
        return 200, "application/octet-stream", asset.data

    def _describe(self, asset: FakeAsset) -> dict[str, Any]:
        if asset.format == "raw":
            url = f"{self.base_url}/{self.cloud_name}/raw/upload/v{asset.version}/{asset.public_id}"
            return {
                "public_id": asset.public_id,
                "version": asset.version,
                "resource_type": "raw",
                "type": "upload",
                "bytes": len(asset.data),
                "url": url,
                "secure_url": url,
            }
        url = (
            f"{self.base_url}/{self.cloud_name}/image/upload/v{asset.version}/"
            f"{asset.public_id}.{asset.format}"
        )
        return {
            "asset_id": hashlib.md5(asset.public_id.encode()).hexdigest(),
            "public_id": asset.public_id,
            "version": asset.version,
            "format": asset.format,
            "resource_type": "image",
            "type": "upload",
            "bytes": len(asset.data),
            "width": asset.width,
            "height": asset.height,
            "etag": hashlib.md5(asset.data).hexdigest(),
            "url": url,
            "secure_url": url,
        }


def _json(status: int, payload: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(payload).encode()


def _form(content_type: str, body: bytes) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """Text fields and the (filename, bytes) of the `file` part of a multipart form."""
    if not content_type.startswith("multipart/form-data"):
        return {key: values[-1] for key, values in parse_qs(body.decode()).items()}, None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    file: tuple[str, bytes] | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = cast(bytes, part.get_payload(decode=True))
        if name == "file" and part.get_filename() is not None:
            file = (part.get_filename() or "", data)
        elif isinstance(name, str):
            fields[name] = data.decode()
    return fields, file


@pytest.fixture(name="fake_cloudinary")
def fake_cloudinary_fixture() -> Iterator[FakeCloudinary]:
    """A running fake Cloudinary, stopped (server shut down, threads joined) at teardown."""
    with FakeCloudinary() as fake:
        yield fake
