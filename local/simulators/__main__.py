"""Run one simulator in the foreground: ``python -m local.simulators cxone|ticketing --port N``."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable

from local.simulators import CxoneSimulator, TicketingSimulator
from local.simulators.base import SimulatorServer

SIMULATORS: dict[str, Callable[[], SimulatorServer]] = {
    "cxone": CxoneSimulator,
    "ticketing": TicketingSimulator,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.simulators", description=__doc__)
    parser.add_argument("simulator", choices=sorted(SIMULATORS))
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind; only widen it inside a container"
    )
    args = parser.parse_args(argv)

    simulator = SIMULATORS[args.simulator]()
    url = simulator.start(args.port, host=args.host, log_requests=True)
    print(f"{args.simulator} simulator listening on {url} (Ctrl-C to stop)", flush=True)

    stopping = threading.Event()
    # Containers stop with SIGTERM; treat it like Ctrl-C so the socket is closed cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        # A timed wait keeps the main thread responsive to signals.
        while not stopping.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
