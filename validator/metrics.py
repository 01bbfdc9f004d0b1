"""Prometheus metrics of one validator scorer, in its own registry (served by `worker.metrics.MetricsServer`).

Names (all prefixed `polylink_validator_`):

- `tasks_total{action, outcome}`: tasks finished, by action (commit, reveal,
  early_reveal = the "copy" Byzantine mode's reveal during COMMIT) and
  outcome (ok, failed = in a block with an error code, rejected = refused by
  CheckTx, lost = score or salt lost, withheld = "no_reveal" mode, error =
  scoring or node failure, pending = broadcast, not yet seen in a block);
- `scoring_seconds`: pipeline time per scored answer (histogram);
- `stage_seconds{stage}`: time per scoring stage (histogram);
- `scores`: the quality_ppm committed (histogram, 0..1_000_000);
- `fidelities`: the fidelity_ppm committed (histogram, 0..1_000_000);
- `errors_total{kind}`: failures by kind (scoring, node, subscribe, query, tx_timeout, ...);
- `inflight`: tasks being handled now.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

PREFIX = "polylink_validator"
SCORING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
SCORE_BUCKETS = tuple(float(b) for b in range(100_000, 1_000_001, 100_000))


class ValidatorMetrics:
    """The validator's metrics; each instance has its own registry (tests make many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.tasks = Counter(
            f"{PREFIX}_tasks", "Tasks finished, by action and outcome", ["action", "outcome"], registry=r
        )
        self.scoring_seconds = Histogram(
            f"{PREFIX}_scoring_seconds", "Scoring pipeline time per answer", buckets=SCORING_BUCKETS, registry=r
        )
        self.stage_seconds = Histogram(
            f"{PREFIX}_stage_seconds", "Time per scoring stage", ["stage"], buckets=STAGE_BUCKETS, registry=r
        )
        self.scores = Histogram(f"{PREFIX}_scores", "Committed qualities (ppm)", buckets=SCORE_BUCKETS, registry=r)
        self.fidelities = Histogram(
            f"{PREFIX}_fidelities", "Committed fidelities (ppm)", buckets=SCORE_BUCKETS, registry=r
        )
        self.errors = Counter(f"{PREFIX}_errors", "Failures, by kind", ["kind"], registry=r)
        self.inflight = Gauge(f"{PREFIX}_inflight", "Tasks being handled now", registry=r)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent), e.g. value("polylink_validator_tasks_total", {...})."""
        v = self.registry.get_sample_value(name, labels or {})
        return 0.0 if v is None else v

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
