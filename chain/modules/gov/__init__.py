"""gov: proposals (param change, community-pool spend, upgrade, text), deposits, votes, tally, execution."""
