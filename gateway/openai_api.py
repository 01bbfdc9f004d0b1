"""OpenAI's wire format: request bodies -> `Call`, a verified answer -> responses and stream chunks (pure).

Supported request fields: `model`, `messages` (chat) or `prompt`
(completions), `max_tokens` / `max_completion_tokens`, `temperature`
(default 0: greedy, the chain's default), `top_p`, `seed`, `n` (only 1: a
swarm is `redundancy`, and it still answers once), `stream`,
`stream_options.include_usage`; `user` and the penalties are accepted and
ignored. `stop`, `tools`, `functions`, `logprobs`, `response_format` other
than text and `logit_bias` are refused (400) rather than silently dropped:
the workers cannot honour them.

PolyLink's own options travel in a `polylink` object in the body (the
openai client's `extra_body={"polylink": {...}}`): `min_quality` (0..1),
`redundancy` (>= 1), `timeout_s` (> 0), `max_price` (upoly per 1000 tokens).
Every response carries a `polylink` object too (see `inference.Verified.polylink`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from polylink.registry.v1 import types_pb2 as reg_t

from gateway import sse
from gateway.calls import PPM, Call, Kind, Options
from gateway.errors import invalid_request, unsupported
from gateway.inference import Verified
from gateway.prices import Quote
from gateway.prompt import PromptError, chat_prompt, completion_prompt

MAX_TEMPERATURE = 2.0
REFUSED = ("stop", "tools", "functions", "tool_choice", "function_call", "logprobs", "top_logprobs", "logit_bias")


def _number(body: Mapping[str, Any], key: str, lo: float, hi: float, where: str = "") -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise invalid_request(f"{where}{key} must be a number in {lo:g}..{hi:g}, got {v!r}", param=where + key)
    return float(v)


def _int(body: Mapping[str, Any], key: str, lo: int, where: str = "") -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise invalid_request(f"{where}{key} must be an integer >= {lo}, got {v!r}", param=where + key)
    return v


def _ppm(x: float) -> int:
    return round(x * PPM)


def parse_options(body: Mapping[str, Any]) -> Options:
    raw = body.get("polylink")
    if raw is None:
        return Options()
    if not isinstance(raw, Mapping):
        raise invalid_request("polylink must be an object", param="polylink")
    unknown = sorted(set(raw) - {"min_quality", "redundancy", "timeout_s", "max_price"})
    if unknown:
        raise invalid_request(f"unknown polylink option(s): {', '.join(unknown)}", param="polylink")
    where = "polylink."
    mq = _number(raw, "min_quality", 0.0, 1.0, where)
    timeout = _number(raw, "timeout_s", 0.0, 86_400.0, where)
    if timeout is not None and timeout <= 0:
        raise invalid_request("polylink.timeout_s must be > 0", param="polylink.timeout_s")
    price = raw.get("max_price")
    if price is not None:
        price = str(price) if isinstance(price, int) and not isinstance(price, bool) else price
        if not isinstance(price, str) or not price.isdigit() or (len(price) > 1 and price[0] == "0"):
            raise invalid_request(
                "polylink.max_price must be a whole number of upoly per 1000 tokens", param="polylink.max_price"
            )
    return Options(
        min_quality_ppm=None if mq is None else _ppm(mq),
        redundancy=_int(raw, "redundancy", 1, where),
        timeout_s=timeout,
        max_price=price,
    )


def _common(body: Mapping[str, Any], kind: Kind, prompt: str) -> Call:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid_request("model is required", param="model")
    for key in REFUSED:
        if body.get(key) not in (None, False, [], {}):
            raise unsupported(key)
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, Mapping) and fmt.get("type") == "text"):
        raise unsupported("response_format")
    n = _int(body, "n", 1)
    if n not in (None, 1):
        raise invalid_request("n must be 1 (ask for a swarm with polylink.redundancy)", param="n")
    max_tokens = _int(body, "max_completion_tokens", 1) or _int(body, "max_tokens", 1)
    temperature = _number(body, "temperature", 0.0, MAX_TEMPERATURE)
    top_p = _number(body, "top_p", 0.0, 1.0)
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise invalid_request("seed must be an integer in 0..2^64-1", param="seed")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid_request("stream must be true or false", param="stream")
    so = body.get("stream_options")
    include_usage = bool(isinstance(so, Mapping) and so.get("include_usage"))
    return Call(
        kind=kind,
        model=model,
        prompt=prompt,
        max_tokens=max_tokens,
        temperature_ppm=0 if temperature is None else _ppm(temperature),
        top_p_ppm=PPM if top_p is None else _ppm(top_p),
        seed=seed or 0,
        stream=stream,
        include_usage=include_usage,
        options=parse_options(body),
    )


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise invalid_request("the body must be a JSON object")
    return body


def parse_chat(body: Any) -> Call:
    """A `/v1/chat/completions` body -> Call; raises ApiError (400)."""
    b = _object(body)
    try:
        prompt = chat_prompt(b.get("messages") or [])
    except PromptError as e:
        raise invalid_request(str(e), param="messages") from None
    return _common(b, "chat", prompt)


def parse_completion(body: Any) -> Call:
    """A `/v1/completions` body -> Call; raises ApiError (400)."""
    b = _object(body)
    if b.get("suffix") or b.get("echo") or b.get("best_of") not in (None, 1):
        raise unsupported("suffix" if b.get("suffix") else "echo" if b.get("echo") else "best_of")
    try:
        prompt = completion_prompt(b.get("prompt"))
    except PromptError as e:
        raise invalid_request(str(e), param="prompt") from None
    return _common(b, "text", prompt)


# --- responses -------------------------------------------------------------------------------


def response_id(call: Call, v: Verified) -> str:
    return f"{'chatcmpl' if call.kind == 'chat' else 'cmpl'}-polylink-{v.request_id}"


def usage(v: Verified) -> dict[str, int]:
    """Completion tokens as the worker reported them on chain; the chain keeps no prompt token count."""
    return {"prompt_tokens": 0, "completion_tokens": v.completion_tokens, "total_tokens": v.completion_tokens}


def response(call: Call, v: Verified, created: int) -> dict[str, Any]:
    """The non-streaming response (`chat.completion` or `text_completion`)."""
    if call.kind == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": v.text},
            "logprobs": None,
            "finish_reason": v.finish_reason,
        }
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": v.text, "logprobs": None, "finish_reason": v.finish_reason}
        obj = "text_completion"
    return {
        "id": response_id(call, v),
        "object": obj,
        "created": created,
        "model": call.model,
        "system_fingerprint": None,
        "choices": [choice],
        "usage": usage(v),
        "polylink": v.polylink(),
    }


def chunks(call: Call, v: Verified, created: int) -> list[dict[str, Any]]:
    """The stream's events: the verified text in pieces, a last chunk with the finish reason and
    the `polylink` object, and (stream_options.include_usage) a usage chunk with no choices."""
    rid = response_id(call, v)
    obj = "chat.completion.chunk" if call.kind == "chat" else "text_completion"
    head = {"id": rid, "object": obj, "created": created, "model": call.model, "system_fingerprint": None}

    def chunk(delta: str | None, finish: str | None, role: bool = False) -> dict[str, Any]:
        if call.kind == "chat":
            d: dict[str, Any] = {"role": "assistant"} if role else {}
            if delta is not None:
                d["content"] = delta
            choice: dict[str, Any] = {"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]}

    out: list[dict[str, Any]] = []
    if call.kind == "chat":
        out.append(chunk("", None, role=True))
    out += [chunk(p, None) for p in sse.pieces(v.text)]
    last = chunk(None, v.finish_reason)
    last["polylink"] = v.polylink()
    out.append(last)
    if call.include_usage:
        out.append({**head, "choices": [], "usage": usage(v)})
    return out


def stream_bytes(call: Call, v: Verified, created: int) -> list[bytes]:
    """`chunks` framed as SSE, then `data: [DONE]`."""
    return [*(sse.event(c) for c in chunks(call, v, created)), sse.DONE]


def models_list(models: list[tuple[reg_t.Model, Quote]]) -> dict[str, Any]:
    """`GET /v1/models`: the registered models this gateway serves, with their current price.

    `created` is 0: a model is registered at a height, not a time (`polylink.registered_height`)."""
    return {
        "object": "list",
        "data": [
            {
                "id": m.model_id,
                "object": "model",
                "created": 0,
                "owned_by": m.provider,
                "polylink": {
                    "family": m.family,
                    "registered_height": m.registered_height,
                    "context_length": m.context_length,
                    "price": str(q.price),
                    "base_price": str(q.base_price),
                    "price_source": q.source,
                },
            }
            for m, q in models
        ],
    }
