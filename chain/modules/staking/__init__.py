"""staking: validators, delegations, unbonding and redelegation, the bonded set CometBFT runs with."""
