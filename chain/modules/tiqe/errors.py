"""Registered errors of the tiqe module (codespace "tiqe"), one code per failure."""

from chain.core.errors import register

SPACE = "tiqe"
ErrInvalidMsg = register(SPACE, 2, "invalid tiqe message")
ErrUnknownRound = register(SPACE, 3, "no scoring round for this result")
ErrNotOnCommittee = register(SPACE, 4, "sender is not on this result's scoring committee")
ErrAlreadyCommitted = register(SPACE, 5, "score already committed")
ErrCommitClosed = register(SPACE, 6, "the commit window of this round is closed")
ErrRevealNotOpen = register(SPACE, 7, "the reveal window is not open yet (commitments are still being collected)")
ErrRevealClosed = register(SPACE, 8, "the reveal window of this round is closed")
ErrNotCommitted = register(SPACE, 9, "no committed score to reveal")
ErrAlreadyRevealed = register(SPACE, 10, "score already revealed")
ErrCommitmentMismatch = register(SPACE, 11, "reveal does not match the commitment")
ErrInvalidCommitment = register(SPACE, 12, "commitment must be a 32-byte sha256 digest")
ErrScoreOutOfRange = register(SPACE, 13, "quality_ppm and fidelity_ppm must be <= 1000000")
ErrInvalidGenesis = register(SPACE, 14, "invalid tiqe genesis")
