"""Which backend takes a job: pure decisions, validated once at start-up.

Precedence, most specific first:
  1. the job's ``executor`` resource (``--set-resources RULE:executor=...``
     overrides the Snakefile, as for any resource);
  2. the first matching ``--hybrid-routes`` PATTERN=BACKEND item;
  3. ``--hybrid-default-backend``.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from fnmatch import fnmatchcase

from snakemake_interface_common.exceptions import WorkflowError

from .backends import BACKENDS

RESOURCE = "executor"


@dataclass(frozen=True)
class Route:
    pattern: str
    backend: str


@dataclass(frozen=True)
class Choice:
    backend: str
    source: str  # where the choice came from, for messages


def parse_routes(text: str | None) -> list[Route]:
    """Parse comma-separated ``PATTERN=BACKEND`` items."""
    routes = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        pattern, sep, backend = part.partition("=")
        if not sep or not pattern.strip() or not backend.strip():
            raise WorkflowError(
                f"Invalid route {part!r} in --hybrid-routes (profile key "
                "'hybrid-routes'): expected a comma-separated list of "
                "PATTERN=BACKEND, e.g. 'train_*=slurm,plot=local'."
            )
        route = Route(pattern.strip(), backend.strip())
        check_backend_name(route.backend, f"route {part!r} of --hybrid-routes")
        routes.append(route)
    return routes


def choose(
    rule: str,
    resource_value: object,
    resource_source: str,
    routes: Iterable[Route],
    default: str,
) -> Choice:
    """Pick the backend of one job of ``rule``."""
    if resource_value not in (None, ""):
        return Choice(str(resource_value), resource_source)
    for route in routes:
        if fnmatchcase(rule, route.pattern):
            return Choice(
                route.backend, f"route '{route.pattern}={route.backend}' of --hybrid-routes"
            )
    return Choice(default, "--hybrid-default-backend")


def unmatched(routes: Iterable[Route], rule_names: Iterable[str]) -> list[str]:
    """A warning for each route whose pattern matches no rule, naming the closest rules."""
    names = sorted(set(rule_names))
    warnings = []
    for route in routes:
        if any(fnmatchcase(name, route.pattern) for name in names):
            continue
        close = get_close_matches(route.pattern, names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        warnings.append(
            f"hybrid: route '{route.pattern}={route.backend}' of --hybrid-routes matches "
            f"no rule of this workflow.{hint}"
        )
    return warnings


def check_backend_name(name: str, source: str, rule: str | None = None) -> None:
    """Raise a WorkflowError naming rule, value, source and the valid choices."""
    subject = f"Rule '{rule}': " if rule else ""
    if name not in BACKENDS:
        raise WorkflowError(
            f"{subject}unknown backend {name!r} (from {source}). "
            f"Valid backends: {', '.join(sorted(BACKENDS))}."
        )


def check_available(choice: Choice, rule: str) -> None:
    """Raise if the chosen backend is unknown or cannot run on this machine."""
    check_backend_name(choice.backend, choice.source, rule)
    missing = BACKENDS[choice.backend].missing()
    if missing:
        raise WorkflowError(
            f"Rule '{rule}' is routed to backend {choice.backend!r} (from "
            f"{choice.source}), but that backend cannot run here: {missing}. "
            "Route the rule elsewhere or install what is missing."
        )
