"""The sandbox's HTTP side: the API's routes, faults, signed downloads and stats.

Routes (the documented contract, for every endpoint in the model catalog):

    POST /v2/generate/video/runway/generation          create -> {"id", "status": "queued"}
    GET  /v2/generate/video/runway/generation?generation_id=ID     poll
    GET  /files/ID.mp4?_jwt=TOKEN                      signed, expiring download
    GET  /v2/logs?period=24h | ?start=…&end=…          usage logs (see ledger.py)
    GET  /_sandbox/stats      DELETE /_sandbox/stats   counters; reset them
    GET  /_sandbox/config     POST /_sandbox/config    knobs; change them at runtime

Errors use the API's body `{"message", "path", "requestId", "statusCode", "timestamp"}`
and every response carries `x-inference-id`. A create keeps a valid `X-Client-Request-Id`
(`runner.correlation`; an invalid one is dropped without a word, as the API does) and
echoes it as `x-client-request-id`.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web

from runner.catalog import Model, Route, get_model, load_catalog, seconds_of
from runner.clock import Clock, SystemClock
from runner.correlation import HEADER as CLIENT_REQUEST_ID_HEADER
from runner.correlation import is_client_request_id
from runner.errors import UsageError
from runner.identity import canonical_json
from runner.sandbox.cache import RenderCache
from runner.sandbox.config import SandboxConfig
from runner.sandbox.faults import FaultDice
from runner.sandbox.inputs import InputError, InputImage, read_image
from runner.sandbox.ledger import Ledger, QueryError, RateWindow, parse_query
from runner.sandbox.metrics import PATH as METRICS_PATH
from runner.sandbox.metrics import metrics_handler
from runner.sandbox.pricing import catalog_response, charge, credits_of
from runner.sandbox.render import RenderError, RenderJob, output_size, render_clip
from runner.sandbox.signing import TokenCheck, UrlSigner
from runner.sandbox.state import Generation, Phase, Scheduler, StateStore
from runner.sandbox.stats import Stats
from runner.schemas import validator_for
from runner.usage import LOGS_PATH

FILES_PREFIX = "/files/"
# Not API calls: the sandbox's own routes, and the public metrics (no key, no faults).
UNCOUNTED = ("/_sandbox/", METRICS_PATH)
RUNWAY_LEGACY = "/v2/generate/video/runway/generation"  # its polls answer video: [url]
MODELS_PATHS = ("/v1/models", "/models", "/api/v1/models")  # the same price catalog
POLL_ERROR_STATUSES = (500, 502, 504)
MAX_BODY_BYTES = 16 * 1024 * 1024  # a 7 MB data: URI (the schema's limit) must fit
RENDER_WAIT = 2.0  # a poll after the generation's time waits this long for its clip
DEFAULT_DURATION = 5  # Runway's default when the body gives none
PLACEHOLDER_NOTE = (
    "image_url is an https URL, which the offline sandbox cannot fetch; the clip was "
    "rendered from a generated placeholder frame"
)
FAILURE_MESSAGE = "Generation failed: the model could not process this request (sandbox fault)"

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Sandbox:
    """One emulated API: its knobs, generations, renders and counters."""

    def __init__(self, config: SandboxConfig, clock: Clock | None = None) -> None:
        self.config = config
        self._clock = clock or SystemClock()  # wall time: URL expiry, timestamps
        self.stats = Stats()
        self._dice = FaultDice(config)
        self._seed_rng = random.Random(f"{config.seed}:seed")
        self._generations: dict[str, Generation] = {}
        self._cache = RenderCache(config.cache_size, _cache_dir(config))
        self._pool = ThreadPoolExecutor(config.render_workers, thread_name_prefix="render")
        self._renders: dict[str, asyncio.Future[bytes | None]] = {}  # in flight, by render key
        self._rendered: set[str] = set()
        self._render_failures: dict[str, str] = {}
        self._noticed: set[str] = set()  # generations some poll has answered `completed`
        self._ending: list[float] = []  # heap: when each unfinished generation ends
        self._store = StateStore(config.state_dir) if config.state_dir else None
        self._ledger = Ledger(config.state_dir)
        self._log_rate = RateWindow()
        secret = self._store.signing_key() if self._store else uuid.uuid4().bytes * 2
        self._signer = UrlSigner(secret)
        self._scheduler: Scheduler | None = None  # needs the running loop: see on_startup
        self._wall_offset = 0.0

    # -- lifecycle ---------------------------------------------------------------------

    def app(self) -> web.Application:
        """Build the aiohttp application serving this sandbox."""
        app = web.Application(
            middlewares=[self._errors_mw, self._slow_mw], client_max_size=MAX_BODY_BYTES
        )
        for endpoint in serving():
            app.router.add_post(endpoint, self._create)
            app.router.add_get(endpoint, self._poll)
        app.router.add_get(FILES_PREFIX + "{name}", self._download)
        app.router.add_get(LOGS_PATH, self._logs)
        app.router.add_get(METRICS_PATH, metrics_handler(self._generations.values, self._now,
                                                         self._clock.wall))
        for path in MODELS_PATHS:
            app.router.add_get(path, self._models)
        app.router.add_get("/_sandbox/stats", self._get_stats)
        app.router.add_delete("/_sandbox/stats", self._reset_stats)
        app.router.add_get("/_sandbox/config", self._get_config)
        app.router.add_post("/_sandbox/config", self._set_config)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        now = self._now()
        self._wall_offset = self._clock.wall() - now
        self._scheduler = Scheduler(self.config.concurrency, self.config.seed, now)
        if self._store is not None:
            for gen in self._store.load(self._wall_offset):
                self._generations[gen.id] = gen
                self._ledger.expect(gen)  # skipped when its row was written before
                self.stats.submission(gen.body_sha256)
            self._scheduler.occupy([g.ends_at for g in self._generations.values()], now)

    async def _on_cleanup(self, _app: web.Application) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def snapshot(self) -> dict[str, Any]:
        """Return the stats counters with generations counted by status."""
        now = self._now()
        by_status = dict.fromkeys(("queued", "generating", "completed", "error"), 0)
        for gen in self._generations.values():
            by_status[self._status(gen, now)] += 1
        return self.stats.snapshot(by_status)

    def reconfigure(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Apply runtime knob changes (raises UsageError for a bad one)."""
        new = self.config.updated(changes)
        faults = changes.get("faults", {})
        self._dice.reconfigure(new, set(faults) if isinstance(faults, Mapping) else set())
        if self._scheduler is not None:
            if new.concurrency != self.config.concurrency:
                self._scheduler.resize(new.concurrency, self._now())
            if new.seed != self.config.seed:
                self._scheduler.reseed(new.seed)
        self.config = new
        return new

    # -- the API -----------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        client_request_id = request.headers.get(CLIENT_REQUEST_ID_HEADER)
        if client_request_id is not None and not is_client_request_id(client_request_id):
            client_request_id = None  # dropped without a word, exactly as the API does
        response = await self._accept(request, client_request_id)
        if client_request_id is not None and not response.prepared:
            response.headers["x-client-request-id"] = client_request_id
        return response

    async def _accept(
        self, request: web.Request, client_request_id: str | None
    ) -> web.StreamResponse:
        if not _has_bearer(request):
            return self._error(request, 401, "Unauthorized: send Authorization: Bearer <key>")
        refused = self._refuse_submit(request)
        if refused is not None:
            return refused
        raw = await request.read()
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            return self._error(request, 400, "Body validation error: the body is not JSON")
        if not isinstance(body, dict):
            return self._error(request, 400, "Body validation error: the body must be an object")
        found = _validate(body, request.path)
        if isinstance(found, str):
            return self._error(request, 400, found)
        model, route = found
        try:
            images = {
                ".".join(map(str, at)): read_image(".".join(map(str, at)), value)
                for at, value in route.image_values(body)
            }
        except InputError as exc:
            return self._error(request, 400, f"Body validation error: {exc.field}: {exc}")

        gen = self._new_generation(model, route, body, images, client_request_id)
        gen = replace(gen, usd=charge(model, route, body))
        self._generations[gen.id] = gen
        self._ledger.expect(gen)
        if self._store is not None:
            self._store.append(gen, self._wall_offset)  # before the client can hear of it
        self.stats.submission(gen.body_sha256, gen.id, gen.ends_at - gen.starts_at)
        self._count_in_flight(gen)
        if gen.failure is not None:
            self.stats.faults_injected["failed_generation"] += 1
        else:
            self.stats.billed_usd += gen.usd  # a doomed one is refunded when it fails
        if self._dice.fires("drop_after_accept"):
            self.stats.faults_injected["drop_after_accept"] += 1
            if request.transport is not None:
                request.transport.abort()  # accepted and billed, but the answer is lost
        created: dict[str, Any] = {"status": "queued"}
        # MiniMax answers `generation_id` rather than `id` (its documented quirk).
        created["generation_id" if model.family == "MiniMax" and _unified(route) else "id"] = gen.id
        usage = {"credits_used": credits_of(gen.usd), "usd_spent": gen.usd}
        if _unified(route):
            created["meta"] = {"usage": usage}
        return _json(created, gen.id, headers=_cost_headers(gen.usd))

    def _refuse_submit(self, request: web.Request) -> web.Response | None:
        if self._dice.fires("rate_limit"):
            self.stats.faults_injected["rate_limit"] += 1
            headers = {"Retry-After": str(self.config.retry_after)}
            return self._error(request, 429, "Too Many Requests: slow down", headers)
        if self._dice.fires("unavailable"):
            self.stats.faults_injected["unavailable"] += 1
            return self._error(request, 503, "Service Unavailable: try again later")
        return None

    def _new_generation(
        self,
        model: Model,
        route: Route,
        body: dict[str, Any],
        images: dict[str, InputImage],
        client_request_id: str | None,
    ) -> Generation:
        config = self.config
        first = images.get(route.images.first or "")
        last = images.get(route.images.last or "")
        width, height = output_size(_frame_size(model, route, body, first), config.scale)
        seed = body.get("seed") if route.seed is not None else None
        hint = first.sha256 if first is not None else f"t2v:{body.get('prompt', '')}"
        job = RenderJob(
            model=model.name,
            width=width,
            height=height,
            fps=config.fps,
            duration=_duration(model, route, body),
            # "random if absent", as documented (and always for a model without a seed):
            # drawn from the sandbox's seeded stream, so each such generation differs.
            seed=seed if isinstance(seed, int) else self._seed_rng.randrange(2**32),
            prompt=str(body.get("prompt", "")),
            image_sha256=hint,
            image=first.data if first is not None else None,
            last_image=last.data if last is not None else None,
            mode=config.render,
        )
        assert self._scheduler is not None
        now = self._now()
        starts_at, ends_at = self._scheduler.schedule(now, config.latency, config.jitter)
        return Generation(
            id=str(uuid.uuid4()),
            body_sha256=hashlib.sha256(canonical_json(body)).hexdigest(),
            job=job,
            render_key=job.key(),
            submitted_at=now,
            starts_at=starts_at,
            ends_at=ends_at,
            failure=FAILURE_MESSAGE if self._dice.fires("failed_generation") else None,
            placeholder=first is not None and first.data is None and config.render == "full",
            client_request_id=client_request_id,
        )

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        self.stats.polls += 1
        if not _has_bearer(request):
            return self._error(request, 401, "Unauthorized: send Authorization: Bearer <key>")
        if self._dice.fires("poll_error"):
            self.stats.faults_injected["poll_error"] += 1
            status = self._dice.choose("poll_error", POLL_ERROR_STATUSES)
            return self._error(request, status, "Internal server error (sandbox fault)")
        generation_id = request.query.get("generation_id", "")
        if not generation_id:
            msg = "Query validation error: generation_id is required (?generation_id=<id>)"
            return self._error(request, 400, msg)
        gen = self._generations.get(generation_id)
        if gen is None:
            return self._error(request, 404, f"Generation {generation_id!r} not found")
        self.stats.polled[gen.id] += 1

        phase = gen.phase(self._now())
        if gen.failure is None and phase is not Phase.QUEUED:
            pending = self._start_render(gen)  # early, so the clip is ready on time
            if phase is Phase.DONE and pending is not None:
                await asyncio.wait([pending], timeout=RENDER_WAIT)
        now = self._now()
        state = self._status(gen, now)
        result: dict[str, Any] = {"id": gen.id, "status": state}
        unified = request.path != RUNWAY_LEGACY
        if unified:  # the unified endpoint's shape: video {url} | null, error {name, message}
            usage = {"credits_used": 0, "usd_spent": 0.0}
            result.update(video=None, error=None, meta={"usage": usage})
        if state == "completed":
            if gen.id not in self._noticed:
                self._noticed.add(gen.id)
                self.stats.notice_delays.append(max(0.0, now - gen.ends_at))
            url = self._signed_url(request, gen)
            result["video"] = {"url": url} if unified else [url]
            if gen.placeholder:
                result["sandbox"] = {"placeholder_image": True, "message": PLACEHOLDER_NOTE}
        elif state == "error":
            message = gen.failure or self._render_failures[gen.render_key]
            error: Any = {"name": "GenerationError", "message": message}
            result["error"] = error if unified else message
        return _json(result, gen.id, headers=_cost_headers(0.0))  # polls are free

    def _status(self, gen: Generation, now: float) -> str:
        phase = gen.phase(now)
        if phase is not Phase.DONE:
            return str(phase.value)
        if gen.failure is not None or gen.render_key in self._render_failures:
            return "error"
        return "completed" if gen.render_key in self._rendered else "generating"

    def _signed_url(self, request: web.Request, gen: Generation) -> str:
        ttl = self.config.url_ttl
        if self._dice.fires("short_url"):
            self.stats.faults_injected["short_url"] += 1
            ttl = self.config.short_url_ttl
        name = f"{gen.id}.mp4"
        token = self._signer.token(name, self._clock.wall() + ttl)
        return f"{request.scheme}://{request.host}{FILES_PREFIX}{name}?_jwt={token}"

    async def _download(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        check = self._signer.check(request.query.get("_jwt", ""), name, self._clock.wall())
        if check is TokenCheck.EXPIRED:
            msg = "Forbidden: this download link has expired; fetch the generation again"
            return self._error(request, 403, msg)
        if check is not TokenCheck.VALID:
            return self._error(request, 403, "Forbidden: invalid download token")
        gen = self._generations.get(name.removesuffix(".mp4"))
        if gen is None or gen.failure is not None:
            return self._error(request, 404, f"File {name!r} not found")
        clip = await self._clip(gen)
        if clip is None:
            return self._error(request, 404, f"File {name!r} not found: its render failed")
        return await self._send_clip(request, gen, clip)

    async def _send_clip(
        self, request: web.Request, gen: Generation, clip: bytes
    ) -> web.StreamResponse:
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "x-inference-id": gen.id}
        start, end, status = 0, len(clip), 200
        try:
            wanted = request.http_range
        except ValueError:
            return self._error(request, 416, "Range Not Satisfiable: malformed Range header")
        if wanted.start is not None or wanted.stop is not None:
            start, stop, _ = wanted.indices(len(clip))
            if start >= stop:
                return self._error(request, 416, "Range Not Satisfiable")
            end, status = stop, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(clip)}"
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = end - start
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        self.stats.downloads += 1
        if self._dice.fires("truncated_download"):
            self.stats.faults_injected["truncated_download"] += 1
            await response.write(clip[start : start + (end - start) // 2])
            if request.transport is not None:
                request.transport.abort()  # Content-Length promised more: the client sees it
            return response
        await response.write(clip[start:end])
        await response.write_eof()
        return response

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        self.stats.log_queries += 1
        if not self.config.logs:
            return self._error(request, 404, f"Cannot GET {LOGS_PATH} (sandbox knob logs=false)")
        if not _has_bearer(request):
            return self._error(request, 401, "Unauthorized: send Authorization: Bearer <key>")
        now = self._now()
        wait = self._log_rate.wait(now, self.config.log_rate, self.config.log_rate_window)
        if wait is not None:
            headers = {"Retry-After": str(wait)}
            msg = f"Too Many Requests: over {self.config.log_rate} log queries per window"
            return self._error(request, 429, msg, headers)
        try:
            query = parse_query(
                {name: request.query.getall(name) for name in request.query},
                self._clock.wall(),
            )
        except QueryError as exc:
            return self._error(request, 400, f"Query validation error: {exc}")
        self._ledger.settle(now, self.config.log_lag, self._wall_offset, self._failed)
        return web.json_response(self._ledger.page(query))

    def _failed(self, gen: Generation) -> bool:
        # A render that fails after the row is written cannot change it: rows are final.
        return gen.failure is not None or gen.render_key in self._render_failures

    # -- rendering -----------------------------------------------------------------------

    def _start_render(self, gen: Generation) -> asyncio.Future[bytes | None] | None:
        """Start rendering `gen`'s clip unless it is done or under way; return the future."""
        key = gen.render_key
        if key in self._rendered or key in self._render_failures:
            return None
        future = self._renders.get(key)
        if future is None:
            future = asyncio.ensure_future(self._render(gen.job, key))
            self._renders[key] = future
        return future

    async def _render(self, job: RenderJob, key: str) -> bytes | None:
        """Render (or fetch from the cache) one clip; None when its image is unusable."""
        try:
            loop = asyncio.get_running_loop()
            cached = await loop.run_in_executor(self._pool, self._cache.get, key)
            if cached is not None:
                self.stats.render_cache_hits += 1
                clip = cached
            else:
                clip = await loop.run_in_executor(self._pool, render_clip, job)
                self.stats.renders += 1
                await loop.run_in_executor(self._pool, self._cache.put, key, clip)
            self._rendered.add(key)
            return clip
        except RenderError as exc:
            self._render_failures[key] = f"Generation failed: {exc}"
            return None
        except Exception as exc:
            # A renderer bug must not leave the generation "generating" forever: fail it
            # visibly (the client sees the exception) and log the traceback for us.
            log.exception("rendering %s failed", key)
            self._render_failures[key] = f"Generation failed: sandbox render crashed: {exc!r}"
            return None
        finally:
            self._renders.pop(key, None)

    async def _clip(self, gen: Generation) -> bytes | None:
        """Return the clip's bytes, rendering again if the cache let it go."""
        clip = self._cache.get(gen.render_key)
        if clip is not None:
            return clip
        pending = self._renders.get(gen.render_key)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._render(gen.job, gen.render_key)

    def _count_in_flight(self, gen: Generation) -> None:
        """Track the most generations queued or generating at once (`peak_in_flight`)."""
        now = self._now()
        while self._ending and self._ending[0] <= now:
            heapq.heappop(self._ending)
        heapq.heappush(self._ending, gen.ends_at)
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, len(self._ending))

    async def _models(self, request: web.Request) -> web.StreamResponse:
        """The price catalog (no key needed), with its ETag and 304 when unchanged."""
        self.stats.price_queries += 1
        body, etag = catalog_response()
        headers = {"ETag": etag, "Cache-Control": "max-age=300"}
        if request.headers.get("If-None-Match") == etag:
            self.stats.price_not_modified += 1
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)

    # -- the sandbox's own routes ----------------------------------------------------------

    async def _get_stats(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.snapshot())

    async def _reset_stats(self, _request: web.Request) -> web.StreamResponse:
        self.stats.reset()
        return web.json_response(self.snapshot())

    async def _get_config(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.config.to_mapping())

    async def _set_config(self, request: web.Request) -> web.StreamResponse:
        try:
            changes = await request.json()
        except ValueError:
            return self._error(request, 400, "the config body is not JSON")
        if not isinstance(changes, dict):
            return self._error(request, 400, "the config body must be an object of knobs")
        try:
            new = self.reconfigure(changes)
        except UsageError as exc:
            return self._error(request, 400, str(exc))
        return web.json_response(new.to_mapping())

    # -- middleware and helpers ----------------------------------------------------------

    @web.middleware
    async def _errors_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Give aiohttp's own errors (404, 405) the API's body; count calls and refusals."""
        if not request.path.startswith(UNCOUNTED):
            self.stats.requests += 1
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = self._error(request, exc.status, exc.reason)
        if response.status >= 400 and not request.path.startswith(UNCOUNTED):
            self.stats.rejected[response.status] += 1
        if not response.prepared and "x-inference-id" not in response.headers:
            response.headers["x-inference-id"] = str(uuid.uuid4())
        return response

    @web.middleware
    async def _slow_mw(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Delay API answers under the slow fault: the work is done, the answer is late.

        A create is accepted (and billed) before the wait, as with a busy real API, so a
        client that gives up or dies meanwhile leaves a generation it never heard of.
        """
        slow = not request.path.startswith(UNCOUNTED) and self._dice.fires("slow")
        response = await handler(request)
        if slow:
            self.stats.faults_injected["slow"] += 1
            if not response.prepared:  # a streamed download has already gone out
                await asyncio.sleep(self.config.slow_seconds)
        return response

    def _error(
        self,
        request: web.Request,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        request_id = str(uuid.uuid4())
        body = {
            "message": message,
            "path": request.path,
            "requestId": request_id,
            "statusCode": status,
            "timestamp": _iso(self._clock.wall()),
        }
        return _json(body, request_id, status=status, headers=headers)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()


def serving() -> list[str]:
    """Return every POST path the catalog's models are served at (the routes it answers)."""
    return sorted({r.endpoint for m in load_catalog().models.values() for r in m.routes})


def _validate(body: dict[str, Any], path: str) -> tuple[Model, Route] | str:
    """Check a create body with its model route's schema; return them, or the 400 message."""
    name = body.get("model")
    model = get_model(name) if isinstance(name, str) else None
    if model is None:
        close = load_catalog().suggest(str(name))
        hint = f"did you mean {close!r}? " if close else ""
        return (
            f"Body validation error: model: unknown model {name!r} ({hint}the catalog holds "
            f"{len(load_catalog().models)} models)"
        )
    route = model.route_at(path)
    if route is None:
        served = ", ".join(r.endpoint for r in model.routes)
        return f"Body validation error: model: {name} is served at {served}"
    errors = sorted(
        validator_for(route.schema_file).iter_errors(body), key=lambda e: list(e.absolute_path)
    )
    if not errors:
        return model, route
    return "Body validation error: " + "; ".join(_describe(e) for e in errors[:3])


def _cost_headers(usd: float) -> dict[str, str]:
    """The cost headers every API answer carries."""
    return {"x-aimlapi-usd-spent": f"{usd:.9f}", "x-aimlapi-credits-used": str(credits_of(usd))}


def _unified(route: Route) -> bool:
    return route.endpoint != RUNWAY_LEGACY


def _frame_size(
    model: Model, route: Route, body: Mapping[str, Any], first: InputImage | None
) -> tuple[int, int]:
    """Return the documented output size for a body, or one derived from its ratio."""
    ratio_field = route.wire_name("ratio")
    ratio = body.get(ratio_field) if ratio_field else None
    ratio = ratio if isinstance(ratio, str) else model.default_ratio
    resolution = body.get("resolution", model.default_resolution)
    if isinstance(ratio, str):
        found = model.size(ratio, resolution if isinstance(resolution, str) else None)
        if found is None:
            found = model.size(ratio)
        if found is not None:
            return found
    shape = _ratio(ratio) or (first.aspect if first is not None and first.aspect else 16 / 9)
    short = _short_side(resolution)
    if shape >= 1:
        return round(short * shape), short
    return short, round(short / shape)


def _ratio(text: Any) -> float | None:
    """Read "16:9" as 16/9 (None for anything else)."""
    if not isinstance(text, str) or ":" not in text:
        return None
    left, _, right = text.partition(":")
    try:
        width, height = float(left), float(right)
    except ValueError:
        return None
    return width / height if width > 0 and height > 0 else None


def _short_side(resolution: Any) -> int:
    """Read "1080p" / "720P" as its short side; 720 when the body names none."""
    digits = "".join(ch for ch in str(resolution or "") if ch.isdigit())
    return int(digits) if digits and 144 <= int(digits) <= 2160 else 720


def _duration(model: Model, route: Route, body: Mapping[str, Any]) -> int:
    """Return the clip length in whole seconds: the body's, the model's default, or 5."""
    field = route.wire_name("duration")
    asked = seconds_of(body.get(field)) if field else None
    return min(asked or model.expected_duration or DEFAULT_DURATION, 60)


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "body"
    message = error.message
    if len(message) > 200:  # messages quote the value: never echo a 5 MB data URI
        message = message[:200] + "…"
    return f"{where}: {message}"


def _reject_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which Python's json accepts but JSON does not."""
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _has_bearer(request: web.Request) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


def _json(
    data: Mapping[str, Any],
    inference_id: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    all_headers = {"x-inference-id": inference_id, **(headers or {})}
    return web.json_response(dict(data), status=status, headers=all_headers)


def _iso(epoch: float) -> str:
    """Format a time like the API's error bodies: 2025-01-31T12:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _cache_dir(config: SandboxConfig) -> Path | None:
    if config.cache_dir is not None:
        return config.cache_dir
    return config.state_dir / "renders" if config.state_dir is not None else None
