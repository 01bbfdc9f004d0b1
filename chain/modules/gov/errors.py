"""Registered errors of the gov module, and the halt an upgrade plan causes."""

from chain.core.errors import register

SPACE = "gov"
ErrUnknownProposal = register(SPACE, 2, "unknown proposal")
ErrInactiveProposal = register(SPACE, 3, "proposal is not in the required period")
ErrInvalidProposalMsg = register(SPACE, 4, "invalid proposal message")
ErrInvalidAuthority = register(SPACE, 5, "unauthorized: signer is not the gov authority")
ErrInvalidVote = register(SPACE, 6, "invalid vote")
ErrInvalidDeposit = register(SPACE, 7, "invalid deposit")
ErrInvalidProposalContent = register(SPACE, 8, "invalid proposal title or summary")
ErrUnknownParamsModule = register(SPACE, 9, "module has no governable params")
ErrInvalidUpgrade = register(SPACE, 10, "invalid upgrade plan")
ErrInvalidRecipient = register(SPACE, 11, "recipient may not receive funds by proposal")
ErrInvalidGenesis = register(SPACE, 12, "invalid gov genesis")


class UpgradeHalt(RuntimeError):
    """Raised by `begin_block` at the height of a scheduled upgrade.

    Not a registered (tx) error: it is meant to escape FinalizeBlock so the
    node stops loudly; a binary that knows the upgrade takes over from there.
    """
