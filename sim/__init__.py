"""Simulations that drive the chain's real state machine (`make sim`, docs/SIMULATIONS.md).

One module per simulation, each exposing `SIMULATION` (a `sim.framework.Simulation`);
`sim.registry.SIMULATIONS` lists them in the order `make sim` runs them.
"""
