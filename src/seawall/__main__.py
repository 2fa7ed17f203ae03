"""``python -m seawall``: the command line (the demo, SLOs, shared breakers)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seawall.redis import RedisState, SharedStatus

__all__ = ["main"]

DESCRIPTION = """\
seawall's command line.

  python -m seawall demo     watch a dependency fail and recover, with and without seawall
  python -m seawall slo      SLOs on seawall's SLIs: generate Prometheus rules, check a spec
  python -m seawall breaker  shared breakers on Redis: status, isolate, disable, reset

The demo starts a small HTTP server on 127.0.0.1 that plays a schedule (healthy, full
outage, slow responses, partial errors, recovered), sends the same steady load to it
through a plain httpx client and through one protected by a seawall Policy, prints
both side by side once a second, serves seawall's Prometheus metrics while it runs,
and ends with a table of SLIs: availability, latency, time to detect the outage, time
to recover, and how many requests were spared from the dead upstream. With PyYAML (the slo
extra), it also writes seawall.slo's rules, Grafana dashboard and runbooks for the protected
client's operation into a new temporary directory, and prints where.

With --simulated, the same story is replayed on simulated time (the default 30 seconds in
well under one): no server and no sockets (seawall.chaos transports play the schedule over
an in-process upstream), the same output every run, no metrics served.

With --redis URL, the protected client's breaker shares its state on Redis
(seawall.redis.RedisState): watch it, or flip it, from another terminal with
python -m seawall breaker status|isolate|disable|reset demo-upstream:upstream --redis URL.
"""

BREAKER_DESCRIPTION = """\
Circuit breakers that share their state on Redis (CircuitBreaker(name=...,
shared=seawall.redis.RedisState(URL))): read it, or switch a breaker for every process.

  status [NAME]   one line per breaker: state, generation, open time left, the merged
                  window's calls and failures, half-open probes in flight (no NAME: every
                  breaker with a shared state under --prefix)
  isolate NAME    force it open everywhere: calls are refused (or fall back) until reset
  disable NAME    let every call through everywhere, never tripping, until reset
  reset NAME      close it everywhere and clear its window

Every process follows a switch within its sync interval (RedisState's interval, 0.1 s by
default). Exit status: 0 done, 1 Redis could not be reached or has no such breaker, 2 a
usage error.
"""

#: The redis:// URL forms RedisState takes.
_SCHEMES = ("redis", "rediss", "unix")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    if math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {text}")
    return value


def _redis_url(text: str) -> str:
    """A redis://, rediss:// or unix:// URL, checked as far as it can be without connecting
    (redis-py itself reads a bad database number as 0)."""
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise argparse.ArgumentTypeError(
            f"not a redis://, rediss:// or unix:// URL: {_shown(text)!r}"
        )
    parts = urllib.parse.urlsplit(text)
    if scheme.lower() == "unix":
        if not parts.path:
            raise argparse.ArgumentTypeError(
                f"a unix:// URL needs the socket's path (unix:///run/redis.sock): {_shown(text)!r}"
            )
        return text
    try:
        parts.port  # noqa: B018 - urllib checks the port when it is read
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {_shown(text)!r}") from None
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise argparse.ArgumentTypeError(
            f"the database must be a number (redis://host:6379/0), got {database!r}"
        )
    return text


def _shown(url: str) -> str:
    """``url`` without its password, to print."""
    scheme, sep, rest = url.partition("://")
    head, slash, tail = rest.partition("/")
    if "@" in head:
        head = head.rsplit("@", 1)[1]
    return f"{scheme}{sep}{head}{slash}{tail}"


def _prefix(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _add_redis(command: argparse.ArgumentParser, *, required: bool) -> None:
    command.add_argument(
        "--redis",
        type=_redis_url,
        required=required,
        metavar="URL",
        help="the Redis the breakers share their state on: redis://HOST:PORT/DB, rediss://... "
        "or unix:///PATH",
    )
    command.add_argument(
        "--prefix",
        type=_prefix,
        default="seawall",
        help="the prefix of the breakers' keys, as given to RedisState (default: seawall)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m seawall",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="a dependency goes down and comes back: seawall beside a plain httpx client",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--duration",
        type=_positive,
        default=30.0,
        metavar="SECONDS",
        help="length of the upstream's schedule; its phases scale with it (default: 30)",
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=9464,
        help="loopback port for seawall's Prometheus metrics, 0 for any free one "
        "(default: 9464); the address is printed at the start",
    )
    demo.add_argument(
        "--rate",
        type=_positive,
        default=40.0,
        metavar="PER_SECOND",
        help="requests per second sent by each client (default: 40)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep running: replay the schedule until Ctrl-C, a summary after each round, "
        "the metrics port open throughout",
    )
    demo.add_argument(
        "--simulated",
        action="store_true",
        help="replay one round on simulated time (seawall.testing.simulated): no upstream "
        "process, no sockets, no metrics port; the same output every run",
    )
    _add_redis(demo, required=False)
    slo = commands.add_parser(
        "slo",
        help="SLOs on seawall's SLIs: Prometheus rules and alerts from a YAML spec",
        description="SLOs on seawall's SLIs, from a YAML spec (see the README, 'From spec "
        "to page').",
    )
    slo_commands = slo.add_subparsers(dest="slo_command", metavar="SLO_COMMAND")
    generate = slo_commands.add_parser(
        "generate", help="write the rules (and what goes with them) into a directory"
    )
    generate.add_argument("spec", metavar="SPEC", help="the spec, a YAML file")
    generate.add_argument("--out", required=True, metavar="DIR", help="where to write them")
    check = slo_commands.add_parser("check", help="check a spec, writing nothing")
    check.add_argument("spec", metavar="SPEC", help="the spec, a YAML file")
    breaker = commands.add_parser(
        "breaker",
        help="shared breakers on Redis: status, isolate, disable, reset",
        description=BREAKER_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    breaker_commands = breaker.add_subparsers(dest="breaker_command", metavar="BREAKER_COMMAND")
    for name, needs_name, text in (
        ("status", False, "the shared state of breaker NAME, or of every breaker"),
        ("isolate", True, "force breaker NAME open in every process, until reset"),
        ("disable", True, "let every call of breaker NAME through in every process, until reset"),
        ("reset", True, "close breaker NAME in every process and clear its window"),
    ):
        command = breaker_commands.add_parser(name, help=text, description=text + ".")
        command.add_argument(
            "name",
            metavar="NAME",
            nargs=None if needs_name else "?",
            help="the breaker's name (a policy's, or a transport's per-host name such as "
            "api:example.com)",
        )
        _add_redis(command, required=True)
        command.set_defaults(command_parser=command)
        command.add_argument(
            "--json", action="store_true", help="print JSON (one object, or a list) instead"
        )
        command.add_argument(
            "--timeout",
            type=_positive,
            default=2.0,
            metavar="SECONDS",
            help="how long to wait for Redis (default: 2)",
        )
    return top


def _slo(args: argparse.Namespace) -> int:
    try:
        from seawall import slo
    except ImportError as exc:  # pragma: no cover - PyYAML is the extra it needs
        print(f"seawall slo needs PyYAML: pip install 'seawall[slo]' ({exc})", file=sys.stderr)
        return 2
    try:
        spec = slo.load(Path(args.spec))
    except OSError as exc:
        print(f"{args.spec}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except slo.SpecError as exc:
        print(f"{args.spec}: {exc}", file=sys.stderr)
        return 1
    if args.slo_command == "check":
        print(f"{args.spec}: {len(spec.slos)} SLO(s) for {spec.service}, ok")
        return 0
    for path in slo.generate(spec, args.out):
        print(path)
    return 0


def _no_redis_py(exc: ImportError) -> int:
    print(f"this needs redis-py: pip install 'seawall[redis]' ({exc})", file=sys.stderr)
    return 2


def _open_left(status: SharedStatus) -> str:
    if status.state == "open":
        return f"{status.open_remaining:.2f}s"
    if status.state == "forced_open":
        return "until reset"
    return "-"


def _table(statuses: Sequence[SharedStatus]) -> list[str]:
    """One line per breaker, under a header."""
    width = max(len("BREAKER"), *(len(status.name) for status in statuses))
    lines = [
        f"{'BREAKER':<{width}}  {'STATE':<11}  {'GEN':>5}  {'OPEN LEFT':>11}  "
        f"{'CALLS':>6}  {'FAILED':>6}  {'PROBES':>6}"
    ]
    lines += [
        f"{s.name:<{width}}  {s.state:<11}  {s.generation:>5}  {_open_left(s):>11}  "
        f"{s.window_calls:>6}  {s.window_failures:>6}  {s.probes_in_flight:>6}"
        for s in statuses
    ]
    return lines


def _command(args: argparse.Namespace, verb: str, name: str) -> str:
    """The command line that runs ``verb`` on breaker ``name`` with the same Redis."""
    shown = _shown(args.redis)
    words = ["python -m seawall breaker", verb, name, "--redis", shown]
    if args.prefix != "seawall":
        words += ["--prefix", args.prefix]
    if shown != args.redis:
        words.append("(with your credentials)")
    return " ".join(words)


def _breaker(args: argparse.Namespace) -> int:
    try:
        import redis

        from seawall.redis import RedisState
    except ImportError as exc:
        return _no_redis_py(exc)
    try:
        state = RedisState(args.redis, prefix=args.prefix, timeout=args.timeout)
    except ValueError as exc:
        command: argparse.ArgumentParser = args.command_parser
        command.error(f"argument --redis: {exc}")
    where = f"{_shown(args.redis)} (prefix {args.prefix!r})"
    try:
        return _breaker_command(state, args, where)
    except redis.AuthenticationError as exc:
        print(f"Redis at {where} refused the credentials: {_one_line(exc)}", file=sys.stderr)
        return 1
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        print(f"cannot reach Redis at {where}: {_one_line(exc)}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f"Redis at {where} answered with an error: {_one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        state.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _breaker_command(state: RedisState, args: argparse.Namespace, where: str) -> int:
    name: str | None = args.name
    command: str = args.breaker_command
    # Asked first: a status (or a switch) writes the breaker's keys, so an unknown name
    # is told apart before that.
    known = state.names()
    if command == "status":
        if name is None:
            statuses = [state.status(each) for each in known]
            if args.json:
                print(json.dumps([dataclasses.asdict(s) for s in statuses], indent=2))
            elif not statuses:
                print(f"no breaker shares its state on {where}")
            else:
                print("\n".join(_table(statuses)))
            return 0
        if name not in known:
            listed = ", ".join(known) if known else "none"
            print(
                f"no breaker named {name!r} shares its state on {where} (those that do: {listed})",
                file=sys.stderr,
            )
            return 1
        status = state.status(name)
        if args.json:
            print(json.dumps(dataclasses.asdict(status), indent=2))
        else:
            print("\n".join(_table([status])))
        return 0
    assert name is not None  # argparse requires it for a switch
    switch = {"isolate": state.isolate, "disable": state.disable, "reset": state.reset}[command]
    status = switch(name)
    if args.json:
        print(json.dumps(dataclasses.asdict(status), indent=2))
        return 0
    print("\n".join(_table([status])))
    print(
        f"every process sharing breaker {name!r} on {where} follows within its sync interval "
        f"(0.1 s by default)"
    )
    if name not in known:
        print(
            f"no process shares a breaker named {name!r} there yet: those that start one follow "
            f"this switch"
        )
    if command != "reset":
        print(f"undo: {_command(args, 'reset', name)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.command == "demo" and args.simulated and args.serve:
        top.error("--serve and --simulated: a simulated replay is one round")
    if args.command == "demo" and args.simulated and args.redis is not None:
        top.error(
            "--redis and --simulated: Redis decides a shared breaker's state on its own real "
            "clock (its window, open durations and probes' timeouts), which simulated time "
            "cannot move; run the live demo with --redis"
        )
    if args.command == "slo":
        if args.slo_command is None:
            top.error("slo: say generate or check")
        return _slo(args)
    if args.command == "breaker":
        if args.breaker_command is None:
            top.error("breaker: say status, isolate, disable or reset")
        return _breaker(args)
    if args.command != "demo":
        parser().print_help()
        return 2
    try:
        from seawall import _demo
    except ImportError as exc:  # httpx is the optional extra the demo needs
        print(
            f"the demo needs httpx: pip install 'seawall[httpx]' ({exc})",
            file=sys.stderr,
        )
        return 2
    if args.redis is not None:
        try:
            import seawall.redis  # noqa: F401
        except ImportError as exc:
            return _no_redis_py(exc)
    return _demo.run(
        duration=args.duration,
        port=args.port,
        rate=args.rate,
        serve=args.serve,
        simulated=args.simulated,
        redis=args.redis,
        prefix=args.prefix,
    )


if __name__ == "__main__":
    sys.exit(main())
