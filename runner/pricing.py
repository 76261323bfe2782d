"""What a request costs before it is sent: the provider's price catalog, cached.

`GET /v1/models?include=pricing` (no key) gives each model a `pricing` block: `fixed`
(`units: [{name, price, per}]`) or `variants` (`dimensions`, `variants: [{when, price,
unit, per}]`). A price is always `price` for `per` units; a video model is billed per
second of video (or per generation). The list is cached with its ETag and refreshed with
`If-None-Match` (304: still current); offline, the last cached list is used, else the
snapshot shipped in `schemas/prices/` (the prices the provider's docs state, which few
models have). A model without a price is unknown, never free: the estimate says so.

    cache: $RUNNER_CACHE_DIR, else $XDG_CACHE_HOME/runner, else ~/.cache/runner
           prices/<host>.json  {"url", "etag", "fetched_at", "body"}

`RUNNER_PRICES` chooses another source: `offline` never fetches a provider's public
catalog (the cached list, else the snapshot: for air-gapped machines), a file path reads
that catalog JSON (prices pinned for review). `--base-url` is always asked: it was named.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runner import __version__
from runner.catalog import get_model, seconds_of
from runner.durable import write_atomic
from runner.errors import RunnerError, UsageError
from runner.providers import get_provider
from runner.request import Request
from runner.schemas import schemas_dir

if TYPE_CHECKING:
    # httpx (and rich, which it imports whenever rich is installed) is loaded only to
    # fetch: a plan priced offline or from a file never needs it (~150 ms of imports).
    import httpx

CATALOG_PATH = "/v1/models?include=pricing"
PRICES_ENV = "RUNNER_PRICES"  # unset: live; "offline"; or a catalog JSON file
TIMEOUT = {"connect": 5.0, "read": 20.0, "write": 5.0, "pool": 5.0}  # httpx.Timeout's
SNAPSHOT = "prices/snapshot.json"  # relative to schemas/
MAX_BODY = 50 * 1024 * 1024  # a catalog of a few thousand models is a few megabytes


@dataclass(frozen=True)
class PriceList:
    """One provider's prices and where they came from."""

    source: str  # the URL, "the shipped snapshot" or "the embedded sandbox"
    fetched_at: float | None  # epoch seconds; None for the snapshot
    blocks: Mapping[str, Mapping[str, Any]]  # model id (and aliases) -> pricing block
    note: str = ""  # why a fallback was used

    def describe(self, now: float) -> str:
        """Say which price list this is and how old, for the plan's cost line."""
        age = "undated" if self.fetched_at is None else _age(max(0.0, now - self.fetched_at))
        extra = f"; {self.note}" if self.note else ""
        return f"{self.source} ({age}{extra})"

    def usd(self, request: Request) -> float | None:
        """Return what `request` would cost, or None when its model has no known price."""
        block = self.blocks.get(request.model)
        if block is None:
            return None
        return estimate(block, request.model, request.body)


def estimate(block: Mapping[str, Any], model_name: str, body: Mapping[str, Any]) -> float | None:
    """Return the price of one generation from a pricing block, or None when it cannot say."""
    model = get_model(model_name)
    seconds = seconds_of(body.get("duration"))
    if seconds is None and model is not None:
        seconds = model.expected_duration
    kind = block.get("kind")
    if kind == "fixed":
        units = block.get("units") or []
        return _sum(units, seconds)
    if kind == "variants":
        dims = block.get("dimensions") or []
        values = {d: body.get(d, _default(model, d)) for d in dims}
        for variant in block.get("variants") or []:
            when = variant.get("when") or {}
            if all(str(values.get(k)).lower() == str(v).lower() for k, v in when.items()):
                return _sum([variant], seconds)
        return None
    return None


def _sum(units: Sequence[Mapping[str, Any]], seconds: int | None) -> float | None:
    total = 0.0
    for unit in units:
        price, per = unit.get("price"), unit.get("per", 1)
        name = str(unit.get("unit") or unit.get("name") or "")
        if not isinstance(price, int | float) or not isinstance(per, int | float) or per <= 0:
            return None
        if name in ("second", "seconds", "s"):
            if seconds is None:
                return None  # billed by the second, and nothing says how many
            total += price / per * seconds
        elif name in ("generation", "video", "request", "item"):
            total += price / per
        else:
            return None  # tokens, megapixels...: not how a video is billed here
    return round(total, 6)


def _default(model: Any, dimension: str) -> Any:
    if model is None:
        return None
    return getattr(model, f"default_{dimension}", None)


def _age(seconds: float) -> str:
    if seconds < 120:
        return "fetched just now"
    if seconds < 7200:
        return f"fetched {seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"fetched {seconds / 3600:.0f} h ago"
    return f"fetched {seconds / 86400:.0f} days ago"


# ---------------------------------------------------------------------------- fetching


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return where downloaded price lists are kept."""
    env = os.environ if environ is None else environ
    if env.get("RUNNER_CACHE_DIR"):
        return Path(env["RUNNER_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "runner"


def fetch_prices(
    base_url: str,
    *,
    folder: Path | None = None,
    wall: Callable[[], float] = time.time,
    transport: httpx.BaseTransport | None = None,
) -> PriceList:
    """Return the price list at `base_url`: fetched (or confirmed by a 304), else cached,
    else the shipped snapshot. Never raises for a network problem: prices inform, they do
    not block."""
    import httpx

    ask = _Ask(base_url, folder or cache_dir(), wall)
    try:
        with httpx.Client(timeout=httpx.Timeout(**TIMEOUT), transport=transport) as client:
            response = client.get(ask.url, headers=ask.headers)
    except httpx.HTTPError as exc:
        return ask.fallback(f"offline: {type(exc).__name__}")
    return ask.answer(response)


async def fetch_prices_async(
    base_url: str,
    *,
    folder: Path | None = None,
    wall: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PriceList:
    """`fetch_prices` for the run's event loop (and its API transport, in tests)."""
    import httpx

    from runner.transport import tls_context

    ask = _Ask(base_url, folder or cache_dir(), wall)
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(**TIMEOUT), transport=transport, verify=tls_context()
        ) as client:
            response = await client.get(ask.url, headers=ask.headers)
    except httpx.HTTPError as exc:
        return ask.fallback(f"offline: {type(exc).__name__}")
    return ask.answer(response)


class _Ask:
    """One conditional fetch of a price catalog: what to send, and what its answer means."""

    def __init__(self, base_url: str, folder: Path, wall: Callable[[], float]) -> None:
        self.url = base_url.rstrip("/") + CATALOG_PATH
        self.path = folder / "prices" / f"{_slug(base_url)}.json"
        self.cached = _read_cache(self.path, self.url)
        self.wall = wall
        self.headers = {"User-Agent": f"runner/{__version__}", "Accept": "application/json"}
        if self.cached is not None and self.cached.get("etag"):
            self.headers["If-None-Match"] = self.cached["etag"]

    def answer(self, response: httpx.Response) -> PriceList:
        cached = self.cached
        if response.status_code == 304 and cached is not None:
            cached["fetched_at"] = self.wall()
            _write_cache(self.path, cached)
            return _from_body(self.url, cached["body"], cached["fetched_at"])
        if response.status_code != 200 or len(response.content) > MAX_BODY:
            return self.fallback(f"HTTP {response.status_code}")
        try:
            body = response.json()
            prices = _from_body(self.url, body, self.wall())
        except (ValueError, TypeError, AttributeError):
            return self.fallback("the catalog was not the documented JSON")
        _write_cache(self.path, {
            "url": self.url, "etag": response.headers.get("ETag"),
            "fetched_at": prices.fetched_at, "body": body,
        })
        return prices

    def fallback(self, why: str) -> PriceList:
        return _fallback(self.cached, why)


def _from_body(source: str, body: Any, fetched_at: float | None, note: str = "") -> PriceList:
    blocks: dict[str, Mapping[str, Any]] = {}
    for item in body.get("data") or []:
        pricing = item.get("pricing") if isinstance(item, Mapping) else None
        if not isinstance(pricing, Mapping):
            continue
        for name in (item.get("id"), *(item.get("aliases") or [])):
            if isinstance(name, str):
                blocks[name] = pricing
    return PriceList(source, fetched_at, blocks, note)


def cached_prices(base_url: str, why: str, folder: Path | None = None) -> PriceList:
    """Return the cached list of `base_url` without asking it, else the snapshot."""
    url = base_url.rstrip("/") + CATALOG_PATH
    cached = _read_cache((folder or cache_dir()) / "prices" / f"{_slug(base_url)}.json", url)
    return _fallback(cached, why)


def file_prices(path: Path) -> PriceList:
    """Return the catalog JSON at `path` (`RUNNER_PRICES=<file>`); UsageError if unreadable."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return _from_body(str(path), body, path.stat().st_mtime, f"{PRICES_ENV}={path}")
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        msg = (f"{PRICES_ENV}={path}: not a readable price catalog ({exc}) — point it at the "
               "JSON of GET /v1/models?include=pricing, or unset it")
        raise UsageError(msg) from None


def _fallback(cached: dict[str, Any] | None, why: str) -> PriceList:
    if cached is not None:
        return _from_body(cached["url"], cached["body"], cached.get("fetched_at"),
                          f"{why}, the cached list")
    return snapshot(f"{why}, no cached list")


def snapshot(note: str = "") -> PriceList:
    """Return the shipped snapshot (prices stated in the provider's docs)."""
    data = json.loads((schemas_dir() / SNAPSHOT).read_text(encoding="utf-8"))
    return _from_body(f"the shipped snapshot ({data.get('source', '?')})", data, None, note)


def sandbox_prices(wall: Callable[[], float] = time.time) -> PriceList:
    """Return the embedded sandbox's price list, without starting it."""
    from runner.sandbox.pricing import catalog_response

    body, _ = catalog_response()
    return _from_body("the embedded sandbox", json.loads(body), wall())


def _read_cache(path: Path, url: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("url") == url and "body" in data else None


def _write_cache(path: Path, data: Mapping[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data).encode("utf-8"))
    except (OSError, RunnerError):
        pass  # an unwritable cache only costs the next fetch its 304


def _slug(base_url: str) -> str:
    parts = urlsplit(base_url)
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:8]
    return f"{parts.hostname or 'host'}-{parts.port or ''}-{digest}"


# ----------------------------------------------------------------------------- pricing


@dataclass
class Pricer:
    """Price lists by provider, fetched once each, for the requests of a plan or run."""

    base_url: str | None = None  # --base-url: every provider's prices come from there
    folder: Path | None = None
    source: str | None = field(default_factory=lambda: os.environ.get(PRICES_ENV) or None)
    transport: httpx.BaseTransport | None = None
    lists: dict[str, PriceList] = field(default_factory=dict)

    def list_for(self, provider: str) -> PriceList:
        """Return (fetching once) the price list of `provider`."""
        found = self.lists.get(provider)
        if found is None:
            base = self._where(provider)
            found = self._local(provider) if base is None else fetch_prices(
                base, folder=self.folder, transport=self.transport
            )
            self.lists[provider] = found
        return found

    async def prefetch(
        self, providers: Iterable[str], transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """Fetch the price lists of `providers` from the event loop, once each."""
        for provider in sorted(set(providers) - set(self.lists)):
            base = self._where(provider)
            self.lists[provider] = self._local(provider) if base is None else (
                await fetch_prices_async(base, folder=self.folder, transport=transport)
            )

    def _where(self, provider: str) -> str | None:
        """Where `provider`'s catalog is fetched from (None: known without a fetch)."""
        if self.base_url is not None:
            return self.base_url
        spec = get_provider(provider)
        if self.source is not None or not spec.price_catalog:
            return None
        return spec.base_url

    def _local(self, provider: str) -> PriceList:
        """The price list of `provider` when nothing is fetched."""
        spec = get_provider(provider)
        if spec.base_url is None:
            return sandbox_prices()
        if not spec.price_catalog:
            return snapshot(f"{provider} publishes no price catalog")
        if self.source == "offline":
            return cached_prices(spec.base_url, f"{PRICES_ENV}=offline", self.folder)
        return file_prices(Path(str(self.source)))

    def usd(self, request: Request) -> float | None:
        """Return the estimated cost of `request`, or None when its price is unknown."""
        return self.list_for(request.provider).usd(request)

    def describe(self, now: float) -> str:
        """Name the price lists used, for the plan's cost line."""
        return "; ".join(f"{p}: {pl.describe(now)}" for p, pl in sorted(self.lists.items()))
