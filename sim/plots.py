"""PNG figures (matplotlib, the `sim` extra; imported only where a figure is drawn)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

PPM = 1_000_000


def rating_trace(path: Path, trace: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> Path:
    """One line per validator: its rating (ppm / 10^6) after each round, rounds on a log axis."""
    rounds = list(range(1, len(trace) + 1))
    fig, ax = plt.subplots(figsize=(8, 5))
    cmap = plt.get_cmap("viridis")
    for i, label in enumerate(labels):
        ax.plot(rounds, [row[i] / PPM for row in trace], label=label, color=cmap(i / max(len(labels) - 1, 1)))
    ax.set_xscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("on-chain rating")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="scoring noise", fontsize=8, ncol=2)
    return _save(fig, path)


def spearman_curve(
    path: Path, curves: Mapping[str, Sequence[Sequence[float]]], checkpoints: Sequence[int], title: str
) -> Path:
    """For each label, rho per round (curves[label][round - 1] = one value per seed): the mean
    as a line, min-max as a band; the checkpoints marked."""
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, per_round in curves.items():
        rounds = list(range(1, len(per_round) + 1))
        means = [sum(v) / len(v) for v in per_round]
        (line,) = ax.plot(rounds, means, label=label)
        ax.fill_between(rounds, [min(v) for v in per_round], [max(v) for v in per_round],
                        color=line.get_color(), alpha=0.2)  # fmt: skip
    for cp in checkpoints:
        ax.axvline(cp, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_ylim(-1, 1)
    ax.set_xlabel("rounds")
    ax.set_ylabel("Spearman rho")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def class_earnings(
    path: Path,
    panels: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
    jails: Mapping[str, Mapping[str, Sequence[int]]],
    title: str,
) -> Path:
    """One panel per kind of actor (panels[kind][class][round - 1] = one value per seed, POLY):
    the mean cumulative earnings of a class member as a line, min-max over seeds as a band;
    jails[kind][class] are the rounds at which a member of the class was jailed (ticks at the bottom)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8), squeeze=False)
    for ax, (kind, curves) in zip(axes[0], panels.items(), strict=True):
        for label, per_round in curves.items():
            rounds = list(range(1, len(per_round) + 1))
            means = [sum(v) / len(v) for v in per_round]
            (line,) = ax.plot(rounds, means, label=label)
            ax.fill_between(rounds, [min(v) for v in per_round], [max(v) for v in per_round],
                            color=line.get_color(), alpha=0.2)  # fmt: skip
            marks = jails.get(kind, {}).get(label, [])
            if marks:
                lo = ax.get_ylim()[0]
                ax.plot(marks, [lo] * len(marks), "|", color=line.get_color(), markersize=10)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xlabel("round (block)")
        ax.set_ylabel("cumulative earnings per member (POLY)")
        ax.set_title(kind)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def price_path(
    path: Path,
    prices: Sequence[int],
    demand: Sequence[int],
    target: Sequence[int],
    phases: Sequence[int],
    base: int,
) -> Path:
    """The price after each block (top) and the block's demand against the target (bottom), with
    the demand steps marked."""
    blocks = list(range(1, len(prices) + 1))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(blocks, prices, color="tab:blue", label="price")
    top.axhline(base, color="grey", linestyle="--", linewidth=1, label="base price (floor)")
    top.set_ylabel("upoly per 1000 tokens")
    top.legend(fontsize=8)
    bottom.step(blocks, demand, where="mid", color="tab:orange", label="demand (tokens requested)")
    bottom.plot(blocks, target, color="tab:green", linestyle="--", label="target (50% of capacity)")
    bottom.set_ylabel("tokens per block")
    bottom.set_xlabel("block")
    bottom.legend(fontsize=8)
    edge = 0
    for n in phases[:-1]:
        edge += n
        for ax in (top, bottom):
            ax.axvline(edge + 0.5, color="grey", linestyle=":", linewidth=1)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    fig.suptitle("Dynamic price under a demand step up and down (EIP-1559 style, SPEC 3.7)", fontsize=10)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    for ax in fig.axes:
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 1, 10, 100 rather than 10^0, 10^1, 10^2
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
