"""Stand-in app process for benchmarks: CometBFT's kvstore served over the ABCI socket.

Localnet starts app processes as `<prefix> node start --home H --abci ADDR ...`;
this module accepts that command line and runs `abci-cli kvstore --address ADDR`
(built by the benchmark with `go install`) as its child, stopping it on SIGTERM.
It gives a reference that pays the same socket protocol as our app.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ABCI_CLI = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "abci-cli"


def main(argv: list[str]) -> int:
    addr = argv[argv.index("--abci") + 1]
    child = subprocess.Popen([str(ABCI_CLI), "kvstore", "--address", addr])

    def stop(*_: object) -> None:
        child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return child.wait()
    finally:
        if child.poll() is None:
            child.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
