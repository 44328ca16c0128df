"""Grid files: TOML tables of Config fields whose lists expand into their cartesian product.

    dataset = "digits"
    aggregator = ["median", "krum", "nnm>cclip"]
    attack = ["none", "alie", "ipm(epsilon=10)"]
    nb_decl_byz = [1, 3]
    seeds = 3                      # seeds 1, 2, 3; or a list: seeds = [1, 5]

    [[exclude]]                    # drop every combination matching all of these
    aggregator = "krum"
    attack = "none"

    [[include]]                    # add the grid with these values replaced
    aggregator = "bulyan"
    nb_decl_byz = 1

A field given as a list expands (a spec with a list parameter, such as
``step(milestones=[100,200])``, is one string). Fields of the old spelling
(``alpha = 0.3`` beside ``heterogeneity = "dirichlet"``) are folded into their
spec with one warning line naming the new spelling. ``[[cases]]`` tables set several fields together (e.g. n and f in
pairs): the grid is the product of its lists with the cases. ``[[exclude]]``
tables drop the combinations whose fields equal the given values (a list:
any of them), compared as written; each ``[[include]]`` table replaces the
named fields of the grid (lists expand again) and adds those combinations
after the exclusions. A file may hold
several named grids as ``[grids.NAME]`` tables, which share the top-level
``[defaults]`` table. Combinations that a rule refuses (krum with
n < 2f + 3) are counted and skipped; every other problem is one error
naming the file and the key, before anything runs.

``overrides`` (``byzsim grid FILE steps=100 'aggregator=["krum","median"]'``)
set a key in every grid of the file, after its tables: an override replaces
the file's value or list of that key, in the top table, the cases and the
includes alike, and a list given as an override sweeps. `parse_overrides`
reads them from ``KEY=VALUE`` words.
"""
from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.grammar import format_value, parse_spec, parse_value
from experiments.tools import UnavailableException, UserException, did_you_mean
from simulator.core.config import DEFAULTS, Config, type_error
from simulator.core.legacy import OLD_FIELDS

__all__ = ["Grid", "load_grids", "parse_overrides"]

_FIELDS = {f.name for f in dataclasses.fields(Config)}
_RESERVED = {"seeds", "include", "exclude", "cases"}
_HINT = ("seeds", "cases", "include", "exclude")  # the reserved keys, in the order an error names them
_ARRAYS = ("cases", "exclude", "include")
_RUNNER_FIELDS = {"output"}  # set by the runner (--output), never by a grid


@dataclass
class Grid:
    """One expanded grid: its runs, and what the expansion skipped."""

    name: str
    path: Path
    configs: list[Config]
    refused: dict[str, int] = field(default_factory=dict)  # the rule's unmet requirement -> combinations
    duplicates: int = 0  # combinations that were the same run as an earlier one
    overrides: dict[str, Any] = field(default_factory=dict)  # keys set over the file's (`parse_overrides`)

    def summary(self) -> str:
        """One line: how many runs, and what was skipped and why."""
        parts = [f"{len(self.configs)} runs"]
        if self.refused:
            reasons = "; ".join(f"{reason} ({count})" for reason, count in sorted(self.refused.items()))
            parts.append(f"{sum(self.refused.values())} combinations skipped because a rule refuses them: {reasons}")
        if self.duplicates:
            parts.append(f"{self.duplicates} combinations were the same run as another")
        over = "".join(f" {k}={format_value(v)}" for k, v in self.overrides.items())
        return f"grid {self.name!r} ({self.path}{over}): " + ", ".join(parts)


def load_grids(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Grid]:
    """Every grid of a TOML file, expanded, by name (a file without ``[grids.*]`` holds one, named after it).

    ``overrides`` ({key: value}, a list sweeps) replace those keys in every grid; a key that is not a grid
    key is the same error as in the file.
    """
    path = Path(path)
    overrides = dict(overrides or {})
    over = _check_table(overrides, f"{path} (overrides)", allow={"seeds"})
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserException(f"Grid file {str(path)!r} does not exist.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserException(f"Grid file {str(path)!r} is not valid TOML: {err}.") from None
    if not data:
        raise UserException(f"Grid file {str(path)!r} sets no field: a grid names at least what it runs "
                            f"(e.g. aggregator = [\"median\", \"krum\"]).")
    if "grids" not in data:
        return {path.stem: _expand(path.stem, path, data, over, overrides)}
    defaults, grids = data.pop("defaults", {}), data.pop("grids")
    if data:
        raise UserException(f"{path}: with [grids.*] tables, only [defaults] may stand beside them, "
                            f"found {', '.join(sorted(data))}.")
    if not isinstance(grids, dict) or not grids or not all(isinstance(g, dict) for g in grids.values()):
        raise UserException(f"{path}: [grids] must hold at least one named table, e.g. [grids.main].")
    return {name: _expand(name, path, {**defaults, **table}, over, overrides) for name, table in grids.items()}


def parse_overrides(words: Sequence[str]) -> dict[str, Any]:
    """{key: value} from ``KEY=VALUE`` words, each value read by `parse_value` as a grid file's would be.

    A value that is not such a value but reads as a spec (``nnm>krum``, ``ipm(epsilon=10)``) is that text,
    and so is a word that ``parse_value`` reads as another type than its field takes (``attack=none``).
    """
    out: dict[str, Any] = {}
    for word in words:
        key, eq, text = word.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserException(f"Expected KEY=VALUE after the grid file, got {word!r} (e.g. steps=100).")
        if key in out:
            raise UserException(f"Key {key!r} is given twice after the grid file.")
        out[key] = _value(key, text.strip(), word)
    return out


def _value(key: str, text: str, word: str) -> Any:
    """One override's value (see `parse_overrides`)."""
    try:
        value = parse_value(text, repr(word))
    except UserException:
        if text.startswith(("[", "{")):  # JSON that does not read: its own error
            raise
        try:
            parse_spec(text, "value", chain=True)
        except UserException:
            raise UserException(f"Cannot read the value of {word!r}: give a number, true/false, a name or spec, "
                                f"or a JSON list such as '[\"krum\", \"median\"]'.") from None
        return text
    if key in _FIELDS and not isinstance(value, (str, list, dict)) and type_error(key, value) \
            and not type_error(key, text):
        return text
    return value


def _expand(name: str, path: Path, table: dict, over: dict[str, list], overrides: dict[str, Any]) -> Grid:
    where = f"{path}" if name == path.stem else f"{path} [grids.{name}]"
    base = {**_check_table(table, where, allow=_RESERVED), **over}
    cases, exclusions, inclusions = ([_check_table(t, f"{where} [[{key}]]", allow={"seeds"})
                                      for t in _tables(table, key, where)] for key in _ARRAYS)
    combos = [c for case in (cases or [{}]) for c in _product({**base, **case, **over})]
    combos = [c for c in combos
              if not any(all(key in c and c[key] in values for key, values in rule.items()) for rule in exclusions)]
    for extra in inclusions:
        combos += [c for case in (cases or [{}]) for c in _product({**base, **case, **extra, **over})]
    if not combos:
        raise UserException(f"{where}: the grid is empty (a list is empty, or [[exclude]] drops every combination).")
    if any(key in OLD_FIELDS for key in combos[0]):
        Config.upgrade(combos[0], where)  # one line naming the new spelling, for the whole grid
    grid = Grid(name, path, [], overrides=overrides)
    seen: set[str] = set()
    for combo in combos:
        config = _naming(combo, where, lambda: Config(**Config.upgrade(combo, where, quiet=True)))
        unmet = config.unmet()
        if unmet is not None:
            reason = f"{config.aggregator} requires {unmet}"
            grid.refused[reason] = grid.refused.get(reason, 0) + 1
            continue
        _naming(combo, where, config.validate)
        if config.run_id() in seen:
            grid.duplicates += 1
            continue
        seen.add(config.run_id())
        grid.configs.append(config)
    if not grid.configs:
        raise UserException(f"{where}: every combination is refused by its rule ({', '.join(grid.refused)}).")
    return grid


def _tables(table: dict, key: str, where: str) -> list[dict]:
    tables = table.get(key, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UserException(f"{where}: {key} must be an array of tables, written [[{key}]].")
    return tables


def _check_table(table: dict, where: str, allow: set[str]) -> dict[str, list]:
    """{field: its candidate values}, every key a Config field and every value of the field's type."""
    out: dict[str, list] = {}
    for key, value in table.items():
        if key in _ARRAYS and "include" in allow:
            continue
        if key in _RUNNER_FIELDS:
            raise UserException(f"{where}: key {key!r} is set by the runner (byzsim grid --output), not in a grid.")
        if key not in _FIELDS and key not in allow and key not in OLD_FIELDS:
            others = "/".join(k for k in _HINT if k in allow)
            raise UserException(f"{where}: unknown key {key!r} (a Config field, or {others})."
                                f"{did_you_mean(key, DEFAULTS, cutoff=0.75)}")
        values = _seeds(value, where) if key == "seeds" else _candidates(key, value)
        if key == "seeds" and "seed" in table:
            raise UserException(f"{where}: give either seeds or seed, not both.")
        for candidate in values:
            problem = None if key in OLD_FIELDS else type_error("seed" if key == "seeds" else key, candidate)
            if problem:
                raise UserException(f"{where}: key {key!r}: {problem}.")
        out["seed" if key == "seeds" else key] = values
    return out


def _candidates(key: str, value: object) -> list:
    """The values a key takes: a list expands, except an old list field's own list (a list of lists expands)."""
    if not isinstance(value, list):
        return [value]
    if key in ("lr_milestones", "server_betas"):
        return value if value and all(isinstance(v, list) for v in value) else [value]
    return value


def _seeds(value: object, where: str) -> list:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise UserException(f"{where}: key 'seeds' must be at least 1 (the number of seeds), got {value}.")
        return list(range(1, value + 1))
    if isinstance(value, list):
        return value
    raise UserException(f"{where}: key 'seeds' must be a number of seeds or a list of seeds, got {value!r}.")


def _product(table: dict[str, list]) -> list[dict]:
    keys = list(table)
    return [dict(zip(keys, values)) for values in itertools.product(*(table[k] for k in keys))]


def _naming(combo: dict, where: str, make: Callable[[], Any]) -> Any:
    """``make()``, its `UserException` prefixed with the file and the combination's fields (an unknown name's
    `UnavailableException` kept as the cause, for a reader that can say which plug-in provides it)."""
    try:
        return make()
    except UserException as err:
        fields = ", ".join(f"{k}={v!r}" for k, v in combo.items() if not isinstance(v, (dict, list)) or v)
        raise UserException(f"{where}: {fields}: {err}") from (err if isinstance(err, UnavailableException) else None)
