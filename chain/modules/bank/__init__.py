"""bank: balances, total supply, transfers (MsgSend, MsgMultiSend), mint and burn for modules."""
