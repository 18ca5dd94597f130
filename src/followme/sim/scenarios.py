"""Closed-loop scenarios, a registry: ``followme sim follow --scenario NAME``, listed by
``followme sim scenarios``. A scenario is a name, what it tests, and what it changes: the loop's
settings (``adjust``) and the world once it is built (``prepare``). Each stays seeded by the
loop's ``--seed``. Adding one is an entry in ``SCENARIOS``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from followme.sim.world import World


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    adjust: Callable = lambda settings: settings  # LoopSettings -> LoopSettings
    prepare: Callable[[World], None] = lambda world: None


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("park", "the park: paths, trees, buildings, a walking crowd and the hero in red"),
)}
DEFAULT = "park"


def scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise ValueError(f"--scenario {name}: choose one of {', '.join(SCENARIOS)} "
                         "(followme sim scenarios lists them)")
    return SCENARIOS[name]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``followme sim scenarios``: no options."""


def run(a: argparse.Namespace) -> int:
    width = max(len(name) for name in SCENARIOS)
    for s in SCENARIOS.values():
        print(f"{s.name:<{width}}  {s.about}")
    return 0
