"""Cost and time on paper: `make train` on the GitHub runner against a SageMaker Training job (compute: sagemaker).

Usage: python benchmarks/compute_cost.py [--rows 1000000 10000000 100000000] [--cols 26] [--spot-discount 0.7]

Runner time and memory are extrapolated from this template's measured `make train` (README
"Benchmarks": 100k rows 4.2 s; 1M rows x 26 columns 102 s and 1.6 GB on 2 cores), linearly in
rows x columns (HistGradientBoosting's histograms cost O(rows x features) per iteration). The
SageMaker side picks the smallest ml.m5 instance (4 GiB per vCPU) whose memory holds the peak with
50% headroom, at least ml.m5.xlarge, and assumes the fit speeds up as (vCPUs / 2) ** 0.75 over the
runner's 2 cores, plus a fixed start-up (instance, image, pip install of the pins). Prints a
Markdown table and the row count from which the job finishes sooner than the runner.

Prices (USD, us-east-1, read 2026-12; check before relying on them):
- SageMaker training on-demand per instance-hour, https://aws.amazon.com/sagemaker-ai/pricing/
  (On-Demand Pricing, Training): ml.m5.xlarge 0.23, 2xlarge 0.461, 4xlarge 0.922, 12xlarge 2.765,
  24xlarge 5.53.
- Managed spot: AWS publishes no fixed spot rate, only savings "up to 90%" over on-demand
  (https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html); the table
  assumes --spot-discount (default 70%).
- GitHub-hosted Linux 2-core runner: 0.006 per minute for private repositories (free for public
  ones), https://docs.github.com/en/billing/reference/actions-runner-pricing; 7 GB of memory and a
  6-hour job limit (https://docs.github.com/en/actions/reference/runners/github-hosted-runners).
"""

from __future__ import annotations

import argparse

# Measured (README "Benchmarks", bench_pipeline.py): make train at 100k and 1M rows x 26 columns, 2 cores.
MEASURED = ((100_000, 4.2), (1_000_000, 102.0))
MEASURED_COLS = 26
PEAK_GB_PER_MILLION_ROWS = 1.6  # at 26 columns
RUNNER_USD_PER_MINUTE = 0.006
RUNNER_MEMORY_GB = 7.0
RUNNER_JOB_LIMIT_S = 6 * 3600
# ml.m5 training instances: (name, vCPUs, memory GiB, on-demand USD per hour)
INSTANCES = (("ml.m5.xlarge", 4, 16, 0.23), ("ml.m5.2xlarge", 8, 32, 0.461), ("ml.m5.4xlarge", 16, 64, 0.922),
             ("ml.m5.12xlarge", 48, 192, 2.765), ("ml.m5.24xlarge", 96, 384, 5.53))
STARTUP_WALL_S = 240  # provisioning, image download, pip install of the pins (the first ~120 s are not billed)
STARTUP_BILLED_S = 120
SPEEDUP_EXPONENT = 0.75


def runner_seconds(rows: int, cols: int) -> float:
    """`make train` on the 2-core runner: the measured line through 100k and 1M rows, scaled by rows x columns."""
    (rows_a, secs_a), (rows_b, secs_b) = MEASURED
    per_cell = (secs_b - secs_a) / ((rows_b - rows_a) * MEASURED_COLS)
    return secs_a + per_cell * (rows * cols - rows_a * MEASURED_COLS)


def peak_gb(rows: int, cols: int) -> float:
    """Peak memory of `make train`, linear in rows x columns from the 1M-row measurement."""
    return PEAK_GB_PER_MILLION_ROWS * rows / 1e6 * cols / MEASURED_COLS


def pick_instance(rows: int, cols: int) -> tuple[str, int, int, float]:
    """The smallest ml.m5 instance whose memory holds the peak with 50% headroom."""
    need = 1.5 * peak_gb(rows, cols)
    return next((i for i in INSTANCES if i[2] >= need), INSTANCES[-1])


def job(rows: int, cols: int, spot_discount: float) -> dict:
    """The SageMaker job's expected wall time, billable time and prices."""
    name, vcpus, memory, hourly = pick_instance(rows, cols)
    fit = runner_seconds(rows, cols) / (vcpus / 2) ** SPEEDUP_EXPONENT
    billable = fit + STARTUP_BILLED_S
    on_demand = hourly * billable / 3600
    return {"instance": f"{name} ({vcpus} vCPU, {memory} GiB)", "wall": fit + STARTUP_WALL_S,
            "on_demand": on_demand, "spot": on_demand * (1 - spot_discount)}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def _usd(amount: float) -> str:
    return f"${amount:.3f}" if amount < 0.1 else f"${amount:.2f}"


def runner_cell(rows: int, cols: int) -> str:
    """Runner time and cost, or why the runner cannot do it."""
    seconds, memory = runner_seconds(rows, cols), peak_gb(rows, cols)
    cost = RUNNER_USD_PER_MINUTE * -(-seconds // 60)
    problems = [f"needs {memory:.0f} GB > {RUNNER_MEMORY_GB:.0f} GB"] if memory > RUNNER_MEMORY_GB else []
    problems += ["over the 6 h job limit"] if seconds > RUNNER_JOB_LIMIT_S else []
    cell = f"{_duration(seconds)}, {memory:.1f} GB, {_usd(cost)}"
    return cell + (f" (cannot: {', '.join(problems)})" if problems else "")


def break_even(cols: int) -> tuple[int, int]:
    """(rows from which the runner runs out of memory, rows from which the job finishes sooner), by bisection."""
    memory_rows = int(RUNNER_MEMORY_GB / peak_gb(1_000_000, cols) * 1_000_000)
    low, high = 10_000, 10**10
    while high - low > 1000:
        middle = (low + high) // 2
        if job(middle, cols, 0.0)["wall"] < runner_seconds(middle, cols):
            high = middle
        else:
            low = middle
    return memory_rows, high


def main(argv: list[str] | None = None) -> None:
    """Print the table for each --rows, then the break-even row count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    parser.add_argument("--cols", type=int, default=MEASURED_COLS)
    parser.add_argument("--spot-discount", type=float, default=0.7)
    args = parser.parse_args(argv)
    print("| rows | runner (2 cores): time, peak memory, cost | instance picked | job time (incl. ~4 min start) "
          "| on-demand | spot |")
    print("|---:|---|---|---:|---:|---:|")
    for rows in args.rows:
        estimate = job(rows, args.cols, args.spot_discount)
        print(f"| {rows:,} | {runner_cell(rows, args.cols)} | {estimate['instance']} | {_duration(estimate['wall'])} "
              f"| {_usd(estimate['on_demand'])} | {_usd(estimate['spot'])} |")
    memory_rows, time_rows = break_even(args.cols)
    print(f"\nBreak-even at {args.cols} columns: above about {memory_rows:,} rows the runner's "
          f"{RUNNER_MEMORY_GB:.0f} GB cannot hold the fit (the job is the only way); on time alone the job is "
          f"faster from about {time_rows:,} rows.")


if __name__ == "__main__":
    main()
