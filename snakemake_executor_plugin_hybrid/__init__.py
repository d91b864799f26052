"""Discovery shim: Snakemake finds executor plugins by this package-name prefix."""

from snakemake_executor_hybrid.executor import Executor  # noqa: F401
from snakemake_executor_hybrid.settings import ExecutorSettings, common_settings  # noqa: F401
