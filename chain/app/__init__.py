"""Pure wiring: module manager, message and query routers, ante handler, block execution."""
