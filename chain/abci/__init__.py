"""ABCI 2.0 over CometBFT's socket protocol (I/O): the server and one small function per method."""
