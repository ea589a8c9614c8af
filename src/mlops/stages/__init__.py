"""The stages: one module each, one entry ``run(ctx, **options) -> Result``.

A stage module owns its outputs (the files it writes under ``reports/`` or ``models/``) and
imports only the helper modules of :mod:`mlops`, never another stage. Compositions
(``pipeline``, ``retrain``) are declared once in :mod:`mlops.runner`, which runs their stages in
order on one :class:`~mlops.context.Context`; the CLI's sub-commands come from that table.
"""
