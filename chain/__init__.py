"""PolyLink chain: the ABCI application and its tools."""
