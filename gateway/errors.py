"""`ApiError`: every failure the gateway answers with, as an HTTP status and OpenAI's error object.

OpenAI's shape is `{"error": {"message", "type", "param", "code"}}`; the
official client maps the status to its exception class (401
AuthenticationError, 404 NotFoundError, 422 UnprocessableEntityError, 5xx
InternalServerError, ...). Where the chain knows more (a request id, a
quality), the error object carries it in a `polylink` field.

| status | type | code | when |
|---|---|---|---|
| 400 | invalid_request_error | invalid_request / unsupported_parameter | a malformed or unsupported body |
| 400 | invalid_request_error | invalid_request | prompt, max_tokens or redundancy over the chain's params |
| 400 | invalid_request_error | chain_rejected | the chain refused the request tx (CheckTx or its block) |
| 401 | invalid_request_error | invalid_api_key | missing or unknown Bearer key |
| 404 | invalid_request_error | model_not_found / not_found | unknown model or route |
| 422 | quality_error | answer_failed_tiqe | the answer was scored below TIQE's pass mark |
| 422 | quality_error | quality_below_minimum | the answer's quality < min_quality (or it was not scored) |
| 429 | requests | rate_limit_exceeded | the key's rate limit is spent (`Retry-After` says when) |
| 503 | service_unavailable | request_failed | the request FAILED on chain (no eligible worker, ...) |
| 503 | service_unavailable | chain_unavailable | the node cannot be reached |
| 504 | timeout | request_timeout | no verified answer within the timeout (the request goes on on chain) |
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the HTTP layer answers with `status` and `body()`."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        message: str,
        *,
        param: str | None = None,
        polylink: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.status = status
        self.type = type_
        self.code = code
        self.message = message
        self.param = param
        self.polylink = polylink

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        if self.polylink is not None:
            err["polylink"] = self.polylink
        return {"error": err}


def invalid_request(message: str, *, param: str | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", "invalid_request", message, param=param)


def unsupported(param: str) -> ApiError:
    return ApiError(
        400,
        "invalid_request_error",
        "unsupported_parameter",
        f"{param} is not supported by the PolyLink gateway",
        param=param,
    )


def invalid_api_key() -> ApiError:
    return ApiError(
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. Send `Authorization: Bearer <key>` with a key from the gateway's config.",
    )


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404,
        "invalid_request_error",
        "model_not_found",
        f"The model {model!r} is not registered on chain (or not served by this gateway).",
        param="model",
    )


def not_found(path: str) -> ApiError:
    return ApiError(404, "invalid_request_error", "not_found", f"No route {path}")


def chain_rejected(message: str, polylink: dict[str, Any] | None = None) -> ApiError:
    return ApiError(400, "invalid_request_error", "chain_rejected", message, polylink=polylink)


def answer_failed_tiqe(message: str, polylink: dict[str, Any]) -> ApiError:
    return ApiError(422, "quality_error", "answer_failed_tiqe", message, polylink=polylink)


def quality_below_minimum(message: str, polylink: dict[str, Any]) -> ApiError:
    return ApiError(422, "quality_error", "quality_below_minimum", message, param="min_quality", polylink=polylink)


def rate_limited(retry_after_s: str) -> ApiError:
    return ApiError(
        429,
        "requests",
        "rate_limit_exceeded",
        f"Rate limit reached for this API key; retry after {retry_after_s} s.",
        headers={"Retry-After": retry_after_s},
    )


def request_failed(message: str, polylink: dict[str, Any]) -> ApiError:
    return ApiError(503, "service_unavailable", "request_failed", message, polylink=polylink)


def chain_unavailable(message: str) -> ApiError:
    return ApiError(503, "service_unavailable", "chain_unavailable", message)


def request_timeout(message: str, polylink: dict[str, Any] | None = None) -> ApiError:
    return ApiError(504, "timeout", "request_timeout", message, polylink=polylink)
