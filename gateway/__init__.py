"""The OpenAI-compatible gateway and the live dashboard (`polylink gateway run --config FILE`).

An HTTP server on loopback that turns each OpenAI call into a signed
`MsgRequestInference` (the gateway's own funded key), waits for the verified
result and answers in OpenAI's format with a `polylink` extension field. It
reaches the chain only through `chain.client`. Rooms, bottom up:

- `prompt`: chat messages -> the one prompt string the chain stores (pure);
- `openai_api`: request parsing and response/chunk building in OpenAI's format (pure);
- `errors`: `ApiError`, OpenAI-style error objects and status codes (pure);
- `sse`: server-sent-event framing of the verified answer (pure);
- `config`: the TOML config (`[chain]`, `[gateway]`);
- `chain`: the narrow `ChainClient` interface the gateway needs, and block wake-ups;
- `prices`: current and recent prices (the pricing module, or the model's base price);
- `inference`: submit, wait, judge (min_quality, TIQE verdict) -> `Verified`;
- `dashboard/`: the dashboard's paginated chain queries and its page;
- `server`: the Starlette app (routes, API keys, error mapping);
- `cli`: `polylink gateway run | init-config`, and `serve`, the owner of every resource.
"""
