"""The `cardio` command line: one package, a module per group of subcommands.

main.py builds the parser and runs a command; data.py (setup, status, demo-data, ingest,
problems), pipeline.py (demo, embed, project, evaluate, weights, report) and jobs.py
(`cardio jobs ...`) each register their subcommands; common.py holds what they share.
"""
from cardio_cli.main import main

__all__ = ["main"]
