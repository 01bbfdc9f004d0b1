"""slashing: liveness (downtime) and double-sign punishment, jailing, MsgUnjail."""
