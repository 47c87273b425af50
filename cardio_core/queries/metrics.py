"""Stored metrics as the Compare and Metrics pages and the Overview show them.

Summaries (fold mean ± SE/SD, percent change, the prevalence-F1 fit) come from
cardio_core.metrics, the same functions the report uses.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from cardio_core import metrics as M
from cardio_core.labels import CLASSES
from cardio_core.metrics.thesis import THESIS
from cardio_core.queries.weights import run_checkpoints


def metrics(store, weights_ids: Iterable[str], scope: str | None = None, names: Iterable[str] = ()) -> pd.DataFrame:
    weights_ids, names = list(weights_ids), list(names)
    if not weights_ids:
        return pd.DataFrame(columns=["weights_id", "scope", "name", "label", "fold", "value", "ci_low", "ci_high",
                                     "n"])
    # n: how many records a value rests on, where the pipeline recorded it
    sql = ("SELECT weights_id, scope, name, label, fold, value, ci_low, ci_high, "
           "TRY_CAST(extra->>'n' AS DOUBLE) AS n FROM metrics WHERE list_contains(?, weights_id)")
    params: list[Any] = [weights_ids]
    if scope is not None:
        sql += " AND scope = ?"
        params.append(scope)
    if names:
        sql += " AND list_contains(?, name)"
        params.append(names)
    return store.query_df(sql + " ORDER BY weights_id, scope, name, label, fold", params)


def silhouette_comparison(store, baseline_id: str, other_id: str, scope: str = "chapman_test") -> pd.DataFrame:
    """Per-label (and overall, label 'overall') silhouettes of two weights with change, % change and CIs."""
    df = metrics(store, [baseline_id, other_id], scope, ["silhouette"])
    df = df[df["fold"] == -1]
    cols = ["value", "ci_low", "ci_high"]
    a = df[df["weights_id"] == baseline_id].set_index("label")[cols].add_prefix("baseline_")
    b = df[df["weights_id"] == other_id].set_index("label")[[*cols, "n"]].add_prefix("other_")
    out = a.join(b, how="outer").rename(columns={"other_n": "n"})
    out["change"] = M.change(out["other_value"], out["baseline_value"])
    out["pct_change"] = M.percent_change(out["other_value"], out["baseline_value"], floor=M.SILHOUETTE_PERCENT_FLOOR)
    out.index = ["overall" if i == "" else i for i in out.index]
    out.index.name = "label"
    return out.reset_index()


# The records each scope draws from: the denominator of "n = 125 of 294".
SCOPE_RECORDS = {"chapman_test": ("chapman", "split = 'test'"), "ptbxl_display": ("ptbxl", "split = 'display'"),
                 "cross_domain": ("ptbxl", "split = 'display'"), "acdc": ("acdc", "TRUE")}


def scope_size(store, scope: str) -> int:
    """How many usable records the scope's split holds (all of them, single-labelled or not)."""
    if scope not in SCOPE_RECORDS:
        raise ValueError(f"scope must be one of {', '.join(SCOPE_RECORDS)}; got {scope!r}")
    dataset_id, where = SCOPE_RECORDS[scope]
    return int(store.scalar(f"SELECT count(*) FROM records WHERE dataset_id = ? AND NOT excluded AND {where}",
                            [dataset_id]) or 0)


def centroid_tables(store, weights_ids: Iterable[str]) -> dict[str, pd.DataFrame]:
    """'single_multi': per weights and label, single / multi / ratio / % diff, and the distances relative to the
    embedding's own scale (metrics.embedding_scale); 'cross_domain': PTB-XL->Chapman."""
    df = metrics(store, weights_ids)
    sm = df[df["name"].isin(["centroid_single", "centroid_multi", "centroid_ratio", "centroid_pct_diff"])]
    single_multi = sm.pivot_table(index=["weights_id", "label"], columns="name", values="value").reset_index()
    scale = df[(df["name"] == "embedding_scale") & (df["label"] == "")].set_index("weights_id")["value"]
    if len(single_multi):
        s = single_multi["weights_id"].map(scale).astype(float)
        for col in ("centroid_single", "centroid_multi"):
            if col in single_multi:
                single_multi[f"{col}_rel"] = single_multi[col] / s
        single_multi["embedding_scale"] = s
    cd = df[df["name"].isin(["ptbxl_to_chapman_centroid", "share_sr_closer_to_sb"])]
    cross = cd.pivot_table(index="label", columns="weights_id", values="value").reset_index()
    cross["label"] = cross["label"].replace("", "share of PTB-XL SR closer to SB")
    return {"single_multi": single_multi, "cross_domain": cross}


PROBE_NAMES = ("probe_age_r2", "probe_sex_auroc", "probe_bmi_r2", "domain_auroc", "linear_probe_macro_f1", "knn_purity")


def probe_trend(store, run_id: str, baseline_id: str | None = None) -> pd.DataFrame:
    """Demographic probes (and friends) per checkpoint of a run, epoch 0 = the baseline; long format."""
    ckpts = run_checkpoints(store, run_id)[["weights_id", "epoch"]]
    if baseline_id is not None:
        ckpts = pd.concat([pd.DataFrame({"weights_id": [baseline_id], "epoch": [0]}), ckpts], ignore_index=True)
    df = metrics(store, ckpts["weights_id"], names=PROBE_NAMES)
    df = df[(df["label"] == "") & (df["fold"] == -1)]
    return df.merge(ckpts, on="weights_id")[["epoch", "weights_id", "scope", "name", "value"]].sort_values(["name", "epoch"])


def per_class_table(store, weights_id: str, scope: str = "chapman_test") -> pd.DataFrame:
    """F1, precision, recall, support, prevalence per class (CLASSES order), plus a 'macro' row."""
    df = metrics(store, [weights_id], scope, ["f1", "precision", "recall", "support", "prevalence"])
    if df.empty:
        return pd.DataFrame(columns=["label", "f1", "f1_ci_low", "f1_ci_high", "precision", "recall", "support",
                                     "prevalence"])
    wide = df.pivot_table(index="label", columns="name", values="value")
    order = [c for c in CLASSES if c in wide.index] + [c for c in wide.index if c not in CLASSES]
    wide = wide.loc[order].rename(index={"": "macro"})
    for col in ("f1", "precision", "recall", "support", "prevalence"):
        if col not in wide.columns:
            wide[col] = np.nan
    f1 = df[df["name"] == "f1"].set_index("label").rename(index={"": "macro"})
    wide["f1_ci_low"], wide["f1_ci_high"] = f1["ci_low"].reindex(wide.index), f1["ci_high"].reindex(wide.index)
    # the macro row first: the summary a reader looks for, visible without scrolling
    wide = wide.loc[["macro", *[i for i in wide.index if i != "macro"]] if "macro" in wide.index else wide.index]
    return wide[["f1", "f1_ci_low", "f1_ci_high", "precision", "recall", "support", "prevalence"]] \
        .rename_axis("label").reset_index()


def prevalence_vs_f1(table: pd.DataFrame) -> dict[str, float]:
    """Least-squares line and Pearson r of F1 against prevalence over the per-class rows (metrics.prevalence_f1_fit)."""
    rows = table[table["label"] != "macro"]
    return M.prevalence_f1_fit(rows["prevalence"].astype(float), rows["f1"].astype(float))


def acdc_folds(store, weights_id: str) -> dict[str, Any]:
    """CMR per-fold accuracy and silhouette with mean ± SE (accuracy) / ± SD (silhouette), intra/inter ratios."""
    df = metrics(store, [weights_id], "acdc", ["accuracy", "silhouette", "intra_inter_ratio"])
    per_fold = df[(df["fold"] >= 0) & (df["label"] == "")].pivot_table(index="fold", columns="name", values="value")
    out: dict[str, Any] = {"per_fold": per_fold.reset_index()}
    if "accuracy" in per_fold:
        acc = M.fold_summary(per_fold["accuracy"])
        out["accuracy_mean"], out["accuracy_se"] = acc.mean, acc.se
    if "silhouette" in per_fold:
        sil = M.fold_summary(per_fold["silhouette"])
        out["silhouette_mean"], out["silhouette_sd"] = sil.mean, sil.sd
    ii = df[(df["name"] == "intra_inter_ratio") & (df["fold"] >= 0)]
    rows = [(label, (fs := M.fold_summary(group["value"])).mean, fs.sd, fs.n)
            for label, group in ii.groupby("label")]
    out["intra_inter"] = pd.DataFrame(rows, columns=["label", "mean", "std", "count"])
    return out


def thesis_side_by_side(store, baseline_id: str | None, finetuned_id: str | None) -> pd.DataFrame:
    """This workspace's headline numbers next to the thesis's (method.md §6)."""
    want = [x for x in (baseline_id, finetuned_id) if x]
    m = metrics(store, want)

    def value(wid, scope, name, label=""):
        if wid is None:
            return float("nan")
        hit = m[(m["weights_id"] == wid) & (m["scope"] == scope) & (m["name"] == name) & (m["label"] == label)
                & (m["fold"] == -1)]
        return float(hit["value"].iloc[0]) if len(hit) else float("nan")

    rows = [("silhouette, Chapman test (rhythm)", *THESIS["silhouette_chapman"],
             value(baseline_id, "chapman_test", "silhouette"), value(finetuned_id, "chapman_test", "silhouette")),
            ("silhouette, PTB-XL display (rhythm)", *THESIS["silhouette_ptbxl"],
             value(baseline_id, "ptbxl_display", "silhouette"), value(finetuned_id, "ptbxl_display", "silhouette"))]
    for lab, (b, f) in THESIS["silhouette_chapman_per_label"].items():
        rows.append((f"silhouette {lab}", b, f, value(baseline_id, "chapman_test", "silhouette", lab),
                     value(finetuned_id, "chapman_test", "silhouette", lab)))
    for lab, f in THESIS["f1_chapman"].items():
        rows.append((f"F1 {lab}", float("nan"), f, float("nan"), value(finetuned_id, "chapman_test", "f1", lab)))
    rows.append(("macro F1 (20 labels)", float("nan"), THESIS["macro_f1_chapman"], float("nan"),
                 value(finetuned_id, "chapman_test", "f1")))
    return pd.DataFrame(rows, columns=["metric", "thesis_baseline", "thesis_finetuned", "baseline", "finetuned"])
