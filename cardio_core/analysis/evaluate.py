"""Metrics of one set of weights, computed from its stored embeddings and written to `metrics`.

Scopes: 'chapman_test', 'ptbxl_display', 'cross_domain' (ECG) and 'acdc' (CMR). The
definitions are cardio_core.metrics'; this module only selects records, calls them and
stores the numbers, so the app and the report read one table.
"""
from __future__ import annotations

import numpy as np

from cardio_core import labels as L
from cardio_core import metrics as M
from cardio_core.analysis.embeddings import load_embeddings
from cardio_core.analysis.metric_rows import MetricRows
from cardio_core.store import Store
from cardio_core.data.dataset_view import load_view


# What evaluate_ecg / evaluate_cmr own (and so replace on a re-run).
ECG_EMBEDDING_METRICS = ("silhouette", "centroid_single", "centroid_multi", "centroid_ratio", "centroid_pct_diff",
                         "knn_purity", "probe_age_r2", "probe_sex_auroc", "linear_probe_macro_f1",
                         "ptbxl_to_chapman_centroid", "share_sr_closer_to_sb", "domain_auroc", "embedding_scale")
CMR_EMBEDDING_METRICS = ("silhouette", "intra_inter_ratio", "probe_bmi_r2")


def _embedded_view(store: Store, weights_id: str, dataset_id: str, where: str):
    view = load_view(store, dataset_id, where=where)
    ids, X = load_embeddings(store, weights_id, dataset_id)
    keep = np.isin(view.records["record_id"].values, ids)
    view = view.subset(keep)
    _, X = load_embeddings(store, weights_id, dataset_id, record_ids=view.records["record_id"].tolist())
    return view, X


def _silhouettes(rows: MetricRows, scope, X, Y, classes, rhythm, n_boot, seed):
    try:
        report = M.silhouette_report(X, Y, classes, rhythm_labels=rhythm, n_boot=n_boot, seed=seed)
    except ValueError as exc:  # too few single-labelled records (tiny sets)
        rows.add(scope, "silhouette", None, note=str(exc))
        return
    for label, r in report.iterrows():
        rows.add(scope, "silhouette", r["silhouette"], label="" if label == "overall" else label,
                 ci=(r["ci_low"], r["ci_high"]), n=int(r["n"]))


def evaluate_ecg(store: Store, weights_id: str, *, n_boot: int = 200, seed: int = 0) -> MetricRows:
    rows = MetricRows(weights_id)
    chap, Xc = _embedded_view(store, weights_id, "chapman", "r.split = 'test'")
    if len(chap.records) == 0:
        raise ValueError(f"no Chapman test embeddings for {weights_id}; run `cardio embed {weights_id}` first")
    classes = chap.classes
    _silhouettes(rows, "chapman_test", Xc, chap.Y, classes, L.RHYTHM_LABELS, n_boot, seed)
    # distances are shown beside this scale too: fine-tuning stretches the whole space
    rows.add("chapman_test", "embedding_scale", M.embedding_scale(Xc), n=len(Xc))
    with rows.guard("chapman_test", "centroid_single"):
        for label, r in M.centroid_table(Xc, chap.Y, classes).iterrows():
            rows.add("chapman_test", "centroid_single", r["single_distance"], label=label, n=r["n_single"])
            rows.add("chapman_test", "centroid_multi", r["multi_distance"], label=label, n=r["n_multi"])
            rows.add("chapman_test", "centroid_ratio", r["ratio"], label=label)
            rows.add("chapman_test", "centroid_pct_diff", r["pct_difference"], label=label)
    single = M.single_labelled_rhythm_mask(chap.Y, classes)
    rhythm_c = M.rhythm_label_of(chap.Y, classes)
    with rows.guard("chapman_test", "knn_purity"):
        overall, per_label = M.knn_label_purity(Xc[single], rhythm_c[single], k=10)
        rows.add("chapman_test", "knn_purity", overall)
        for lab, v in per_label.items():
            rows.add("chapman_test", "knn_purity", v, label=lab)
    recs = chap.records
    with rows.guard("chapman_test", "probe_age_r2"):
        probe = M.demographic_probe(Xc, age=recs["age"].to_numpy(dtype=float), sex=recs["sex"].tolist(),
                                    cv=5, seed=seed)
        rows.add("chapman_test", "probe_age_r2", probe["age"]["r2"], mae=probe["age"]["mae"])
        rows.add("chapman_test", "probe_sex_auroc", probe["sex"]["auroc"])
    # linear probe on the frozen embeddings: fit on the validation split, score on test
    with rows.guard("chapman_test", "linear_probe_macro_f1"):
        val, Xv = _embedded_view(store, weights_id, "chapman", "r.split = 'val'")
        lp = M.linear_probe(Xv, val.Y, Xc, chap.Y, classes)
        rows.add("chapman_test", "linear_probe_macro_f1", lp["macro_f1"], macro_auroc=lp["macro_auroc"])

    centroids = {}
    with rows.guard("cross_domain", "ptbxl_to_chapman_centroid"):
        centroids = M.rhythm_centroids(Xc, chap.Y, classes)
        ptb, Xp = _embedded_view(store, weights_id, "ptbxl", "r.split = 'display'")
        if len(ptb.records):
            Yp = ptb.Y[:, [classes.index(c) for c in L.RHYTHM_LABELS]]
            _silhouettes(rows, "ptbxl_display", Xp, Yp, L.RHYTHM_LABELS, L.RHYTHM_LABELS, n_boot, seed)
            single_p = M.single_labelled_rhythm_mask(Yp, L.RHYTHM_LABELS)
            rhythm_p = np.where(single_p, M.rhythm_label_of(Yp, L.RHYTHM_LABELS), "")
            for lab, d in M.cross_domain_distances(Xp, rhythm_p, centroids).items():
                rows.add("cross_domain", "ptbxl_to_chapman_centroid", d, label=lab)
            with rows.guard("cross_domain", "share_sr_closer_to_sb"):
                rows.add("cross_domain", "share_sr_closer_to_sb",
                         M.share_closer_to(Xp, rhythm_p, centroids, "SR", "SB"))
            with rows.guard("cross_domain", "domain_auroc"):
                rows.add("cross_domain", "domain_auroc", M.domain_shift_score(Xc, Xp, cv=5, seed=seed))
    rows.save(store, ["chapman_test", "ptbxl_display", "cross_domain"], ECG_EMBEDDING_METRICS)
    return rows


def evaluate_cmr(store: Store, weights_id: str, *, seed: int = 0) -> MetricRows:
    """Per fold (each fold's validation patients), then mean +- SD over folds."""
    rows = MetricRows(weights_id)
    view, X = _embedded_view(store, weights_id, "acdc", "TRUE")
    if len(view.records) == 0:
        raise ValueError(f"no ACDC embeddings for {weights_id}; run `cardio embed {weights_id}` first")
    groups = np.array([view.classes[i] for i in view.Y.argmax(1)])
    folds = view.records["fold"].to_numpy()
    sil, ratio_per_fold = [], {}
    for k in sorted(set(int(f) for f in folds)):
        m = folds == k
        if not 2 <= len(set(groups[m])) < m.sum():
            continue  # a fold too small for silhouettes (tiny demo sets)
        s = M.silhouette_overall(X[m], groups[m])
        sil.append(s)
        rows.add("acdc", "silhouette", s, fold=k)
        for lab, v in M.silhouette_per_label(X[m], groups[m]).items():
            rows.add("acdc", "silhouette", v, label=lab, fold=k)
        for lab, v in M.intra_inter_ratio(X[m], groups[m]).items():
            rows.add("acdc", "intra_inter_ratio", v, label=lab, fold=k)
            ratio_per_fold.setdefault(lab, []).append(v)
    if sil:
        summary = M.fold_summary(sil)
        rows.add("acdc", "silhouette", summary.mean, sd=summary.sd, n_folds=summary.n)
    for lab, vals in ratio_per_fold.items():
        summary = M.fold_summary(vals)
        rows.add("acdc", "intra_inter_ratio", summary.mean, label=lab, sd=summary.sd)
    try:
        bmi = view.records["bmi"].to_numpy(dtype=float)
        probe = M.demographic_probe(X, bmi=bmi, cv=5, seed=seed)
        rows.add("acdc", "probe_bmi_r2", probe["bmi"]["r2"], mae=probe["bmi"]["mae"])
    except ValueError as exc:
        rows.add("acdc", "probe_bmi_r2", None, note=str(exc))
    rows.save(store, ["acdc"], CMR_EMBEDDING_METRICS)
    return rows
