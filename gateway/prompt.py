"""Chat messages -> the one prompt string a request carries on chain (pure, deterministic).

The chain stores one prompt per request and every engine serves it as a single
user turn, so a chat must become one string, the same one for the same
messages on every gateway (the prompt is what the validators score the answer
against). The rule:

- one `user` message and nothing else: the prompt is its content, unchanged
  (so a one-turn chat is the same request as `polylink tx inference request --prompt`);
- anything else: one block per message, in order, `"<Role>: <content>"`, blocks
  joined by one blank line ("\\n\\n"); roles are `System`, `User`, `Assistant`
  (`developer` counts as System, `tool` as Tool) and nothing is stripped or reflowed.

A message's content is a string, or a list of parts of which only
`{"type": "text", "text": ...}` parts are allowed; their texts are joined
with "\\n". A `name` field is ignored. Anything else raises `PromptError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ROLE_LABELS = {
    "system": "System",
    "developer": "System",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
}
BLOCK_SEPARATOR = "\n\n"
PART_SEPARATOR = "\n"


class PromptError(ValueError):
    """The messages cannot be turned into a prompt; the message says which and why."""


def message_text(index: int, message: Mapping[str, Any]) -> str:
    """The text of `messages[index]`'s content (a string or a list of text parts)."""
    content = message.get("content")
    if content is None:
        return ""  # an assistant turn that only called tools, say
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise PromptError(f"messages[{index}].content[{j}]: only text parts are supported")
            texts.append(part["text"])
        return PART_SEPARATOR.join(texts)
    raise PromptError(f"messages[{index}].content must be a string or a list of text parts")


def chat_prompt(messages: Sequence[Any]) -> str:
    """The prompt for `messages` (see the module doc for the rule); raises PromptError."""
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise PromptError("messages must be a non-empty list")
    blocks: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise PromptError(f"messages[{i}] must be an object")
        role = m.get("role")
        if role not in ROLE_LABELS:
            raise PromptError(f"messages[{i}].role must be one of {', '.join(sorted(ROLE_LABELS))}, got {role!r}")
        blocks.append((str(role), message_text(i, m)))
    if len(blocks) == 1 and blocks[0][0] == "user":
        prompt = blocks[0][1]
    else:
        prompt = BLOCK_SEPARATOR.join(f"{ROLE_LABELS[role]}: {text}" for role, text in blocks)
    if not prompt.strip():
        raise PromptError("the messages hold no text")
    return prompt


def completion_prompt(prompt: Any) -> str:
    """The prompt of a `/v1/completions` call: a string, or a list of exactly one string."""
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise PromptError("prompt must be a string or a list of one string (one request per call)")
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise PromptError("prompt must be a string")
    if not prompt.strip():
        raise PromptError("prompt is empty")
    return prompt
