"""A local multi-validator network: CometBFT nodes + PolyLink app processes on loopback."""

from chain.localnet.net import Localnet, LocalnetError, find_cometbft
from chain.localnet.ports import DEFAULT_BASE_PORT, NodePorts, find_free_base_port

__all__ = [
    "DEFAULT_BASE_PORT",
    "Localnet",
    "LocalnetError",
    "NodePorts",
    "find_cometbft",
    "find_free_base_port",
]
