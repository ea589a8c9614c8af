"""MLOps template: validate -> train -> evaluate -> compare -> report -> deploy -> drift.

Each stage is one module and one CLI sub-command (``python -m mlops <stage>``); the Makefile
target, the composite action under ``actions/`` and the module share the stage's name.
"""

__version__ = "0.1.0"
