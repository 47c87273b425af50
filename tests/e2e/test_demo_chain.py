"""`cardio demo --size tiny` end to end, as a user runs it, then the real app on the workspace it made.

The chain runs as a real background job through the console script: demo data in the real
formats, ingest, MDM pre-training of the ECG baseline, an ECG fine-tune with two checkpoints,
a 5-fold CMR fine-tune, embeddings, aligned projections, metrics and the reports. The chain is killed
with SIGKILL at a point of each stage (DEMO_KILLS) and each time resumed with `cardio jobs resume`; every
resumed job continues the demo's own runs, and the store is consistent after every kill (issue 11). The store is
then checked for what issue 4's "done" names, for the baseline and every checkpoint. The
browser tests open every page on that workspace, select on the scatter, preview a record read
from its WFDB files, and launch a real (one-epoch) fine-tune from the Jobs form, following it
until its checkpoint opens in Explore.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.browser_testing import (REPO, RunningApp, assert_no_exception, box_select, choose, job_card_text,
                                 launch_job, settle)

from cardio_core.faults import ENV as KILL_ENV
from cardio_core.store import Store


# `./run test` distributes by file (--dist loadfile), so this module's demo fixture runs once.
pytestmark = pytest.mark.slow

# The demo chain killed with SIGKILL at one point of each stage, each resumed job killed at the next (the fault
# counters start again in every process): right after data and ingest; the MMCL pair's checkpoint written but not
# registered (after the MDM baseline and both baselines' analyses); the analysis of the ECG fine-tune's second
# checkpoint (that job's 4th metrics pass: the MMCL pair's two encoders, ECG checkpoints 1 and 2); entering the
# CMR fine-tune; its first fold's checkpoint written but not registered. The last resume runs to the end.
DEMO_KILLS = ["demo:step1", "checkpoint_written", "analysis:metrics#4", "demo:step4", "checkpoint_written"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
PAGES = {"": "CardioScope", "explore": "Explore", "compare": "Compare", "subclusters": "Sub-clusters",
         "metrics": "Metrics", "multimodal": "Multimodal (ECG ↔ CMR)", "jobs": "Jobs"}


def _cardio() -> list[str]:
    script = Path(sys.executable).with_name("cardio")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cardio_cli.main import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory, consistent):
    root = tmp_path_factory.mktemp("demo-chain-ws")
    env = {k: v for k, v in os.environ.items()
           if k not in ("CARDIO_CHAPMAN_DIR", "CARDIO_PTBXL_DIR", "CARDIO_ACDC_DIR", "CARDIO_PAIRED_DIR")}
    env["CARDIO_WORKSPACE"] = str(root)
    t = time.perf_counter()
    store = Store(root / "cardioscope.duckdb")
    # kill -9 at a stage of the chain, then `cardio jobs resume` of the killed job, killed at the next stage:
    jobs = []
    for point in DEMO_KILLS + [None]:
        run_env = {**env, KILL_ENV: point} if point else env
        args = ["demo", "--size", "tiny", "--device", "cpu"] if not jobs else ["jobs", "resume", jobs[-1], "--wait"]
        proc = subprocess.run(_cardio() + args, env=run_env, cwd=root, capture_output=True, text=True, timeout=900)
        if point:
            assert proc.returncode != 0, f"the kill point {point} was not reached:\n{proc.stdout[-2000:]}"
        else:
            assert proc.returncode == 0, \
                f"cardio demo failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        jobs.append(proc.stdout.strip().splitlines()[0].split()[0])
        if point:  # the killed job is recorded as died, and nothing it left is half-written
            status, error = store.query("SELECT status, error FROM jobs WHERE job_id = ?", [jobs[-1]])[0]
            assert status == "failed" and "process died" in error, (point, status, error)
            consistent(store)
    elapsed = time.perf_counter() - t
    print(f"cardio demo --size tiny, killed {len(DEMO_KILLS)} times and resumed: {elapsed:.0f} s")
    return {"root": root, "job_id": jobs[0], "resumed_id": jobs[-1], "jobs": set(jobs), "chain": jobs,
            "store": store, "elapsed": elapsed}


def test_demo_job_succeeds_and_says_so(demo_ws):
    store = demo_ws["store"]
    chain = demo_ws["chain"]
    for job_id in chain[:-1]:
        status, kind, error = store.query("SELECT status, kind, error FROM jobs WHERE job_id = ?", [job_id])[0]
        assert (kind, status) == ("demo", "failed") and "process died" in error  # the kills
    for before, job_id in zip(chain, chain[1:]):   # each job resumes the one killed before it
        kind, resume_of = store.query("SELECT kind, resume_of FROM jobs WHERE job_id = ?", [job_id])[0]
        assert (kind, resume_of) == ("demo", before)
    assert store.scalar("SELECT status FROM jobs WHERE job_id = ?", [chain[-1]]) == "succeeded"
    assert store.scalar("SELECT count(*) FROM datasets WHERE is_demo") == 5   # 3 cohorts + the paired pair


def test_store_holds_embeddings_projections_and_metrics_for_the_baseline_and_every_checkpoint(demo_ws):
    store, job = demo_ws["store"], demo_ws["job_id"]
    ecg_base = f"{job}-pretrain-mdm"
    ecg_run, cmr_run = f"{job}-ecg", f"{job}-cmr"
    ecg_ckpts = [r[0] for r in store.query("SELECT weights_id FROM checkpoints WHERE run_id = ? ORDER BY epoch",
                                           [ecg_run])]
    assert len(ecg_ckpts) == 2, "the tiny plan saves a checkpoint after each of its 2 epochs"
    # Lineage: checkpoint -> parent weights -> the job that made it.
    for wid in ecg_ckpts:
        parent, job_of = store.query("SELECT w.parent_weights_id, c.job_id FROM weights w JOIN checkpoints c "
                                     "USING (weights_id) WHERE weights_id = ?", [wid])[0]
        assert parent == ecg_base and job_of in demo_ws["jobs"]
    assert store.scalar("SELECT kind FROM weights WHERE weights_id = ?", [ecg_base]) == "pretrained"

    for wid in [ecg_base] + ecg_ckpts:
        # Every usable Chapman test record, the train records the linear probe is fitted on (all of them up
        # to the probe's limit, DEMO_PROBE_TRAIN_MAX for a demo dataset, a seeded subsample beyond) and the PTB-XL
        # display subset.
        from cardio_core.analysis.embeddings import DEMO_PROBE_TRAIN_MAX, probe_train_limit
        assert probe_train_limit(store) == DEMO_PROBE_TRAIN_MAX
        n = dict(store.query("SELECT r.split, count(*) FROM embeddings e JOIN records r USING (dataset_id, record_id) "
                             "WHERE e.weights_id = ? AND r.dataset_id IN ('chapman', 'ptbxl') GROUP BY 1", [wid]))
        n_test = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'test' "
                              "AND NOT excluded")
        n_train = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'train' "
                               "AND NOT excluded")
        n_display = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'ptbxl' AND split = 'display' "
                                 "AND NOT excluded")
        assert n == {"test": n_test, "train": min(n_train, DEMO_PROBE_TRAIN_MAX), "display": n_display} \
            and n_display > 0, (wid, n)
        views = dict(store.query("SELECT view, aligned_to FROM projections WHERE weights_id = ?", [wid]))
        # each checkpoint's default layouts are independent fits; checkpoints also get the aligned chain
        assert {"chapman_test", "cross_domain"} <= set(views), (wid, views)
        assert views["chapman_test"] is None and views["cross_domain"] is None, (wid, views)
        if wid != ecg_base:  # the evolution view's layouts, aligned to the run's earlier layout
            assert views["chapman_test_aligned"] and views["cross_domain_aligned"], (wid, views)
        n_points = store.scalar("SELECT count(*) FROM projection_points WHERE projection_id = ?",
                                [f"{wid}:chapman_test"])
        assert n_points == n_test
        # the supervised view: fitted on the train records, drawn on the test records only
        lda = store.query("SELECT method, params FROM projections WHERE weights_id = ? AND view = 'chapman_test_lda'",
                          [wid])
        assert lda and lda[0][0] == "lda" and json.loads(lda[0][1])["fitted_on"] == "chapman train", (wid, lda)
        assert store.scalar("SELECT count(*) FROM projection_points WHERE projection_id = ?",
                            [f"{wid}:chapman_test_lda"]) == n_test
        sil = store.query("SELECT label, value, ci_low, ci_high FROM metrics WHERE weights_id = ? "
                          "AND scope = 'chapman_test' AND name = 'silhouette'", [wid])
        assert any(label == "" for label, *_ in sil), "overall silhouette"
        assert any(lo is not None and lo <= v <= hi for _, v, lo, hi in sil), f"{wid}: no bootstrap interval"
        names = {r[0] for r in store.query("SELECT DISTINCT name FROM metrics WHERE weights_id = ?", [wid])}
        assert {"knn_purity", "linear_probe_macro_f1", "probe_age_r2", "probe_sex_auroc", "domain_auroc",
                "centroid_ratio"} <= names, (wid, names)
        if wid != ecg_base:
            assert {"f1", "precision", "recall", "prevalence_f1_r"} <= names, (wid, names)
        # The demo ingests a paired cohort, so every ECG encoder is also probed for CMR phenotypes.
        phen = store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ? AND scope = 'paired_phenotypes' "
                            "AND name = 'phenotype_r' AND value IS NOT NULL", [wid])
        assert phen == 10, (wid, phen)

    cmr_ckpts = store.query("SELECT weights_id, fold FROM checkpoints WHERE run_id = ?", [cmr_run])
    assert sorted(f for _, f in cmr_ckpts if f is not None) == [0, 1, 2, 3, 4]
    combined = [w for w, f in cmr_ckpts if f is None]
    assert len(combined) == 1, "one 5-fold checkpoint gathers each fold's validation embeddings"
    n_acdc = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'acdc' AND NOT excluded")
    assert store.scalar("SELECT count(DISTINCT record_id) FROM embeddings WHERE weights_id = ?", combined) == n_acdc
    assert store.scalar("SELECT count(DISTINCT fold) FROM embeddings WHERE weights_id = ?", combined) == 5
    # every patient's Grad-CAM, by its own fold's model (the fold it is embedded by), for the group it predicts
    cams = store.query("SELECT m.record_id, m.fold, e.fold, m.class, m.n_rows FROM cmr_maps m JOIN embeddings e "
                       "USING (weights_id, dataset_id, record_id) WHERE m.weights_id = ? AND m.kind = 'gradcam'",
                       combined)
    assert len(cams) == n_acdc and all(mf == ef for _, mf, ef, _, _ in cams), cams[:3]
    assert {c for *_, c, _ in cams} <= {"NOR", "MINF", "DCM", "HCM", "RV"} and all(n >= 1 for *_, n in cams)
    assert store.scalar("SELECT aligned_to FROM projections WHERE weights_id = ? AND view = 'acdc_aligned'", combined)
    assert store.scalar("SELECT aligned_to FROM projections WHERE weights_id = ? AND view = 'acdc'", combined) is None
    folds = store.query("SELECT fold, value FROM metrics WHERE weights_id = ? AND name = 'accuracy' AND fold >= 0",
                        combined)
    assert sorted(f for f, _ in folds) == [0, 1, 2, 3, 4] and all(0 <= v <= 1 for _, v in folds)
    cmr_base = store.scalar("SELECT parent_weights_id FROM runs WHERE run_id = ?", [cmr_run])
    assert store.scalar("SELECT count(*) FROM embeddings WHERE weights_id = ? AND dataset_id = 'acdc'",
                        [cmr_base]) == n_acdc


def test_mmcl_stage_trains_a_pair_on_the_paired_cohort_and_the_acdc_fine_tune_starts_from_it(demo_ws):
    store, job = demo_ws["store"], demo_ws["job_id"]
    pairs = store.query("SELECT pair_id, ecg_weights_id, cmr_weights_id FROM encoder_pairs WHERE run_id = ?",
                        [f"{job}-mmcl"])
    assert len(pairs) == 1, "the tiny plan: one MMCL epoch, one checkpoint"
    pair_id, ecg_id, cmr_id = pairs[0]
    assert store.scalar("SELECT parent_weights_id FROM weights WHERE weights_id = ?", [ecg_id]) == f"{job}-pretrain-mdm"
    assert store.scalar("SELECT parent_weights_id FROM runs WHERE run_id = ?", [f"{job}-cmr"]) == cmr_id
    top10 = store.query("SELECT label, value FROM metrics WHERE weights_id = ? AND scope = 'paired_test' "
                        "AND name = 'retrieval_top10'", [pair_id])
    assert top10 and all(0 <= v <= 1 for _, v in top10)
    assert store.scalar("SELECT count(*) FROM projections WHERE weights_id = ? AND view = 'paired_joint'", [pair_id])
    for wid in (pair_id, ecg_id, cmr_id):
        assert store.scalar("SELECT count(*) FROM analysis_complete WHERE weights_id = ?", [wid]) == 1, wid
    # the patch-similarity heatmap of every test subject: cosines on layer4's grid
    n_test = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'paired_cmr' AND split = 'test' "
                          "AND NOT excluded")
    heat = store.query("SELECT n_rows, n_cols, \"values\" FROM cmr_maps WHERE weights_id = ? AND kind = "
                       "'patch_similarity' AND dataset_id = 'paired_cmr'", [pair_id])
    assert len(heat) == n_test > 0
    assert all(len(v) == r * c and all(-1.0001 <= x <= 1.0001 for x in v) for r, c, v in heat)


def test_the_resumed_demo_continued_its_own_runs(demo_ws):
    """No orphaned partial runs: only the first job's two runs exist, each complete, every checkpoint analysed
    once; the ECG run's second epoch was retrained by the resumed job from the run's own resume state."""
    store, job = demo_ws["store"], demo_ws["job_id"]
    runs = dict(store.query("SELECT run_id, completed_at IS NOT NULL FROM runs"))
    assert runs == {f"{job}-mmcl": True, f"{job}-ecg": True, f"{job}-cmr": True}
    by_job = dict(store.query("SELECT epoch, job_id FROM checkpoints WHERE run_id = ?", [f"{job}-ecg"]))
    killed_in_ecg = demo_ws["chain"][DEMO_KILLS.index("analysis:metrics#4")]
    assert by_job == {1: killed_in_ecg, 2: demo_ws["chain"][DEMO_KILLS.index("analysis:metrics#4") + 1]}
    # the CMR run's first fold was killed between writing its checkpoint and registering it: every fold has its
    # checkpoints registered once
    folds = store.query("SELECT fold, epoch, count(*) FROM checkpoints WHERE run_id = ? AND fold IS NOT NULL "
                        "GROUP BY ALL", [f"{job}-cmr"])
    assert sorted(f for f, _, _ in folds) == [0, 1, 2, 3, 4] and all(n == 1 for *_, n in folds), folds
    unmarked = store.query("SELECT c.weights_id FROM checkpoints c LEFT JOIN analysis_complete a USING (weights_id) "
                           "WHERE c.fold IS NULL AND a.weights_id IS NULL")
    assert unmarked == []
    assert store.query("SELECT weights_id, view, count(*) FROM projections GROUP BY ALL HAVING count(*) > 1") == []
    retrained_by = demo_ws["chain"][DEMO_KILLS.index("analysis:metrics#4") + 1]
    log = (demo_ws["root"] / "runs" / retrained_by / "job.log").read_text()
    assert "Restoring states from the checkpoint" in log


def test_reports_are_written_and_stored(demo_ws):
    store, job = demo_ws["store"], demo_ws["job_id"]
    for run, heading in ((f"{job}-ecg", "Silhouette over rhythm labels"), (f"{job}-cmr", "ACDC accuracy")):
        out_dir, markdown, tables = store.query("SELECT out_dir, markdown, tables FROM reports WHERE run_id = ?",
                                                [run])[0]
        assert heading in markdown and "thesis" in markdown
        assert (Path(out_dir) / "report.md").read_text() == markdown
        tables = json.loads(tables) if isinstance(tables, str) else tables
        assert tables and all((Path(out_dir) / Path(f).name).exists() for f in tables.values())


# -- the real app on the demo workspace -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def page(demo_ws):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (./run test installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with RunningApp(demo_ws["root"], log_path=demo_ws["root"] / "streamlit-test.log") as url:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            pg = browser.new_page(viewport={"width": 1400, "height": 2400})
            pg.app_url = url
            yield pg
            browser.close()


def test_every_page_opens_on_the_demo_workspace(page):
    for path, title in PAGES.items():
        page.goto(f"{page.app_url}/{path}")
        settle(page, title)
        assert_no_exception(page, path or "overview")
        page.screenshot(path=str(ARTIFACTS / f"demo-page-{path or 'overview'}.png"), full_page=True)
    page.goto(f"{page.app_url}/explore?view=cross_domain")
    settle(page, "Explore")
    assert_no_exception(page, "explore cross-domain")
    assert page.locator(".js-plotly-plot").count() >= 1


def test_multimodal_page_shows_the_demo_pair_with_retrieval_and_the_joint_layout(page):
    page.goto(f"{page.app_url}/multimodal")
    settle(page, "Multimodal (ECG ↔ CMR)")
    assert_no_exception(page, "multimodal")
    page.get_by_text(re.compile(r"ECG → CMR top-10: [0-9.]+ against a chance level")).first.wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() >= 1          # the joint layout
    assert page.get_by_text("No joint layout for this pair").count() == 0
    page.screenshot(path=str(ARTIFACTS / "demo-multimodal.png"), full_page=True)
    heat = page.get_by_text("Cosine similarity of each location").first
    heat.wait_for(timeout=30_000)
    heat.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "demo-patch-similarity.png"))


def test_select_on_the_demo_scatter_and_preview_a_real_record(page):
    page.goto(f"{page.app_url}/explore")
    settle(page, "Explore")
    box_select(page, page.locator(".js-plotly-plot").first, 0.9, 0.9)
    summary = page.locator('[data-testid="stMarkdownContainer"] p').filter(has_text=re.compile(r"\d+ selected of"))
    summary.first.wait_for(timeout=30_000)
    assert int(summary.first.inner_text().split()[0]) > 0
    n_charts = page.locator(".js-plotly-plot").count()
    choose(page, "Record", "chapman:")
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length > {n_charts}", timeout=30_000)
    assert page.get_by_text("Cannot show this record").count() == 0
    assert_no_exception(page, "explore record preview")
    page.screenshot(path=str(ARTIFACTS / "demo-explore-preview.png"), full_page=True)


def test_where_the_fine_tuned_model_looks_in_a_record_cached_and_computed_on_request(page, demo_ws):
    store = demo_ws["store"]
    final = store.scalar("SELECT c.weights_id FROM checkpoints c JOIN runs r USING (run_id) WHERE r.modality = "
                         "'ecg' AND list_contains(?, r.job_id) ORDER BY c.epoch DESC LIMIT 1",
                         [sorted(demo_ws["jobs"])])
    cached = store.query("SELECT DISTINCT record_id FROM attention_maps WHERE weights_id = ? AND dataset_id = "
                         "'chapman' ORDER BY record_id", [final])
    assert len(cached) >= 2, "every analysis pass caches the maps of the first evaluation records"
    # the maps the analysis pass cached, from the trained checkpoint, drawn under the record's own input
    page.goto(f"{page.app_url}/explore?w={final}&rec=chapman:{cached[0][0]}&att=pool")
    settle(page, "Explore")
    page.get_by_text("The model's input (preprocessed").first.wait_for(timeout=30_000)
    assert_no_exception(page, "explore attention view")
    attention_chart = page.locator(".js-plotly-plot").filter(has_text="the model's input window")
    attention_chart.first.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "demo-attention.png"))
    # a record without maps: the button queues an attention job, the view draws the maps when it lands
    other = cached[-1][0]
    store.execute("DELETE FROM attention_maps WHERE weights_id = ? AND dataset_id = 'chapman' AND record_id = ?",
                  [final, other])
    page.goto(f"{page.app_url}/explore?w={final}&rec=chapman:{other}")
    settle(page, "Explore", draw_ms=500)
    page.get_by_role("button", name="Compute where the model looks").click()
    page.get_by_text("The model's input (preprocessed").first.wait_for(timeout=150_000)
    assert_no_exception(page, "explore attention view after its job")
    (job_id, status), = store.query("SELECT job_id, status FROM jobs WHERE kind = 'attention'")
    assert status == "succeeded"
    assert store.scalar("SELECT count(*) FROM attention_maps WHERE weights_id = ? AND record_id = ?",
                        [final, other]) == 4          # 3 blocks and the fine-tuned pool
    attention_chart.first.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "demo-attention-computed.png"))


def test_launch_a_real_finetune_from_the_form_and_open_its_checkpoint(page, demo_ws):
    store = demo_ws["store"]
    base = f"{demo_ws['job_id']}-pretrain-mdm"
    page.goto(f"{page.app_url}/jobs")
    settle(page, "Jobs", draw_ms=500)
    choose(page, "Recipe preset", "demo_ecg")
    choose(page, "Start from weights", "MDM pre-trained")
    # the fine-tune form is the page's first; the MMCL form below has its own Epochs
    page.get_by_label("Epochs", exact=True).first.fill("1")
    page.get_by_label("Checkpoint every N epochs", exact=True).first.fill("1")
    job_id = launch_job(page)
    spec = store.scalar("SELECT spec FROM jobs WHERE job_id = ?", [job_id])
    spec = json.loads(spec) if isinstance(spec, str) else spec
    assert (spec["kind"], spec["weights"], spec["recipe"], spec["epochs"]) == ("finetune", base, "demo_ecg", 1)

    seen, statuses = "", set()
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:  # the fragment refreshes the table every 3 s
        seen = job_card_text(page, job_id)
        statuses |= {s for s in ("queued", "starting", "running", "succeeded", "failed") if s in seen}
        if "running" in seen and re.search(r"\b\d+%", seen):
            page.screenshot(path=str(ARTIFACTS / "demo-jobs-running.png"), full_page=True)
        if "succeeded" in seen or "failed" in seen:
            break
        page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "demo-jobs-after-launch.png"), full_page=True)
    assert "succeeded" in seen and "100%" in seen, (statuses, seen)
    assert "running" in statuses, f"never saw it running: {statuses}"
    assert_no_exception(page, "jobs")

    ckpt = store.query("SELECT c.weights_id, w.parent_weights_id FROM checkpoints c JOIN weights w USING (weights_id) "
                       "WHERE c.job_id = ? ORDER BY c.epoch DESC", [job_id])
    assert ckpt and ckpt[0][1] == base
    # two views, each as an independent fit and as the aligned layout of the epoch evolution
    assert store.scalar("SELECT count(*) FROM projections WHERE weights_id = ? AND method = 'umap'", [ckpt[0][0]]) == 4

    # The finished job's card links to its last checkpoint in Explore.
    page.locator(f'a[href*="{ckpt[0][0]}"]').filter(has_text="Explore").first.click()
    settle(page, "Explore")
    page.wait_for_function("location.search.includes('w=')", timeout=10_000)
    assert ckpt[0][0] in page.url
    assert page.locator(".js-plotly-plot").count() >= 1
    assert_no_exception(page, "explore of the new checkpoint")
    page.screenshot(path=str(ARTIFACTS / "demo-explore-new-checkpoint.png"), full_page=True)


# -- the two roles the app was tried in: a cardiologist in a screen-shared review, a researcher -------------------
def _font_sizes(page, selector: str) -> list[float]:
    return page.evaluate(f"Array.from(document.querySelectorAll({selector!r})).map(e => parseFloat("
                         "getComputedStyle(e).fontSize))")


def test_clinician_in_review_mode_overlays_ptbxl_by_age_and_sex_and_reads_a_12_lead(page):
    page.set_viewport_size({"width": 1920, "height": 2400})   # a projector-sized screen
    page.goto(f"{page.app_url}/explore?view=cross_domain&colour=age&review=1")
    settle(page, "Explore")
    assert_no_exception(page, "review overlay by age")
    legend = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot .legendtext')).map(e => e.textContent)")
    assert any(t.startswith("PTB-XL ") and "-" in t for t in legend), legend          # age bands, not ages
    assert min(_font_sizes(page, ".js-plotly-plot .legendtext")) >= 18                # legible on a projector
    page.screenshot(path=str(ARTIFACTS / "review-overlay-age.png"), full_page=True)
    page.goto(f"{page.app_url}/explore?view=cross_domain&colour=sex&review=1")
    settle(page, "Explore")
    legend = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot .legendtext')).map(e => e.textContent)")
    assert {"PTB-XL F", "PTB-XL M"} & set(legend), legend
    page.screenshot(path=str(ARTIFACTS / "review-overlay-sex.png"), full_page=True)

    page.goto(f"{page.app_url}/explore?review=1")
    settle(page, "Explore")
    box_select(page, page.locator(".js-plotly-plot").first, 0.9, 0.9)
    summary = page.locator('[data-testid="stMarkdownContainer"] p').filter(has_text=re.compile(r"\d+ selected of"))
    summary.first.wait_for(timeout=30_000)
    assert not re.search(r"\bJS\d{5}\b", page.inner_text("body"))                  # no record id in review mode
    n_charts = page.locator(".js-plotly-plot").count()
    choose(page, "Record", "record #1")
    page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length > {n_charts}", timeout=30_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_timeout(1500)      # the preview's rerun redraws the charts: read them once it has settled
    assert page.get_by_text("Cannot show this record").count() == 0
    # the paper view is the chart with the paper-speed footer (the attention view may follow it)
    paper = ("[...document.querySelectorAll('.js-plotly-plot')].find(g => [...g.querySelectorAll('.annotation-text')]"
             ".some(a => a.textContent.includes('25 mm/s')))")
    ecg = page.locator(".js-plotly-plot").filter(has_text="25 mm/s").first
    footer = page.evaluate(f"[...({paper}).querySelectorAll('.annotation-text')].pop().textContent")
    assert "10 mm/mV" in footer, footer                                               # raw, in mV, by default
    grid_px = page.evaluate(f"({paper})._fullLayout.xaxis._length")
    assert grid_px / 260.0 >= 5.0, grid_px                                            # >= 5 px per mm (260 mm wide)
    lead_sizes = page.evaluate(f"[...({paper}).querySelectorAll('.annotation-text')]"
                               ".map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert min(lead_sizes) >= 16, lead_sizes
    assert_no_exception(page, "review 12-lead")
    ecg.screenshot(path=str(ARTIFACTS / "review-12-lead.png"))
    page.set_viewport_size({"width": 1400, "height": 2400})


def test_researcher_plays_the_epoch_evolution_and_reads_metrics(page):
    page.goto(f"{page.app_url}/compare")
    settle(page, "Compare")
    play = page.locator(".updatemenu-item-text").filter(has_text="Play")
    play.first.scroll_into_view_if_needed()
    play.first.click()
    page.wait_for_timeout(2500)
    assert_no_exception(page, "compare evolution playing")
    page.locator(".js-plotly-plot").filter(has=page.locator(".slider-container")).first.screenshot(
        path=str(ARTIFACTS / "compare-evolution.png"))
    assert page.get_by_text("Change CI: paired bootstrap").count() >= 1
    page.goto(f"{page.app_url}/metrics")
    settle(page, "Metrics")
    page.get_by_role("tab", name="CMR (ACDC)").click()
    page.get_by_text(re.compile(r"Chance level is 0\.20")).first.wait_for(timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "metrics-cmr.png"), full_page=True)
    page.get_by_role("tab", name="Thesis side by side").click()
    page.get_by_text(re.compile(r"Fine-tuned = run ")).first.wait_for(timeout=20_000)
    assert_no_exception(page, "metrics")
    page.screenshot(path=str(ARTIFACTS / "metrics-thesis.png"), full_page=True)
