"""Errors that name the file and the problem, so a batch can record them and go on."""
from __future__ import annotations

from pathlib import Path


class CardioError(Exception):
    """Base class for errors the user should see as a plain message."""


class RecordError(CardioError):
    """One input file is bad. The batch records it in the problems table and goes on."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetError(CardioError):
    """A whole dataset cannot be read (e.g. its folder does not exist)."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ParameterError(CardioError):
    """A run parameter (a recipe value, an option of a job) is invalid: names the field and what is allowed.

    Job specs raise their subclass `jobs.spec.SpecError`, which also names the spec file.
    """

    def __init__(self, field_name: str, problem: str):
        self.field = field_name
        self.problem = problem
        super().__init__(f"{field_name}: {problem}")
