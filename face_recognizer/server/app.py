"""The FastAPI application: the REST API under /api/v1 and the console at /.

Every error is JSON `{"error": "<one sentence>"}` with a fitting status: 400 bad input, 401 no
or unknown key, 403 a read-only key asked to change the gallery, 404 unknown person or face,
409 a name taken, 413 too large, 415 wrong content type, 422 a photo without the face needed,
500 anything unexpected (logged with its traceback; the server keeps running).

Handlers are `async` and hand the model and store work to the thread pool
(`run_in_threadpool`), so the event loop keeps answering while photos are embedded.

(No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at
run time, and the `Annotated` dependencies are local to `create_app`.)
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from face_recognizer import __version__
from face_recognizer.errors import FaceRecognizerError
from face_recognizer.server.gallery import ApiError, GalleryService, decode_base64
from face_recognizer.server.live import LiveFeed
from face_recognizer.server.photos import PhotoError, Upload, decode_photo
from face_recognizer.store import ApiKey

log = logging.getLogger("face_recognizer.server")

API = "/api/v1"
KEY_HEADER = "x-api-key"
# The console's <img> tags (face crops, the live stream) cannot send a header: for those GET
# routes only, the key may come in this cookie, which the console sets (SameSite=Strict).
KEY_COOKIE = "face_recognizer_key"
MAX_PHOTOS_PER_REQUEST = 20
STREAM_BOUNDARY = "frame"


@dataclass
class ServerState:
    """What the app serves: the gallery service, the live feed (or None) and the limits."""

    service: GalleryService
    live: LiveFeed | None
    max_request_bytes: int


def _error(status: int, message: str, extra: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, **(extra or {})}, status_code=status)


class BodyLimit:
    """413 for a request body over `limit` bytes: at once from its Content-Length, else as
    soon as more arrives (chunked uploads), before the body is parsed or stored anywhere."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (
            f"The request is larger than the {self.limit / 1e6:g} MB a request may have; "
            "send fewer or smaller photos."
        )
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _error(413, message)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return msg

        async def watched(msg: Message) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _error(413, message)(scope, receive, send)


class _TooLarge(Exception):
    pass


def create_app(state: ServerState) -> FastAPI:
    """The application serving `state` (the CLI builds the state and runs uvicorn)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state.live is not None:
            state.live.start()
        try:
            yield
        finally:
            if state.live is not None:
                state.live.stop()

    app = FastAPI(
        title="face-recognizer",
        version=__version__,
        description="Enrol people, identify and verify faces. Send an API key in `x-api-key` "
        "(`face-recognizer keys create NAME`).",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, limit=state.max_request_bytes)
    service = state.service
    header_key = APIKeyHeader(name=KEY_HEADER, auto_error=False)

    # -- errors ----------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.extra)

    @app.exception_handler(PhotoError)
    async def photo_error(_: Request, exc: PhotoError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = "There is no such page; the API is under /api/v1 (see /docs)."
        elif exc.status_code == 405:
            message = "This address does not take that method (see /docs)."
        return _error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return _error(422, f"{where or 'The request'}: {first.get('msg', 'is not valid')}.")

    @app.exception_handler(FaceRecognizerError)
    async def library_error(_: Request, exc: FaceRecognizerError) -> JSONResponse:
        # the gallery unusable (disk full, locked, another pack's embeddings): its sentence
        log.error("%s", exc)
        return _error(500, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, f"The server could not handle this request ({type(exc).__name__}).")

    # -- keys ------------------------------------------------------------------------------
    async def _key(request: Request, key: str | None, cookie_ok: bool) -> ApiKey:
        if not key and cookie_ok:
            key = request.cookies.get(KEY_COOKIE)
        if not key:
            raise ApiError(401, f"This request needs an API key in the {KEY_HEADER} header.")
        found = await run_in_threadpool(service.find_key, key)
        if found is None:
            raise ApiError(401, "The API key is not valid (unknown or revoked).")
        return found

    Header = Annotated[str | None, Depends(header_key)]

    async def reader(request: Request, key: Header) -> ApiKey:
        return await _key(request, key, cookie_ok=False)

    async def image_reader(request: Request, key: Header) -> ApiKey:
        return await _key(request, key, cookie_ok=True)

    async def writer(request: Request, key: Header) -> ApiKey:
        found = await _key(request, key, cookie_ok=False)
        if found.read_only:
            raise ApiError(
                403, f"The key {found.name!r} is read-only; it cannot change the gallery."
            )
        return found

    Reader = Annotated[ApiKey, Depends(reader)]
    ImageReader = Annotated[ApiKey, Depends(image_reader)]
    Writer = Annotated[ApiKey, Depends(writer)]

    # -- routes ----------------------------------------------------------------------------
    @app.get(f"{API}/health")
    async def health() -> dict[str, Any]:
        """Model pack, device, people and faces; needs no key."""
        people, faces = await run_in_threadpool(service.counts)
        pack = service.engine.pack
        return {
            "status": "ok",
            "version": __version__,
            "model_pack": {"name": pack.name, "recognizer_id": pack.recognizer_id},
            "embedding_size": service.engine.embedding_dim,
            "device": service.engine.device.label,
            "people": people,
            "faces": faces,
            "live": state.live is not None,
        }

    @app.get(f"{API}/whoami")
    async def whoami(key: Reader) -> dict[str, object]:
        """The key's name and whether it is read-only (the console's login check)."""
        return key.to_json()

    @app.get(f"{API}/people")
    async def list_people(
        _: Reader,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Everyone by name, a page at a time, with links to each face crop."""
        total, page = await run_in_threadpool(service.people_page, limit, offset)
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "people": [
                {
                    "name": p.name,
                    "photos": p.photos,
                    "created": p.created.isoformat(),
                    "faces": [{"id": i, "crop": f"{API}/faces/{i}/crop.png"} for i in p.face_ids],
                }
                for p in page
            ],
        }

    @app.post(f"{API}/people/{{name:path}}/faces", status_code=200)
    async def add_faces(name: str, request: Request, _: Writer) -> JSONResponse:
        """Enrol photos (multipart `file`, repeated; or JSON `images_base64`) or embeddings
        (JSON `embeddings` with `model_pack`)."""
        body = await _read_body(request, allow_embeddings=True)
        if isinstance(body, dict):
            report = await run_in_threadpool(
                service.enrol_embeddings, name, body.get("embeddings"), body.get("model_pack")
            )
        else:
            report = await run_in_threadpool(service.enrol_photos, name, body)
        return JSONResponse(report.to_json(), status_code=201 if report.created else 200)

    @app.patch(f"{API}/people/{{name:path}}")
    async def rename(name: str, request: Request, _: Writer) -> dict[str, str]:
        """Rename: `{"name": "new name"}`."""
        body = await _json(request)
        new = body.get("name") if isinstance(body, dict) else None
        if not isinstance(new, str):
            raise ApiError(400, 'Send the new name as JSON: {"name": "new name"}.')
        return {"name": await run_in_threadpool(service.rename, name, new)}

    @app.delete(f"{API}/people/{{name:path}}")
    async def remove_person(name: str, _: Writer) -> dict[str, Any]:
        """Remove a person with every photo, embedding and crop."""
        removed = await run_in_threadpool(service.remove_person, name)
        return {"removed": name.strip(), "photos": removed}

    @app.delete(f"{API}/faces/{{face_id}}")
    async def remove_face(face_id: int, _: Writer) -> dict[str, Any]:
        """Remove one photo (the person goes too when it was their last)."""
        name, left = await run_in_threadpool(service.remove_face, face_id)
        return {"removed": face_id, "name": name, "person_photos": left}

    @app.get(f"{API}/faces/{{face_id}}/crop.png")
    async def crop(face_id: int, _: ImageReader) -> Response:
        """The aligned 112x112 face crop that was enrolled."""
        data = await run_in_threadpool(service.crop_png, face_id)
        return Response(data, media_type="image/png", headers={"Cache-Control": "private"})

    @app.post(f"{API}/identify")
    async def identify(
        request: Request,
        _: Reader,
        pick: Literal["largest", "center"] | None = None,
    ) -> dict[str, Any]:
        """Who is in one photo: every face, or with `pick` the largest / the central one."""
        uploads = await _photos(request, exactly=1, what="identify takes one photo")
        image = await run_in_threadpool(decode_photo, uploads[0], service.limits)
        faces = await run_in_threadpool(service.identify, image, pick)
        return {"faces": [f.to_json() for f in faces]}

    @app.post(f"{API}/verify")
    async def verify(
        request: Request,
        _: Reader,
        pick: Literal["largest", "center"] | None = None,
    ) -> dict[str, Any]:
        """Whether two photos show the same person."""
        uploads = await _photos(request, exactly=2, what="verify takes exactly two photos")
        first = await run_in_threadpool(decode_photo, uploads[0], service.limits)
        second = await run_in_threadpool(decode_photo, uploads[1], service.limits)
        labels = (f"The first photo ({uploads[0].label})", f"The second photo ({uploads[1].label})")
        result = await run_in_threadpool(service.verify, first, second, labels, pick)
        return result.to_json()

    # -- live ------------------------------------------------------------------------------
    def _live() -> LiveFeed:
        if state.live is None:
            raise ApiError(404, "This server has no live source; start it with --source.")
        return state.live

    @app.get(f"{API}/live/status")
    async def live_status(_: Reader) -> dict[str, Any]:
        """The live view's status line and the faces of its newest frame."""
        return _live().status()

    @app.get(f"{API}/live/frame.jpg")
    async def live_frame(_: ImageReader) -> Response:
        """The newest frame without boxes (to enrol a snap)."""
        data = await run_in_threadpool(_live().raw_jpeg)
        if data is None:
            raise ApiError(503, "The live source has not sent a frame yet.")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.get(f"{API}/live/stream.mjpeg")
    async def live_stream(request: Request, _: ImageReader) -> Response:
        """The labelled frames as MJPEG, one part per recognized frame."""
        feed = _live()

        async def parts() -> AsyncIterator[bytes]:
            last = -1
            while not feed.stopping and not await request.is_disconnected():
                if feed.seq == last:
                    await asyncio.sleep(0.01)
                    continue
                frame = await run_in_threadpool(feed.frame_jpeg)
                if frame is None:
                    await asyncio.sleep(0.05)
                    continue
                last, data = frame
                yield (
                    (
                        f"--{STREAM_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n"
                    ).encode()
                    + data
                    + b"\r\n"
                )

        return StreamingResponse(
            parts(),
            media_type=f"multipart/x-mixed-replace; boundary={STREAM_BOUNDARY}",
            headers={"Cache-Control": "no-store"},
        )

    # -- the console -------------------------------------------------------------------------
    static = resources.files("face_recognizer.server") / "static"

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    # -- request bodies ----------------------------------------------------------------------
    async def _photos(request: Request, exactly: int, what: str) -> list[Upload]:
        body = await _read_body(request, allow_embeddings=False)
        if not isinstance(body, list):  # pragma: no cover - embeddings are not read here
            raise ApiError(400, "This request takes photos, not embeddings.")
        if len(body) != exactly:
            raise ApiError(400, f"{what[0].upper()}{what[1:]}, got {len(body)}.")
        return body

    async def _read_body(request: Request, allow_embeddings: bool) -> list[Upload] | dict[str, Any]:
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith("multipart/form-data"):
            try:
                form = await request.form(max_files=MAX_PHOTOS_PER_REQUEST, max_fields=50)
            except StarletteHTTPException as exc:
                raise ApiError(400, f"The form could not be read ({exc.detail}).") from None
            except Exception as exc:  # a broken multipart body
                raise ApiError(400, f"The form could not be read ({exc}).") from None
            files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
            if not files:
                raise ApiError(400, "Send the photos as form files named 'file'.")
            uploads = []
            for i, f in enumerate(files, 1):
                data = await f.read()
                upload = Upload(f.filename or f"photo {i}", data)
                service.limits.check_size(upload)
                uploads.append(upload)
            return uploads
        if ctype.startswith("application/json"):
            body = await _json(request)
            if not isinstance(body, dict):
                raise ApiError(400, "The JSON body must be an object.")
            if allow_embeddings and "embeddings" in body:
                return body
            if "images_base64" not in body:
                wanted = '"images_base64"' + (' or "embeddings"' if allow_embeddings else "")
                raise ApiError(400, f"The JSON body needs {wanted}.")
            uploads = decode_base64(body["images_base64"], service.limits)
            if len(uploads) > MAX_PHOTOS_PER_REQUEST:
                raise ApiError(400, f"Send at most {MAX_PHOTOS_PER_REQUEST} photos per request.")
            return uploads
        raise ApiError(
            415,
            "Send photos as multipart/form-data (files named 'file') or as JSON "
            '{"images_base64": [...]}.',
        )

    return app


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "The body is not valid JSON.") from None
