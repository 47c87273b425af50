"""The steps a job runs, composed: analyse the baseline, train, analyse each checkpoint.

Each function takes the job's context (see pipeline/runs.py) and returns a JSON-able
summary; jobs/kinds.py maps the job kinds onto them and the demo chain reuses them.
Training (finetune.py, pretrain.py) never calls analysis itself: the hooks below do.
"""
from __future__ import annotations

import numpy as np

from cardio_core.analysis.analyse import analyse_weights, ensure_analysed, is_analysed, mark_analysed
from cardio_core.analysis.embeddings import compute_embeddings, store_embeddings
from cardio_core.analysis.evaluate import evaluate_cmr, evaluate_ecg
from cardio_core.analysis.cmr_maps import compute_gradcam
from cardio_core.analysis.metric_rows import store_cmr_accuracy
from cardio_core.analysis.projections import MODALITY_VIEWS, configure_numba_cache, project_weights
from cardio_core.catalog import get_weights
from cardio_core.data.dataset_view import load_view
from cardio_core.errors import CardioError, ParameterError
from cardio_core.models.device import resolve_device
from cardio_core.pipeline.finetune import finetune_cmr, finetune_ecg, parent_weights
from cardio_core.pipeline.pretrain import pretrain_ecg
from cardio_core.pipeline.runs import CheckpointEvent, complete_run, current_run_id, read_json, recipe_for, \
    register_checkpoint, write_json
from cardio_core.training.distributed import is_rank_zero


def _trained(model):
    from cardio_core.models.weights import LoadedEncoder
    return LoadedEncoder(model=model, report=None, source=None, head_trained=True)


def finetune(ctx) -> dict:
    """A fine-tune job: the baseline analysed (once), the run trained, every checkpoint analysed."""
    configure_numba_cache(ctx.workspace.cache_dir)
    modality = ctx.spec.modality
    if modality not in ("ecg", "cmr"):
        raise ParameterError("modality", f"must be ecg or cmr, got {modality!r}")
    recipe_for(ctx.spec, modality)  # a bad preset or override fails before the long baseline analysis
    device = resolve_device(ctx.spec.device)
    parent_id = parent_weights(ctx, modality)
    if is_rank_zero(ctx):  # under DDP the other ranks go straight to training and wait for rank zero there
        ctx.report_progress(message=f"baseline analysis of {parent_id}", force=True)
        ensure_analysed(ctx.store, parent_id, device=device)
    if modality == "ecg":
        out = finetune_ecg(ctx, parent_id=parent_id, on_checkpoint=ecg_checkpoint_analysis(ctx, device))
        if not ctx.should_stop():
            _finish_ecg_run(ctx, out["run_id"], device)
        return out
    return _finetune_cmr_and_analyse(ctx, parent_id, device)


def finetune_phenotypes(ctx) -> dict:
    """A phenotype fine-tune job (pipeline/phenotype_finetune.py): the baseline analysed (once), the run trained on
    the paired cohort, every checkpoint analysed, its phenotypes scored by its own head."""
    from cardio_core.models.weights import LoadedEncoder
    from cardio_core.pipeline.phenotype_finetune import finetune_ecg_phenotypes
    configure_numba_cache(ctx.workspace.cache_dir)
    recipe_for(ctx.spec, "ecg")  # a bad preset or override fails before the long baseline analysis
    device = resolve_device(ctx.spec.device)
    parent_id = parent_weights(ctx, "ecg")
    if is_rank_zero(ctx):
        ctx.report_progress(message=f"baseline analysis of {parent_id}", force=True)
        ensure_analysed(ctx.store, parent_id, device=device)
    head: dict = {}

    def analyse(event: CheckpointEvent) -> None:
        # head_trained False: its head regresses phenotypes, it is not a Chapman classifier
        encoder = LoadedEncoder(model=event.model, report=None, source=None, head_trained=False)
        analyse_weights(ctx.store, event.weights_id, encoder=encoder, device=device,
                        align_to=event.previous_weights_id, seed=ctx.spec.seed, phenotype_head=head)

    out = finetune_ecg_phenotypes(ctx, parent_id=parent_id, on_checkpoint=analyse, head_out=head)
    if not ctx.should_stop() and is_rank_zero(ctx):
        _finish_ecg_run(ctx, out["run_id"], device)
    return out


def _finish_ecg_run(ctx, run_id: str, device: str) -> None:
    """Analyse any checkpoint of the run whose analysis did not finish (none, normally: a resumed job retrains
    from the resume state written after the last analysed checkpoint), then mark the run complete."""
    rows = ctx.store.query("SELECT c.weights_id FROM checkpoints c LEFT JOIN analysis_complete a USING (weights_id) "
                           "WHERE c.run_id = ? AND c.fold IS NULL AND a.weights_id IS NULL ORDER BY c.epoch",
                           [run_id])
    for (wid,) in rows:
        ctx.report_progress(message=f"completing the analysis of {wid}", force=True)
        analyse_weights(ctx.store, wid, device=device, seed=ctx.spec.seed)
    complete_run(ctx.store, run_id)


def ecg_checkpoint_analysis(ctx, device: str):
    """The hook that embeds, scores and projects each ECG checkpoint, aligned to the one before it."""
    def analyse(event: CheckpointEvent) -> None:
        analyse_weights(ctx.store, event.weights_id, encoder=_trained(event.model), device=device,
                        align_to=event.previous_weights_id, seed=ctx.spec.seed)
    return analyse


def _finetune_cmr_and_analyse(ctx, parent_id: str, device: str) -> dict:
    """Each fold's checkpoint embeds its fold's validation patients and scores their accuracy; after the last
    fold, one entry per epoch (every fold's validation patients, each embedded by its own fold's model) is
    registered, scored and projected."""
    store = ctx.store
    run_id = current_run_id(ctx)
    view = load_view(store, "acdc")
    labels = view.Y.argmax(1).astype(np.int64)
    record_ids = view.records["record_id"]
    acc_file = ctx.workspace.runs_dir / run_id / "fold_accuracy.json"
    try:
        accuracy = read_json(acc_file, {})
    except CardioError as exc:
        # Damaged (older versions wrote it in place): say so, and train the folds again rather than fail
        # every resume; folds_done.json goes too, since the accuracies of the done folds are lost.
        store.record_problem(str(acc_file), f"{exc.problem}; training the folds again", "resume")
        acc_file.unlink(missing_ok=True)
        (acc_file.parent / "folds_done.json").unlink(missing_ok=True)
        accuracy = {}

    def fold_checkpoint(event: CheckpointEvent) -> None:
        val = event.val_index
        X, probs = compute_embeddings(event.model, [view.arrays[i] for i in val], modality="cmr", device=device,
                                      with_head=True)
        store_embeddings(store, f"{run_id}-e{event.epoch:04d}", "acdc", record_ids.iloc[val].tolist(), X, pooling="avg",
                         fold=event.fold)
        accuracy.setdefault(str(event.epoch), {})[str(event.fold)] = float((probs.argmax(1) == labels[val]).mean())
        # where this fold's model looks in each of its validation patients (Grad-CAM of its predicted group)
        compute_gradcam(store, f"{run_id}-e{event.epoch:04d}", "acdc", record_ids.iloc[val].tolist(),
                        [view.arrays[i] for i in val], event.model, classes=view.classes, fold=event.fold,
                        device=device)
        write_json(acc_file, accuracy)

    out = finetune_cmr(ctx, parent_id=parent_id, on_checkpoint=fold_checkpoint)
    if ctx.should_stop() or not is_rank_zero(ctx):
        return out
    config = {"parent_weights_id": parent_id, **{k: v for k, v in out.pop("config", {}).items()}}
    previous = parent_id
    epochs = sorted(int(e) for e in accuracy)
    for epoch in epochs:
        group = f"{run_id}-e{epoch:04d}"
        if is_analysed(store, group):  # a resumed job: this epoch was analysed before the kill
            previous = group
            continue
        per_fold = {int(f): a for f, a in accuracy[str(epoch)].items()}
        ctx.report_progress(message=f"analysing epoch {epoch} over folds", force=True)
        register_checkpoint(store, weights_id=group, run_id=run_id, job_id=ctx.job_id, epoch=epoch, step=0,
                            fold=None, path=None, modality="cmr", parent_id=parent_id,
                            name=f"{run_id} epoch {epoch} ({len(per_fold)} folds)",
                            metrics={"val/accuracy_mean": float(np.mean(list(per_fold.values())))}, config=config)
        evaluate_cmr(store, group, seed=ctx.spec.seed)
        store_cmr_accuracy(store, group, per_fold)
        project_weights(store, group, "acdc", modality="cmr", chain_after=previous)
        mark_analysed(store, group, ["acdc"])
        previous = group
    complete_run(store, run_id)
    return {"run_id": run_id, "epochs": epochs}


def pretrain(ctx) -> dict:
    """A pre-training job: MDM on the spec's dataset, then the new encoder analysed as a baseline."""
    configure_numba_cache(ctx.workspace.cache_dir)
    out = pretrain_ecg(ctx)
    if "weights_id" in out:
        ctx.report_progress(message="analysing the pre-trained baseline", force=True)
        analyse_weights(ctx.store, out["weights_id"], device=resolve_device(ctx.spec.device), seed=ctx.spec.seed)
    return out


def pretrain_mmcl(ctx) -> dict:
    """A contrastive pre-training job: the two starting encoders analysed as baselines (once), the run trained,
    and every checkpoint analysed: the pair on the paired cohort (retrieval, joint layout), the ECG encoder on
    Chapman/PTB-XL and the CMR encoder on ACDC, each chained to the encoder before it for the epoch evolution."""
    from cardio_core.analysis.paired import analyse_pair
    from cardio_core.models.weights import LoadedEncoder
    from cardio_core.pipeline.mmcl import mmcl_parents, mmcl_recipe_for, pretrain_mmcl as train

    configure_numba_cache(ctx.workspace.cache_dir)
    mmcl_recipe_for(ctx.spec)  # a bad preset or override fails before the long baseline analysis
    device = resolve_device(ctx.spec.device)
    seed = ctx.spec.seed
    if is_rank_zero(ctx):
        for parent in mmcl_parents(ctx):
            ctx.report_progress(message=f"baseline analysis of {parent}", force=True)
            ensure_analysed(ctx.store, parent, device=device)

    def analyse(event) -> None:
        m = event.module
        ecg = LoadedEncoder(model=m.ecg_encoder, report=None, source=None, head_trained=False)
        cmr = LoadedEncoder(model=m.cmr_encoder, report=None, source=None, head_trained=False)
        analyse_pair(ctx.store, event.pair_id, ecg_encoder=ecg, cmr_encoder=cmr,
                     projectors=(m.ecg_projector, m.cmr_projector), device=device, seed=seed)
        analyse_weights(ctx.store, event.ecg_weights_id, encoder=ecg, device=device, align_to=event.previous_ecg,
                        seed=seed)
        analyse_weights(ctx.store, event.cmr_weights_id, encoder=cmr, device=device, align_to=event.previous_cmr,
                        seed=seed)

    out = train(ctx, on_checkpoint=analyse)
    if not ctx.should_stop() and is_rank_zero(ctx):
        _finish_mmcl_run(ctx, out["run_id"], device)
    return out


def _finish_mmcl_run(ctx, run_id: str, device: str) -> None:
    """Analyse any pair of the run whose analysis did not finish, then mark the run complete."""
    from cardio_core.analysis.paired import analyse_pair
    rows = ctx.store.query("SELECT p.pair_id, p.ecg_weights_id, p.cmr_weights_id FROM encoder_pairs p "
                           "LEFT JOIN analysis_complete a ON a.weights_id = p.pair_id "
                           "WHERE p.run_id = ? AND a.weights_id IS NULL ORDER BY p.epoch", [run_id])
    for pair_id, ecg_id, cmr_id in rows:
        ctx.report_progress(message=f"completing the analysis of {pair_id}", force=True)
        analyse_pair(ctx.store, pair_id, device=device, seed=ctx.spec.seed)
        for wid in (ecg_id, cmr_id):
            ensure_analysed(ctx.store, wid, device=device)
    complete_run(ctx.store, run_id)


def embed(ctx, weights_ids: list[str]) -> dict:
    from cardio_core.analysis.embeddings import embed_weights
    out = {}
    for i, wid in enumerate(weights_ids):
        ctx.report_progress(step=i, total_steps=len(weights_ids), message=f"embedding {wid}")
        out[wid] = embed_weights(ctx.store, wid, device=ctx.spec.device)
    return out


def project(ctx, weights_ids: list[str]) -> dict:
    configure_numba_cache(ctx.workspace.cache_dir)
    out = {}
    for i, wid in enumerate(weights_ids):
        ctx.report_progress(step=i, total_steps=len(weights_ids), message=f"projecting {wid}")
        modality = get_weights(ctx.store, wid)["modality"]
        out[wid] = [project_weights(ctx.store, wid, v, modality=modality) for v in MODALITY_VIEWS[modality]]
    return out


def evaluate(ctx, weights_ids: list[str]) -> dict:
    for i, wid in enumerate(weights_ids):
        ctx.report_progress(step=i, total_steps=len(weights_ids), message=f"metrics of {wid}")
        if get_weights(ctx.store, wid)["modality"] == "ecg":
            evaluate_ecg(ctx.store, wid, seed=ctx.spec.seed)
        else:
            evaluate_cmr(ctx.store, wid, seed=ctx.spec.seed)
    return {"weights": weights_ids}
