"""Loading encoder weights: the released MMCL files and CardioScope's own checkpoints.

Loading is an explicit step that returns a LoadReport (what was loaded, what is missing,
what the file had that the model does not). Checkpoints are untrusted files, so they are
always read with torch.load(weights_only=True).

Layouts understood (method.md §3):
  released_ecg  {"model": state_dict}; 42 tensors, no attention_pool / fc_norm / head.
  released_cmr  {"state_dict": {"encoder_imaging.<resnet key>": tensor, ...}}; no head.
  cardioscope   {"format": "cardioscope", "modality", "model_name", "model_kwargs", "state_dict", "meta"}.

A file may lack only the modules that start fresh in fine-tuning (the pooling head and
classifier); any other missing key is an error. There is deliberately no "up to N% missing"
tolerance: such a rule refused the released ECG file once attention pooling was added
(method.md §7.7).
"""
from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from cardio_core.errors import CardioError
from cardio_core.models.ecg_vit import PRETRAINING_POOL
from cardio_core.models.registry import DEFAULT_MODEL, create_model, modality_of, model_class

LAYOUTS = ("released_ecg", "released_cmr", "cardioscope")
RELEASED_CMR_PREFIX = "encoder_imaging."
CHECKPOINT_FORMAT = "cardioscope"
# Modules that are not in the released files and start fresh when fine-tuning.
FRESH_PREFIXES = {"ecg": ("attention_pool.", "fc_norm.", "head."), "cmr": ("head.", "fc.")}
# Keys that identify encoder layers; a file holding such layers that the model lacks
# (e.g. 4 blocks into a 3-block model) is refused rather than silently truncated.
BODY_PREFIXES = {"ecg": ("blocks.", "patch_embed."), "cmr": ("conv1.", "bn1.", "layer")}
_MAX_LISTED = 8


class WeightsError(CardioError):
    """A weights file cannot be used for the requested model. Names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class LoadReport:
    """What load_weights did. `to_dict()` is JSON-serialisable for the store."""
    path: str
    source_layout: str               # released_ecg | released_cmr | cardioscope
    modality: str                    # ecg | cmr
    loaded_keys: int = 0
    missing_keys: list[str] = field(default_factory=list)      # in the model, not in the file (start fresh)
    unexpected_keys: list[str] = field(default_factory=list)   # in the file, unused by the model (e.g. `norm`)
    shape_mismatches: list[str] = field(default_factory=list)  # empty after a successful load: a mismatch raises
    resized_keys: list[str] = field(default_factory=list)      # e.g. pos_embed interpolated to another length
    skipped_keys: list[str] = field(default_factory=list)      # in the file, left out on purpose (load_head=False)

    def to_dict(self) -> dict:
        return asdict(self)


def _listed(keys) -> str:
    keys = list(keys)
    more = f" (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def _read(path: Path) -> dict:
    if not path.is_file():
        raise WeightsError(path, "file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(path, f"refused: not a plain tensor checkpoint, or corrupt ({first})") from None
    except Exception as exc:  # zip errors, EOF, RuntimeError from truncated archives, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise WeightsError(path, f"not a readable PyTorch checkpoint (corrupt or not a .pth file): "
                                 f"{type(exc).__name__} {first}".strip()) from None
    if not isinstance(obj, dict):
        raise WeightsError(path, f"holds a {type(obj).__name__}, not a dict of weights")
    return obj


def _tensor_dict(path: Path, sd, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(sd, dict) or not sd:
        raise WeightsError(path, f"{where} is not a non-empty dict of tensors")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(path, f"{where} has entries that are not tensors: {_listed(map(str, bad))}")
    return dict(sd)


def _modality_from_keys(keys) -> str | None:
    keys = set(keys)
    if "patch_embed.proj.weight" in keys or "pos_embed" in keys:
        return "ecg"
    if "conv1.weight" in keys or any(k.startswith("layer1.") for k in keys):
        return "cmr"
    return None


@dataclass
class WeightsFile:
    """A weights file read once: its layout, modality, encoder tensors, the model it belongs to and its metadata.

    `WeightsFile.read(path)` parses and checks the file (raising WeightsError); `build()` makes
    the model and loads the tensors into it without reading the file again.
    """
    path: Path
    layout: str
    modality: str
    state_dict: dict[str, torch.Tensor]
    model_name: str
    model_kwargs: dict
    meta: dict
    ignored: list[str]   # keys of the file that are not encoder weights (other sub-models)

    @property
    def head_trained(self) -> bool:
        """Whether the file's classifier was trained for the Chapman / ACDC task (our fine-tuned checkpoints)."""
        return bool(self.meta.get("head_trained", False))

    @property
    def has_trained_pool(self) -> bool:
        """Whether the file holds an attention pool (only fine-tuned ECG checkpoints do)."""
        return any(k.startswith("attention_pool.") for k in self.state_dict)

    @property
    def embedding_pool(self) -> str:
        """The pooling its embeddings are read with (method.md §5): a trained attention pool when the file has one,
        else the encoder's pre-training pooling (mean over patch tokens, then the final norm). CMR: global average."""
        if self.modality == "cmr":
            return "avg"
        recorded = self.model_kwargs.get("global_pool", "attention")
        if recorded == "attention" and not self.has_trained_pool:
            return PRETRAINING_POOL
        return recorded

    @classmethod
    def read(cls, path: str | Path) -> "WeightsFile":
        """Read and classify a weights file without building a model. Raises WeightsError."""
        return read_checkpoint(path)

    def build(self, *, load_head: bool = True, **overrides) -> "LoadedEncoder":
        """The model this file belongs to, with the file's tensors loaded (kwargs overridable).

        CardioScope checkpoints rebuild their recorded model; released files build the default
        model of their modality (ecg_vit_small / cmr_resnet50) with `overrides`. An ECG file without a
        trained attention pool (released files, MDM checkpoints) is built with its pre-training pooling
        (`embedding_pool`), so nothing random enters its embeddings; a released file is built at its own
        signal length (read from its position embedding) unless `signal_length` is overridden.
        """
        kwargs = dict(self.model_kwargs)
        if self.modality == "ecg":
            kwargs["global_pool"] = self.embedding_pool
            if self.layout == "released_ecg":
                kwargs.setdefault("signal_length", released_signal_length(self.state_dict))
        model = create_model(self.model_name, **{**kwargs, **overrides})
        report = load_weights(model, self, modality=self.modality, load_head=load_head)
        return LoadedEncoder(model=model, report=report, source=self, head_trained=self.head_trained and load_head)


@dataclass
class LoadedEncoder:
    """A model with the report of how its weights were loaded and the file they came from (None: random init)."""
    model: nn.Module
    report: LoadReport | None
    source: WeightsFile | None
    head_trained: bool = False

    @property
    def meta(self) -> dict:
        return dict(self.source.meta) if self.source is not None else {}


def released_signal_length(state_dict: dict, n_leads: int = 12, patch_size: int = 100) -> int:
    """The input length a released ECG file was trained at, from its position embedding (2,500 for MMCL)."""
    pos = state_dict.get("pos_embed")
    if pos is None or pos.ndim != 3 or (pos.shape[1] - 1) % n_leads:
        return 2500
    return (pos.shape[1] - 1) // n_leads * patch_size


def read_checkpoint(path: str | Path) -> WeightsFile:
    """Read and classify a weights file without building a model. Raises WeightsError."""
    path = Path(path)
    obj = _read(path)
    ignored: list[str] = []
    if obj.get("format") == CHECKPOINT_FORMAT:
        missing = [k for k in ("modality", "model_name", "model_kwargs", "state_dict") if k not in obj]
        if missing:
            raise WeightsError(path, f"CardioScope checkpoint lacks {', '.join(missing)}")
        sd = _tensor_dict(path, obj["state_dict"], "state_dict")
        layout, modality = "cardioscope", obj["modality"]
        model_name, model_kwargs, meta = obj["model_name"], dict(obj["model_kwargs"]), dict(obj.get("meta") or {})
        if modality not in ("ecg", "cmr"):
            raise WeightsError(path, f"unknown modality {modality!r} in CardioScope checkpoint")
        try:
            model_class(model_name)
        except ValueError as exc:
            raise WeightsError(path, str(exc)) from None
    elif "model" in obj:
        sd = _tensor_dict(path, obj["model"], "'model'")
        layout, model_name, model_kwargs, meta = "released_ecg", "", {}, {}
        modality = _modality_from_keys(sd)
    elif "state_dict" in obj:
        raw = _tensor_dict(path, obj["state_dict"], "'state_dict'")
        sd = {k[len(RELEASED_CMR_PREFIX):]: v for k, v in raw.items() if k.startswith(RELEASED_CMR_PREFIX)}
        ignored = sorted(k for k in raw if not k.startswith(RELEASED_CMR_PREFIX))
        if not sd:
            raise WeightsError(path, f"'state_dict' has no '{RELEASED_CMR_PREFIX}' keys (released CMR layout expected)")
        layout, model_name, model_kwargs, meta = "released_cmr", "", {}, {}
        modality = _modality_from_keys(sd)
    else:
        raise WeightsError(path, "not a known checkpoint layout: expected {'model': ...} (released ECG), "
                                 "{'state_dict': ...} (released CMR) or a CardioScope checkpoint; "
                                 f"top-level keys are {_listed(sorted(map(str, obj)))}")
    found = _modality_from_keys(sd)
    if found is None:
        raise WeightsError(path, "holds no recognisable ECG-ViT or ResNet-50 encoder weights")
    if found != modality:
        raise WeightsError(path, f"declares modality {modality!r} but holds {found.upper()} encoder weights")
    return WeightsFile(path, layout, modality, sd, model_name or DEFAULT_MODEL[modality], model_kwargs, meta, ignored)


def _resize_pos_embed(path: Path, model: nn.Module, sd: dict, report: LoadReport) -> None:
    """Interpolate a released position embedding along time when the model's signal length differs."""
    old, new = sd.get("pos_embed"), model.state_dict().get("pos_embed")
    if old is None or new is None or old.shape == new.shape:
        return
    n_leads = model.n_leads
    if old.ndim != 3 or old.shape[2] != new.shape[2] or (old.shape[1] - 1) % n_leads:
        return   # reported as a shape mismatch below
    old_t, new_t = (old.shape[1] - 1) // n_leads, model.n_time_patches
    sd["pos_embed"] = resample_abs_pos_embed(old, new_size=[n_leads, new_t], old_size=[n_leads, old_t],
                                             num_prefix_tokens=1)
    report.resized_keys.append(f"pos_embed: {tuple(old.shape)} -> {tuple(new.shape)} "
                               f"(time patches {old_t} -> {new_t})")


def load_weights(model: nn.Module, path: "str | Path | WeightsFile", *, modality: str,
                 load_head: bool = True) -> LoadReport:
    """Load a weights file into `model` in place and report what happened.

    `modality` is what the caller expects ("ecg" | "cmr"); a file or model of the other
    modality is refused. With load_head=False a checkpoint's classifier is left out (for
    fine-tuning a fine-tuned encoder on a new task).
    """
    if modality not in ("ecg", "cmr"):
        raise ValueError(f"modality must be 'ecg' or 'cmr', got {modality!r}")
    model_modality = modality_of(model)
    if model_modality != modality:
        raise ValueError(f"modality={modality!r} but the model is a {model_modality.upper()} encoder")
    parsed = path if isinstance(path, WeightsFile) else read_checkpoint(path)
    path = parsed.path
    if parsed.modality != modality:
        raise WeightsError(path, f"holds {parsed.modality.upper()} encoder weights ({parsed.layout}); "
                                 f"cannot load them into a {modality.upper()} model")
    report = LoadReport(path=str(path), source_layout=parsed.layout, modality=modality,
                        skipped_keys=list(parsed.ignored))
    sd = dict(parsed.state_dict)
    if not load_head:
        head_keys = [k for k in sd if k.startswith("head.")]
        for k in head_keys:
            del sd[k]
        report.skipped_keys.extend(head_keys)
    if modality == "ecg":
        _resize_pos_embed(path, model, sd, report)

    target = model.state_dict()
    mismatches = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(target[k].shape)}"
                  for k in sd if k in target and sd[k].shape != target[k].shape]
    if mismatches:
        raise WeightsError(path, f"shape mismatch for {len(mismatches)} tensor(s): {_listed(mismatches)}")
    report.missing_keys = sorted(k for k in target if k not in sd)
    report.unexpected_keys = sorted(k for k in sd if k not in target)

    optional = FRESH_PREFIXES[modality]
    missing_body = [k for k in report.missing_keys
                    if not k.startswith(optional) and not k.endswith("num_batches_tracked")]
    if missing_body:
        raise WeightsError(path, f"missing {len(missing_body)} encoder weight(s): {_listed(missing_body)}")
    extra_body = [k for k in report.unexpected_keys if k.startswith(BODY_PREFIXES[modality])]
    if extra_body:
        raise WeightsError(path, f"has encoder layers the model lacks (deeper model?): {_listed(extra_body)}")

    loadable = {k: v for k, v in sd.items() if k in target}
    model.load_state_dict(loadable, strict=False)
    report.loaded_keys = len(loadable)
    return report


def save_checkpoint(path: str | Path, model: nn.Module, *, meta: dict, exclude_prefixes: tuple[str, ...] = ()) -> Path:
    """Write a CardioScope checkpoint atomically (temporary file, fsync, rename).

    `meta` must be JSON-like (str, numbers, bools, None, lists, dicts) so the file stays
    loadable with weights_only=True. Keys starting with `exclude_prefixes` are left out
    (e.g. an untrained pooling head after pre-training); loading reports them as missing.
    """
    path = Path(path)
    modality = modality_of(model)
    try:
        meta = json.loads(json.dumps(meta, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta must be JSON-serialisable: {exc}") from None
    payload = {
        "format": CHECKPOINT_FORMAT,
        "modality": modality,
        "model_name": model.model_name,
        "model_kwargs": dict(model.model_kwargs),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                       if not (exclude_prefixes and k.startswith(tuple(exclude_prefixes)))},
        "meta": meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def build_model_from_checkpoint(path: "str | Path | WeightsFile", *, modality: str | None = None,
                                load_head: bool = True, **overrides) -> tuple[nn.Module, LoadReport]:
    """Build the model a weights file belongs to and load it: (model, LoadReport)."""
    parsed = path if isinstance(path, WeightsFile) else read_checkpoint(path)
    if modality is not None and parsed.modality != modality:
        raise WeightsError(parsed.path, f"holds {parsed.modality.upper()} encoder weights, expected {modality.upper()}")
    loaded = parsed.build(load_head=load_head, **overrides)
    return loaded.model, loaded.report


def inspect_checkpoint(path: str | Path) -> dict:
    """Classify a weights file and dry-run loading it into its model; JSON-serialisable summary.

    Raises WeightsError for anything the loader would refuse.
    """
    parsed = read_checkpoint(path)
    kwargs = dict(parsed.model_kwargs)
    if parsed.layout == "released_ecg" and "pos_embed" in parsed.state_dict:
        # Build at the file's own signal length so the dry run reports no resizing.
        n_tokens = parsed.state_dict["pos_embed"].shape[1] - 1
        if n_tokens % 12 == 0:
            kwargs.setdefault("signal_length", n_tokens // 12 * 100)
    model = create_model(parsed.model_name, **kwargs)
    report = load_weights(model, parsed, modality=parsed.modality)
    return {
        "layout": parsed.layout,
        "modality": parsed.modality,
        "model_name": parsed.model_name,
        "model_kwargs": kwargs,
        "n_tensors": len(parsed.state_dict),
        "embedding_pool": parsed.embedding_pool,
        "meta": parsed.meta,
        **{k: v for k, v in report.to_dict().items() if k not in ("path", "source_layout", "modality")},
    }
