"""On-demand performance runs: this library against strands' file and S3 session managers.

``uv run python -m benchmarks`` (see ``benchmarks/run.py`` and ``docs/architecture/performance.md``).
"""
