"""What a stage is given and what it gives back.

Input: the loaded config and the command line's shared options. Output: a :class:`Context`
carried through the stages of one command (a composition such as ``pipeline`` reads the data
once and hands the model one stage trained to the next), and the :class:`Result` each stage
returns: a message for the terminal, step outputs and a job summary for GitHub Actions, and an
exit code (with the error to report when a stage wrote its outputs and still failed, e.g. a gate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops.config import Config

if TYPE_CHECKING:  # data imports polars and pandas; `--help` and light stages do not pay for them
    from mlops.data import Dataset


@dataclass
class Context:
    """The config and what the stages of one command share."""

    config: Config | None
    config_path: str | None = None  # the --config given (doctor loads it itself)
    data: str | None = None  # a data source instead of data.source (--data, or a composition's step)
    label: str | None = None  # how reports and lineage name that data (a staged manifest: the file it becomes)
    dataset: Dataset | None = None  # read once per command, shared by a composition's stages
    model: str | None = None  # a model folder instead of models/LATEST (e.g. the one `train` just wrote)
    validation: dict | None = None  # the contract check of ``dataset``, done once per command

    @property
    def source(self) -> str:
        """The name of the data the stages read: ``label``, else ``--data`` (or a step's), else ``data.source``."""
        return self.label or self.data or self.config.data.source

    def load(self) -> Dataset:
        """The data, read once and kept for the next stage."""
        if self.dataset is None:
            from mlops.data import load, load_training  # pylint: disable=import-outside-toplevel  # see above

            self.dataset = load(self.data, label="--data") if self.data else load_training(self.config)
            self.validation = None
        return self.dataset

    def validated(self) -> dict:
        """The contract check of the data (run once; ``make validate`` and every stage reading data share it)."""
        dataset = self.load()
        if self.validation is None:
            # pylint: disable-next=import-outside-toplevel  # pandera is slow to import; light stages skip it
            from mlops.contract import load_contract
            from mlops.validation import required_columns, validate  # pylint: disable=import-outside-toplevel  # same

            self.validation = validate(dataset.frame, load_contract(self.config), source=self.source,
                                       required=required_columns(self.config))
        return self.validation

    def checked(self) -> Dataset:
        """The data, refused (ValidationFailed, before the stage writes anything) when it breaks the contract."""
        dataset = self.load()
        if not self.validated()["passed"]:
            from mlops.validation import raise_if_failed  # pylint: disable=import-outside-toplevel  # see validated()

            raise_if_failed(self.validation)
        return dataset


@dataclass
class Result:
    """What a stage reports: printed ``message``, GitHub step ``outputs`` and ``summary``, and the exit code."""

    message: str = ""
    outputs: dict[str, object] = field(default_factory=dict)
    summary: str = ""
    exit_code: int = 0
    error: str | None = None  # an expected failure to report after the outputs were written
