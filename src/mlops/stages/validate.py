"""Validate the data against the data contract (``make validate``).

Input: the data (``data.source``, or ``--data``) and ``schema.yaml``. Output:
``reports/validation.json`` (passed, rows, every failure with counts and examples), a readable
table, and the step output ``passed``. Exits non-zero when the data breaks the contract.
"""

from __future__ import annotations

from mlops import jobs, remote
from mlops.context import Context, Result
from mlops.io import atomic_write_json
from mlops.validation import failure_message, format_table


def run(ctx: Context) -> Result:
    """Check the data; write validation.json; fail listing every broken rule."""
    config = ctx.config
    # compute: sagemaker: a Processing job checks the files, sharded across its instances
    result = remote.validate_job(config, ctx.data, ctx.source) if jobs.wanted(config) else ctx.validated()
    atomic_write_json(config.reports_dir / "validation.json", result)
    if not result["passed"]:
        return Result(outputs={"passed": False}, exit_code=1, error=failure_message(result))
    message = (f"Validation passed: {result['rows']} rows x {result['columns']} columns of {ctx.source} "
               f"meet {config.data.schema_file} ({result['seconds']:.2f}s)")
    if result["failures"]:
        message += "\n" + format_table(result["failures"])
    return Result(message=message, outputs={"passed": True})
