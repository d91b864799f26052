import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_hybrid import routing
from snakemake_executor_hybrid.backends import BACKENDS, BackendSpec
from snakemake_executor_hybrid.routing import Choice, Route


def test_parse_routes_accepts_items_and_comma_lists():
    routes = routing.parse_routes("train_*=slurm, plot=local,,eval=slurm")
    assert routes == [
        Route("train_*", "slurm"),
        Route("plot", "local"),
        Route("eval", "slurm"),
    ]


def test_parse_routes_none_is_empty():
    assert routing.parse_routes(None) == []
    assert routing.parse_routes("") == []


@pytest.mark.parametrize("bad", ["train", "=slurm", "train=", "train=slrum"])
def test_parse_routes_rejects_bad_items_naming_the_flag(bad):
    with pytest.raises(WorkflowError) as err:
        routing.parse_routes(bad)
    assert "--hybrid-routes" in str(err.value)


def test_unknown_backend_in_route_lists_valid_choices():
    with pytest.raises(WorkflowError) as err:
        routing.parse_routes("train=slrum")
    message = str(err.value)
    assert "'slrum'" in message and "aws-batch, local, slurm" in message


def test_resource_wins_over_routes_and_default():
    choice = routing.choose("train", "local", "the resource", [Route("train", "slurm")], "slurm")
    assert choice == Choice("local", "the resource")


def test_first_matching_route_wins():
    routes = [Route("train_big", "local"), Route("train_*", "slurm")]
    assert routing.choose("train_big", None, "", routes, "local").backend == "local"
    assert routing.choose("train_small", None, "", routes, "local").backend == "slurm"
    assert "train_*=slurm" in routing.choose("train_small", None, "", routes, "local").source


def test_default_when_nothing_matches():
    choice = routing.choose("plot", "", "", [Route("train*", "slurm")], "local")
    assert choice == Choice("local", "--hybrid-default-backend")


def test_check_available_names_rule_value_source_and_choices():
    with pytest.raises(WorkflowError) as err:
        routing.check_available(Choice("kubernetes", "resource 'executor' of rule 'x'"), "x")
    message = str(err.value)
    source = "resource 'executor' of rule 'x'"
    for part in ("Rule 'x'", "'kubernetes'", source, "aws-batch, local, slurm"):
        assert part in message


def test_check_available_reports_missing_plugin(monkeypatch):
    spec = BackendSpec(
        "ghost", "nowhere", requires_module="no_such_module_xyz", install_hint="pip install it"
    )
    monkeypatch.setitem(BACKENDS, "ghost", spec)
    with pytest.raises(WorkflowError) as err:
        routing.check_available(Choice("ghost", "--hybrid-default-backend"), "train")
    message = str(err.value)
    assert (
        "no_such_module_xyz" in message
        and "Rule 'train'" in message
        and "pip install it" in message
    )


def test_check_available_reports_missing_command(monkeypatch):
    spec = BackendSpec("ghost2", "nowhere", requires_command="no-such-command-xyz")
    monkeypatch.setitem(BACKENDS, "ghost2", spec)
    with pytest.raises(WorkflowError, match="no-such-command-xyz"):
        routing.check_available(Choice("ghost2", "x"), "train")


def test_every_registered_backend_is_a_module_with_a_create_function():
    import importlib.util
    import inspect

    for name, spec in BACKENDS.items():
        assert importlib.util.find_spec(spec.module) is not None, name
        if spec.missing() is None:  # its Snakemake plugin is installed: import it
            module = importlib.import_module(spec.module)
            assert list(inspect.signature(module.create).parameters) == ["host"], name
        if spec.capabilities.wraps_containers:  # it runs images itself
            assert not spec.capabilities.container_runtimes, name


# -- failover chains ----------------------------------------------------------------


def test_a_chain_goes_to_its_first_backend_and_names_the_next():
    choice = routing.choose("big", "slurm/local", "resource 'executor' of rule 'big'", [], "local")
    assert choice.backend == "slurm" and choice.chain == ("slurm", "local")
    assert choice.after("slurm") == "local" and choice.after("local") is None
    assert choice.text == "slurm/local"


def test_routes_and_the_default_take_chains():
    routes = routing.parse_routes("big=slurm/local, small=local")
    assert routing.choose("big", None, "", routes, "local").chain == ("slurm", "local")
    assert routing.choose("other", None, "", routes, "slurm / local").chain == ("slurm", "local")


def test_a_single_backend_is_a_chain_of_one():
    assert routing.choose("x", "local", "", [], "local").chain == ("local",)
    assert Choice("local", "s") == Choice("local", "s", ("local",))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("slurm/slrum", "unknown backend 'slrum' in failover chain 'slurm/slrum'"),
        ("slurm//local", "empty backend name in 'slurm//local'"),
        ("local/local", "names a backend twice"),
    ],
)
def test_bad_chains_are_refused_naming_rule_value_and_source(value, message):
    with pytest.raises(WorkflowError) as err:
        routing.choose("big", value, "--set-resources big:executor=...", [], "local")
    text = str(err.value)
    assert message in text and "Rule 'big'" in text and "--set-resources" in text


def test_a_bad_chain_in_a_route_names_the_flag():
    with pytest.raises(WorkflowError, match="route 'big=slurm/nope' of --hybrid-routes"):
        routing.parse_routes("big=slurm/nope")


def test_every_backend_of_a_chain_must_be_able_to_run_here(monkeypatch):
    monkeypatch.setitem(BACKENDS, "ghost", BackendSpec("ghost", "x", requires_command="no-xyz"))
    choice = routing.choose("big", "local/ghost", "the resource", [], "local")
    with pytest.raises(WorkflowError) as err:
        routing.check_available(choice, "big")
    text = str(err.value)
    assert "routed to backend 'local/ghost'" in text and "backend 'ghost' cannot run here" in text
    assert "drop 'ghost' from its chain" in text
