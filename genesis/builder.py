"""Build and check a chain's genesis.json.

A genesis document is the JSON file CometBFT reads: `chain_id`,
`genesis_time`, `initial_height`, `consensus_params`, `validators` (the
CometBFT consensus keys of the nodes) and `app_state`, which CometBFT hands
to the app's InitChain untouched. PolyLink's `app_state` is
`{"<module>": <that module's GenesisState in canonical proto JSON>}`.

Every change to `app_state` goes through the modules' own protobuf genesis
types (`genesis_from_json` -> edit -> `to_json`), so what the builder writes
is canonical: every param present (defaults filled in), accounts ordered by
number, balances by address bytes, supply equal to the sum of balances. That
is also the form `PolyLinkApp.export_genesis` produces, so export -> import
round-trips.

`validate_genesis` is the final word: it checks the CometBFT fields, runs
every module's `validate_genesis`, then InitChain on an in-memory
`PolyLinkApp`, and returns the genesis app hash.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from polylink.auth.v1 import genesis_pb2 as auth_genesis
from polylink.auth.v1 import types_pb2 as auth_types
from polylink.bank.v1 import genesis_pb2 as bank_genesis
from polylink.bank.v1 import types_pb2 as bank_types
from polylink.base.v1 import coin_pb2

from chain.app.app import GENTX_KEY, Modules, PolyLinkApp
from chain.app.module import AppModule
from chain.client.signer import Signer
from chain.client.tx_builder import build_tx, min_fee
from chain.core.address import from_bech32
from chain.core.codec import to_json
from chain.core.coins import BOND_DENOM, Coins
from chain.core.errors import ChainError
from genesis.cometbft import (
    check_doc,
    format_time,
    int_field,
    parse_time,
    read_validator_pubkey,
    validator_entry,
)
from genesis.errors import GenesisError

DEFAULT_TEMPLATE = "localnet"
DEFAULT_POWER = 10
# keys of a template that are not part of a genesis document
_TEMPLATE_ONLY = ("description", "validator_power")

AppState = dict[str, Any]
GenesisDoc = dict[str, Any]


# --- templates ---------------------------------------------------------------
def template_names() -> list[str]:
    root = resources.files("genesis") / "templates"
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def load_template(name: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """A template from genesis/templates/NAME.json: chain params plus module param overrides."""
    path = resources.files("genesis") / "templates" / f"{name}.json"
    if not path.is_file():
        raise GenesisError(f"no genesis template {name!r}; known: {', '.join(template_names())}")
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise GenesisError(f"template {name!r} is not a JSON object")
    return data


# --- app_state ---------------------------------------------------------------
def app_modules() -> dict[str, AppModule]:
    """The app's modules by name, in genesis order (the same wiring InitChain uses)."""
    return {m.name: m for m in Modules().all}


def _decode(app_state: Mapping[str, Any]) -> dict[str, Message]:
    """Each module's GenesisState: the JSON merged over the module's defaults."""
    if not isinstance(app_state, Mapping):
        raise GenesisError("app_state must be a JSON object")
    mods = app_modules()
    unknown = sorted(set(app_state) - set(mods) - {GENTX_KEY})
    if unknown:
        raise GenesisError(f"app_state has unknown modules {unknown}; known: {list(mods)}")
    out: dict[str, Message] = {}
    for name, mod in mods.items():
        data = app_state.get(name)
        if data is None:
            out[name] = mod.default_genesis()
            continue
        if not isinstance(data, dict):
            raise GenesisError(f"app_state.{name} must be a JSON object")
        try:
            out[name] = mod.genesis_from_json(data)
        except json_format.ParseError as e:
            raise GenesisError(f"app_state.{name}: {e}") from None
    return out


def _auth_bank(states: Mapping[str, Message]) -> tuple[auth_genesis.GenesisState, bank_genesis.GenesisState]:
    """The auth and bank GenesisStates out of `_decode`'s result (the same objects, typed)."""
    auth, bank = states["auth"], states["bank"]
    if not isinstance(auth, auth_genesis.GenesisState) or not isinstance(bank, bank_genesis.GenesisState):
        raise TypeError(f"unexpected genesis state types {type(auth).__name__}, {type(bank).__name__}")
    return auth, bank


def _encode(states: Mapping[str, Message]) -> AppState:
    return {name: to_json(gs) for name, gs in states.items()}


def default_app_state(overrides: Mapping[str, Any] | None = None) -> AppState:
    """Every module's default genesis, with `overrides` (partial module JSON) merged over it."""
    return _encode(_decode(overrides or {}))


def canonical_app_state(app_state: Mapping[str, Any]) -> AppState:
    """The same state in canonical form (defaults filled in, sorted, supply recomputed)."""
    states = _decode(app_state)
    auth, bank = _auth_bank(states)
    accounts = sorted(auth.accounts, key=lambda a: a.account_number)
    del auth.accounts[:]
    auth.accounts.extend(accounts)
    balances = sorted(bank.balances, key=lambda b: _addr(b.address, "bank balance"))
    del bank.balances[:]
    bank.balances.extend(balances)
    total = Coins()
    for b in balances:
        total = total + _coins(b.coins, b.address)
    del bank.supply[:]
    bank.supply.extend(total.to_proto(coin_pb2.Coin))
    return _with_gentxs(_encode(states), app_state)


def _with_gentxs(out: AppState, source: Mapping[str, Any]) -> AppState:
    """Carry the genesis txs section (not a module) over from `source`."""
    if GENTX_KEY in source:
        out[GENTX_KEY] = copy.deepcopy(source[GENTX_KEY])
    return out


def add_account(app_state: Mapping[str, Any], address: str, coins: Coins) -> AppState:
    """A new app_state with an account (next account number) holding `coins`.

    Like Cosmos SDK's add-genesis-account: the address gets an auth account and
    a bank balance; an address already in genesis is refused.
    """
    _addr(address, "account")
    if Modules().auth.is_module_address(address):
        raise GenesisError(f"{address} is a module account's address; fund a user address instead")
    if coins.is_zero():
        raise GenesisError(f"account {address}: give it a positive balance, e.g. 1000000upoly")
    states = _decode(app_state)
    auth, bank = _auth_bank(states)
    if any(a.address == address for a in auth.accounts):
        raise GenesisError(f"account {address} is already in genesis")
    if any(b.address == address for b in bank.balances):
        raise GenesisError(f"account {address} already has a genesis balance")
    number = max((a.account_number for a in auth.accounts), default=-1) + 1
    auth.accounts.append(auth_types.Account(address=address, account_number=number))
    bank.balances.append(
        bank_types.Balance(address=address, coins=coins.to_proto(coin_pb2.Coin))
    )
    return canonical_app_state(_with_gentxs(_encode(states), app_state))


def build_app_state(
    balances: Sequence[tuple[str, Coins]], overrides: Mapping[str, Any] | None = None
) -> AppState:
    """app_state with one funded account per (address, coins), numbered in the given order."""
    state = default_app_state(overrides)
    for address, coins in balances:
        state = add_account(state, address, coins)
    return state


def validate_app_state(app_state: Mapping[str, Any]) -> None:
    """Run every module's validate_genesis on its part of app_state; raises GenesisError."""
    for name, gs in _decode(app_state).items():
        try:
            app_modules()[name].validate_genesis(gs)
        except ChainError as e:
            raise GenesisError(f"app_state.{name}: {e.log}") from None


# --- the whole document ------------------------------------------------------
def new_genesis(
    chain_id: str | None = None,
    *,
    template: str = DEFAULT_TEMPLATE,
    genesis_time_ns: int | None = None,
) -> GenesisDoc:
    """A genesis document from a template: no accounts, no validators yet."""
    t = load_template(template)
    doc: GenesisDoc = {
        "genesis_time": format_time(time.time_ns() if genesis_time_ns is None else genesis_time_ns),
        "chain_id": chain_id or t.get("chain_id", ""),
        "initial_height": str(t.get("initial_height", "1")),
        "consensus_params": copy.deepcopy(t["consensus_params"]),
        "validators": [],
        "app_hash": "",
        "app_state": default_app_state(t.get("app_state")),
    }
    extra = sorted(set(t) - set(doc) - set(_TEMPLATE_ONLY))
    if extra:
        raise GenesisError(f"template {template!r} has unknown keys {extra}")
    if not doc["chain_id"]:
        raise GenesisError("give a chain id (the template has none)")
    return doc


def with_account(doc: Mapping[str, Any], address: str, coins: Coins) -> GenesisDoc:
    """A copy of `doc` with one more funded account."""
    out = copy.deepcopy(dict(doc))
    out["app_state"] = add_account(out.get("app_state") or {}, address, coins)
    return out


def with_validator(
    doc: Mapping[str, Any], node_home: Path, *, power: int = DEFAULT_POWER, name: str | None = None
) -> GenesisDoc:
    """A copy of `doc` with the CometBFT consensus key of the node at `node_home` as a validator."""
    pk = read_validator_pubkey(node_home)
    out = copy.deepcopy(dict(doc))
    vals = list(out.get("validators") or [])
    entry = validator_entry(pk, power, name if name is not None else f"node{len(vals)}")
    if any(v.get("address") == entry["address"] for v in vals):
        raise GenesisError(
            f"the validator key of {node_home} ({entry['address']}) is already in genesis"
        )
    out["validators"] = [*vals, entry]
    return out


GENTX_GAS = 400_000
POWER_REDUCTION = 1_000_000  # upoly per unit of voting power (the staking default)


def with_gentx(
    doc: Mapping[str, Any],
    operator: Signer,
    node_home: Path,
    *,
    self_bond: int,
    moniker: str,
    commission_ppm: int = 100_000,
) -> GenesisDoc:
    """A copy of `doc` with a signed MsgCreateValidator (gentx) of `operator` for the
    consensus key at `node_home`: the app creates the validator through the staking
    module at InitChain, so the validator set comes from app state."""
    from polylink.staking.v1 import tx_pb2 as staking_tx  # generated once staking exists

    out = copy.deepcopy(dict(doc))
    app_state = dict(out.get("app_state") or {})
    section = dict(app_state.get(GENTX_KEY) or {})
    gen_txs = list(section.get("gen_txs") or [])
    msg = staking_tx.MsgCreateValidator(
        operator_address=operator.address,
        consensus_pubkey=read_validator_pubkey(node_home),
        self_bond=coin_pb2.Coin(denom=BOND_DENOM, amount=str(self_bond)),
        commission_ppm=commission_ppm,
        moniker=moniker,
        min_self_delegation="1",
    )
    price = int(load_template_param(out, "auth", "min_gas_price_ppm", 10_000))
    tx = build_tx([msg], operator, chain_id=str(out["chain_id"]), sequence=0,
                  fee=min_fee(GENTX_GAS, price), gas_limit=GENTX_GAS)
    gen_txs.append(base64.b64encode(tx).decode())
    section["gen_txs"] = gen_txs
    app_state[GENTX_KEY] = section
    out["app_state"] = app_state
    return out


def load_template_param(doc: Mapping[str, Any], module: str, key: str, default: int) -> Any:
    params = ((doc.get("app_state") or {}).get(module) or {}).get("params") or {}
    return params.get(key, default)


def build_genesis(
    chain_id: str | None,
    accounts: Sequence[tuple[str, Coins]],
    node_homes: Sequence[Path],
    *,
    template: str = DEFAULT_TEMPLATE,
    power: int | None = None,
    genesis_time_ns: int | None = None,
    operators: Sequence[Signer] | None = None,
) -> GenesisDoc:
    """The whole document: template, funded accounts, one validator per node home (node0, node1, ...).

    With `operators` (one per node, funded in `accounts`), each validator is a gentx
    (MsgCreateValidator run by the staking module at InitChain) and genesis.json lists
    no validators; without, the node keys go into genesis.json directly (for apps
    without staking, such as CometBFT's kvstore)."""
    doc = new_genesis(chain_id, template=template, genesis_time_ns=genesis_time_ns)
    doc["app_state"] = build_app_state(accounts, doc["app_state"])
    p = (
        power
        if power is not None
        else int(load_template(template).get("validator_power", DEFAULT_POWER))
    )
    if operators is not None:
        if len(operators) != len(node_homes):
            raise GenesisError(f"{len(operators)} operators for {len(node_homes)} nodes")
        for i, (op, home) in enumerate(zip(operators, node_homes, strict=True)):
            doc = with_gentx(doc, op, home, self_bond=p * POWER_REDUCTION, moniker=f"node{i}")
        return doc
    for i, home in enumerate(node_homes):
        doc = with_validator(doc, home, power=p, name=f"node{i}")
    return doc


def validate_genesis(doc: Mapping[str, Any]) -> bytes:
    """Check the document the way the nodes will use it; returns the genesis app hash.

    CometBFT's fields first, then every module's validate_genesis, then
    InitChain on an in-memory app with exactly what CometBFT would send.
    """
    check_doc(doc)
    app_state = doc.get("app_state") or {}
    validate_app_state(app_state)
    max_gas = int_field(
        doc["consensus_params"]["block"]["max_gas"], "consensus_params.block.max_gas"
    )
    app = PolyLinkApp(None)
    try:
        app_hash = app.init_chain(
            doc["chain_id"],
            json.dumps(app_state).encode(),
            int_field(doc.get("initial_height", "0"), "initial_height"),
            parse_time(doc["genesis_time"]),
            max_gas,
        )
        if not doc.get("validators") and not app.genesis_validators:
            raise GenesisError(
                "genesis has no validators: add gentxs (MsgCreateValidator) or "
                "`polylink genesis add-validator`"
            )
        return app_hash
    except ChainError as e:
        raise GenesisError(f"InitChain refused the genesis: {e.log}") from None
    except RuntimeError as e:  # a broken invariant at genesis
        raise GenesisError(f"InitChain failed: {e}") from None


def genesis_counts(doc: Mapping[str, Any]) -> dict[str, int]:
    """How many validators and accounts a document holds (for reports)."""
    auth = (doc.get("app_state") or {}).get("auth") or {}
    return {
        "validators": len(doc.get("validators") or []),
        "accounts": len(auth.get("accounts") or []),
    }


# --- files -------------------------------------------------------------------
def read_genesis(path: Path) -> GenesisDoc:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GenesisError(f"{path} does not exist") from None
    except (OSError, json.JSONDecodeError) as e:
        raise GenesisError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict):
        raise GenesisError(f"{path} is not a JSON object")
    return doc


def write_genesis(path: Path, doc: Mapping[str, Any]) -> None:
    """Write atomically (temp file + rename), so a reader never sees half a genesis."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)


def _addr(address: str, what: str) -> bytes:
    try:
        return from_bech32(address)
    except ChainError as e:
        raise GenesisError(f"{what}: {e.log}") from None


def _coins(coins: Sequence[Any], address: str) -> Coins:
    try:
        return Coins.from_proto(coins)
    except ChainError as e:
        raise GenesisError(f"balance of {address}: {e.log}") from None
