"""Pure consensus core: stores, context, gas, errors, events, codec, math, app hash.

Nothing here reads the clock, randomness, floats, the environment, files or
the network: every input comes from the block or the store.
"""
