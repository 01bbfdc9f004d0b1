"""Pure parts of the gateway: chat -> prompt, OpenAI bodies -> Call, SSE pieces and framing, config, CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from chain.cli.main import main
from gateway import sse
from gateway.calls import PPM, Options
from gateway.cli import render_config
from gateway.config import ConfigError, load_config, parse_config
from gateway.errors import ApiError
from gateway.openai_api import parse_chat, parse_completion
from gateway.prompt import PromptError, chat_prompt, completion_prompt

# --- prompt -----------------------------------------------------------------------------------


def test_one_user_message_is_the_prompt_unchanged() -> None:
    assert chat_prompt([{"role": "user", "content": "  What is 2+2?\n"}]) == "  What is 2+2?\n"


def test_a_conversation_becomes_labelled_blocks_in_order() -> None:
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "Capital of"}, {"type": "text", "text": "France?"}]},
    ]
    p = chat_prompt(msgs)
    assert p == "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Capital of\nFrance?"
    assert chat_prompt(list(msgs)) == p  # deterministic
    assert (
        chat_prompt([{"role": "developer", "content": "x"}, {"role": "user", "content": "y"}]) == "System: x\n\nUser: y"
    )
    assert chat_prompt([{"role": "system", "content": "Only a system turn"}]) == "System: Only a system turn"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        "hello",
        [{"role": "wizard", "content": "x"}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}],
        [{"role": "user", "content": 3}],
        [{"role": "user", "content": "   "}],
        ["not an object"],
    ],
)
def test_bad_messages_are_refused(messages: object) -> None:
    with pytest.raises(PromptError):
        chat_prompt(messages)  # type: ignore[arg-type]


def test_completion_prompt() -> None:
    assert completion_prompt("Once upon") == "Once upon"
    assert completion_prompt(["Once upon"]) == "Once upon"
    for bad in (["a", "b"], [1], "", None):
        with pytest.raises(PromptError):
            completion_prompt(bad)


# --- request mapping --------------------------------------------------------------------------

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}


def test_chat_body_maps_to_the_chain_request_fields() -> None:
    c = parse_chat(
        {
            **CHAT,
            "max_tokens": 33,
            "temperature": 0.7,
            "top_p": 0.25,
            "seed": 42,
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "ignored",
            "polylink": {"min_quality": 0.65, "redundancy": 3, "timeout_s": 9.5, "max_price": "1200"},
        }
    )
    assert (c.kind, c.model, c.prompt, c.max_tokens) == ("chat", "m", "Hi", 33)
    assert (c.temperature_ppm, c.top_p_ppm, c.seed, c.stream, c.include_usage) == (700_000, 250_000, 42, True, True)
    assert c.options == Options(min_quality_ppm=650_000, redundancy=3, timeout_s=9.5, max_price="1200")
    d = parse_chat(CHAT)
    assert (d.max_tokens, d.temperature_ppm, d.top_p_ppm, d.seed, d.stream) == (None, 0, PPM, 0, False)
    assert parse_chat({**CHAT, "max_completion_tokens": 5, "max_tokens": 9}).max_tokens == 5


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"n": 2}, "n"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"seed": -1}, "seed"),
        ({"stream": "yes"}, "stream"),
        ({"stop": ["\n"]}, "stop"),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"polylink": {"min_quality": 1.5}}, "polylink.min_quality"),
        ({"polylink": {"redundancy": 0}}, "polylink.redundancy"),
        ({"polylink": {"timeout_s": 0}}, "polylink.timeout_s"),
        ({"polylink": {"max_price": "01"}}, "polylink.max_price"),
        ({"polylink": {"colour": "red"}}, "polylink"),
        ({"polylink": "x"}, "polylink"),
    ],
)
def test_bad_or_unsupported_fields_are_400_naming_the_param(extra: dict[str, object], param: str) -> None:
    with pytest.raises(ApiError) as e:
        parse_chat({**CHAT, **extra})
    assert e.value.status == 400 and e.value.param == param and e.value.body()["error"]["param"] == param


def test_completion_body() -> None:
    c = parse_completion({"model": "m", "prompt": "Once", "max_tokens": 4})
    assert (c.kind, c.prompt, c.max_tokens) == ("text", "Once", 4)
    for bad in ({"prompt": ["a", "b"]}, {"prompt": "x", "echo": True}, {"prompt": "x", "suffix": "y"}):
        with pytest.raises(ApiError):
            parse_completion({"model": "m", **bad})
    with pytest.raises(ApiError):
        parse_chat(["not", "an", "object"])


# --- SSE --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "one", "  lead and trail  ", "a\nb\n\nc", "tabs\tand  spaces", "é 😀 ünï"])
def test_pieces_rebuild_the_text_exactly(text: str) -> None:
    ps = sse.pieces(text)
    assert "".join(ps) == text and all(ps)


def test_event_framing_is_one_data_line_even_with_newlines() -> None:
    frame = sse.event({"text": "line1\nline2\n\ndata: fake"})
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n") and frame.count(b"\n") == 2
    assert json.loads(frame[len(b"data: ") : -2]) == {"text": "line1\nline2\n\ndata: fake"}
    assert sse.DONE == b"data: [DONE]\n\n"


# --- config and CLI ---------------------------------------------------------------------------


def test_config_defaults_and_values(tmp_path: Path) -> None:
    cfg = parse_config({"chain": {"key": "gw", "home": "net"}}, base_dir=tmp_path)
    g = cfg.gateway
    assert cfg.chain.home == tmp_path / "net" and cfg.chain.key == "gw"
    assert (g.host, g.port, g.api_keys, g.min_quality_ppm, g.redundancy, g.max_price) == (
        "127.0.0.1",
        8000,
        (),
        0,
        1,
        "",
    )
    g = parse_config(
        {"chain": {"key": "gw"}, "gateway": {"api_keys": ["a", "b"], "min_quality": 0.55, "port": 0, "timeout_s": 5}}
    ).gateway
    assert (g.api_keys, g.min_quality_ppm, g.port, g.timeout_s) == (("a", "b"), 550_000, 0, 5.0)


@pytest.mark.parametrize(
    ("gateway", "needle"),
    [
        ({"port": 70000}, "[gateway] port"),
        ({"min_quality": 2}, "[gateway] min_quality"),
        ({"api_keys": "k"}, "[gateway] api_keys"),
        ({"api_keys": ["k", "k"]}, "[gateway] api_keys"),
        ({"max_price": "1.5"}, "[gateway] max_price"),
        ({"bogus": 1}, "bogus"),
        ({"rate_limit_per_minute": -1}, "rate_limit_per_minute"),
        ({"rate_limit_burst": 0}, "[gateway] rate_limit_burst"),
    ],
)
def test_config_errors_name_the_key(gateway: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"chain": {"key": "gw"}, "gateway": gateway})
    assert needle in str(e.value)


def test_init_config_renders_a_config_that_loads(tmp_path: Path) -> None:
    text = render_config(out="gw.toml", key="gw", home="/h", rpc="http://127.0.0.1:1", port=8123, api_keys=["sk-1"])
    cfg = parse_config(tomllib.loads(text))
    assert (cfg.chain.rpc, cfg.gateway.port, cfg.gateway.api_keys) == ("http://127.0.0.1:1", 8123, ("sk-1",))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_cli_has_help_on_every_command_and_writes_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["gateway", "--help"], ["gateway", "run", "--help"], ["gateway", "init-config", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0 and "usage: polylink gateway" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "gateway" in out and "OpenAI-compatible" in out
    path = tmp_path / "gw.toml"
    args = ["gateway", "init-config", "--out", str(path), "--key", "gw", "--home", str(tmp_path), "--api-key", "sk-x"]
    assert main(args) == 0
    assert load_config(path).gateway.api_keys == ("sk-x",) and path.stat().st_mode & 0o077 == 0
    assert main(["gateway", "init-config", "--out", str(path)]) == 1
    assert "exists" in capsys.readouterr().err
