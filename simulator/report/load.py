"""Finished runs under a folder, grouped by their configuration minus the seed.

A run folder is finished when it holds ``summary.json``; anything else below
the folder (unfinished runs, a grid file, an errors folder) is ignored. Each
run is rebuilt as a `Config` to get its canonical identity; runs whose
identities differ only by the seed form one `Group`. The identity fields that
vary across runs, other than the aggregator, the attack and the seed, make up
a group's *setting*; the fields that never vary are the *fixed* settings.
Groups, rules, attacks and settings follow the grid file's order when the
grid's expansion is given (`simulator.report.order`).
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np

from experiments.tools import UnavailableException, UserException
from simulator.core.config import Config
from simulator.core.migrate import renamed_placement
from simulator.core.plugin_record import explain
from simulator.core.store import CHECKPOINT, SUMMARY, finished, load_result, varying
from simulator.report.order import ATTACK_FREE, BY_NAME, Order, Ranks, attack_key, freeze, order_key, ranks

logger = logging.getLogger("byzsim")

__all__ = ["ATTACK_FREE", "Design", "Group", "Run", "Setting", "attack_key", "field_key", "find_runs", "group_runs",
           "load", "order_key", "read_run", "setting_key"]

ROLE_FIELDS = ("aggregator", "attack", "seed")
NODE_CURVES = ("consensus_distance", "mean_node_accuracy", "worst_node_accuracy")  # decentralised evaluations
FIRST_FIELDS = ("dataset", "model", "nb_workers", "nb_real_byz", "nb_decl_byz", "heterogeneity")

# A setting: (field, value) pairs in field order, values made hashable (lists and dicts as JSON text).
Setting = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Run:
    """One finished run: its canonical identity, display specs and curves."""

    folder: Path
    identity: dict
    aggregator: str  # the spec as config.json stores it (non-default parameters only)
    attack: str
    steps: np.ndarray  # [e] evaluation steps
    accuracy: np.ndarray  # [e] test accuracy
    val_accuracy: np.ndarray | None  # [e], None without a validation split
    metric_steps: np.ndarray  # [m], empty unless metrics were read
    distance_ratio: np.ndarray  # [m] aggregate_distance / honest_norm
    diverged_at: int | None  # the first evaluation step with a non-finite test loss
    asr: np.ndarray | None = None  # [e] a targeted attack's attack success rate; None under other attacks
    robust_accuracy: np.ndarray | None = None  # [e] the share of its triggered inputs that keep their label
    asr_after: dict[int, float] | None = None  # ASR k steps after the attack's last step, when it stopped early
    epsilon: np.ndarray | None = None  # [e] the privacy spent by each evaluation; None without a privacy mechanism
    nodes: dict[str, np.ndarray] | None = None  # a decentralised run's NODE_CURVES, [e] each; None for a server's
    topology: dict | None = None  # a decentralised run's graph facts (summary.json's ``topology``)


@dataclass(frozen=True)
class Group:
    """Runs that differ only by their seed; curves are [seeds, evaluations]."""

    aggregator: str
    attack: str
    setting: Setting
    identity: dict  # the runs' identity without the seed
    seeds: tuple[int, ...]
    steps: np.ndarray
    accuracy: np.ndarray
    val_accuracy: np.ndarray | None
    metric_steps: np.ndarray
    distance_ratio: np.ndarray
    asr: np.ndarray | None = None  # [seeds, evaluations] under a targeted attack, else None
    robust_accuracy: np.ndarray | None = None
    asr_after: dict[int, np.ndarray] | None = None  # k steps after the attack's last step -> [seeds] ASR
    epsilon: np.ndarray | None = None  # [seeds, evaluations] with a privacy mechanism, else None
    nodes: dict[str, np.ndarray] | None = None  # decentralised runs: NODE_CURVES, [seeds, evaluations] each
    topologies: tuple[dict, ...] | None = None  # decentralised runs: each seed's graph facts


@dataclass(frozen=True)
class Design:
    """All groups under a folder, with the fields that are fixed and those that vary."""

    root: Path
    groups: tuple[Group, ...]
    fixed: dict[str, Any]
    setting_fields: tuple[str, ...]
    runs: int
    unfinished: int
    diverged: tuple[tuple[str, int], ...]  # (run folder name, step) of runs whose loss became NaN or infinite
    order: Order = BY_NAME  # the grid file's order of rules, attacks and values, when its expansion was given

    @property
    def aggregators(self) -> list[str]:
        return sorted({g.aggregator for g in self.groups}, key=self.order.aggregator)

    @property
    def attacks(self) -> list[str]:
        return sorted({g.attack for g in self.groups}, key=self.order.attack)

    @property
    def settings(self) -> list[Setting]:
        return sorted({g.setting for g in self.groups}, key=self.order.setting)


def field_key(name: str) -> tuple:
    """Fields in reading order: what the experiment is and its threat model first, then by name."""
    return (FIRST_FIELDS.index(name) if name in FIRST_FIELDS else len(FIRST_FIELDS), name)


def setting_key(setting: Setting) -> tuple:
    """The default order of settings (`Design.order` has the grid file's)."""
    return BY_NAME.setting(setting)


def find_runs(folder: str | Path, runs: Collection[str] | None = None) -> tuple[list[Path], int]:
    """Finished run folders at any depth below ``folder``, and how many unfinished ones were skipped.

    ``runs`` (run ids, the folders' names) keeps only those runs: a study's report and claims then read
    its own grid, not other runs that share the output folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserException(f"Folder {str(root)!r} does not exist.")
    ids = None if runs is None else frozenset(runs)
    folders = sorted({p.parent for p in root.rglob("*")
                      if p.name in (SUMMARY, CHECKPOINT) and (ids is None or p.parent.name in ids)})
    done = [run for run in folders if finished(run)]
    for run in set(folders) - set(done):
        if (run / SUMMARY).exists():
            load_result(run)  # a finished run whose files are damaged: one line naming the file and what to do
    unfinished, first = len(folders) - len(done), {}
    for run in done:  # one run id in several folders (grids sharing runs) is read once, where first found
        first.setdefault(run.name, run)
    if len(first) < len(done):
        logger.warning("%d run folders under %s repeat a run id found before (e.g. %s); each run is read once",
                       len(done) - len(first), root, next(r.name for r in done if first[r.name] != r))
    if not done:
        among = "" if runs is None else f" among the {len(runs)} runs asked for"
        raise UserException(f"No finished run (a folder holding {SUMMARY}){among} under {str(root)!r}.")
    return list(first.values()), unfinished


def read_run(folder: Path, *, metrics: bool = False) -> Run:
    """Read one finished run's files (``metrics.csv`` only when ``metrics``)."""
    try:
        result = load_result(folder, metrics=metrics)
        data, evaluations, rows = result.config, result.evaluations, result.metrics
        identity = Config.from_dict(renamed_placement(folder.name, data)).identity()  # an old server run: aggregate
    except UnavailableException as err:  # a name from a plug-in not loaded here: say which, if the folder knows
        raise explain(folder.parent, err) from None
    except (OSError, json.JSONDecodeError, UserException) as err:
        raise UserException(f"Run folder {str(folder)!r} cannot be read: {err}") from None
    if result.summary.get("diverged"):
        evaluations, rows = _carried_on(evaluations, rows, data, result.summary.get("broken_evaluation"))
    val = [row["val_accuracy"] for row in evaluations]
    backdoor = {key: np.array([row[key] for row in evaluations], dtype=float)
                for key in ("asr", "robust_accuracy") if all(row.get(key) is not None for row in evaluations)}
    after = result.summary.get("asr_after_attack")
    private = bool(evaluations) and all(row.get("epsilon") is not None for row in evaluations)
    steps = np.array([row["step"] for row in evaluations], dtype=int)
    nonfinite = np.flatnonzero(~np.isfinite(np.array([row["test_loss"] for row in evaluations], dtype=float)))
    ratio = np.array([row["aggregate_distance"] for row in rows], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ratio / np.array([row["honest_norm"] for row in rows], dtype=float)
    return Run(folder=folder, identity=identity, aggregator=data["aggregator"], attack=data["attack"], steps=steps,
               accuracy=np.array([row["accuracy"] for row in evaluations], dtype=float),
               val_accuracy=None if None in val or not val else np.array(val, dtype=float),
               metric_steps=np.array([row["step"] for row in rows], dtype=int), distance_ratio=ratio,
               diverged_at=int(steps[nonfinite[0]]) if nonfinite.size else None, **backdoor,
               asr_after=None if after is None else {int(k): float(v) for k, v in after.items()},
               epsilon=np.array([row["epsilon"] for row in evaluations], dtype=float) if private else None,
               nodes={key: np.array([row[key] for row in evaluations], dtype=float) for key in NODE_CURVES}
               if evaluations and all(row.get(NODE_CURVES[0]) is not None for row in evaluations) else None,
               topology=result.summary.get("topology"))


def _carried_on(evaluations: list[dict], rows: list[dict], config: dict,
                broken: dict | None) -> tuple[list[dict], list[dict]]:
    """A diverged run's curves carried on to its last step, as running on would have left them.

    It stopped at the step its loss or parameters became non-finite; running on, its parameters turn
    NaN and every later evaluation is ``broken`` (the summary's evaluation of that model), so its seeds'
    curves still share every step.
    """
    last, steps, every = evaluations[-1]["step"], config["steps"], config["eval_every"]
    broken = {**evaluations[-1], **(broken or {})}
    more = [{**broken, "step": s} for s in range(last + 1, steps + 1) if s % every == 0 or s == steps]
    after = range(rows[-1]["step"] + 1, steps) if rows else ()
    return evaluations + more, rows + [{**rows[-1], "step": s} for s in after]


def _display_names(runs: list[Run], role: str) -> dict[str, str]:
    """Canonical spec -> the stored short spec, or the canonical one where two canonicals share a short one."""
    short = {r.identity[role]: getattr(r, role) for r in runs}
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {canonical: canonical if s in clash else s for canonical, s in short.items()}


def _common(runs: list[Run], steps: str, *curves: str) -> tuple[np.ndarray, ...]:
    """The runs' curves restricted to the steps every run has: steps [e] and one [seeds, e] per curve."""
    common = reduce(np.intersect1d, [getattr(r, steps) for r in runs])
    masks = [np.isin(getattr(r, steps), common) for r in runs]
    return (common, *(np.stack([getattr(r, c)[m] for r, m in zip(runs, masks)]) for c in curves))


def _group(runs: list[Run], setting_fields: tuple[str, ...], names: dict[str, dict[str, str]]) -> Group:
    runs = sorted(runs, key=lambda r: r.identity["seed"])
    identity = {k: v for k, v in runs[0].identity.items() if k != "seed"}
    steps, accuracy = _common(runs, "steps", "accuracy")
    val = _common(runs, "steps", "val_accuracy")[1] if all(r.val_accuracy is not None for r in runs) else None
    metric_steps, ratio = _common(runs, "metric_steps", "distance_ratio")
    return Group(aggregator=names["aggregator"][identity["aggregator"]], attack=names["attack"][identity["attack"]],
                 setting=tuple((k, freeze(identity.get(k))) for k in setting_fields), identity=identity,
                 seeds=tuple(r.identity["seed"] for r in runs), steps=steps, accuracy=accuracy, val_accuracy=val,
                 metric_steps=metric_steps, distance_ratio=ratio, **_backdoor(runs),
                 epsilon=_common(runs, "steps", "epsilon")[1] if all(r.epsilon is not None for r in runs) else None,
                 **_nodes(runs))


def _backdoor(runs: list[Run]) -> dict[str, Any]:
    """A targeted attack's curves over the seeds (on the steps every run has) and its ASR k steps after its last
    attacked step (the k every run has); nothing unless every run measured them."""
    if any(r.asr is None or r.robust_accuracy is None for r in runs):
        return {}
    _, asr, robust = _common(runs, "steps", "asr", "robust_accuracy")
    out: dict[str, Any] = {"asr": asr, "robust_accuracy": robust}
    if all(r.asr_after for r in runs):
        common = sorted(set.intersection(*(set(r.asr_after) for r in runs)))
        out["asr_after"] = {k: np.array([r.asr_after[k] for r in runs]) for k in common} or None
    return out


def _nodes(runs: list[Run]) -> dict[str, Any]:
    """Decentralised runs' node curves over the seeds (on the steps every run has) and their graphs' facts; nothing
    unless every run is decentralised."""
    if any(r.nodes is None for r in runs):
        return {}
    common = reduce(np.intersect1d, [r.steps for r in runs])
    masks = [np.isin(r.steps, common) for r in runs]
    return {"nodes": {key: np.stack([r.nodes[key][m] for r, m in zip(runs, masks)]) for key in NODE_CURVES},
            "topologies": tuple(r.topology or {} for r in runs)}


def group_runs(runs: list[Run], root: Path, unfinished: int = 0, order: Ranks | None = None) -> Design:
    """Group runs by identity minus the seed and split the identity fields into fixed and varying.

    ``order`` (`simulator.report.order.ranks`) orders the groups as the grid file does; without it, by name
    and value.
    """
    buckets: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        buckets[json.dumps({k: v for k, v in r.identity.items() if k != "seed"}, sort_keys=True)].append(r)
    identities = [r.identity for r in runs]  # fields equal in every identity are fixed, the others the setting
    fields = sorted(set().union(*identities) - set(ROLE_FIELDS), key=field_key)
    setting_fields = tuple(varying(identities, fields))
    fixed = {k: identities[0].get(k) for k in fields if k not in setting_fields}
    names = {role: _display_names(runs, role) for role in ("aggregator", "attack")}
    groups = [_group(members, setting_fields, names) for members in buckets.values()]
    order = Order.of(order or {}, ((g.aggregator, g.attack, g.identity) for g in groups))
    groups.sort(key=lambda g: (order.setting(g.setting), order.aggregator(g.aggregator), order.attack(g.attack)))
    diverged = tuple((r.folder.name, r.diverged_at) for r in runs if r.diverged_at is not None)
    return Design(root=root, groups=tuple(groups), fixed=fixed, setting_fields=setting_fields, runs=len(runs),
                  unfinished=unfinished, diverged=diverged, order=order)


def load(folder: str | Path, *, metrics: bool = False, runs: Collection[str] | None = None,
         expansion: Iterable[Mapping[str, Any]] = ()) -> Design:
    """Find, read and group every finished run below ``folder`` (only those named in ``runs``, if given).

    ``expansion``, the identities of the grid's runs in the grid file's order
    (`simulator.grid.order.expansion`), orders rules, attacks and settings as the file does.
    """
    folders, unfinished = find_runs(folder, runs)
    return group_runs([read_run(f, metrics=metrics) for f in folders], Path(folder), unfinished,
                      ranks(expansion))
