"""A parameter grid: config keys mapped to lists of values, read from TOML.

Keys are dotted config paths, written either dotted or as tables::

    "strategies.ema_cross.fast_period" = [5, 10]
    [risk]
    per_trade_risk_pct = [0.25, 0.5]

Every key must name a setting of the engine config, every value list must
be non-empty and without repeats, and every combination must be a valid
config: all of it is checked before anything runs, and errors name the key
(or the combination).
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aitrapp.config import EngineConfig
from aitrapp.exceptions import ConfigError

Scalar = bool | int | float | str


@dataclass(frozen=True, slots=True)
class Combination:
    index: int  # position in the grid's product order (stable)
    params: tuple[tuple[str, Scalar], ...]
    config: EngineConfig

    def label(self) -> str:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.params)


@dataclass(frozen=True, slots=True)
class Grid:
    keys: tuple[str, ...]
    values: tuple[tuple[Scalar, ...], ...]

    @property
    def size(self) -> int:
        n = 1
        for v in self.values:
            n *= len(v)
        return n

    def combinations(self, base: EngineConfig) -> list[Combination]:
        """Every combination applied to ``base``; an invalid one is an error naming it."""
        out = []
        for i, chosen in enumerate(itertools.product(*self.values)):
            params = tuple(zip(self.keys, chosen, strict=True))
            data = base.model_dump()
            for key, value in params:
                _set(data, key, value)
            try:
                config = EngineConfig.parse(data)
            except ConfigError as exc:
                shown = ", ".join(f"{k}={v}" for k, v in params)
                raise ConfigError(f"grid combination {shown}: {exc}") from None
            out.append(Combination(i, params, config))
        return out


def load_grid(path: Path, base: EngineConfig | None = None) -> Grid:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"grid file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"grid file {path}: {exc}") from None
    return parse_grid(raw, base or EngineConfig(), where=str(path))


def parse_grid(raw: Mapping[str, Any], base: EngineConfig, *, where: str = "grid") -> Grid:
    known = base.model_dump()
    keys: list[str] = []
    values: list[tuple[Scalar, ...]] = []
    for key, value in _leaves(raw):
        _check_key(known, key, where)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{where}: key {key}: expected a non-empty list of values")
        for v in value:
            if not isinstance(v, bool | int | float | str):
                raise ConfigError(f"{where}: key {key}: {v!r} is not a number, bool or string")
        if len(set(map(repr, value))) != len(value):
            raise ConfigError(f"{where}: key {key}: a value appears twice in {value}")
        keys.append(key)
        values.append(tuple(value))
    if not keys:
        raise ConfigError(f'{where}: no keys; e.g. "strategies.orb.window_minutes" = [15, 30]')
    return Grid(tuple(keys), tuple(values))


def _leaves(raw: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in raw.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            yield from _leaves(v, key + ".")
        else:
            yield key, v


def _check_key(known: Mapping[str, Any], key: str, where: str) -> None:
    node: Any = known
    path: list[str] = []
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            here = ".".join(path) or "the config"
            options = ", ".join(sorted(node)) if isinstance(node, Mapping) else "no keys"
            raise ConfigError(
                f"{where}: key {key}: {part!r} is not a setting of {here} (it has {options})"
            )
        node = node[part]
        path.append(part)
    if isinstance(node, Mapping):
        raise ConfigError(f"{where}: key {key}: is a section, not a setting")


def _set(data: dict[str, Any], key: str, value: Scalar) -> None:
    *parents, last = key.split(".")
    node = data
    for p in parents:
        node = node[p]
    node[last] = value


__all__ = ["Combination", "Grid", "load_grid", "parse_grid"]
