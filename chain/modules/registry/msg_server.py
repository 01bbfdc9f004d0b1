"""One handler per registry message: stateless check, stateful check, writes, event, response."""

from __future__ import annotations

from polylink.registry.v1 import tx_pb2, types_pb2

from chain.core.address import from_bech32
from chain.core.context import Context
from chain.core.events import Event
from chain.modules.registry import fields
from chain.modules.registry.errors import (
    ErrBondTooLow,
    ErrEmptyUpdate,
    ErrInvalidCapacity,
    ErrModelExists,
    ErrTooManyModels,
    ErrUnknownModel,
    ErrWorkerExists,
    ErrWorkerNotActive,
)
from chain.modules.registry.keeper import ACTIVE, RegistryKeeper, bond_coins
from chain.modules.registry.params import WORKER_BOND_POOL

MODULE = "registry"


# --- stateless checks (before the signature is even looked at) -----------------
def validate_register_model(msg: tx_pb2.MsgRegisterModel) -> None:
    from_bech32(msg.provider)
    fields.check_model_id(msg.model_id)
    fields.check_sha256(msg.sha256)
    fields.check_royalty(msg.royalty_ppm)
    fields.parse_price(msg.base_price)
    fields.check_context_length(msg.context_length)


def validate_register_worker(msg: tx_pb2.MsgRegisterWorker) -> None:
    from_bech32(msg.worker)
    fields.check_models(msg.models)
    if msg.capacity == 0:
        raise ErrInvalidCapacity.wrap("0")
    fields.bond_amount(msg.bond, "bond")


def validate_update_worker(msg: tx_pb2.MsgUpdateWorker) -> None:
    from_bech32(msg.worker)
    if msg.models_set:
        fields.check_models(msg.models)
    add = fields.optional_bond_amount(msg.add_bond, "add_bond")
    if not (msg.endpoint or msg.capacity or msg.models_set or add):
        raise ErrEmptyUpdate.wrap()


def validate_unregister_worker(msg: tx_pb2.MsgUnregisterWorker) -> None:
    from_bech32(msg.worker)


class MsgServer:
    def __init__(self, k: RegistryKeeper) -> None:
        self.k = k

    @staticmethod
    def _message(ctx: Context, action: str, sender: str) -> None:
        ctx.emit(Event.of("message", module=MODULE, action=action, sender=sender))

    def _check_models(self, ctx: Context, models: list[str], limit: int) -> None:
        """Stateful: at most `limit` models, each registered."""
        if len(models) > limit:
            raise ErrTooManyModels.wrap(f"{len(models)} > {limit}")
        for m in models:
            if self.k.get_model(ctx, m) is None:
                raise ErrUnknownModel.wrap(m)

    def _open_stats(self, ctx: Context, addr: str, models: list[str]) -> None:
        """A stats record (both EMAs at initial_quality_ppm) for every model that has none yet; a model
        served before keeps its record."""
        for m in models:
            if not self.k.has_stats(ctx, addr, m):
                self.k.set_stats(ctx, self.k.get_stats(ctx, addr, m))

    def register_model(self, ctx: Context, msg: tx_pb2.MsgRegisterModel) -> tx_pb2.MsgRegisterModelResponse:
        limit = self.k.get_params(ctx).max_field_bytes
        for what, value in (
            ("model_id", msg.model_id), ("family", msg.family), ("version", msg.version), ("license", msg.license)
        ):
            fields.check_length(value, what, limit)
        if self.k.get_model(ctx, msg.model_id) is not None:
            raise ErrModelExists.wrap(msg.model_id)
        self.k.set_model(
            ctx,
            types_pb2.Model(
                model_id=msg.model_id,
                provider=msg.provider,
                family=msg.family,
                version=msg.version,
                sha256=msg.sha256,
                license=msg.license,
                context_length=msg.context_length,
                royalty_ppm=msg.royalty_ppm,
                base_price=str(fields.parse_price(msg.base_price)),
                registered_height=ctx.height,
            ),
        )
        ctx.emit(
            Event.of("registry.model_registered", model_id=msg.model_id, provider=msg.provider, sha256=msg.sha256)
        )
        self._message(ctx, "register_model", msg.provider)
        return tx_pb2.MsgRegisterModelResponse()

    def register_worker(self, ctx: Context, msg: tx_pb2.MsgRegisterWorker) -> tx_pb2.MsgRegisterWorkerResponse:
        params = self.k.get_params(ctx)
        if self.k.get_worker(ctx, msg.worker) is not None:
            raise ErrWorkerExists.wrap(msg.worker)  # an UNBONDING worker too, until its bond is back
        fields.check_length(msg.endpoint, "endpoint", params.max_field_bytes)
        fields.check_length(msg.group, "group", params.max_field_bytes)
        models = sorted(msg.models)
        self._check_models(ctx, models, params.max_models_per_worker)
        bond = fields.bond_amount(msg.bond, "bond")
        if bond < int(params.min_worker_bond):
            raise ErrBondTooLow.wrap(f"{bond} < {params.min_worker_bond}")
        self.k.bk.send_to_module(ctx, msg.worker, WORKER_BOND_POOL, bond_coins(bond))
        w = types_pb2.Worker(
            address=msg.worker,
            endpoint=msg.endpoint,
            models=models,
            capacity=msg.capacity,
            bond=str(bond),
            status=ACTIVE,
            group=msg.group,
            registered_height=ctx.height,
        )
        self.k.add_worker(ctx, w)
        self._open_stats(ctx, msg.worker, models)
        ctx.emit(
            Event.of(
                "registry.worker_registered",
                worker=msg.worker,
                models=",".join(models),
                capacity=msg.capacity,
                bond=bond,
            )
        )
        self._message(ctx, "register_worker", msg.worker)
        return tx_pb2.MsgRegisterWorkerResponse()

    def update_worker(self, ctx: Context, msg: tx_pb2.MsgUpdateWorker) -> tx_pb2.MsgUpdateWorkerResponse:
        params = self.k.get_params(ctx)
        w = self.k.must_worker(ctx, msg.worker)
        if w.status != ACTIVE:
            raise ErrWorkerNotActive.wrap(msg.worker)
        fields.check_length(msg.endpoint, "endpoint", params.max_field_bytes)
        models = sorted(msg.models)
        if msg.models_set:
            self._check_models(ctx, models, params.max_models_per_worker)
        add = fields.optional_bond_amount(msg.add_bond, "add_bond")
        if add:
            self.k.bk.send_to_module(ctx, msg.worker, WORKER_BOND_POOL, bond_coins(add))
            w.bond = str(int(w.bond) + add)
        if msg.endpoint:
            w.endpoint = msg.endpoint
        if msg.capacity:
            w.capacity = msg.capacity
        if msg.models_set:
            self.k.set_models(ctx, w, models)
            self._open_stats(ctx, msg.worker, models)
        self.k.set_worker(ctx, w)
        ctx.emit(
            Event.of(
                "registry.worker_updated",
                worker=msg.worker,
                endpoint=w.endpoint,
                models=",".join(w.models),
                capacity=w.capacity,
                bond=w.bond,
                added_bond=add,
            )
        )
        self._message(ctx, "update_worker", msg.worker)
        return tx_pb2.MsgUpdateWorkerResponse()

    def unregister_worker(
        self, ctx: Context, msg: tx_pb2.MsgUnregisterWorker
    ) -> tx_pb2.MsgUnregisterWorkerResponse:
        w = self.k.must_worker(ctx, msg.worker)
        if w.status != ACTIVE:
            raise ErrWorkerNotActive.wrap(f"{msg.worker} is already unbonding")
        completion = self.k.begin_unbonding(ctx, w)
        ctx.emit(
            Event.of("registry.worker_unregistered", worker=msg.worker, completion_height=completion, bond=w.bond)
        )
        self._message(ctx, "unregister_worker", msg.worker)
        return tx_pb2.MsgUnregisterWorkerResponse(completion_height=completion)
