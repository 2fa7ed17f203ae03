"""The httpx shells of fault injection: a transport that wraps any other.

The injector (seawall._chaos) decides; these carry the decision out as a network would show
it to httpx: errors are httpx's own (``ConnectError``, ``ReadError``, ``ReadTimeout``), a
status fault is a response that never reached the inner transport, and every wait honours
the request's timeouts (a wait past the read timeout ends as ``httpx.ReadTimeout`` at it, a
refusal slower than the connect timeout as ``httpx.ConnectTimeout``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator

import httpx

from seawall._chaos import (
    HTTP,
    ConnectError,
    Error,
    Fault,
    Hang,
    Injector,
    ReadTimeout,
    Reset,
    Schedule,
    SlowBody,
    Status,
)
from seawall._clock import Clock
from seawall._stats import live

__all__ = ["AsyncChaosTransport", "ChaosTransport"]


def _timeout(request: httpx.Request, which: str) -> float | None:
    timeout = request.extensions.get("timeout")
    if not isinstance(timeout, dict):
        return None
    seconds = timeout.get(which)
    return None if seconds is None else float(seconds)


def _read_timeout(request: httpx.Request) -> float | None:
    return _timeout(request, "read")


def _timed_out(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout("timed out (seawall chaos)", request=request)


def _cut(fault: Fault, request: httpx.Request) -> tuple[float, httpx.TimeoutException] | None:
    """When an error fault's ``after`` outlasts the request's own timeout, the timeout ends
    the attempt first: a refusal that takes longer than the connect timeout is a
    ``ConnectTimeout`` at it, anything else a ``ReadTimeout`` at the read timeout."""
    after: float = getattr(fault, "after", 0.0)
    if isinstance(fault, ConnectError):
        limit = _timeout(request, "connect")
        if limit is not None and after > limit:
            return limit, httpx.ConnectTimeout("timed out (seawall chaos)", request=request)
        return None
    limit = _read_timeout(request)
    if limit is not None and after > limit:
        return limit, _timed_out(request)
    return None


def _error(fault: Fault, request: httpx.Request) -> BaseException:
    """The exception an attempt ends with under ``fault`` (one that raises)."""
    if isinstance(fault, ConnectError):
        return httpx.ConnectError("[Errno 111] Connection refused (seawall chaos)", request=request)
    if isinstance(fault, Reset):
        return httpx.ReadError(
            "[Errno 104] Connection reset by peer (seawall chaos)", request=request
        )
    if isinstance(fault, ReadTimeout):
        return _timed_out(request)
    if isinstance(fault, Error):
        return fault.make()
    raise AssertionError(f"no HTTP behaviour for {fault!r}")  # pragma: no cover


def _status(fault: Status, request: httpx.Request) -> httpx.Response:
    headers = {"content-type": "text/plain"}
    if fault.retry_after is not None:
        headers["retry-after"] = str(fault.retry_after)
    return httpx.Response(fault.code, headers=headers, content=fault.body, request=request)


_NO_END = (
    "seawall chaos: a Hang on a request without a read timeout would block its thread "
    "forever; give the client a timeout"
)


def _chunks(body: bytes, count: int) -> list[bytes]:
    size = max(1, math.ceil(len(body) / count))
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return parts or [b""]


class _SlowStream(httpx.SyncByteStream):
    def __init__(self, body: bytes, fault: SlowBody, clock: Clock, request: httpx.Request) -> None:
        self._parts = _chunks(body, fault.chunks)
        self._pause = fault.seconds / len(self._parts)
        self._clock = clock
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        read = _read_timeout(self._request)
        for part in self._parts:
            if read is not None and self._pause > read:
                self._clock.sleep(read)
                raise _timed_out(self._request)
            self._clock.sleep(self._pause)
            yield part


class _AsyncSlowStream(httpx.AsyncByteStream):
    def __init__(self, body: bytes, fault: SlowBody, clock: Clock, request: httpx.Request) -> None:
        self._parts = _chunks(body, fault.chunks)
        self._pause = fault.seconds / len(self._parts)
        self._clock = clock
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = _read_timeout(self._request)
        for part in self._parts:
            if read is not None and self._pause > read:
                await self._clock.asleep(read)
                raise _timed_out(self._request)
            await self._clock.asleep(self._pause)
            yield part


def _slowed(
    response: httpx.Response, stream: httpx.SyncByteStream | httpx.AsyncByteStream
) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=stream,
        extensions=dict(response.extensions),
    )


class _Step:
    """What a transport does with one request under an armed injector, decided without I/O
    (both transports carry it out): wait ``waits`` in turn, then raise ``error``, or answer
    ``response``, or wait until cancelled (``hang``), or send the request and slow its body
    down (``slow``), or just send it."""

    __slots__ = ("error", "hang", "response", "slow", "waits")

    def __init__(
        self,
        waits: tuple[float, ...] = (),
        *,
        error: BaseException | None = None,
        response: httpx.Response | None = None,
        hang: bool = False,
        slow: SlowBody | None = None,
    ) -> None:
        self.waits = waits
        self.error = error
        self.response = response
        self.hang = hang
        self.slow = slow


def _decide(injector: Injector, request: httpx.Request, *, may_hang_forever: bool) -> _Step:
    """The injector's plan for ``request``, as a network would show it to httpx: every wait
    honours the request's timeouts. ``may_hang_forever``: an async request without a read
    timeout hangs until cancelled; a sync one cannot (its Hang is refused)."""
    url = request.url
    read = _read_timeout(request)
    plan = injector._plan(
        request.method,
        url.host,
        url.path,
        hang_refused="" if read is not None or may_hang_forever else _NO_END,
    )
    fault = plan.fault
    waits: tuple[float, ...] = ()
    if plan.delay:
        if read is not None and plan.delay > read:
            return _Step((read,), error=_timed_out(request))
        waits = (plan.delay,)
    if fault is None:
        return _Step(waits)
    if isinstance(fault, Status):
        return _Step(waits, response=_status(fault, request))
    if isinstance(fault, Hang):
        if read is None:  # async only: _plan refused it for a sync request
            return _Step(waits, hang=True)
        return _Step((*waits, read), error=_timed_out(request))
    if isinstance(fault, SlowBody):
        return _Step(waits, slow=fault)
    cut = _cut(fault, request)
    if cut is not None:
        return _Step((*waits, cut[0]), error=cut[1])
    after: float = getattr(fault, "after", 0.0)
    return _Step((*waits, after) if after else waits, error=_error(fault, request))


class _Shell:
    """What both transports share: the injector, built for requests."""

    injector: Injector

    def _setup(
        self,
        faults: tuple[Fault | Schedule, ...],
        enabled: bool | None,
        seed: int | None,
        name: str,
        clock: Clock | None,
    ) -> None:
        self.injector = Injector(
            *faults, enabled=enabled, seed=seed, name=name, clock=clock, _shape=HTTP
        )
        # Its injections have series; calls through it are the transport's, never its own
        # (no call-level series for an injector that only a transport uses).
        live.mark_member(self.injector)
        self._clock = self.injector.clock


class ChaosTransport(_Shell, httpx.BaseTransport):
    """Wraps ``transport`` and injects ``faults`` (or a :class:`~seawall.chaos.Schedule` of
    them) into the requests sent through it; while it is not enabled, requests go straight
    to ``transport``. The arguments are :func:`seawall.chaos.inject`'s; ``name`` labels its
    ``seawall_chaos_injections_total`` series. ``injector`` is the part that decides (its
    ``snapshot()``, ``restart()``, ``phase()``)."""

    def __init__(
        self,
        transport: httpx.BaseTransport,
        *faults: Fault | Schedule,
        enabled: bool | None = None,
        seed: int | None = None,
        name: str = "chaos",
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(transport, httpx.BaseTransport):
            raise TypeError(f"transport must be an httpx.BaseTransport, got {transport!r}")
        self._transport = transport
        self._setup(faults, enabled, seed, name, clock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        injector = self.injector
        if not injector._armed:
            return self._transport.handle_request(request)
        step = _decide(injector, request, may_hang_forever=False)
        for wait in step.waits:
            self._clock.sleep(wait)
        if step.error is not None:
            raise step.error
        if step.response is not None:
            return step.response
        response = self._transport.handle_request(request)
        if step.slow is None:
            return response
        stream = response.stream  # as sent (still encoded), even if read already
        assert isinstance(stream, httpx.SyncByteStream)
        try:
            body = b"".join(stream)
        finally:
            response.close()
        return _slowed(response, _SlowStream(body, step.slow, self._clock, request))

    def close(self) -> None:
        self._transport.close()

    def __repr__(self) -> str:
        return f"ChaosTransport({self._transport!r}, {self.injector!r})"


class AsyncChaosTransport(_Shell, httpx.AsyncBaseTransport):
    """The async twin of :class:`ChaosTransport`: a :class:`~seawall.chaos.Hang` waits until
    the request's read timeout (forever without one: only a cancellation ends it)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *faults: Fault | Schedule,
        enabled: bool | None = None,
        seed: int | None = None,
        name: str = "chaos",
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(transport, httpx.AsyncBaseTransport):
            raise TypeError(f"transport must be an httpx.AsyncBaseTransport, got {transport!r}")
        self._transport = transport
        self._setup(faults, enabled, seed, name, clock)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        injector = self.injector
        if not injector._armed:
            return await self._transport.handle_async_request(request)
        step = _decide(injector, request, may_hang_forever=True)
        for wait in step.waits:
            await self._clock.asleep(wait)
        if step.hang:
            import asyncio

            await asyncio.get_running_loop().create_future()  # only a cancel ends it
        if step.error is not None:
            raise step.error
        if step.response is not None:
            return step.response
        response = await self._transport.handle_async_request(request)
        if step.slow is None:
            return response
        stream = response.stream  # as sent (still encoded), even if read already
        assert isinstance(stream, httpx.AsyncByteStream)
        try:
            body = b"".join([part async for part in stream])
        finally:
            await response.aclose()
        return _slowed(response, _AsyncSlowStream(body, step.slow, self._clock, request))

    async def aclose(self) -> None:
        await self._transport.aclose()

    def __repr__(self) -> str:
        return f"AsyncChaosTransport({self._transport!r}, {self.injector!r})"
