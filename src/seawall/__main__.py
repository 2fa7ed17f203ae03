"""``python -m seawall``: the command line (today: the demo)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

DESCRIPTION = """\
seawall's command line.

  python -m seawall demo     watch a dependency fail and recover, with and without seawall
  python -m seawall slo      SLOs on seawall's SLIs: generate Prometheus rules, check a spec

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
"""


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


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.command == "demo" and args.simulated and args.serve:
        top.error("--serve and --simulated: a simulated replay is one round")
    if args.command == "slo":
        if args.slo_command is None:
            top.error("slo: say generate or check")
        return _slo(args)
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
    return _demo.run(
        duration=args.duration,
        port=args.port,
        rate=args.rate,
        serve=args.serve,
        simulated=args.simulated,
    )


if __name__ == "__main__":
    sys.exit(main())
