"""Jobs: a validated form to launch fine-tuning, and a live table (progress, ETA, metrics, log, cancel, resume)."""
import dataclasses

import pandas as pd
import streamlit as st

from app import common
from app.figures import label_efficiency_figure
from cardio_core.queries.sweeps import SWEEP_METRIC, curve_of, list_sweeps
from cardio_core.catalog import weights_files
from cardio_core.training.recipes import get_recipe
from cardio_core.training.estimate import LONG_RUN_S, estimate_training
from cardio_core.vocabulary import ACTIVE_STATUSES, DEMO_RECIPES, FINETUNE_DATASETS, MODALITY_RECIPES
from jobs.kinds import KINDS
from jobs.progress import log_tail
from jobs.runner import JobError, LocalRunner
from jobs.spec import FRACTION_KINDS, JobSpec, SpecError
from jobs.processes import visible_gpus
from jobs.sweeps import DEFAULT_FRACTIONS, cancel_sweep, plan_sweep, resume_sweep, submit_sweep
from jobs.table import jobs_table, measured_throughput, sweep_progress

st.title("Jobs")
ws = common.workspace()
db = common.db()


@st.cache_resource(show_spinner=False)
def runner_for(root: str):
    return LocalRunner(common.workspace(), common.store())


def recipe_values(name: str) -> dict:
    """The preset's editable hyper-parameters (numbers and strings)."""
    values = dataclasses.asdict(get_recipe(name))
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


# Fields that have their own form inputs (or are not hyper-parameters) stay out of the table.
OWN_FIELDS = ("max_epochs", "epochs", "checkpoint_every", "seed", "modality", "name", "description")


def check_overrides(recipe: str, overrides: dict) -> str | None:
    """The recipe module's own validation of the edited values; None when fine."""
    try:
        get_recipe(recipe, **overrides)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


# The form trains: the kinds that fine-tune, plus 'sleep' to try the queue.
FORM_KINDS = ["finetune", "sleep"]
TASKS = {"labels": "rhythm labels (Chapman)", "phenotypes": "CMR phenotypes (paired cohort)"}
SWEEP_FRACTIONS = [1.0, 0.5, 0.25, 0.1, 0.05, 0.01]


def fraction_label(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def field_error(errors: dict, name: str) -> None:
    if errors.get(name):
        st.error(errors[name], icon=":material/error:")


# -- the launch form ------------------------------------------------------------------------------------------
st.subheader("Launch fine-tuning")
errors = st.session_state.get("job_errors", {})
if st.session_state.get("job_submitted"):
    st.success(f"Submitted {st.session_state['job_submitted']}; it appears in the table below.")

modality = st.radio("Modality", ["ecg", "cmr"], horizontal=True, key="job_modality")
n_paired = common.paired_cohort_size(db)
task = "labels"
if modality == "ecg":
    task = st.radio("Fine-tune on", list(TASKS), horizontal=True, key="job_task", format_func=TASKS.get,
                    disabled=not n_paired,
                    help="CMR phenotypes: the ECG encoder learns the paired cohort's LV and RV volumes, ejection "
                         "fractions, output and mass (MSE on standardised targets; the checkpoint is chosen on the "
                         "mean validation Pearson r)." + ("" if n_paired else " No paired cohort is ingested."))
weights = common.weights(db, modality)
# Only registered weights: a file dropped into weights/ is offered once the catalogue has checked it.
weight_choices = weights["weights_id"].tolist()
names = dict(zip(weights["weights_id"], weights["display"]))
# Continuing from a run: its best checkpoint (validation macro-F1 / mean fold accuracy) is offered first.
runs = common.runs_of(db, modality)
from_run = st.selectbox("Continue from a run", [""] + runs, key="job_from_run",
                        format_func=lambda r: r or "(no: any registered weights)")
if from_run:
    weight_choices = common.continuation_order(db, tuple(weight_choices), from_run)
    best = common.best_checkpoint(db, from_run)
    if best["weights_id"]:
        names[best["weights_id"]] = f"{names.get(best['weights_id'], best['weights_id'])} (best: {best['metric']} " \
                                    f"{best['value']:.3f})"
        if st.session_state.get("job_weights") not in weight_choices[:1]:
            st.session_state["job_weights"] = weight_choices[0]
registered_files = {str(p) for p in weights.get("path", pd.Series(dtype=str)).dropna()}
unregistered = [p.name for p in weights_files(ws) if str(p) not in registered_files]
has_gpu = bool(visible_gpus())
presets = list(MODALITY_RECIPES[modality])
if not has_gpu:   # without a GPU the demo-sized preset is the default: the thesis recipe takes days on a CPU
    presets = [DEMO_RECIPES[modality]] + [p for p in presets if p != DEMO_RECIPES[modality]]



def preset_defaults() -> None:
    """Epochs, checkpoint interval and seed follow the chosen preset until the user edits them."""
    values = recipe_values(st.session_state["job_recipe"])
    st.session_state["job_epochs"] = int(values.get("max_epochs", 10))
    st.session_state["job_every"] = int(values.get("checkpoint_every", 5))
    st.session_state["job_seed"] = int(values.get("seed", 0))


if st.session_state.get("job_recipe") not in presets:
    st.session_state["job_recipe"] = presets[0]
    preset_defaults()
recipe = st.selectbox("Recipe preset", presets, key="job_recipe", on_change=preset_defaults)
field_error(errors, "recipe")
defaults = recipe_values(recipe)
if defaults.get("description"):
    st.caption(defaults["description"])


def estimate_for(epochs: int, folds: list | None, device: str):
    n_train = common.training_set_size(db, modality) if task == "labels" else common.paired_train_size(db)
    cuda = device == "cuda" or (device == "auto" and has_gpu)
    return estimate_training(modality, n_train=n_train, epochs=max(1, int(epochs)),
                             folds=len(folds or [0, 1, 2, 3, 4]) if modality == "cmr" else 1, cuda=cuda,
                             measured_samples_per_s=None if cuda else measured_throughput(common.store(),
                                                                                          ws.runs_dir, modality))


planned = estimate_for(st.session_state.get("job_epochs", 1) or 1, st.session_state.get("job_folds"),
                       st.session_state.get("job_device", "auto"))
st.caption(f"Estimated duration on this machine with the current epochs: {planned.text()}"
           + ("" if has_gpu else " · no CUDA GPU here"))

with st.form("launch"):
    c1, c2 = st.columns(2)
    with c1:
        dataset = st.selectbox("Dataset", FINETUNE_DATASETS[modality] if task == "labels" else ["paired"],
                               key=f"job_dataset_{task}")
        field_error(errors, "dataset")
        weight = st.selectbox("Start from weights", weight_choices, key="job_weights",
                              format_func=lambda w: names.get(w, f"weights/{w}"),
                              help="Registered weights and checkpoints (`cardio weights scan` registers the files "
                                   "dropped into the workspace's weights/ folder).")
        field_error(errors, "weights")
        device = st.selectbox("Device", ["auto", "cpu", "cuda"], key="job_device")
        field_error(errors, "device")
        devices = st.number_input("GPUs per job", min_value=1, max_value=64, step=1, key="job_devices",
                                  help="DDP over this many GPUs of this machine (with device cpu: CPU processes). "
                                       "On a cluster use `cardio jobs slurm --nodes N --devices 8`.")
        field_error(errors, "devices")
    with c2:
        epochs = st.number_input("Epochs", min_value=0, max_value=10_000, step=1, key="job_epochs")
        field_error(errors, "epochs")
        every = st.number_input("Checkpoint every N epochs", min_value=0, max_value=10_000, step=1, key="job_every")
        field_error(errors, "checkpoint_every")
        folds = st.multiselect("Folds (CMR)", [0, 1, 2, 3, 4], default=[0, 1, 2, 3, 4] if modality == "cmr" else [],
                               key="job_folds", disabled=modality != "cmr")
        field_error(errors, "folds")
        seed = st.number_input("Seed", min_value=0, step=1, key="job_seed")
        field_error(errors, "seed")
    editable = {k: v for k, v in defaults.items() if k not in OWN_FIELDS}
    st.caption("Hyper-parameters (from the preset; edit a value to override it)")
    hp = st.data_editor(pd.DataFrame({"name": list(editable), "value": [str(v) for v in editable.values()]}),
                        num_rows="dynamic", hide_index=True, key=f"job_hp_{recipe}", width="stretch")
    field_error(errors, "overrides")
    confirm_long = st.checkbox("It may take long: launch it anyway", key="job_confirm_long",
                               help=f"Asked when the estimate exceeds {LONG_RUN_S // 60} minutes on this machine.")
    with st.expander("Sweep: several seeds × training fractions (a label-efficiency curve)",
                     expanded=bool(st.session_state.get("job_sweep") or errors.get("sweep"))):
        as_sweep = st.checkbox("Launch as a sweep", key="job_sweep",
                               help="One fine-tune job per seed and training fraction, queued as one group with one "
                                    "progress view; cancel and resume act on the whole group.")
        s1, s2, s3 = st.columns([2, 3, 1])
        sweep_seeds = s1.text_input("Seeds", value="0, 1, 2, 3, 4", key="job_sweep_seeds",
                                    help="Training seeds, comma-separated (the Seed field above is not used).")
        sweep_fractions = s2.multiselect("Training fractions", SWEEP_FRACTIONS, default=list(DEFAULT_FRACTIONS),
                                         key="job_sweep_fractions", format_func=fraction_label,
                                         help="Nested, stratified subsets of the training set: each smaller one "
                                              "inside the larger ones.")
        subset_seed = s3.number_input("Subset seed", min_value=0, step=1, key="job_sweep_subset_seed",
                                      help="Chooses the nested subsets, once for all seeds of the sweep.")
        field_error(errors, "sweep")
    with st.expander("Advanced"):
        kind = st.selectbox("Job kind", FORM_KINDS, key="job_kind", help=f"sleep: {KINDS['sleep'].summary}.")
        field_error(errors, "kind")
    submitted = st.form_submit_button("Launch", type="primary", disabled=common.read_only())
if unregistered:
    st.caption(f"Not registered yet (run `cardio weights scan`): {', '.join(unregistered)}")


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


if submitted and not common.read_only():
    problems: dict[str, str] = {}
    if kind == "finetune" and task == "phenotypes":
        kind = "finetune_phenotypes"
    overrides = {}
    for row in hp.itertuples():
        if not isinstance(row.name, str) or not row.name.strip():
            continue
        value = parse_value(str(row.value).strip())
        if row.name not in editable or str(editable[row.name]) != str(row.value):
            overrides[row.name.strip()] = value
    if overrides and kind != "sleep":
        problem = check_overrides(recipe, {**overrides, "max_epochs": int(epochs) or 1})
        if problem:
            problems["overrides"] = problem
    if weight not in weight_choices:
        problems["weights"] = "choose registered weights"
    sweep_plan = None
    if as_sweep and kind in FRACTION_KINDS:
        try:
            seeds = [int(x) for x in str(sweep_seeds).replace(" ", "").split(",") if x]
        except ValueError:
            problems["sweep"] = f"seeds must be whole numbers separated by commas, got {sweep_seeds!r}"
            seeds = []
    if kind in FRACTION_KINDS and int(epochs) >= 1:
        estimate = estimate_for(int(epochs), folds, device)
        if as_sweep and not problems.get("sweep"):   # every member: a share of the set, once per seed
            estimate = dataclasses.replace(estimate, seconds=estimate.seconds * len(seeds) * sum(sweep_fractions))
        if estimate.long and not confirm_long:
            problems["epochs"] = (f"this would take {estimate.text()}; tick 'launch it anyway' to go ahead, "
                                  f"or choose fewer epochs or the {DEMO_RECIPES[modality]} preset")
    spec = {"kind": kind, "modality": modality if kind != "finetune_phenotypes" else None, "dataset": dataset,
            "weights": weight, "recipe": recipe,
            "overrides": overrides, "epochs": int(epochs), "checkpoint_every": int(every), "device": device,
            "devices": int(devices),
            "seed": int(seed), "folds": [int(f) for f in folds] if modality == "cmr" else None}
    if kind == "sleep":
        spec.update(recipe=None, overrides={}, params={"seconds": 1.0})
    if not problems and as_sweep and kind in FRACTION_KINDS:
        try:
            sweep_plan = plan_sweep(spec, seeds, sweep_fractions, subset_seed=int(subset_seed))
        except SpecError as exc:
            problems["sweep" if exc.field in ("seeds", "fractions", "subset_seed", "name") else
                     (exc.field if exc.field in spec else "kind")] = exc.problem
    if not problems:
        try:
            if sweep_plan is not None:
                group_id = submit_sweep(runner_for(str(ws.root)), sweep_plan)
                st.session_state["job_submitted"] = f"sweep {group_id} ({len(sweep_plan.members())} jobs)"
                st.query_params["sweep"] = group_id
            else:
                job_id = runner_for(str(ws.root)).submit(JobSpec.from_dict(spec))
                st.session_state["job_submitted"] = job_id
        except SpecError as exc:
            problems[exc.field if exc.field in spec else "kind"] = exc.problem
        except (JobError, ValueError) as exc:
            problems["kind"] = str(exc)
    st.session_state["job_errors"] = problems
    if problems:
        st.session_state.pop("job_submitted", None)
    st.rerun()


# -- the contrastive pre-training form ------------------------------------------------------------------------
def mmcl_form() -> None:
    """Launch MMCL (contrastive ECG-CMR pre-training) on the ingested paired cohort."""
    from cardio_core.training.mmcl_recipes import get_mmcl_recipe
    from cardio_core.vocabulary import MMCL_RECIPES
    mm_errors = st.session_state.get("mmcl_errors", {})
    if st.session_state.get("mmcl_submitted"):
        st.success(f"Submitted {st.session_state['mmcl_submitted']}; it appears in the table below.")
    n_pairs = common.paired_cohort_size(db)
    if not n_pairs:
        st.caption("No paired ECG + CMR cohort is ingested: `cardio ingest paired PATH` (or `cardio setup` for the "
                   "demo's) adds one.")
    ecg_w, cmr_w = common.weights(db, "ecg"), common.weights(db, "cmr")
    ecg_ids, cmr_ids = ecg_w["weights_id"].tolist(), cmr_w["weights_id"].tolist()
    ecg_names = dict(zip(ecg_w["weights_id"], ecg_w["display"]))
    cmr_names = dict(zip(cmr_w["weights_id"], cmr_w["display"]))
    ecg_default, cmr_default = common.mmcl_defaults(db)
    mm_presets = list(MMCL_RECIPES) if has_gpu else ["demo_mmcl", *[r for r in MMCL_RECIPES if r != "demo_mmcl"]]
    with st.form("launch_mmcl"):
        c1, c2 = st.columns(2)
        with c1:
            mm_recipe = st.selectbox("Recipe preset", mm_presets, key="mmcl_recipe",
                                     help="mmcl: the paper's values (GPU); demo_mmcl: sized for 2 CPU cores")
            field_error(mm_errors, "recipe")
            ecg_start = st.selectbox("ECG encoder starts from", ecg_ids, key="mmcl_ecg",
                                     index=ecg_ids.index(ecg_default) if ecg_default in ecg_ids else 0,
                                     format_func=lambda w: ecg_names.get(w, w),
                                     help="The method starts from masked data modelling (MDM).")
            field_error(mm_errors, "weights")
            cmr_start = st.selectbox("CMR encoder starts from", cmr_ids, key="mmcl_cmr",
                                     index=cmr_ids.index(cmr_default) if cmr_default in cmr_ids else 0,
                                     format_func=lambda w: cmr_names.get(w, w),
                                     help="Random weights, or a registered image encoder (e.g. SimCLR).")
            field_error(mm_errors, "params")
        with c2:
            preset = get_mmcl_recipe(mm_recipe)
            mm_epochs = st.number_input("Epochs", min_value=1, max_value=10_000, step=1, value=preset.max_epochs,
                                        key=f"mmcl_epochs_{mm_recipe}")
            field_error(mm_errors, "epochs")
            mm_every = st.number_input("Checkpoint every N epochs", min_value=1, max_value=10_000, step=1,
                                       value=min(preset.checkpoint_every, preset.max_epochs),
                                       key=f"mmcl_every_{mm_recipe}")
            field_error(mm_errors, "checkpoint_every")
            mm_device = st.selectbox("Device", ["auto", "cpu", "cuda"], key="mmcl_device")
            mm_seed = st.number_input("Seed", min_value=0, step=1, key="mmcl_seed")
        if preset.description:
            st.caption(preset.description)
        go = st.form_submit_button("Launch pre-training", disabled=common.read_only() or not n_pairs)
    if go and not common.read_only():
        spec = {"kind": "pretrain_mmcl", "dataset": "paired", "recipe": mm_recipe, "weights": ecg_start,
                "params": {"cmr_weights": cmr_start}, "epochs": int(mm_epochs), "checkpoint_every": int(mm_every),
                "device": mm_device, "seed": int(mm_seed), "name": f"MMCL pre-training ({mm_recipe})"}
        problems: dict[str, str] = {}
        try:
            st.session_state["mmcl_submitted"] = runner_for(str(ws.root)).submit(JobSpec.from_dict(spec))
        except SpecError as exc:
            problems[exc.field.split(".")[0] if exc.field.split(".")[0] in spec else "recipe"] = exc.problem
        except (JobError, ValueError) as exc:
            problems["recipe"] = str(exc)
        st.session_state["mmcl_errors"] = problems
        if problems:
            st.session_state.pop("mmcl_submitted", None)
        st.rerun()


with st.expander("Launch contrastive ECG-CMR pre-training (MMCL)",
                 expanded=bool(st.session_state.get("mmcl_errors") or st.session_state.get("mmcl_submitted"))):
    mmcl_form()


# -- the live table -------------------------------------------------------------------------------------------
def eta_text(seconds) -> str:
    if seconds is None or pd.isna(seconds):
        return ""
    seconds = int(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m {seconds % 60:02d}s"


def progress_text(row) -> str:
    """jobs.progress.progress_text (the same words as the Overview and `cardio jobs list`), the ETA, and what the
    job is doing now (a job at 100% of training may still be embedding, projecting, scoring)."""
    text = row.progress_text
    if row.status == "succeeded":
        return text
    if row.progress < 1 and eta_text(row.eta_s):
        text += f" · ETA {eta_text(row.eta_s)}"
    stage = str(getattr(row, "stage", "") or "")
    return text + (f" · {common.redact(stage)[:120]}" if stage else "")


@st.fragment(run_every=3)
def live_jobs():
    # The app's scheduler thread starts queued jobs and reaps dead ones; this only reads.
    table = jobs_table(common.store(), ws.runs_dir)
    if table.empty:
        st.caption("No jobs yet.")
        return
    counts = table["status"].value_counts().to_dict()
    st.caption(" · ".join(f"{k}: {v}" for k, v in counts.items()))
    for row in table.itertuples():
        with st.container(border=True):
            c1, c2, c3 = st.columns([3, 4, 2])
            c1.markdown(f"**{row.job_id}**  \n{row.kind} · `{row.status}`")
            if row.what:
                c1.caption(row.what)
            with c2:
                if row.status in ("running", "starting", "succeeded"):
                    st.progress(float(row.progress), text=progress_text(row))
                if row.latest_metrics:
                    st.caption(row.latest_metrics)
                if row.error and row.status == "failed":
                    st.caption(f":red[{common.escape_markdown(common.redact(row.error))}]")
            with c3:
                if row.status in ACTIVE_STATUSES:
                    if st.button("Cancel", key=f"cancel-{row.job_id}", disabled=common.read_only()):
                        try:
                            runner_for(str(ws.root)).cancel(row.job_id)
                        except Exception as exc:
                            st.error(str(exc))
                if row.status in ("failed", "cancelled"):
                    if st.button("Resume", key=f"resume-{row.job_id}", disabled=common.read_only()):
                        try:
                            st.toast(f"Resumed as {runner_for(str(ws.root)).resume(row.job_id)}")
                        except Exception as exc:
                            st.error(str(exc))
                if row.status == "succeeded" and isinstance(row.last_checkpoint_id, str):
                    st.page_link(common.PAGES["explore"], label="Explore", query_params={"w": row.last_checkpoint_id})
                    st.page_link(common.PAGES["compare"], label="Compare", query_params={"w": row.last_checkpoint_id})
            with st.expander("Log tail"):
                st.code(common.redact(log_tail(row.log_path, roots=[ws.root])) or "(empty)", language=None)


# -- sweeps ---------------------------------------------------------------------------------------------------
def sweep_choice(sweeps: pd.DataFrame) -> str:
    """The sweep shown: ?sweep= in the URL (shareable), else the newest."""
    ids = sweeps["group_id"].tolist()
    wanted = st.query_params.get("sweep")
    if st.session_state.get("sweep_pick") not in ids:
        st.session_state["sweep_pick"] = wanted if wanted in ids else ids[0]
    labels = {g.group_id: f"{g.name} · {g.n_succeeded}/{g.n_members} done · {g.group_id}" for g in sweeps.itertuples()}
    chosen = st.selectbox("Sweep", ids, key="sweep_pick", format_func=labels.get)
    if st.query_params.get("sweep") != chosen:
        st.query_params["sweep"] = chosen
    return chosen


@st.fragment(run_every=3)
def live_sweep(group_id: str, task: str) -> None:
    members, overall = sweep_progress(common.store(), ws.runs_dir, group_id)
    counts = members["status"].value_counts().to_dict()
    st.progress(overall, text=f"{overall:.0%} of {len(members)} jobs · "
                              + " · ".join(f"{k}: {v}" for k, v in counts.items()))
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button("Cancel sweep", key=f"cancel-sweep-{group_id}", disabled=common.read_only() or not
                 members["status"].isin(ACTIVE_STATUSES).any()):
        try:
            st.toast(f"Cancelled {len(cancel_sweep(runner_for(str(ws.root)), group_id))} jobs")
        except Exception as exc:
            st.error(str(exc))
    if c2.button("Resume sweep", key=f"resume-sweep-{group_id}", disabled=common.read_only() or not
                 members["status"].isin(("failed", "cancelled")).any()):
        try:
            st.toast(f"Resumed {len(resume_sweep(runner_for(str(ws.root)), group_id))} jobs")
        except Exception as exc:
            st.error(str(exc))
    metric, metric_text = SWEEP_METRIC[task]["short"], SWEEP_METRIC[task]["text"]
    curve = curve_of(members)
    if len(curve):
        st.plotly_chart(label_efficiency_figure(curve, members, metric=metric, review=common.review_mode()),
                        key=f"sweep-curve-{group_id}")
        st.caption(f"{metric_text}: the mean over the seeds scored so far at each training fraction, the bars its "
                   "95 % interval (Student t over seeds); each dot is one seed. The subsets are nested (1 % inside 10 % "
                   "inside 100 %) and the same for every seed.")
        st.dataframe(curve.assign(fraction=[fraction_label(f) for f in curve["fraction"]]), hide_index=True,
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("mean", "sd", "ci_low", "ci_high")})
    else:
        st.caption(f"The curve ({metric}) appears as members finish.")
    table = members.assign(fraction=[fraction_label(f) for f in members["fraction"]],
                           progress=[f"{p:.0%}" for p in members["progress"]])
    st.dataframe(table[["seed", "fraction", "status", "progress", "attempts", "n_train", "value", "job_id"]],
                 hide_index=True, column_config={"value": st.column_config.NumberColumn(metric, format="%.3f")})


sweeps = list_sweeps(common.store())
if not sweeps.empty:
    st.subheader("Sweeps")
    group = sweep_choice(sweeps)
    live_sweep(group, sweeps.set_index("group_id").loc[group, "task"])

st.subheader("Jobs")
live_jobs()
