"""Which upstream cases the conformance suite runs, and why the others are left out.

Left out (see ``candidates``): cases that start their own ``python -m snakemake``
through ``shellcmd=`` (they ignore the executor), cases that need the internet
(``@connected``: upstream's ``is_connected()`` answers yes whenever ``CI`` is set,
so they are left out explicitly), apptainer/conda/env-module/S3 cases (not
installable here), cases that pick an executor themselves (``dryrun``, ``touch``),
reports, archives and other commands that execute no job, and cases that take
pytest fixtures. Of what remains, ``scripts/conformance --cases all`` runs all;
CI runs the selections below.
"""

import ast
from pathlib import Path

# Every rule local, in CI (on the oldest and the newest supported Snakemake).
TOPICS: dict[str, tuple[str, ...]] = {
    "shadow": ("test_shadow", "test_shadow_copy", "test_shadow_prefix", "test_shadowed_log"),
    "pipes": (
        "test_pipes_simple",
        "test_pipes_multiple",
        "test_pipes2",
        "test_pipes_fail",
        "test_pipe_depend",
        "test_group_job_resources_with_pipe_with_too_few_cores",
        "test_group_job_resources_with_pipe_with_too_much_constraint",
    ),
    "service jobs": ("test_service_jobs",),
    "groups": (
        "test_group_jobs",
        "test_group_jobs_attempts",
        "test_group_job_fail",
        "test_multicomp_group_jobs",
        "test_groupid_expand_local",
        "test_group_temp",
        "test_issue850",
        "test_issue930",
        "test_job_properties",
    ),
    "checkpoints": (
        "test_checkpoints",
        "test_checkpoints_dir",
        "test_checkpoint_allowed_rules",
        "test_checkpoint_rerun",
        "test_checkpoint_missing_output",
        "test_module_checkpoint",
        "test_uncreatable_checkpoint_input",
    ),
    "temp and protected": (
        "test_temp",
        "test_temp_expand",
        "test_all_temp",
        "test_protected_symlink_output",
    ),
    "retries": ("test_retries", "test_retries_not_overriden", "test_group_jobs_attempts"),
    "benchmark": ("test_nonstr_params", "test_github_issue1261"),
    "scripts and run blocks": (
        "test_script_import_snakemake_obj",
        "test_run_namedlist",
        "test_local_import",
        "test_issue2826_failed_binary_logs",
    ),
    "lazy resources": (
        "test_lazy_resources",
        "test_default_resources",
        "test_default_resources_humanreadable",
        "test_default_resources_mebibytes",
        "test_set_resources",
        "test_string_resources",
        "test_core_dependent_threads",
        "test_threads",
        "test_threads0",
        "test_cores_limited_by_global_supply",
    ),
    "localrules": ("test_localrule", "test_call_inner", "test_default_target"),
    "modules": (
        "test_modules_all",
        "test_modules_name",
        "test_modules_specific",
        "test_modules_dynamic",
        "test_modules_prefix_local",
        "test_modules_ruledeps_inheritance",
        "test_module_worfklow_namespacing",
        "test_use_rule_same_module",
    ),
    "failures and messages": (
        "test_issue1085",
        "test_dup_out_patterns",
        "test_strict_mode",
        "test_pathlib_missing_file",
        "test_validate_fail",
        "test_priority_invalid",
    ),
    "everyday rules": (
        "test_shell",
        "test_bash",
        "test_params",
        "test_config",
        "test_directory",
        "test_directory2",
        "test_ancient_dag",
        "test_touch",
        "test_spaces_in_fnames",
        "test_multiext",
        "test_until",
        "test_omitfrom",
        "test_batch",
        "test_envvars",
        "test_symlink_time_handling",
        "test_delete_output",
        "test_priority",
    ),
}

LOCAL: tuple[str, ...] = tuple(dict.fromkeys(c for group in TOPICS.values() for c in group))

# Every rule on the real single-node SLURM (2 CPUs), in CI: cases whose jobs fit the
# node (threads <= 2; test_temp asks for 32 and pends for ever) and finish in a few
# SLURM jobs each.
SLURM: tuple[str, ...] = (
    "test_shell",
    "test_params",
    "test_touch",
    "test_multiext",
    "test_temp_expand",
    "test_shadowed_log",
    "test_checkpoints",
    "test_retries",
    "test_lazy_resources",
    "test_script_import_snakemake_obj",
    "test_run_namedlist",
    "test_localrule",
    "test_modules_all",
    "test_group_jobs",
    "test_pipes_simple",
    "test_nonstr_params",
    "test_set_resources",
    "test_issue1085",
)
SLURM_ONLY: tuple[str, ...] = ()

# Cases that fail under hybrid for a reason that cannot be removed here, with it.
DIFFERENCES: dict[str, str] = {
    "test_groupid_expand_local": (
        "{groupid} in a group job's output names the group job's id (a uuid), as under "
        "every remote executor; --executor local forms no group jobs and writes 'local'."
    ),
    "test_default_resources_mebibytes": (
        "Snakemake passes --default-resources to the Snakemake it spawns for a group job "
        "as mem_mb=<the MiB number> (Resources.args keeps the raw MiB value under the MB "
        "name): inside the group job mem_mb is 954, not 1000. --executor local runs no "
        "group jobs; every remote executor (slurm too) spawns them."
    ),
}

# Differences of older Snakemake versions only: case -> (first version without it, why).
OLD_DIFFERENCES: dict[str, tuple[str, str]] = {
    "test_default_resources": (
        "9.27.1",  # the newest checked; 9.16.3 has it
        "Snakemake 9.16.3 evaluates a group job's resources under a remote executor "
        "before the group's input exists, and a default resource computed from the input "
        "size (disk_mb) fails: 'Error grouping resources in group'. --executor local forms "
        "no such group; Snakemake 9.27.1 evaluates it later.",
    ),
}


def difference(case: str, snakemake: str) -> str | None:
    """Why ``case`` cannot pass under hybrid with Snakemake ``snakemake``, or None."""
    from packaging.version import Version

    if case in OLD_DIFFERENCES:
        fixed_in, reason = OLD_DIFFERENCES[case]
        if Version(snakemake) < Version(fixed_in):
            return reason
    return DIFFERENCES.get(case)


EXCLUDED_DECORATORS = ("connected", "apptainer", "conda", "needs_", "skip", "windows", "zenodo")
EXCLUDED_KEYWORDS = (
    "shellcmd",
    "default_storage_provider",
    "storage_provider_settings",
    "report",
    "archive",
    "deployment_method",
    "edit_notebook",
    "cache",
    "cleanup_metadata",
    "conda_create_envs",
    "containerize",
    "generate_unit_tests",
    "scheduler_ilp_solver",
)


def candidates(source: str) -> list[str]:
    """Upstream test functions (tests/tests.py source) that say something about an
    executor, by the rules of this module's docstring."""
    found = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
            continue
        calls = [
            n for n in ast.walk(node) if isinstance(n, ast.Call) and ast.unparse(n.func) == "run"
        ]
        keywords = {k.arg: ast.unparse(k.value) for c in calls for k in c.keywords}
        decorators = [ast.unparse(d) for d in node.decorator_list]
        if (
            not calls
            or node.args.args
            or any(k in keywords for k in EXCLUDED_KEYWORDS)
            or keywords.get("executor", "'local'").strip("'\"") != "local"
            or any(
                word in d
                for d in decorators
                for word in EXCLUDED_DECORATORS
                if d != "skip_on_windows" and "ON_MACOS" not in d  # platform-only skips
            )
        ):
            continue
        found.append(node.name)
    return found


def all_candidates() -> tuple[str, ...]:
    from tests.conformance import upstream

    return tuple(candidates((Path(upstream.tests_dir()) / "tests.py").read_text()))
