"""auth: accounts, public keys, sequences (replay protection), module accounts, tx params."""
