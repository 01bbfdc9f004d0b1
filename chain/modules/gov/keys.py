"""Store layout of the gov module (one-byte prefixes inside its namespace)."""

NAMESPACE = b"gov/"
PARAMS = b"\x00"
NEXT_PROPOSAL_ID = b"\x01"  # -> uint64 big-endian
PROPOSAL = b"\x02"  # PROPOSAL | id(8) -> Proposal
DEPOSIT_QUEUE = b"\x03"  # DEPOSIT_QUEUE | deposit_end_height(8) | id(8) -> b"\x01"
VOTING_QUEUE = b"\x04"  # VOTING_QUEUE | voting_end_height(8) | id(8) -> b"\x01"
DEPOSIT = b"\x05"  # DEPOSIT | id(8) | depositor(20) -> Deposit
VOTE = b"\x06"  # VOTE | id(8) | voter(20) -> Vote
UPGRADE_PLAN = b"\x07"  # -> UpgradePlan (absent when none is scheduled)

QUEUED = b"\x01"  # value of a queue entry: the key says everything


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def proposal_key(pid: int) -> bytes:
    return PROPOSAL + u64(pid)


def queue_key(queue: bytes, end_height: int, pid: int) -> bytes:
    return queue + u64(end_height) + u64(pid)


def deposits_prefix(pid: int) -> bytes:
    return DEPOSIT + u64(pid)


def deposit_key(pid: int, depositor: bytes) -> bytes:
    return deposits_prefix(pid) + depositor


def votes_prefix(pid: int) -> bytes:
    return VOTE + u64(pid)


def vote_key(pid: int, voter: bytes) -> bytes:
    return votes_prefix(pid) + voter
