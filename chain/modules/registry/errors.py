"""Registered errors of the registry module (codespace "registry")."""

from chain.core.errors import register

SPACE = "registry"
ErrInvalidModelID = register(SPACE, 2, "model id must be one or more of the characters [A-Za-z0-9._:/-]")
ErrFieldTooLong = register(SPACE, 3, "field is longer than max_field_bytes")
ErrInvalidSha256 = register(SPACE, 4, "sha256 must be 64 lower-case hex characters")
ErrInvalidRoyalty = register(SPACE, 5, "royalty_ppm must be <= 1000000")
ErrInvalidPrice = register(SPACE, 6, "base_price must be a canonical non-negative integer (upoly per 1000 tokens)")
ErrInvalidContextLength = register(SPACE, 7, "context_length must be positive")
ErrModelExists = register(SPACE, 8, "a model with this id is already registered")
ErrUnknownModel = register(SPACE, 9, "no model with this id is registered")
ErrWorkerExists = register(SPACE, 10, "this address is already registered as a worker")
ErrNoWorker = register(SPACE, 11, "no worker with this address")
ErrWorkerNotActive = register(SPACE, 12, "worker is not ACTIVE (it is unbonding)")
ErrNoModels = register(SPACE, 13, "a worker must serve at least one model")
ErrDuplicateModel = register(SPACE, 14, "a model id is listed twice")
ErrTooManyModels = register(SPACE, 15, "more models than max_models_per_worker")
ErrInvalidCapacity = register(SPACE, 16, "capacity must be positive (tokens per block)")
ErrBadDenom = register(SPACE, 17, "bond is not in the bond denom")
ErrInvalidAmount = register(SPACE, 18, "bond amount must be a positive canonical integer")
ErrBondTooLow = register(SPACE, 19, "bond is below min_worker_bond")
ErrEmptyUpdate = register(SPACE, 20, "nothing to update: set endpoint, capacity, models or add_bond")
ErrInvalidFraction = register(SPACE, 21, "slash fraction must be in 0..1000000 ppm")
ErrInvalidQuality = register(SPACE, 22, "quality or fidelity EMA must be in 0..1000000 ppm")
ErrInvalidGenesis = register(SPACE, 23, "invalid registry genesis")
