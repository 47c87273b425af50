"""What a background job should do: a typed, validated, JSON/TOML-serialisable spec.

A spec is data from users (forms, files, the command line), so every field is checked
and an invalid value raises SpecError naming the field and what is allowed. Weights are
named by id or by a file name inside the workspace's weights/ folder, never by an
arbitrary path, so a spec cannot make a job read files outside the workspace.
"""
from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cardio_core.errors import ParameterError
from cardio_core.vocabulary import MODALITIES, MODALITY_DATASETS

from jobs.kinds import KINDS

DEVICES = ("cpu", "cuda", "auto")
MAX_EPOCHS = 10_000
N_FOLDS = 5
MAX_SEED = 2**32 - 1
MAX_ATTENTION_RECORDS = 1000           # records per attention job (each is one forward pass)
MAX_DEVICES = 64                      # processes per node under DDP (GPUs, or CPU processes with gloo)
DEFAULT_CHECKPOINT_EVERY = 10
FRACTION_KINDS = ("finetune", "finetune_phenotypes")   # the kinds a sweep runs: params.train_fraction

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class SpecError(ParameterError):
    """An invalid job spec: names the field (and the file, when read from one)."""

    def __init__(self, field_name: str, problem: str, path: str | Path | None = None):
        super().__init__(field_name, problem)
        self.path = None if path is None else str(path)
        if self.path:
            self.args = (f"{self.path}: {field_name}: {problem}",)

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        raise SpecError(name, f"must be an integer in {low}..{high}, got {value!r}")
    return value


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SpecError(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _check_name(name: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
        raise SpecError(name, f"must be {what} (letters, digits, '.', '_', '-'; no path), got {value!r}")
    return value


def _check_json_dict(name: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise SpecError(name, f"must be a table of key = value, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise SpecError(name, f"keys must be non-empty strings, got {key!r}")
    try:
        # allow_nan=False: NaN/inf cannot round-trip through the store's JSON.
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SpecError(name, f"must hold only JSON values (numbers, strings, lists, tables): {exc}") from None
    return value


@dataclass
class JobSpec:
    kind: str
    modality: str | None = None
    dataset: str | None = None
    weights: str | None = None          # a weights_id or a file name inside <workspace>/weights/
    recipe: str | None = None           # preset name; `overrides` change single values of it
    overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    checkpoint_every: int | None = None
    device: str = "auto"
    seed: int = 0
    folds: list[int] | None = None      # CMR cross-validation folds to run (None = all five)
    params: dict[str, Any] = field(default_factory=dict)  # free parameters of other kinds
    name: str | None = None             # a label for people; not used by the job
    devices: int = 1                    # DDP processes per node: GPUs (device cuda/auto) or CPU processes (gloo)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> "JobSpec":
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise SpecError("kind", f"must be one of {', '.join(KINDS)}, got {self.kind!r}")
        kind = KINDS[self.kind]
        if self.modality is not None:
            _check_choice("modality", self.modality, MODALITIES)
        elif kind.needs_modality:
            raise SpecError("modality", f"is required for a {self.kind} job (one of {', '.join(MODALITIES)})")
        if self.dataset is not None:
            kind_datasets = tuple(d for ds in (kind.datasets or {}).values() for d in ds)
            if not self.modality and kind.datasets is not None and not kind.needs_modality:
                known = kind_datasets  # a kind of both modalities (pretrain_mmcl: a paired cohort)
            else:
                known = MODALITY_DATASETS[self.modality] if self.modality else tuple(
                    d for ds in MODALITY_DATASETS.values() for d in ds)
            _check_choice("dataset", self.dataset, known)
            allowed = kind.datasets.get(self.modality, ()) if kind.datasets is not None and self.modality else None
            if allowed is not None and self.dataset not in allowed:
                what = f"{self.kind} {self.modality.upper()} jobs"
                raise SpecError("dataset", f"{what} use {', '.join(allowed)}; {self.dataset} is not one of them"
                                if allowed else f"there are no {what}")
        elif kind.trains:
            raise SpecError("dataset", f"is required for a {self.kind} job")
        if self.weights is not None:
            _check_name("weights", self.weights, "a weights id or a file name in the workspace weights/ folder")
        if self.recipe is not None:
            _check_name("recipe", self.recipe, "a recipe preset name")
        _check_json_dict("overrides", self.overrides)
        _check_json_dict("params", self.params)
        if self.params.get("cmr_weights") is not None:  # pretrain_mmcl: the CMR encoder it starts from
            _check_name("params.cmr_weights", self.params["cmr_weights"],
                        "a weights id or a file name in the workspace weights/ folder")
        if self.epochs is None:
            if kind.trains:
                raise SpecError("epochs", f"is required for a {self.kind} job (an integer in 1..{MAX_EPOCHS})")
        else:
            _check_int("epochs", self.epochs, 1, MAX_EPOCHS)
            if self.checkpoint_every is None:
                self.checkpoint_every = min(DEFAULT_CHECKPOINT_EVERY, self.epochs)
        if self.checkpoint_every is not None:
            if self.epochs is None:
                raise SpecError("checkpoint_every", "needs epochs to be set")
            _check_int("checkpoint_every", self.checkpoint_every, 1, self.epochs)
        _check_choice("device", self.device, DEVICES)
        _check_int("seed", self.seed, 0, MAX_SEED)
        _check_int("devices", self.devices, 1, MAX_DEVICES)
        if self.folds is not None:
            if self.modality != "cmr":
                raise SpecError("folds", "only CMR (ACDC) jobs run cross-validation folds")
            if not isinstance(self.folds, (list, tuple)) or not self.folds:
                raise SpecError("folds", f"must be a non-empty list of integers in 0..{N_FOLDS - 1}")
            for f in self.folds:
                _check_int("folds", f, 0, N_FOLDS - 1)
            if len(set(self.folds)) != len(self.folds):
                raise SpecError("folds", f"must not repeat a fold, got {list(self.folds)}")
            self.folds = sorted(self.folds)
        if self.kind == "attention":
            self._check_attention()
        self._check_train_fraction()
        if self.name is not None and (not isinstance(self.name, str) or len(self.name) > 200):
            raise SpecError("name", "must be a string of at most 200 characters")
        return self

    def _check_attention(self) -> None:
        """An attention job: ECG weights, an ECG dataset and the records whose maps to compute."""
        if not self.weights:
            raise SpecError("weights", "is required for an attention job (the ECG weights whose attention to map)")
        if self.dataset not in MODALITY_DATASETS["ecg"]:
            raise SpecError("dataset", f"must be one of {', '.join(MODALITY_DATASETS['ecg'])} for an attention "
                                       f"job, got {self.dataset!r}")
        ids = self.params.get("record_ids")
        if not isinstance(ids, list) or not ids or len(ids) > MAX_ATTENTION_RECORDS or \
                not all(isinstance(r, str) and r for r in ids):
            raise SpecError("params.record_ids", f"must be a list of 1..{MAX_ATTENTION_RECORDS} record ids, "
                                                 f"got {ids!r}")

    def _check_train_fraction(self) -> None:
        """A label-efficiency run (a sweep's member): the share of the training set it trains on, and the seed that
        chose the nested subsets (data.splits.nested_subset)."""
        fraction = self.params.get("train_fraction")
        if fraction is not None:
            if self.kind not in FRACTION_KINDS:
                raise SpecError("params.train_fraction", f"only fine-tune jobs ({', '.join(FRACTION_KINDS)}) train "
                                                         f"on a fraction, not {self.kind}")
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
                raise SpecError("params.train_fraction", f"must be a number in (0, 1], got {fraction!r}")
        if self.params.get("subset_seed") is not None:
            _check_int("params.subset_seed", self.params["subset_seed"], 0, MAX_SEED)

    # -- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, path: str | Path | None = None) -> "JobSpec":
        if not isinstance(data, dict):
            raise SpecError("spec", f"must be a table of fields, got {type(data).__name__}", path)
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise SpecError(unknown[0], f"unknown field (allowed: {', '.join(allowed)})", path)
        if "kind" not in data:
            raise SpecError("kind", "is required", path)
        values = dict(data)
        for key in ("overrides", "params"):
            if values.get(key) is None:
                values.pop(key, None)
        # JSON has no integers distinct from floats for some writers: accept 10.0 as 10.
        for key in ("epochs", "checkpoint_every", "seed", "devices"):
            v = values.get(key)
            if isinstance(v, float) and math.isfinite(v) and v.is_integer():
                values[key] = int(v)
        try:
            return cls(**values)
        except SpecError as exc:
            if path is not None and exc.path is None:
                raise SpecError(exc.field, exc.problem, path) from None
            raise

    @classmethod
    def from_json(cls, text: str) -> "JobSpec":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_file(cls, path: str | Path) -> "JobSpec":
        """Read a .json or .toml spec file."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".toml"):
            raise SpecError("spec", f"must be a .json or .toml file, got {path.suffix or 'no suffix'!r}", path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SpecError("spec", f"cannot read the file: {exc.strerror or exc}", path) from None
        try:
            if suffix == ".json":
                data = json.loads(raw.decode("utf-8"))
            else:
                data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SpecError("spec", f"not valid {suffix[1:].upper()}: {exc}", path) from None
        return cls.from_dict(data, path)


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """'params.seconds=0.5' -> (['params', 'seconds'], 0.5). Values are JSON when they parse, else strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError("--set", f"expected key=value, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.split("."), value


def apply_assignments(data: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply `key=value` / `params.key=value` / `overrides.key=value` to a spec dict."""
    data = json.loads(json.dumps(data))
    for text in assignments:
        keys, value = parse_assignment(text)
        if len(keys) == 1:
            data[keys[0]] = value
        elif len(keys) == 2 and keys[0] in ("params", "overrides"):
            data.setdefault(keys[0], {})
            if data[keys[0]] is None:
                data[keys[0]] = {}
            data[keys[0]][keys[1]] = value
        else:
            raise SpecError("--set", f"{'.'.join(keys)}: only FIELD, params.KEY or overrides.KEY can be set")
    return data
