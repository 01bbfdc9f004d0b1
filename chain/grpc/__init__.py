"""The node's gRPC server: query and tx services over the last committed state.

I/O room. `server.GrpcServer` owns the grpc.aio server and the HTTP client it
uses to reach this node's CometBFT RPC; `query_service` serves every query
route the app's modules declare; `tx_service` broadcasts, simulates and looks
up txs; `status` turns registered chain errors into gRPC statuses.
Handlers run on the event loop that drives ABCI and call the (synchronous)
app directly, so a query never interleaves with a block.
"""
