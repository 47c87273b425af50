"""The one table of job kinds: what each kind is, which specs it accepts, and the function a worker runs.

A job runs in a fresh worker process as `fn(spec, ctx)` (see jobs/worker.py for ctx). The
functions below compose the library's steps (cardio_core.pipeline.workflows) and are
named here as "module:function" strings, so importing jobs/ (the app, the CLI, a spec
check) never imports torch; the worker imports the function when it runs the job.

Adding a kind: add a JobKind row to KINDS and its function; specs, the Jobs form and the
CLI read the table.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from cardio_core.errors import ParameterError
from cardio_core.vocabulary import FINETUNE_DATASETS, PRETRAIN_DATASETS

KindFn = Callable[[Any, Any], Any]


class KindError(LookupError):
    """An unknown job kind, or one whose function cannot be imported."""


@dataclass(frozen=True)
class JobKind:
    name: str
    target: str                     # "module:function", called as fn(spec, ctx) in the worker
    summary: str
    needs_modality: bool = False    # trains or embeds with an encoder of one modality
    trains: bool = False            # needs a dataset and epochs
    # modality -> the datasets this kind can use (None: any ingested dataset of the modality)
    datasets: Mapping[str, tuple[str, ...]] | None = field(default=None, hash=False)

    def resolve(self) -> KindFn:
        module_name, _, attr = self.target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise KindError(f"job kind {self.name!r}: cannot load {self.target}: {exc}") from exc


KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("finetune", "jobs.kinds:run_finetune", "fine-tune an encoder; analyse its baseline and each checkpoint",
            needs_modality=True, trains=True, datasets=FINETUNE_DATASETS),
    JobKind("finetune_phenotypes", "jobs.kinds:run_finetune_phenotypes",
            "fine-tune the ECG encoder to predict a paired cohort's CMR phenotypes (MSE on standardised targets, "
            "checkpoint chosen on validation Pearson r); analyse each checkpoint",
            trains=True, datasets={"paired": ("paired",)}),
    JobKind("pretrain", "jobs.kinds:run_pretrain", "masked data modelling pre-training of the ECG encoder",
            needs_modality=True, trains=True, datasets=PRETRAIN_DATASETS),
    JobKind("pretrain_mmcl", "jobs.kinds:run_pretrain_mmcl",
            "contrastive ECG-CMR pre-training (MMCL) on a paired cohort; analyses every checkpoint pair",
            trains=True, datasets={"paired": ("paired",)}),
    JobKind("embed", "jobs.kinds:run_embed", "embeddings of the evaluation sets", needs_modality=True),
    JobKind("attention", "jobs.kinds:run_attention",
            "where the ECG model looks: attention maps of chosen records under one ECG encoder"),
    JobKind("project", "jobs.kinds:run_project", "UMAP projections of stored embeddings"),
    JobKind("metrics", "jobs.kinds:run_metrics", "metrics of stored embeddings"),
    JobKind("demo", "jobs.kinds:run_demo", "the whole demo chain: data, baselines, fine-tunes, reports"),
    JobKind("sleep", "jobs.sleep:run_sleep", "a stand-in that only reports progress (for trying the queue)"),
)}


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def get_kind(name: str) -> JobKind:
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise KindError(f"unknown job kind {name!r} (known: {', '.join(KINDS)})") from None


# -- the kinds' functions ------------------------------------------------------------------------

def _weights_ids(spec) -> list[str]:
    ids = spec.params.get("weights_ids") or ([spec.weights] if spec.weights else [])
    if not ids:
        raise ParameterError("weights", "name the weights to process (weights or params.weights_ids)")
    return list(ids)


def run_finetune(spec, ctx) -> dict:
    from cardio_core.pipeline import workflows
    return workflows.finetune(ctx)


def run_finetune_phenotypes(spec, ctx) -> dict:
    from cardio_core.pipeline import workflows
    return workflows.finetune_phenotypes(ctx)


def run_pretrain(spec, ctx) -> dict:
    from cardio_core.pipeline import workflows
    return workflows.pretrain(ctx)


def run_pretrain_mmcl(spec, ctx) -> dict:
    from cardio_core.pipeline import workflows
    return workflows.pretrain_mmcl(ctx)


def run_demo(spec, ctx) -> dict:
    from cardio_core.pipeline.demo import run_demo_chain
    return run_demo_chain(ctx)


def run_embed(spec, ctx) -> dict:
    from cardio_core.pipeline import workflows
    return workflows.embed(ctx, _weights_ids(spec))


def run_attention(spec, ctx) -> dict:
    # straight to the analysis step, not through workflows (which imports Lightning): a user waits for this one
    from cardio_core.analysis.attention import attention_job
    return attention_job(ctx, spec.weights, spec.dataset, list(spec.params["record_ids"]))


def run_project(spec, ctx) -> dict:
    from cardio_core.pipeline import workflows
    return workflows.project(ctx, _weights_ids(spec))


def run_metrics(spec, ctx) -> dict:
    from cardio_core.pipeline import workflows
    return workflows.evaluate(ctx, _weights_ids(spec))
