"""Settings for the command line: flags over environment over config file over defaults.

Environment:
    SPECSTORE_REDIS_URL   the api store's Redis (and of cells without their own)
    SPECSTORE_PREFIX      key prefix (default "specstore")
    SPECSTORE_CELL_URLS   cells on their own Redis: "cell1=redis://h1:6379/0,cell2=..."
    SPECSTORE_CONFIG      path of a TOML config file (shape: :mod:`specstore.topology`)
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from specstore.core.keys import validate_cell_name
from specstore.errors import ConfigurationError, InvalidInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_URL = "memory://"

TOP_LEVEL_KEYS = frozenset({"redis_url", "prefix", "only_listed_cells", "cells"})
CELL_KEYS = frozenset({"redis_url", "prefix"})


def parse_cell_urls(text: str) -> dict[str, str]:
    """``"cell1=redis://a,cell2=redis://b"`` -> {"cell1": "redis://a", "cell2": "redis://b"}."""
    cells: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not url:
            raise InvalidInputError(f"cell URLs look like cell1=redis://host:6379/0, not {item!r}")
        cells[validate_cell_name(name.strip())] = url.strip()
    return cells


def load_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise InvalidInputError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("specstore", data)
    if not isinstance(section, dict):
        raise InvalidInputError(f"config file {path}: [specstore] must be a table")
    _check_keys(path, section, TOP_LEVEL_KEYS, "")
    cells = section.get("cells", {})
    if isinstance(cells, dict):
        for name, table in cells.items():
            if isinstance(table, dict):
                _check_keys(path, table, CELL_KEYS, f"cells.{name}.")
    return section


def _check_keys(path: Path, table: dict[str, Any], known: frozenset[str], where: str) -> None:
    """An unknown key is an error naming it (a typo must not fall back to a default)."""
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"config file {path}: unknown key {where}{key!r} "
                f"(known: {', '.join(sorted(known))}){hint}"
            )


def resolve(
    *,
    redis_url: str | None = None,
    prefix: str | None = None,
    cell_urls: str | None = None,
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    default_url: str | None = DEFAULT_URL,
) -> dict[str, Any]:
    """The topology configuration mapping (see :meth:`Topology.from_config`).

    With ``default_url=None`` and no Redis URL given anywhere, the mapping has no
    ``redis_url`` (the caller decides whether that is an error).
    """
    env = os.environ if environ is None else environ
    path = config_path or (Path(env["SPECSTORE_CONFIG"]) if env.get("SPECSTORE_CONFIG") else None)
    config: dict[str, Any] = load_file(path) if path else {}
    url = redis_url or env.get("SPECSTORE_REDIS_URL") or config.get("redis_url") or default_url
    if url is not None:
        config["redis_url"] = url
    else:
        config.pop("redis_url", None)
    config["prefix"] = prefix or env.get("SPECSTORE_PREFIX") or config.get("prefix", "specstore")
    cells_text = cell_urls if cell_urls is not None else env.get("SPECSTORE_CELL_URLS")
    if cells_text:
        cells = dict(config.get("cells", {}))
        for name, cell_url in parse_cell_urls(cells_text).items():
            cells[name] = {**cells.get(name, {}), "redis_url": cell_url}
        config["cells"] = cells
    return config
