"""Jobs: a validated form to launch fine-tuning, and a live table (progress, ETA, metrics, log, cancel, resume)."""
import dataclasses

import pandas as pd
import streamlit as st

from app import common
from cardio_core.catalog import weights_files
from cardio_core.training.recipes import get_recipe
from cardio_core.vocabulary import ACTIVE_STATUSES, FINETUNE_DATASETS, MODALITY_RECIPES
from jobs.kinds import KINDS
from jobs.progress import log_tail
from jobs.runner import JobError, LocalRunner
from jobs.spec import JobSpec, SpecError
from jobs.table import jobs_table

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


def field_error(errors: dict, name: str) -> None:
    if errors.get(name):
        st.error(errors[name], icon=":material/error:")


# -- the launch form ------------------------------------------------------------------------------------------
st.subheader("Launch fine-tuning")
errors = st.session_state.get("job_errors", {})
if st.session_state.get("job_submitted"):
    st.success(f"Submitted {st.session_state['job_submitted']}; it appears in the table below.")

modality = st.radio("Modality", ["ecg", "cmr"], horizontal=True, key="job_modality")
weights = common.weights(db, modality)
# Only registered weights: a file dropped into weights/ is offered once the catalogue has checked it.
weight_choices = weights["weights_id"].tolist()
names = dict(zip(weights["weights_id"], weights["display"]))
registered_files = {str(p) for p in weights.get("path", pd.Series(dtype=str)).dropna()}
unregistered = [p.name for p in weights_files(ws) if str(p) not in registered_files]
presets = list(MODALITY_RECIPES[modality])



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

with st.form("launch"):
    c1, c2 = st.columns(2)
    with c1:
        dataset = st.selectbox("Dataset", FINETUNE_DATASETS[modality], key="job_dataset")
        field_error(errors, "dataset")
        weight = st.selectbox("Start from weights", weight_choices, key="job_weights",
                              format_func=lambda w: names.get(w, f"weights/{w}"),
                              help="Registered weights and checkpoints (`cardio weights scan` registers the files "
                                   "dropped into the workspace's weights/ folder).")
        field_error(errors, "weights")
        device = st.selectbox("Device", ["auto", "cpu", "cuda"], key="job_device")
        field_error(errors, "device")
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
    spec = {"kind": kind, "modality": modality, "dataset": dataset, "weights": weight, "recipe": recipe,
            "overrides": overrides, "epochs": int(epochs), "checkpoint_every": int(every), "device": device,
            "seed": int(seed), "folds": [int(f) for f in folds] if modality == "cmr" else None}
    if kind == "sleep":
        spec.update(recipe=None, overrides={}, params={"seconds": 1.0})
    if not problems:
        try:
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


# -- the live table -------------------------------------------------------------------------------------------
def eta_text(seconds) -> str:
    if seconds is None or pd.isna(seconds):
        return ""
    seconds = int(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m {seconds % 60:02d}s"


def progress_text(row) -> str:
    """'40% · ETA 9m 00s · epoch 4/10': the stage says what a job at 100% still does (embeddings, UMAP, metrics)."""
    text = f"{row.progress:.0%}"
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


st.subheader("Jobs")
live_jobs()
