"""httpx transports that run every request through a per-host seawall Policy."""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from tenacity import RetryCallState

from seawall import _deadline, _fork
from seawall._breaker import CircuitBreaker
from seawall._budget import RetryBudget
from seawall._clock import Clock
from seawall._compose import Policy
from seawall._errors import TimeoutExceededError
from seawall._fallback import Fallback
from seawall._retry import Retry
from seawall._stats import live
from seawall._stats.http import OTHER, HttpStats
from seawall._timeout import Timeout
from seawall._validate import check_callable, check_int, check_number
from seawall.httpx._errors import (
    BackpressureResponse,
    FailureResponse,
    TimeoutHTTPError,
    to_httpx_error,
)

__all__ = [
    "DEFAULT_RETRY_METHODS",
    "AsyncResilientTransport",
    "ResilientTransport",
    "default_classify",
    "default_policy",
    "parse_retry_after",
]

DEFAULT_RETRY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_VERDICTS = ("success", "failure", "backpressure")
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Status codes as labels, made once.
_CODES = {status: str(status) for status in range(100, 600)}

Classify = Callable[[httpx.Response], str]
_HostKey = str | tuple[str, int]
_current_deadline = _deadline.current_deadline


def default_classify(response: httpx.Response) -> str:
    """5xx is a failure; 429, and 503 with ``Retry-After``, are back-pressure; the rest
    (other 4xx included: the dependency worked) is a success."""
    status = response.status_code
    if status == 429 or (status == 503 and "retry-after" in response.headers):
        return "backpressure"
    if status >= 500:
        return "failure"
    return "success"


def default_policy(name: str = "httpx") -> Policy:
    """The template used when none is given: up to 3 attempts on transport errors (connect
    errors, timeouts...), failure and back-pressure responses, with a per-host retry budget;
    a circuit breaker with its defaults; no bulkhead."""
    return Policy(
        name,
        retry=Retry(on=(httpx.TransportError, FailureResponse), attempts=3, budget=RetryBudget()),
        breaker=CircuitBreaker(),
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` value (delay-seconds or an HTTP date), or
    ``None`` when absent or malformed. A date in the past gives 0."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"value must be a str or None, got {type(value).__name__}")
    value = value.strip()
    if value.isascii() and value.isdigit():
        if len(value) > 12:  # beyond any sensible wait; also keeps float() finite
            return math.inf
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _default_key(request: httpx.Request) -> str:
    url = request.url
    return f"{url.host}:{_port_of(url)}"


def _port_of(url: httpx.URL) -> int:
    return url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme, 0)


def _honour_retry_after(
    base: Callable[[RetryCallState], float],
) -> Callable[[RetryCallState], float]:
    """The template's wait, but never shorter than the server's ``Retry-After``."""

    def wait(state: RetryCallState) -> float:
        seconds = float(base(state))
        outcome = state.outcome
        if outcome is not None and outcome.failed:
            exc = outcome.exception()
            if isinstance(exc, FailureResponse) and exc.retry_after is not None:
                seconds = max(seconds, exc.retry_after)
        return seconds

    return wait


def _ignoring_backpressure(
    ignored: Callable[[BaseException], bool] | None,
) -> Callable[[BaseException], bool]:
    """The template breaker's ``ignore_on``, plus back-pressure responses."""
    if ignored is None:
        return lambda exc: isinstance(exc, BackpressureResponse)
    return lambda exc: isinstance(exc, BackpressureResponse) or ignored(exc)


def _check_answer(answer: object) -> httpx.Response:
    if not isinstance(answer, httpx.Response):
        raise TypeError(
            "policy: the fallback of a transport's template must answer with an "
            f"httpx.Response, got {type(answer).__name__}"
        )
    return answer


def _check_fixed_answer(answer: object) -> None:
    """A template fallback's one response, answered (as a copy) to many requests: it must
    hold its whole body, which a stream read once cannot give again."""
    try:
        _check_answer(answer).content  # noqa: B018
    except httpx.ResponseNotRead:
        raise TypeError(
            "policy: the fallback's response must hold its body (content=, text= or json=), "
            "not a stream: it answers many requests"
        ) from None


def _copy(response: httpx.Response) -> httpx.Response:
    """A fresh response like ``response``: httpx binds each response it is handed to its
    request and wraps its body for the client, so one object cannot answer two requests."""
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=response.content,
        extensions=dict(response.extensions),
        default_encoding=response.default_encoding,
    )


#: Time left before a deadline beyond which a request's timeouts are left as they are.
_LONGEST_CUT = 1e9
#: The longest key shown in a policy's name (and so in metric labels).
_KEY_LENGTH = 200


def _printable(key: str) -> str:
    """``key`` as it may be shown in a name: escaped where not printable (a key made from a
    request's decoded URL may hold anything), cut to :data:`_KEY_LENGTH` characters."""
    if not key.isprintable():
        key = "".join(c if c.isprintable() else repr(c)[1:-1] for c in key)
    return key if len(key) <= _KEY_LENGTH else key[: _KEY_LENGTH - 1] + "…"


def _http_timeout(template: Timeout | None) -> Timeout | None:
    """A host's own copy of a template timeout, raising an httpx-compatible error: a retry on
    ``httpx.TransportError`` retries an attempt it cut, as it retries httpx's own timeouts."""
    if template is None:
        return None
    timeout: Timeout = template._spawn(None)
    timeout._error = TimeoutHTTPError
    return timeout


class _Host:
    """One key's policies: ``policy`` for requests that may be retried, ``single`` (the same
    breaker, timeouts and bulkhead, no retry) for the others; ``None`` when the template has
    nothing but a retry. ``send`` and ``send_single`` run the transport's attempt through
    their raw shells (fused once per key: this is the per-request hot path); the transport
    records their call-level SLI itself. ``key`` is the key as users see it; ``address`` and
    ``port`` the labels of the request that made it, which are every request's labels when
    the key is the default one (host and port)."""

    __slots__ = ("address", "entry", "key", "policy", "port", "send", "send_single", "single")

    def __init__(self, policy: Policy, single: Policy | None, send: Any, send_single: Any) -> None:
        self.policy = policy
        self.single = single
        self.send = send
        self.send_single = send_single
        self.key = self.address = self.port = ""
        self.entry: _HostKey = ""  # its key in the transport's table


class _Call:
    """One request's state across its attempts: its labels for the HTTP series, the request's
    own timeouts (read at its first shortening), the response an attempt got that the next
    one discards, and what the call-level SLI needs (the policy's stats, when the call
    started, when its last attempt ended). Made by :meth:`_Core._prepare`."""

    __slots__ = (
        "address",
        "end",
        "method",
        "pending",
        "policy",
        "port",
        "send",
        "start",
        "timeout",
    )

    method: str
    address: str
    port: str
    policy: Policy | None
    send: Any
    start: float
    end: float
    # The previous attempt's response (not returned), or how long the previous attempt ran
    # before it was cancelled (recorded once the call knows why: see _Core._cut).
    pending: httpx.Response | float | None
    # Never changed in place: a shortened attempt gets a new dict.
    timeout: dict[str, float | None] | None

    def take(self) -> httpx.Response | float | None:
        pending, self.pending = self.pending, None
        return pending


_new_call = object.__new__


_transports: weakref.WeakSet[_Core] = weakref.WeakSet()


@_fork.in_child
def _renew() -> None:
    for core in list(_transports):
        core._lock = threading.Lock()


class _Core:
    """Configuration, per-host policies, classification and metrics, shared by both
    transports."""

    def __init__(
        self,
        *,
        policy: Policy | None,
        per_host: bool,
        key: Callable[[httpx.Request], str] | None,
        max_hosts: int,
        labelled_hosts: int,
        max_retry_after: float,
        retry_methods: Iterable[str],
        classify: Classify | None,
    ) -> None:
        if policy is None:
            policy = default_policy()
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a seawall.Policy, got {type(policy).__name__}")
        if policy.chaos is not None:
            # Its faults are a function's (ConnectionRefusedError...), not httpx's.
            raise TypeError(
                "policy: a transport's template takes no chaos part; wrap the transport it "
                "sends through in seawall.chaos.ChaosTransport (or AsyncChaosTransport)"
            )
        fallback = policy.fallback
        if fallback is not None and not fallback._is_function:
            _check_fixed_answer(fallback._value)  # it goes to httpx: a response, or nothing
        if not isinstance(per_host, bool):
            raise TypeError(f"per_host must be a bool, got {type(per_host).__name__}")
        if key is not None:
            check_callable("key", key)
        self._key: Callable[[httpx.Request], str] = _default_key if key is None else key
        self.max_hosts = check_int("max_hosts", max_hosts)
        self.labelled_hosts = check_int("labelled_hosts", labelled_hosts)
        # The keys whose policies are named (and so labelled) after them; the later ones
        # share `<name>:_OTHER`. First come, kept for good: a host's series never moves.
        self._labelled: set[str] = set()
        self.max_retry_after = check_number(
            "max_retry_after", max_retry_after, min_inclusive=True, max_inclusive=False
        )
        if isinstance(retry_methods, str) or not isinstance(retry_methods, Iterable):
            raise TypeError(
                f"retry_methods must be a collection of method names, got {retry_methods!r}"
            )
        methods = tuple(retry_methods)
        if not all(isinstance(method, str) and method for method in methods):
            raise TypeError(f"retry_methods must hold method names, got {methods!r}")
        self.retry_methods = frozenset(method.upper() for method in methods)
        if classify is not None:
            check_callable("classify", classify)
        self._classify: Classify = default_classify if classify is None else classify
        self.per_host = per_host
        self.template = policy
        for part in (policy, *policy.policies):
            live.mark_template(part, policy)
        self.name = policy.name
        self._clock: Clock = policy.clock
        self._lock = threading.Lock()
        _transports.add(self)
        # Keyed by (host, port) with the default key, else by the key function's string.
        self._hosts: OrderedDict[_HostKey, _Host] = OrderedDict()
        # The host used last, already at the end of the LRU order: a run of requests to one
        # host moves nothing.
        self._last: _Host | None = None
        self.stats = HttpStats(self.labelled_hosts)

    # -- per-host policies -------------------------------------------------------------------

    def policies(self) -> dict[str, Policy]:
        """The policies kept now, by key, least recently used first."""
        with self._lock:
            while True:
                # Requests move keys to the end without the lock; a copy that a garbage
                # collection pass interrupted (and another thread's request upset) is retried.
                try:
                    hosts = list(self._hosts.items())
                    break
                except RuntimeError:
                    continue
        return {host.key: host.policy for _, host in hosts}

    def _prepare(self, request: httpx.Request) -> _Call:
        """The request's state, with what sends it: its key's policy (without the retry when
        the request may not be retried) around one attempt."""
        url = request.url
        try:
            # httpx's parsed URL: its fields are plain tuple reads, where each of the URL's
            # properties is a frame (and ``host`` an IDNA check) on every request.
            parts: Any = url._uri_reference
        except AttributeError:  # pragma: no cover - an httpx without it: the same names
            parts = url
        port = parts.port
        if port is None:
            port = _DEFAULT_PORTS.get(parts.scheme, 0)
        # Filled in here rather than by an __init__: one frame fewer per request.
        call: _Call = _new_call(_Call)
        call.method = request.method
        call.pending = call.timeout = None
        call.end = 0.0
        hosts = self._hosts
        if self._key is _default_key and self.per_host:
            # A tuple of the host as parsed (IDNA-encoded) and the port: nothing is formatted
            # or decoded per request; the host's labels are made once, when it is added.
            key: _HostKey = (parts.host, port)
            host = hosts.get(key)
            if host is None:
                host = self._add(key, url.host, port)
            call.address, call.port = host.address, host.port
        else:
            key = self._key(request) if self.per_host else ""
            if not isinstance(key, str):
                raise TypeError(f"key must return a str, got {type(key).__name__}")
            host = hosts.get(key)
            if host is None:
                host = self._add(key, url.host, port)
            # Keys may group hosts: the labels are the request's own.
            call.address, call.port = url.host, str(port)
        if host is not self._last:
            self._last = host
            try:  # lock-free: OrderedDict's move_to_end is a C call
                hosts.move_to_end(key)
            except KeyError:  # evicted meanwhile: this request still uses it
                pass
        if request.method in self.retry_methods and isinstance(request.stream, httpx.ByteStream):
            call.policy, call.send = host.policy, host.send
        else:
            call.policy, call.send = host.single, host.send_single
        call.start = self._clock.monotonic()
        return call

    def _fallback_for(self, call: _Call, exc: BaseException) -> Fallback | None:
        """The host's fallback if it answers ``exc`` (the recording shell's job, as in
        PolicyBase: its answers are recorded as their own outcome)."""
        head = None if call.policy is None else call.policy._fallback_head
        if head is None or not head[0]._applies(exc):
            return None
        return head[0]

    def _fell_back(
        self, call: _Call, exc: BaseException, fallback: Fallback, answer: object
    ) -> httpx.Response:
        """Record the fallback's answer to ``exc``; it must be a response (a fixed one is
        answered as a copy)."""
        assert call.policy is not None
        seconds = self._clock.monotonic() - call.start
        try:
            response = _check_answer(answer)
        except TypeError as error:
            call.policy.stats.failed(error, seconds)
            raise
        call.policy.stats.fell_back(exc, seconds)
        return response if fallback._is_function else _copy(response)

    def _failed(self, call: _Call, exc: BaseException) -> None:
        if call.policy is not None:
            call.policy.stats.failed(exc, self._clock.monotonic() - call.start)

    def _given_up(self, call: _Call, exc: FailureResponse) -> httpx.Response:
        """Retrying is over on a bad response: the caller gets it, as it came."""
        self._failed(call, exc)
        if exc.response is call.pending:
            call.pending = None
        return exc.response

    def _raised(self, call: _Call, request: httpx.Request, exc: BaseException) -> BaseException:
        """Record the failed call; what to raise instead (an httpx error), or ``exc`` itself."""
        self._failed(call, exc)
        return to_httpx_error(exc, request) if isinstance(exc, Exception) else exc

    def _attempt_raised(
        self, call: _Call, exc: BaseException, seconds: float, deadline: _deadline.Deadline | None
    ) -> BaseException:
        """Record an attempt that raised; what it raises. An httpx timeout of a request whose
        timeouts were cut to a seawall deadline, once that deadline has passed, is that
        deadline's timeout: the same error, and the same series, as when an async attempt is
        cancelled by it."""
        if (
            deadline is not None
            and isinstance(exc, httpx.TimeoutException)
            and not isinstance(exc, TimeoutExceededError)
            and deadline.remaining() <= 0.0
        ):
            expired = deadline.exceeded()
            expired.__cause__ = exc
            exc = expired
        self.stats.observe(
            call.method, call.address, call.port, "", type(exc).__qualname__, seconds
        )
        return exc

    def _cut(self, call: _Call, seconds: float, error: type[BaseException]) -> None:
        """Record an async attempt cancelled after ``seconds``: by its attempt timeout when the
        call went on to another attempt or ended in a timeout (``error``), else by the caller."""
        self.stats.observe(call.method, call.address, call.port, "", error.__qualname__, seconds)

    def _add(self, key: _HostKey, address: str, port: int) -> _Host:
        """The host of ``key`` (first seen for ``address`` and ``port``), made now unless
        another request just made it; the least recently used beyond ``max_hosts`` are let
        go."""
        hosts = self._hosts
        with self._lock:
            host = hosts.get(key)
            if host is not None:
                return host
            shown = _printable(key) if isinstance(key, str) else f"{address}:{port}"
            host = self._build(self._series_name(shown))
            # Complete before it is published: other requests read it without the lock.
            host.entry, host.key, host.address, host.port = key, shown, address, str(port)
            last = self._last
            if last is not None:
                # Requests racing past the shortcut in _prepare may have left the host used
                # last short of the end: it must not be the one evicted now.
                try:
                    hosts.move_to_end(last.entry)
                except KeyError:  # evicted already
                    pass
            hosts[key] = host
            self._last = host  # the newest is at the end already
            while len(hosts) > self.max_hosts:
                hosts.popitem(last=False)
            return host

    def _series_name(self, shown: str) -> str:
        """The name of a new host's policies: ``<name>:<key>`` for the first
        ``labelled_hosts`` keys, ``<name>:_OTHER`` for the rest (their counts add up there;
        each still has its own breaker, bulkhead and budget)."""
        if not self.per_host:
            return self.name
        labelled = self._labelled
        if shown not in labelled:
            if len(labelled) >= self.labelled_hosts:
                return f"{self.name}:{OTHER}"
            labelled.add(shown)
        return f"{self.name}:{shown}"

    def _build(self, name: str) -> _Host:
        """Fresh policies made from the template: same configuration, own state."""
        template = self.template
        retry: Retry | None = None
        if template.retry is not None:
            budget = template.retry.budget
            retry = template.retry._spawn(
                None,
                wait=_honour_retry_after(template.retry._wait),
                budget=None if budget is None else budget._spawn(),
            )
        breaker: CircuitBreaker | None = None
        if template.breaker is not None:
            breaker = template.breaker._spawn(
                None, ignore_on=_ignoring_backpressure(template.breaker._is_ignored)
            )
        parts: dict[str, Any] = {
            "fallback": None if template.fallback is None else template.fallback._spawn(None),
            "total_timeout": _http_timeout(template.total_timeout),
            "breaker": breaker,
            "attempt_timeout": _http_timeout(template.attempt_timeout),
            "bulkhead": None if template.bulkhead is None else template.bulkhead._spawn(None),
        }
        clock = template.clock
        single: Policy | None
        if retry is None:
            policy = single = Policy(name, clock=clock, **parts)
        else:
            policy = Policy(name, retry=retry, clock=clock, **parts)
            single = (
                Policy(name, clock=clock, **parts)
                if any(part is not None for part in parts.values())
                else None
            )
        # Once collected (evicted), a host's counts are kept under its name up to a bound on
        # such names (see seawall.metrics._remains).
        for made in (policy, single, retry, *parts.values()):
            if made is not None:
                live.mark_per_host(made)
        if single is policy:
            send = self._wrap(policy)
            return _Host(policy, policy, send, send)
        return _Host(policy, single, self._wrap(policy), self._wrap(single))

    def _wrap(self, policy: Policy | None) -> Any:
        """The transport's attempt under ``policy`` (or alone), with the call-level SLI."""
        raise NotImplementedError

    # -- each attempt --------------------------------------------------------------------------

    def _shorten(
        self, request: httpx.Request, call: _Call, deadline: _deadline.Deadline, now: float
    ) -> None:
        """Cap the request's timeouts at what is left of the innermost seawall deadline."""
        left = deadline.at - (now if deadline.clock is self._clock else deadline.clock.monotonic())
        if left <= 0.0:
            raise deadline.exceeded()
        if left >= _LONGEST_CUT:
            return  # a deadline that far (an infinite timeout) cuts nothing: sockets refuse it
        own = call.timeout
        if own is None:
            given = request.extensions.get("timeout")
            own = call.timeout = given if isinstance(given, dict) else {}
        try:  # httpx's clients always give all four
            connect, read, write, pool = own["connect"], own["read"], own["write"], own["pool"]
        except KeyError:
            get = own.get
            connect, read, write, pool = get("connect"), get("read"), get("write"), get("pool")
        # Unrolled: this runs on every attempt under a deadline.
        request.extensions["timeout"] = {
            "connect": left if connect is None or connect > left else connect,
            "read": left if read is None or read > left else read,
            "write": left if write is None or write > left else write,
            "pool": left if pool is None or pool > left else pool,
        }

    def _judge(
        self, request: httpx.Request, call: _Call, response: httpx.Response, seconds: float
    ) -> FailureResponse | None:
        """Record the attempt; the exception to raise for a failure or back-pressure."""
        if self._classify is not default_classify:
            # The client sets it only after the transport returns; a classifier may need it.
            response.request = request
        status = response.status_code
        code = _CODES.get(status) or str(status)
        observe = self.stats.observe
        try:
            verdict = self._classify(response)
        except Exception:
            observe(call.method, call.address, call.port, code, code, seconds)
            raise
        if verdict == "success":
            observe(
                call.method, call.address, call.port, code, code if status >= 400 else "", seconds
            )
            return None
        observe(call.method, call.address, call.port, code, code, seconds)
        if verdict not in _VERDICTS:
            raise TypeError(f"classify must return one of {_VERDICTS}, got {verdict!r}")
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is not None:
            retry_after = min(retry_after, self.max_retry_after)
        kind = BackpressureResponse if verdict == "backpressure" else FailureResponse
        return kind(response, retry_after)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.template!r}, per_host={self.per_host})"


T = TypeVar("T")


def _inner(transport: T | None, kind: type[T], default: Callable[[], T]) -> T:
    """The transport to wrap: ``transport``, checked, or a fresh ``default()``."""
    if transport is None:
        return default()
    if not isinstance(transport, kind):
        raise TypeError(
            f"transport must be an httpx.{kind.__name__}, got {type(transport).__name__}"
        )
    return transport


class ResilientTransport(_Core, httpx.BaseTransport):
    """An :class:`httpx.BaseTransport` that sends each request through a per-host copy of
    ``policy`` (see the package docs); use it as ``httpx.Client(transport=...)``."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        policy: Policy | None = None,
        per_host: bool = True,
        key: Callable[[httpx.Request], str] | None = None,
        max_hosts: int = 1000,
        labelled_hosts: int = 20,
        max_retry_after: float = 30.0,
        retry_methods: Iterable[str] = DEFAULT_RETRY_METHODS,
        classify: Classify | None = None,
    ) -> None:
        self.transport = _inner(transport, httpx.BaseTransport, httpx.HTTPTransport)
        super().__init__(
            policy=policy,
            per_host=per_host,
            key=key,
            max_hosts=max_hosts,
            labelled_hosts=labelled_hosts,
            max_retry_after=max_retry_after,
            retry_methods=retry_methods,
            classify=classify,
        )

    def _wrap(self, policy: Policy | None) -> Any:
        if policy is None:
            return self._attempt
        # A fallback is applied by handle_request, which records its answers as such.
        head = policy._fallback_head
        return functools.partial(policy._raw_call() if head is None else head[1], self._attempt)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = self._prepare(request)
        try:
            response: httpx.Response = call.send(request, call)
        except BaseException as exc:
            fallback = self._fallback_for(call, exc)
            if fallback is not None:
                answer = fallback._answer(exc)  # type: ignore[arg-type]
                return self._fell_back(call, exc, fallback, answer)
            if isinstance(exc, FailureResponse):
                return self._given_up(call, exc)
            converted = self._raised(call, request, exc)
            if converted is exc:
                raise
            raise converted from exc
        finally:
            if call.pending is not None:  # only ever a response in sync
                call.pending.close()  # type: ignore[union-attr]
        if call.policy is not None:
            # The returning attempt's own clock read; a fallback's answer has none.
            call.policy.stats.succeeded((call.end or self._clock.monotonic()) - call.start)
        return response

    def _attempt(self, request: httpx.Request, call: _Call) -> httpx.Response:
        if call.pending is not None:  # the previous attempt's response, not returned
            call.take().close()  # type: ignore[union-attr]
        now = self._clock.monotonic
        start = now()
        deadline = _current_deadline()
        if deadline is not None:
            self._shorten(request, call, deadline, start)
        try:
            response = self.transport.handle_request(request)
        except BaseException as exc:
            raised = self._attempt_raised(call, exc, now() - start, deadline)
            if raised is exc:
                raise
            raise raised from exc
        end = now()
        status = response.status_code
        if status < 400 and self._classify is default_classify:  # the common case, inline
            code = _CODES.get(status) or str(status)
            self.stats.observe(call.method, call.address, call.port, code, "", end - start)
            call.end = end
            return response
        try:
            failure = self._judge(request, call, response, end - start)
        except BaseException:
            response.close()
            raise
        if failure is None:
            call.end = end
            return response
        call.pending = response
        raise failure

    def close(self) -> None:
        self.transport.close()


class AsyncResilientTransport(_Core, httpx.AsyncBaseTransport):
    """The :class:`httpx.AsyncBaseTransport` twin of :class:`ResilientTransport`; use it as
    ``httpx.AsyncClient(transport=...)``."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        policy: Policy | None = None,
        per_host: bool = True,
        key: Callable[[httpx.Request], str] | None = None,
        max_hosts: int = 1000,
        labelled_hosts: int = 20,
        max_retry_after: float = 30.0,
        retry_methods: Iterable[str] = DEFAULT_RETRY_METHODS,
        classify: Classify | None = None,
    ) -> None:
        self.transport = _inner(transport, httpx.AsyncBaseTransport, httpx.AsyncHTTPTransport)
        super().__init__(
            policy=policy,
            per_host=per_host,
            key=key,
            max_hosts=max_hosts,
            labelled_hosts=labelled_hosts,
            max_retry_after=max_retry_after,
            retry_methods=retry_methods,
            classify=classify,
        )

    def _wrap(self, policy: Policy | None) -> Any:
        if policy is None:
            return self._attempt
        head = policy._fallback_head
        return functools.partial(policy._raw_acall() if head is None else head[2], self._attempt)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        call = self._prepare(request)
        try:
            response: httpx.Response = await call.send(request, call)
        except BaseException as exc:
            fallback = self._fallback_for(call, exc)
            if fallback is not None:
                if isinstance(call.pending, float):
                    self._cut(call, call.pending, type(exc))
                    call.pending = None
                answer = await fallback._aanswer(exc)  # type: ignore[arg-type]
                return self._fell_back(call, exc, fallback, answer)
            if isinstance(exc, FailureResponse):
                return self._given_up(call, exc)
            if isinstance(call.pending, float):  # its last attempt was cancelled
                cut = TimeoutHTTPError if isinstance(exc, TimeoutExceededError) else type(exc)
                self._cut(call, call.pending, cut)
                call.pending = None
            converted = self._raised(call, request, exc)
            if converted is exc:
                raise
            raise converted from exc
        finally:
            if call.pending is not None:  # a response (a cancelled attempt's time is taken above)
                await call.take().aclose()  # type: ignore[union-attr]
        if call.policy is not None:
            # The returning attempt's own clock read; a fallback's answer has none.
            call.policy.stats.succeeded((call.end or self._clock.monotonic()) - call.start)
        return response

    async def _attempt(self, request: httpx.Request, call: _Call) -> httpx.Response:
        pending = call.pending
        if pending is not None:
            call.pending = None
            if isinstance(pending, float):
                # Cancelled, and the call went on: its attempt timeout cut it.
                self._cut(call, pending, TimeoutHTTPError)
            else:  # the previous attempt's response, not returned
                await pending.aclose()
        now = self._clock.monotonic
        start = now()
        deadline = _current_deadline()
        if deadline is not None:
            self._shorten(request, call, deadline, start)
        try:
            response = await self.transport.handle_async_request(request)
        except asyncio.CancelledError:
            # By its attempt timeout, or by the caller: which one is known only once the
            # call goes on or ends, and is recorded then.
            call.pending = now() - start
            raise
        except BaseException as exc:
            raised = self._attempt_raised(call, exc, now() - start, deadline)
            if raised is exc:
                raise
            raise raised from exc
        end = now()
        status = response.status_code
        if status < 400 and self._classify is default_classify:  # the common case, inline
            code = _CODES.get(status) or str(status)
            self.stats.observe(call.method, call.address, call.port, code, "", end - start)
            call.end = end
            return response
        try:
            failure = self._judge(request, call, response, end - start)
        except BaseException:
            await response.aclose()
            raise
        if failure is None:
            call.end = end
            return response
        call.pending = response
        raise failure

    async def aclose(self) -> None:
        await self.transport.aclose()
