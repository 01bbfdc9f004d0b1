"""Where a localnet listens: loopback only, one block of ports per node.

Node i of a net with base port B uses
    p2p  = B + 10*i      (CometBFT peer-to-peer)
    rpc  = B + 10*i + 1  (CometBFT RPC, http://127.0.0.1:PORT)
    abci = B + 10*i + 2  (reserved: the app's ABCI socket is unix NODE_HOME/abci.sock, 0600)
    grpc = B + 10*i + 3  (the app's gRPC)
so the default base 26600 gives node0 26600..26603, node1 26610..26613, ...
"""

from __future__ import annotations

import random
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "127.0.0.1"
STRIDE = 10
DEFAULT_BASE_PORT = 26600
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


@dataclass(frozen=True)
class NodePorts:
    p2p: int
    rpc: int
    abci: int
    grpc: int

    @staticmethod
    def of(base: int, node: int) -> NodePorts:
        b = base + STRIDE * node
        return NodePorts(p2p=b, rpc=b + 1, abci=b + 2, grpc=b + 3)

    def all(self) -> list[int]:
        return [self.p2p, self.rpc, self.abci, self.grpc]

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def check_base_port(base: int, nodes: int) -> None:
    """Raise ValueError when the scheme would leave the unprivileged port range."""
    top = base + STRIDE * nodes
    if base < 1024 or top > 65535:
        raise ValueError(
            f"base port {base} with {nodes} nodes needs ports {base}..{top}; keep them in 1024..65535"
        )


def port_free(port: int) -> bool:
    """True if nothing listens on HOST:port.

    SO_REUSEADDR, as CometBFT's and asyncio's listeners set it, so connections
    left in TIME_WAIT by a stopped node do not count as busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def busy_ports(base: int, nodes: int) -> list[int]:
    return [p for i in range(nodes) for p in NodePorts.of(base, i).all() if not port_free(p)]


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (inclusive): a port in it
    can be taken by any client's connect() between a probe and a node's bind."""
    try:
        lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def find_free_base_port(
    nodes: int, *, low: int = 20000, high: int = 60000, tries: int = 200
) -> int:
    """A base port whose whole block is free now (random start, so parallel test runs rarely collide).

    Blocks that overlap the kernel's ephemeral range are skipped while any other block fits in
    low..high: there an outgoing connection (a node dialing a peer, a test's client) may be
    given one of the block's ports after the probe, and the node then fails to bind it."""
    rng = random.Random()
    span = STRIDE * nodes
    eph_lo, eph_hi = ephemeral_range()
    bases = [b for b in range(low, high - span, STRIDE) if b + span <= eph_lo or b > eph_hi]
    if not bases:
        bases = list(range(low, high - span, STRIDE))
    for _ in range(tries):
        base = rng.choice(bases)
        if not busy_ports(base, nodes):
            return base
    raise RuntimeError(f"no free block of {span} ports found in {low}..{high}")


def is_listening(port: int) -> bool:
    """True if a socket listens on HOST:port or the wildcard address.

    Reads /proc/net/tcp rather than connecting, so the app never sees a stray
    connection on its ABCI socket; falls back to a connect where /proc is missing.
    """
    table = Path("/proc/net/tcp")
    if not table.exists():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            return s.connect_ex((HOST, port)) == 0
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] in wanted and fields[3] == _LISTEN:
            return True
    return False


# /proc/net/unix: the flag a listening socket carries (__SO_ACCEPTCON)
_ACCEPTCON = 0x10000
# sockaddr_un's path: 108 bytes with the terminating NUL
UNIX_PATH_MAX = 107


def is_listening_unix(path: Path) -> bool:
    """True if a unix socket listens at ``path`` (read from /proc/net/unix: no stray connection; a file
    left behind by a killed process is not a listener). Falls back to the file's existence without /proc."""
    table = Path("/proc/net/unix")
    want = str(path)
    if not table.exists():
        return path.is_socket()
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == want and int(fields[3], 16) & _ACCEPTCON:
            return True
    return False
