"""Store layout of the staking module (one-byte prefixes inside its namespace).

Addresses are the raw 20 bytes; heights are 8-byte big-endian so a queue
iterates in height order.
"""

NAMESPACE = b"staking/"
PARAMS = b"\x00"
VALIDATOR = b"\x01"  # VALIDATOR | operator -> Validator
VALIDATOR_BY_CONS = b"\x02"  # VALIDATOR_BY_CONS | consensus address -> operator
DELEGATION = b"\x03"  # DELEGATION | delegator | validator -> Delegation
DELEGATION_BY_VAL = b"\x04"  # DELEGATION_BY_VAL | validator | delegator -> b""
UNBONDING = b"\x05"  # UNBONDING | delegator | validator -> UnbondingDelegation
UNBONDING_BY_VAL = b"\x06"  # UNBONDING_BY_VAL | validator | delegator -> b""
UNBONDING_QUEUE = b"\x07"  # UNBONDING_QUEUE | completion height | delegator | validator -> b""
REDELEGATION = b"\x08"  # REDELEGATION | delegator | src | dst -> Redelegation
REDELEGATION_BY_SRC = b"\x09"  # REDELEGATION_BY_SRC | src | delegator | dst -> b""
REDELEGATION_BY_DST = b"\x0a"  # REDELEGATION_BY_DST | dst | delegator | src -> b""
REDELEGATION_QUEUE = b"\x0b"  # REDELEGATION_QUEUE | completion height | delegator | src | dst -> b""
VALIDATOR_QUEUE = b"\x0c"  # VALIDATOR_QUEUE | completion height | operator -> b"" (UNBONDING validators)
LAST_POWER = b"\x0d"  # LAST_POWER | operator -> power (decimal ASCII): what CometBFT has

ADDR_LEN = 20


def height_bytes(h: int) -> bytes:
    return h.to_bytes(8, "big")


def validator_key(op: bytes) -> bytes:
    return VALIDATOR + op


def cons_key(cons: bytes) -> bytes:
    return VALIDATOR_BY_CONS + cons


def delegation_key(delegator: bytes, validator: bytes) -> bytes:
    return DELEGATION + delegator + validator


def delegation_by_val_key(validator: bytes, delegator: bytes) -> bytes:
    return DELEGATION_BY_VAL + validator + delegator


def unbonding_key(delegator: bytes, validator: bytes) -> bytes:
    return UNBONDING + delegator + validator


def unbonding_by_val_key(validator: bytes, delegator: bytes) -> bytes:
    return UNBONDING_BY_VAL + validator + delegator


def unbonding_queue_key(height: int, delegator: bytes, validator: bytes) -> bytes:
    return UNBONDING_QUEUE + height_bytes(height) + delegator + validator


def redelegation_key(delegator: bytes, src: bytes, dst: bytes) -> bytes:
    return REDELEGATION + delegator + src + dst


def redelegation_by_src_key(src: bytes, delegator: bytes, dst: bytes) -> bytes:
    return REDELEGATION_BY_SRC + src + delegator + dst


def redelegation_by_dst_key(dst: bytes, delegator: bytes, src: bytes) -> bytes:
    return REDELEGATION_BY_DST + dst + delegator + src


def redelegation_queue_key(height: int, delegator: bytes, src: bytes, dst: bytes) -> bytes:
    return REDELEGATION_QUEUE + height_bytes(height) + delegator + src + dst


def validator_queue_key(height: int, op: bytes) -> bytes:
    return VALIDATOR_QUEUE + height_bytes(height) + op


def last_power_key(op: bytes) -> bytes:
    return LAST_POWER + op
