"""The product's job kinds, registered with the job system (jobs.registry imports this module).

Each function is fn(spec, ctx) and runs in its own worker process; see jobs/worker.py for
ctx (store, workspace, progress, should_stop, checkpoints).
"""
from __future__ import annotations

from jobs.registry import register_kind

register_kind("embed", "cardio_core.job_kinds:run_embed")
register_kind("project", "cardio_core.job_kinds:run_project")
register_kind("metrics", "cardio_core.job_kinds:run_metrics")
register_kind("pretrain", "cardio_core.pipeline.finetune:run_pretrain_job")
register_kind("finetune", "cardio_core.pipeline.finetune:run_finetune_job")
register_kind("demo", "cardio_core.pipeline.demo:run_demo_job")


def _weights_ids(spec, ctx) -> list[str]:
    ids = spec.params.get("weights_ids") or ([spec.weights] if spec.weights else [])
    if not ids:
        from jobs.spec import SpecError
        raise SpecError("weights", "name the weights to process (weights or params.weights_ids)")
    return list(ids)


def run_embed(spec, ctx) -> dict:
    from .pipeline.embed import embed_weights
    out = {}
    ids = _weights_ids(spec, ctx)
    for i, wid in enumerate(ids):
        ctx.report_progress(step=i, total_steps=len(ids), message=f"embedding {wid}")
        out[wid] = embed_weights(ctx.store, wid, device=spec.device)
    return out


def run_project(spec, ctx) -> dict:
    from .catalog import get_weights
    from .pipeline.project import MODALITY_VIEWS, project_weights
    from .projections import configure_numba_cache
    configure_numba_cache(ctx.workspace.cache_dir)
    out = {}
    ids = _weights_ids(spec, ctx)
    for i, wid in enumerate(ids):
        ctx.report_progress(step=i, total_steps=len(ids), message=f"projecting {wid}")
        modality = get_weights(ctx.store, wid)["modality"]
        out[wid] = [project_weights(ctx.store, wid, v, modality=modality) for v in MODALITY_VIEWS[modality]]
    return out


def run_metrics(spec, ctx) -> dict:
    from .catalog import get_weights
    from .pipeline.evaluate import evaluate_cmr, evaluate_ecg
    ids = _weights_ids(spec, ctx)
    for i, wid in enumerate(ids):
        ctx.report_progress(step=i, total_steps=len(ids), message=f"metrics of {wid}")
        if get_weights(ctx.store, wid)["modality"] == "ecg":
            evaluate_ecg(ctx.store, wid, seed=spec.seed)
        else:
            evaluate_cmr(ctx.store, wid, seed=spec.seed)
    return {"weights": ids}
