"""`mlplab keys`: every config key a YAML config or --set can give, with its default and meaning."""

from __future__ import annotations

import argparse
import json

from mlplab.config import ALIASES, OPTIONS, RENAMED


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "keys",
        help="list every config key (for --config files and --set) with its default and meaning",
        description="Every key a config file or --set KEY=VALUE can set. A config file may group them under "
        "sections (Train:, network:, data:, …) as the assignment's files do; metrics.json records the ones that "
        "apply to the run's model type, optimizer and schedule.",
    )
    parser.set_defaults(func=run)


def key_lines() -> list[str]:
    """`key  default  meaning (rule)`, one line per key, aligned."""
    width = max(map(len, OPTIONS))
    defaults = {key: json.dumps(option.default) for key, option in OPTIONS.items()}
    default_width = max(map(len, defaults.values()))
    lines = [f"{'key':<{width}}  {'default':<{default_width}}  meaning", ""]
    for key, option in OPTIONS.items():
        rule = f" ({option.rule})" if option.rule else ""
        lines.append(f"{key:<{width}}  {defaults[key]:<{default_width}}  {option.help}{rule}")
    aliases = ", ".join(f"{alias} = {key}" for alias, key in ALIASES.items())
    renamed = ", ".join(f"{old} → {r.new}" + (f" ({r.how})" if r.how else "") for old, r in RENAMED.items())
    lines += ["", f"aliases: {aliases}", f"old names, still read: {renamed}"]
    return lines


def run(args: argparse.Namespace) -> int:
    print("\n".join(key_lines()))
    return 0
