"""Which backend takes a job: pure decisions, validated once at start-up.

Precedence, most specific first:
  1. the job's ``executor`` resource (``--set-resources RULE:executor=...``
     overrides the Snakefile, as for any resource);
  2. the first matching ``--hybrid-routes`` PATTERN=BACKEND item;
  3. ``--hybrid-default-backend``.

Each of them names one backend or a failover chain, ``slurm/local``: the job goes
to the first; an infrastructure failure there (see ``failover.py``) moves it on
to the next.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from fnmatch import fnmatchcase

from snakemake_interface_common.exceptions import WorkflowError

from .backends import BACKENDS

RESOURCE = "executor"
CHAIN_SEPARATOR = "/"  # not ',', which --hybrid-routes uses between routes


@dataclass(frozen=True)
class Route:
    pattern: str
    backend: str  # one backend or a chain, e.g. "slurm/local"


@dataclass(frozen=True)
class Choice:
    backend: str  # where the job goes first
    source: str  # where the choice came from, for messages
    chain: tuple[str, ...] = ()  # every backend in failover order, ``backend`` first

    def __post_init__(self) -> None:
        if not self.chain:
            object.__setattr__(self, "chain", (self.backend,))

    def after(self, backend: str) -> str | None:
        """The backend that takes over from ``backend``, or None at the chain's end."""
        index = self.chain.index(backend) + 1
        return self.chain[index] if index < len(self.chain) else None

    @property
    def text(self) -> str:
        return CHAIN_SEPARATOR.join(self.chain)


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
        parse_chain(route.backend, f"route {part!r} of --hybrid-routes")
        routes.append(route)
    return routes


def choose(
    rule: str,
    resource_value: object,
    resource_source: str,
    routes: Iterable[Route],
    default: str,
) -> Choice:
    """Pick the backend (or failover chain) of one job of ``rule``."""
    if resource_value not in (None, ""):
        return _choice(str(resource_value), resource_source, rule)
    for route in routes:
        if fnmatchcase(rule, route.pattern):
            source = f"route '{route.pattern}={route.backend}' of --hybrid-routes"
            return _choice(route.backend, source, rule)
    return _choice(default, "--hybrid-default-backend", rule)


def _choice(value: str, source: str, rule: str) -> Choice:
    chain = parse_chain(value, source, rule)
    return Choice(chain[0], source, chain)


def parse_chain(value: str, source: str, rule: str | None = None) -> tuple[str, ...]:
    """``"slurm/local"`` -> ``("slurm", "local")``; every name must be a known backend,
    named once."""
    subject = f"Rule '{rule}': " if rule else ""
    names = tuple(name.strip() for name in value.split(CHAIN_SEPARATOR))
    if not all(names):
        raise WorkflowError(
            f"{subject}empty backend name in {value!r} (from {source}): name one backend, "
            f"or a failover chain separated by '{CHAIN_SEPARATOR}', e.g. 'slurm/local'."
        )
    if len(set(names)) != len(names):
        raise WorkflowError(
            f"{subject}failover chain {value!r} (from {source}) names a backend twice; "
            "a job fails over to each backend at most once."
        )
    for name in names:
        check_backend_name(name, source, rule, value)
    return names


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


def check_backend_name(
    name: str, source: str, rule: str | None = None, chain: str | None = None
) -> None:
    """Raise a WorkflowError naming rule, value, source and the valid choices."""
    subject = f"Rule '{rule}': " if rule else ""
    if name not in BACKENDS:
        within = f" in failover chain {chain!r}" if chain and chain != name else ""
        raise WorkflowError(
            f"{subject}unknown backend {name!r}{within} (from {source}). "
            f"Valid backends: {', '.join(sorted(BACKENDS))}."
        )


def check_available(choice: Choice, rule: str) -> None:
    """Raise if a backend of the choice is unknown or cannot run on this machine."""
    for name in choice.chain:
        check_backend_name(name, choice.source, rule, choice.text)
        missing = BACKENDS[name].missing()
        if missing:
            drop = f" (or drop {name!r} from its chain)" if len(choice.chain) > 1 else ""
            raise WorkflowError(
                f"Rule '{rule}' is routed to backend {choice.text!r} (from {choice.source}), "
                f"but backend {name!r} cannot run here: {missing}. Route the rule "
                f"elsewhere{drop} or install what is missing."
            )
