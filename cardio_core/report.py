"""`cardio report RUN`: the thesis-style tables of one run, as Markdown and CSV.

Every table compares the run's baseline (runs.parent_weights_id) with each of its
checkpoints (for CMR, the per-epoch entries across folds), and puts the thesis's
published numbers (`metrics.thesis.THESIS`) beside ours. The numbers are read from
the `metrics` table only; nothing is recomputed except fold means of per-fold values
that analysis/evaluate.py stores per fold only. A metric that is not stored shows as '—' in the
Markdown and as an empty cell in the CSV.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cardio_core import labels as L
from cardio_core.errors import CardioError
from cardio_core.metrics.definitions import as_markdown as definitions_markdown
from cardio_core.metrics.summary import FEW_RECORDS, SILHOUETTE_PERCENT_FLOOR, few_records, fold_summary, percent_change
from cardio_core.metrics.thesis import THESIS

MISSING = "—"


@dataclass(frozen=True)
class Entry:
    """One column of the comparison: the baseline or one checkpoint."""
    name: str            # 'baseline' | 'epoch 10'
    weights_id: str
    epoch: int | None    # None for the baseline


class _Metrics:
    """Lookup of stored metric rows by (weights_id, scope, name, label, fold)."""

    def __init__(self, df: pd.DataFrame):
        self._rows = {}
        for r in df.itertuples(index=False):
            extra = json.loads(r.extra) if isinstance(r.extra, str) and r.extra else {}
            self._rows[(r.weights_id, r.scope, r.name, r.label, int(r.fold))] = {
                "value": _num(r.value), "ci_low": _num(r.ci_low), "ci_high": _num(r.ci_high), "extra": extra}

    def get(self, wid, scope, name, label="", fold=-1) -> dict | None:
        return self._rows.get((wid, scope, name, label, fold))

    def value(self, wid, scope, name, label="", fold=-1) -> float:
        row = self.get(wid, scope, name, label, fold)
        return row["value"] if row else math.nan

    def extra(self, wid, scope, name, key, label="", fold=-1) -> float:
        row = self.get(wid, scope, name, label, fold)
        return _num(row["extra"].get(key)) if row else math.nan

    def labels(self, wids, scope, name) -> list[str]:
        found = {k[3] for k in self._rows if k[0] in wids and k[1] == scope and k[2] == name and k[3]}
        return sorted(found)

    def folds(self, wid, scope, name, label="") -> dict[int, float]:
        return {k[4]: v["value"] for k, v in self._rows.items()
                if k[:4] == (wid, scope, name, label) and k[4] >= 0 and not math.isnan(v["value"])}


def _num(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def _change(value: float, base: float, floor: float = 0.0) -> tuple[float, float]:
    return value - base, percent_change(value, base, floor=floor)


# -- loading ----------------------------------------------------------------------------

def run_entries(store, run_id: str) -> tuple[dict, list[Entry]]:
    """The run row and its entries: the baseline first, then checkpoints by epoch.

    Fold checkpoints of a CMR run are left out; their per-epoch entry across folds
    (checkpoints.fold NULL) stands for them.
    """
    runs = store.query_df("SELECT * FROM runs WHERE run_id = ?", [run_id])
    if runs.empty:
        known = [r[0] for r in store.query("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 10")]
        hint = f"; known runs: {', '.join(known)}" if known else "; the store holds no runs yet"
        raise CardioError(f"unknown run {run_id!r}{hint}")
    run = runs.iloc[0].to_dict()
    entries = []
    if run.get("parent_weights_id"):
        entries.append(Entry("baseline", run["parent_weights_id"], None))
    for wid, epoch in store.query("SELECT weights_id, epoch FROM checkpoints WHERE run_id = ? AND fold IS NULL "
                                  "ORDER BY epoch, weights_id", [run_id]):
        entries.append(Entry(f"epoch {epoch}", wid, int(epoch)))
    return run, entries


def _load_metrics(store, entries: list[Entry]) -> _Metrics:
    ids = [e.weights_id for e in entries]
    df = store.query_df("SELECT weights_id, scope, name, label, fold, value, ci_low, ci_high, CAST(extra AS TEXT) "
                        "AS extra FROM metrics WHERE list_contains(?, weights_id)", [ids])
    return _Metrics(df)


# -- tables -----------------------------------------------------------------------------

def _comparison(entries, quantities, fetch, *, pct_floor: float = 0.0) -> pd.DataFrame:
    """Long table: one row per (quantity, entry), with change and % change against the baseline.

    quantities: (name, thesis_baseline, thesis_finetuned); fetch(wid, name) -> dict of columns
    whose 'value' is compared.
    """
    rows = []
    baseline = next((e for e in entries if e.epoch is None), None)
    for name, thesis_b, thesis_f in quantities:
        base = fetch(baseline.weights_id, name)["value"] if baseline else math.nan
        for e in entries:
            cols = fetch(e.weights_id, name)
            change, pct = _change(cols["value"], base, pct_floor) if e.epoch is not None else (math.nan, math.nan)
            rows.append({"quantity": name, "entry": e.name, "weights_id": e.weights_id, **cols,
                         "change": change, "pct_change": pct,
                         "thesis": thesis_b if e.epoch is None else thesis_f})
    return pd.DataFrame(rows)


def _with_ci(m: _Metrics, scope, name, label_of=lambda q: q, baseline_id: str | None = None):
    def fetch(wid, q):
        row = m.get(wid, scope, name, label_of(q)) or {}
        # n: a label with one record has silhouette 0 by definition, and a [0, 0] interval.
        n = _num((row.get("extra") or {}).get("n"))
        cols = {"value": row.get("value", math.nan), "ci_low": row.get("ci_low", math.nan),
                "ci_high": row.get("ci_high", math.nan), "n": n,
                "few_records": bool(few_records(n)) if q != "overall" else False}
        if name == "silhouette":
            cols.update(_paired_change(m, wid, scope, label_of(q), baseline_id))
        return cols
    return fetch


def _paired_change(m: _Metrics, wid, scope, label, baseline_id) -> dict:
    """The stored paired-bootstrap interval of this checkpoint's change against the run's baseline."""
    row = m.get(wid, scope, "silhouette_change", label)
    if row is None or (baseline_id and row["extra"].get("baseline_weights_id") != baseline_id):
        return {"change_ci_low": math.nan, "change_ci_high": math.nan}
    return {"change_ci_low": row["ci_low"], "change_ci_high": row["ci_high"]}


def _overall(q: str) -> str:
    return "" if q == "overall" else q


def ecg_tables(m: _Metrics, entries: list[Entry]) -> dict[str, pd.DataFrame]:
    ids = [e.weights_id for e in entries]
    base_id = next((e.weights_id for e in entries if e.epoch is None), None)
    nan = math.nan
    tables: dict[str, pd.DataFrame] = {}

    per_label = THESIS["silhouette_chapman_per_label"]
    labels = sorted(set(L.RHYTHM_LABELS) | set(m.labels(ids, "chapman_test", "silhouette")))
    quantities = [("overall", *THESIS["silhouette_chapman"])] + [(lab, *per_label.get(lab, (nan, nan)))
                                                                 for lab in labels]
    tables["silhouette_chapman"] = _comparison(
        entries, quantities, _with_ci(m, "chapman_test", "silhouette", _overall, base_id),
        pct_floor=SILHOUETTE_PERCENT_FLOOR).rename(columns={"quantity": "label"})
    labels = sorted(set(L.RHYTHM_LABELS) | set(m.labels(ids, "ptbxl_display", "silhouette")))
    quantities = [("overall", *THESIS["silhouette_ptbxl"])] + [(lab, nan, nan) for lab in labels]
    tables["silhouette_ptbxl"] = _comparison(
        entries, quantities, _with_ci(m, "ptbxl_display", "silhouette", _overall, base_id),
        pct_floor=SILHOUETTE_PERCENT_FLOOR).rename(columns={"quantity": "label"})

    rows = []
    for lab in sorted(set(L.RHYTHM_LABELS) | set(m.labels(ids, "chapman_test", "centroid_single"))):
        for e in entries:
            get = lambda name: m.value(e.weights_id, "chapman_test", name, lab)  # noqa: E731
            rows.append({"label": lab, "entry": e.name, "weights_id": e.weights_id,
                         "n_single": m.extra(e.weights_id, "chapman_test", "centroid_single", "n", lab),
                         "single": get("centroid_single"),
                         "n_multi": m.extra(e.weights_id, "chapman_test", "centroid_multi", "n", lab),
                         "multi": get("centroid_multi"), "ratio": get("centroid_ratio"),
                         "pct_difference": get("centroid_pct_diff")})
    tables["centroids"] = pd.DataFrame(rows)

    shares = {"share of PTB-XL SR closer to the PTB-XL SB centroid": "share_sr_closer_to_sb",
              "share of PTB-XL SB closer to the PTB-XL SR centroid": "share_sb_closer_to_sr",
              "share of PTB-XL SR closer to the Chapman SB centroid": "share_sr_closer_to_sb_chapman_centroids"}

    def cross(wid, q):
        if q in shares:
            n = m.extra(wid, "cross_domain", shares[q], "n")
            return {"value": m.value(wid, "cross_domain", shares[q]), "n": n, "few_records": bool(few_records(n))}
        lab = q.split()[-2]
        n = m.extra(wid, "cross_domain", "ptbxl_to_chapman_centroid", "n", lab)
        return {"value": m.value(wid, "cross_domain", "ptbxl_to_chapman_centroid", lab), "n": n,
                "few_records": bool(few_records(n))}
    labels = sorted(set(L.RHYTHM_LABELS) | set(m.labels(ids, "cross_domain", "ptbxl_to_chapman_centroid")))
    quantities = [(f"distance to Chapman {lab} centroid", nan, nan) for lab in labels]
    quantities += [(q, nan, THESIS.get(name, nan)) for q, name in shares.items()]
    tables["cross_domain"] = _comparison(entries, quantities, cross)

    tables["classification"] = classification_table(m, entries)

    rows = []
    for e in entries:
        w = e.weights_id
        rows.append({"entry": e.name, "weights_id": w,
                     "age_r2": m.value(w, "chapman_test", "probe_age_r2"),
                     "age_mae": m.extra(w, "chapman_test", "probe_age_r2", "mae"),
                     "sex_auroc": m.value(w, "chapman_test", "probe_sex_auroc"),
                     "knn_purity": m.value(w, "chapman_test", "knn_purity"),
                     "linear_probe_macro_f1": m.value(w, "chapman_test", "linear_probe_macro_f1"),
                     "linear_probe_n_train": m.extra(w, "chapman_test", "linear_probe_macro_f1", "n_train"),
                     "head_macro_f1": m.value(w, "chapman_test", "f1"),
                     "domain_auroc": m.value(w, "cross_domain", "domain_auroc")})
    tables["probes"] = pd.DataFrame(rows)
    return tables


def classification_table(m: _Metrics, entries: list[Entry]) -> pd.DataFrame:
    """Per-class scores on the test split of the last entry that has them, macro and Pearson r rows."""
    scored = [e for e in entries if m.labels([e.weights_id], "chapman_test", "f1")]
    entry = scored[-1] if scored else (entries[-1] if entries else None)
    if entry is None:
        return pd.DataFrame(columns=["entry", "class", "support", "prevalence", "precision", "recall", "f1",
                                     "thesis_f1"])
    w = entry.weights_id
    rows = []
    for cls in L.CLASSES:
        rows.append({"entry": entry.name, "class": cls,
                     **{k: m.value(w, "chapman_test", k, cls)
                        for k in ("support", "prevalence", "precision", "recall", "f1")},
                     "thesis_f1": THESIS["f1_chapman"].get(cls, math.nan)})
    rows.append({"entry": entry.name, "class": "macro", "support": math.nan, "prevalence": math.nan,
                 **{k: m.value(w, "chapman_test", k) for k in ("precision", "recall", "f1")},
                 "thesis_f1": THESIS["macro_f1_chapman"]})
    rows.append({"entry": entry.name, "class": "Pearson r (prevalence vs F1)", "support": math.nan,
                 "prevalence": math.nan, "precision": math.nan, "recall": math.nan,
                 "f1": m.value(w, "chapman_test", "prevalence_f1_r"), "thesis_f1": math.nan})
    return pd.DataFrame(rows)


def _fold_summary(m: _Metrics, wid, name, label) -> dict:
    """Mean +- SD over folds: the stored fold -1 row if there is one, else from the per-fold rows."""
    row = m.get(wid, "acdc", name, label)
    per_fold = m.folds(wid, "acdc", name, label)
    if row is not None and not math.isnan(row["value"]):
        return {"value": row["value"], "sd": _num(row["extra"].get("sd")), "n_folds": len(per_fold) or math.nan}
    if not per_fold:
        return {"value": math.nan, "sd": math.nan, "n_folds": math.nan}
    summary = fold_summary(list(per_fold.values()))
    return {"value": summary.mean, "sd": summary.sd, "n_folds": summary.n}


def cmr_tables(m: _Metrics, entries: list[Entry]) -> dict[str, pd.DataFrame]:
    ids = [e.weights_id for e in entries]
    nan = math.nan
    (thesis_b, thesis_b_sd), (thesis_f, thesis_f_sd) = THESIS["acdc_silhouette"]
    tables: dict[str, pd.DataFrame] = {}
    labels = sorted(set(L.ACDC_GROUPS) | set(m.labels(ids, "acdc", "silhouette")))
    quantities = [("overall", thesis_b, thesis_f)] + [(lab, nan, nan) for lab in labels]
    sil = _comparison(entries, quantities, lambda w, q: _fold_summary(m, w, "silhouette", _overall(q)),
                      pct_floor=SILHOUETTE_PERCENT_FLOOR)
    sil["thesis_sd"] = [(thesis_b_sd if e == "baseline" else thesis_f_sd) if q == "overall" else nan
                        for q, e in zip(sil["quantity"], sil["entry"])]
    tables["acdc_silhouette"] = sil.rename(columns={"quantity": "label"})
    labels = sorted(set(L.ACDC_GROUPS) | set(m.labels(ids, "acdc", "intra_inter_ratio")))
    tables["acdc_intra_inter_ratio"] = _comparison(
        entries, [(lab, nan, nan) for lab in labels],
        lambda w, q: _fold_summary(m, w, "intra_inter_ratio", q)).rename(columns={"quantity": "label"})
    acc_mean, acc_se = THESIS["acdc_accuracy"]
    rows = []
    for e in entries:
        w = e.weights_id
        per_fold = m.folds(w, "acdc", "accuracy")
        rows.append({"entry": e.name, "weights_id": w, "accuracy": m.value(w, "acdc", "accuracy"),
                     "se": m.extra(w, "acdc", "accuracy", "se"), "n_folds": len(per_fold) or nan,
                     **{f"fold_{k}": v for k, v in sorted(per_fold.items())},
                     "thesis_accuracy": acc_mean if e.epoch is not None else nan,
                     "thesis_se": acc_se if e.epoch is not None else nan})
    tables["acdc_accuracy"] = pd.DataFrame(rows)
    tables["probes"] = pd.DataFrame([{"entry": e.name, "weights_id": e.weights_id,
                                      "bmi_r2": m.value(e.weights_id, "acdc", "probe_bmi_r2"),
                                      "bmi_mae": m.extra(e.weights_id, "acdc", "probe_bmi_r2", "mae")}
                                     for e in entries])
    return tables


def report_tables(store, run_id: str) -> dict[str, pd.DataFrame]:
    """All tables of a run, by name (also the CSV file stem). Raises CardioError for an unknown run."""
    run, entries = run_entries(store, run_id)
    m = _load_metrics(store, entries)
    if run["modality"] == "cmr":
        return cmr_tables(m, entries)
    return ecg_tables(m, entries)


# -- writing ----------------------------------------------------------------------------

TITLES = {
    "silhouette_chapman": "Silhouette over rhythm labels, Chapman test split (ci: bootstrap 95% CI of the value; "
                          "change_ci: paired bootstrap 95% CI of the change against the baseline)",
    "silhouette_ptbxl": "Silhouette over rhythm labels, PTB-XL display subset (ci: bootstrap 95% CI of the value; "
                        "change_ci: paired bootstrap 95% CI of the change against the baseline)",
    "centroids": "Distance to the label centroid: single- vs multi-labelled records (Chapman test)",
    "cross_domain": "Cross-domain: mean distance of PTB-XL records to the Chapman centroid of their label; "
                    "shares of PTB-XL records closer to another label's centroid (PTB-XL's own centroids, as the "
                    "thesis; the Chapman-centroid variant under its own name)",
    "classification": "Per-class scores at threshold 0.5, Chapman test split",
    "probes": "Probes of the frozen embeddings",
    "acdc_silhouette": "ACDC silhouette, mean +- SD over folds",
    "acdc_intra_inter_ratio": "ACDC intra/inter ratio (mean distance to the label's centroid / mean distance "
                              "from its centroid to the other centroids), mean +- SD over folds",
    "acdc_accuracy": "ACDC accuracy, mean +- SE over folds",
}


def _cell(x, column: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    if isinstance(x, (bool, np.bool_)):
        return f"yes (< {FEW_RECORDS} records)" if x else ""
    if isinstance(x, (float, np.floating, int, np.integer)):
        if column == "n" or column.startswith("n_") or column == "support":
            return f"{x:.0f}"
        return f"{x:.1f}" if "pct" in column else f"{x:.3f}"
    return str(x).replace("|", "\\|")


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; missing values as '—'."""
    if df.empty:
        return "_no data_\n"
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, c) for v, c in zip(row, df.columns)) + " |")
    return "\n".join(lines) + "\n"


def best_line(run: dict) -> str:
    """The run's best checkpoint, as the report states it."""
    best = run.get("best_weights_id")
    if not best or (isinstance(best, float) and math.isnan(best)):
        return "Best checkpoint: none marked yet.\n"
    return f"Best checkpoint: {best} ({run.get('best_metric')} = {_num(run.get('best_value')):.4f}).\n"


def write_report(store, run_id: str, out_dir: str | Path) -> list[Path]:
    """Write report.md and one CSV per table to out_dir; returns the written paths (report.md first)."""
    run, entries = run_entries(store, run_id)
    tables = report_tables(store, run_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# Run {run_id}\n",
             f"modality {run['modality']}, dataset {run['dataset_id']}, recipe {run.get('recipe') or MISSING}, "
             f"baseline {run.get('parent_weights_id') or MISSING}, {sum(e.epoch is not None for e in entries)} "
             "checkpoint(s).\n",
             best_line(run),
             "Change and % change are against the baseline; `thesis` columns are the published numbers "
             f"(the thesis's published values). Missing values: {MISSING}. `few_records` flags a per-label number "
             f"resting on fewer than {FEW_RECORDS} records: read it as noise.\n"]
    written = [out_dir / "report.md"]
    for name, df in tables.items():
        parts.append(f"## {TITLES.get(name, name)}\n")
        parts.append(to_markdown(df))
        path = out_dir / f"{name}.csv"
        df.to_csv(path, index=False)
        written.append(path)
    parts.append("## Definitions\n")
    parts.append(definitions_markdown())
    markdown = "\n".join(parts)
    written[0].write_text(markdown, encoding="utf-8")
    # the store keeps the report with the run, so it travels with the metrics it was made from
    with store.write() as con:
        con.execute("DELETE FROM reports WHERE run_id = ?", [run_id])
        con.execute("INSERT INTO reports (run_id, out_dir, markdown, tables) VALUES (?, ?, ?, ?)",
                    [run_id, str(out_dir), markdown, json.dumps({p.stem: str(p) for p in written[1:]})])
    return written
