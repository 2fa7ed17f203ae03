"""RedisState: breakers of one name share one state on Redis (``seawall[redis]``)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from seawall._shared import Lease, Mode, Reply, Report, Settings, SharedState, SharedStatus
from seawall._validate import check_number
from seawall.redis._script import SCRIPT

__all__ = ["RedisState"]


class RedisState(SharedState):
    """One state per breaker name for every process on every host, kept on Redis.

    ``CircuitBreaker(name="payments", shared=RedisState("redis://cache:6379/0"))`` in each
    worker: their window counts are merged, they open, half-open and close together, and
    the fleet sends exactly ``half_open_calls`` probes. A transport's template breaker passes
    it on to every per-host breaker.

    Nothing on a call's success path waits on Redis: a background thread sends each
    breaker's counts and reads the shared state every ``interval`` seconds, and at once after
    a local trip or switch. Only a half-open probe asks Redis first, for a lease, waiting at
    most ``timeout`` seconds. Each decision is one Lua script on Redis's own clock.

    If Redis is gone (or stops answering for about twice ``timeout``), breakers decide
    alone, callers see no error, one warning is logged, and the state is shared again as
    soon as Redis answers. ``close()`` sends what is left and leaves breakers deciding alone.

    ``url_or_client``: a Redis URL (``redis://``, ``rediss://``, ``unix://``) or a
    ``redis.Redis`` client; a client of your own should have short socket timeouts and no
    retries, as one built from a URL here does. ``prefix`` starts every key
    (``{<prefix>:cb:<name>}``, one Redis Cluster slot per breaker). Keys expire ``ttl``
    seconds after the last process that used them stopped.
    """

    def __init__(
        self,
        url_or_client: str | redis.Redis,
        *,
        prefix: str = "seawall",
        interval: float = 0.1,
        timeout: float = 0.25,
        ttl: float = 86_400.0,
    ) -> None:
        timeout = check_number("timeout", timeout)
        if isinstance(url_or_client, str):
            if not url_or_client.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(
                    "url_or_client must be a redis://, rediss:// or unix:// URL, "
                    f"got {url_or_client!r}"
                )
            client: redis.Redis = redis.Redis.from_url(
                url_or_client,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
            where = _without_password(url_or_client)
        elif isinstance(url_or_client, redis.Redis):
            client = url_or_client
            kwargs = client.connection_pool.connection_kwargs
            where = f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        else:
            raise TypeError(
                "url_or_client must be a Redis URL or a redis.Redis client, "
                f"got {type(url_or_client).__name__}"
            )
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(f"prefix must be a non-empty str, got {prefix!r}")
        self.prefix = prefix
        self.ttl = check_number("ttl", ttl)
        self._client = client
        self._script = client.register_script(SCRIPT)
        super().__init__(interval=interval, timeout=timeout, where=where)

    # -- keys ----------------------------------------------------------------------------------

    def _keys(self, name: str) -> list[str]:
        key = f"{{{self.prefix}:cb:{name}}}"
        return [key, f"{key}:probes"]

    def _head(self, op: str, settings: Settings | None, jitter: float | None = None) -> list[Any]:
        """ARGV 1-12: the op, the settings (ms) or empty strings, the jitter and the TTL. The
        jitter is a fresh random draw unless given: it is also the epoch of a key it makes."""
        if jitter is None:
            jitter = random.random()
        if settings is None:
            values: list[Any] = [""] * 9
        else:
            values = [
                _ms(settings.window),
                settings.buckets,
                settings.minimum_calls,
                repr(settings.failure_ratio),
                -1 if settings.slow_call_ratio is None else repr(settings.slow_call_ratio),
                _ms(settings.open_duration),
                _ms(settings.max_open_duration),
                settings.half_open_calls,
                _ms(settings.half_open_timeout),
            ]
        return [op, *values, repr(jitter), _ms(self.ttl)]

    # -- the backend's operations --------------------------------------------------------------

    def _exchange(self, reports: Sequence[Report]) -> list[Reply]:
        calls = []
        for report in reports:
            args = self._head("sync", report.settings, report.jitter)
            args += [
                report.generation,
                1 if report.trip else 0,
                report.successes,
                report.failures,
                report.slow_calls,
                report.switch or "",
                report.switch_id,
                len(report.verdicts),
            ]
            for lease, verdict in report.verdicts:
                args += [lease, verdict]
            calls.append((self._keys(report.name), args))
        try:
            raws = self._pipelined(calls)
        except redis.exceptions.NoScriptError:
            # Redis restarted or its scripts were flushed: none of the calls ran.
            self._client.script_load(SCRIPT)
            raws = self._pipelined(calls)
        return [_reply(raw) for raw in raws]

    def _pipelined(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        """EVALSHA of every call in one round trip. (redis-py's ``Script`` in a pipeline
        would ask ``SCRIPT EXISTS`` first, a second round trip on every exchange.)"""
        pipe = self._client.pipeline(transaction=False)
        sha = self._script.sha
        for keys, args in calls:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return list(pipe.execute())

    def _lease(self, name: str, settings: Settings, lease: str, jitter: float) -> Lease:
        raw = self._script(
            keys=self._keys(name), args=[*self._head("lease", settings, jitter), lease]
        )
        retry_after = int(raw[8])
        return Lease(
            granted=bool(int(raw[7])),
            reply=_reply(raw),
            retry_after=math.inf if retry_after < 0 else retry_after / 1000.0,
        )

    def _gone(self, exc: BaseException) -> bool:
        return not isinstance(exc, (redis.TimeoutError, TimeoutError))

    # Coroutines ask for leases with the base class's _alease: this sync client on a worker
    # thread. The loop never waits, and no connection pool is tied to one event loop (a
    # redis.asyncio client is), so one RedisState serves every loop and thread.

    def _switch(self, name: str, mode: Mode | None) -> SharedStatus:
        args = self._head("status" if mode is None else "switch", None)
        if mode is not None:
            args.append(mode)
        raw = self._script(keys=self._keys(name), args=args)
        reply = _reply(raw)
        return SharedStatus(
            name=name,
            state=reply.state,
            generation=reply.generation,
            open_remaining=reply.open_remaining,
            open_duration=reply.open_duration,
            window_calls=reply.window_calls,
            window_failures=reply.window_failures,
            probes_in_flight=int(raw[6]),
        )

    def names(self) -> list[str]:
        """The names of the breakers that have a shared state here, sorted."""
        start = f"{{{self.prefix}:cb:"
        found = set()
        for key in self._client.scan_iter(match=f"{_glob_escape(start)}*", count=1000):
            text = key.decode() if isinstance(key, bytes) else str(key)
            if text.endswith("}"):
                found.add(text[len(start) : -1])
        return sorted(found)

    def close(self) -> None:
        """Send what is left, stop the syncer, close the connections; breakers go on
        deciding alone."""
        super().close()
        self._client.close()

    def __repr__(self) -> str:
        return f"RedisState({self._where!r}, prefix={self.prefix!r}, interval={self.interval:g})"


def _reply(raw: Sequence[Any]) -> Reply:
    state = raw[0].decode() if isinstance(raw[0], bytes) else str(raw[0])
    return Reply(
        state=state,
        generation=int(raw[1]),
        open_remaining=int(raw[2]) / 1000.0,
        open_duration=int(raw[3]) / 1000.0,
        window_calls=int(raw[4]),
        window_failures=int(raw[5]),
        epoch=raw[9].decode() if isinstance(raw[9], bytes) else str(raw[9]),
        open_nominal=int(raw[10]) / 1000.0,
    )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000.0))


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
