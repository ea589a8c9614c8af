"""Expected failures.

Every failure a user can cause (bad config, bad data, a failed gate, a failed deploy) raises a
subclass of :class:`MlopsError`. The CLI prints ``Error: <message>`` and exits non-zero without a
traceback. A message says what failed, where, and how to fix it.
"""


class MlopsError(Exception):
    """Base class for expected failures; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class ConfigError(MlopsError):
    """The config file is missing, malformed, or has an unknown key or bad value."""


class DataError(MlopsError):
    """A data file is missing, unreadable, empty, or does not fit the config."""


class ValidationFailed(MlopsError):
    """The data broke the data contract (schema.yaml)."""


class ModelError(MlopsError):
    """A model artifact is missing, untrusted, or cannot be built or fitted."""


class GateFailed(MlopsError):
    """The challenger failed a quality gate; the PR must not merge."""


class DeployError(MlopsError):
    """A deploy, smoke test, or rollback failed."""


class CredentialsError(DeployError):
    """No usable cloud credentials for a target that needs them."""


class JobError(MlopsError):
    """A SageMaker job could not start, failed, or was stopped (compute: sagemaker)."""
