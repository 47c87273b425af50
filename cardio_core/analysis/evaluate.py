"""Metrics of one set of weights, computed from its stored embeddings and written to `metrics`.

Scopes: 'chapman_test', 'ptbxl_display', 'cross_domain' (ECG) and 'acdc' (CMR). The
definitions are cardio_core.metrics'; this module only selects records, calls them and
stores the numbers, so the app and the report read one table.

Records each metric is over (method.md §5): Chapman silhouettes and centroids over the test split's
single-labelled rhythm records; PTB-XL over the display subset with its rhythm statements mapped onto the
Chapman rhythm labels; the linear probe fitted on (a seeded subsample of) the train split and scored on
test; ACDC per fold over that fold's validation patients, each embedded by its own fold's model.
A checkpoint's silhouettes also get their change against the baseline (its parent weights) with a paired
bootstrap interval (`silhouette_change`).
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
ECG_EMBEDDING_METRICS = ("silhouette", "silhouette_change", "centroid_single", "centroid_multi", "centroid_ratio",
                         "centroid_pct_diff", "knn_purity", "probe_age_r2", "probe_sex_auroc", "linear_probe_macro_f1",
                         "ptbxl_to_chapman_centroid", "share_sr_closer_to_sb", "share_sb_closer_to_sr",
                         "share_sr_closer_to_sb_chapman_centroids", "domain_auroc", "embedding_scale")
CMR_EMBEDDING_METRICS = ("silhouette", "intra_inter_ratio", "probe_bmi_r2")
# Records and replicates of the paired bootstrap of the silhouette change (metrics.paired_silhouette_change).
CHANGE_N_BOOT = 200
CHANGE_MAX_RECORDS = 2000


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


def baseline_of(store: Store, weights_id: str) -> str | None:
    """The weights a checkpoint's change is measured against: its parent (the run's starting weights)."""
    row = store.query("SELECT parent_weights_id FROM weights WHERE weights_id = ? AND kind = 'checkpoint'",
                      [weights_id])
    return row[0][0] if row and row[0][0] else None


def _silhouette_change(rows: MetricRows, store, scope, weights_id, baseline_id, dataset_id, view, X, Y, classes,
                       seed):
    """Paired bootstrap of (these weights - baseline) silhouettes over the same single-labelled rhythm records."""
    with rows.guard(scope, "silhouette_change"):
        mask = M.single_labelled_rhythm_mask(Y, classes)
        ids = view.records["record_id"].to_numpy()[mask]
        _, X0 = load_embeddings(store, baseline_id, dataset_id, record_ids=ids.tolist())
        labels = M.rhythm_label_of(Y[mask], classes)
        table = M.paired_silhouette_change(X0, X[mask], labels, n_boot=CHANGE_N_BOOT, max_records=CHANGE_MAX_RECORDS,
                                           seed=seed, label_order=L.RHYTHM_LABELS)
        for label, r in table.iterrows():
            rows.add(scope, "silhouette_change", r["change"], label="" if label == "overall" else label,
                     ci=(r["ci_low"], r["ci_high"]), n=int(r["n"]), baseline_weights_id=baseline_id,
                     baseline=r["baseline"], other=r["other"], n_resampled=int(r["n_resampled"]),
                     n_boot=int(r["n_boot"]))


def evaluate_ecg(store: Store, weights_id: str, *, n_boot: int = 200, seed: int = 0,
                 baseline_id: str | None = None) -> MetricRows:
    """ECG metrics of one set of weights; `baseline_id` (default: a checkpoint's parent) for the paired change."""
    rows = MetricRows(weights_id)
    baseline_id = baseline_id or baseline_of(store, weights_id)
    chap, Xc = _embedded_view(store, weights_id, "chapman", "r.split = 'test'")
    if len(chap.records) == 0:
        raise ValueError(f"no Chapman test embeddings for {weights_id}; run `cardio embed {weights_id}` first")
    classes = chap.classes
    _silhouettes(rows, "chapman_test", Xc, chap.Y, classes, L.RHYTHM_LABELS, n_boot, seed)
    # distances are shown beside this scale too: fine-tuning stretches the whole space
    rows.add("chapman_test", "embedding_scale", M.embedding_scale(Xc), n=len(Xc))
    if baseline_id:
        _silhouette_change(rows, store, "chapman_test", weights_id, baseline_id, "chapman", chap, Xc, chap.Y,
                           classes, seed)
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
    # linear probe on the frozen embeddings: fit on the train split (the seeded subsample that was embedded,
    # analysis.embeddings.probe_train_limit), score on test; the sizes are stored with it
    with rows.guard("chapman_test", "linear_probe_macro_f1"):
        train, Xt = _embedded_view(store, weights_id, "chapman", "r.split = 'train'")
        if len(train.records) == 0:
            raise ValueError("no embedded Chapman train records to fit the probe on")
        n_train_split = int(store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND NOT excluded "
                                         "AND split = 'train'"))
        lp = M.linear_probe(Xt, train.Y, Xc, chap.Y, classes)
        rows.add("chapman_test", "linear_probe_macro_f1", lp["macro_f1"], macro_auroc=lp["macro_auroc"],
                 fitted_on="train", n_train=len(train.records), n_train_split=n_train_split,
                 scored_on="test", n_test=len(chap.records))

    centroids = {}
    with rows.guard("cross_domain", "ptbxl_to_chapman_centroid"):
        centroids = M.rhythm_centroids(Xc, chap.Y, classes)
        ptb, Xp = _embedded_view(store, weights_id, "ptbxl", "r.split = 'display'")
        if len(ptb.records):
            Yp = ptb.Y[:, [classes.index(c) for c in L.RHYTHM_LABELS]]
            _silhouettes(rows, "ptbxl_display", Xp, Yp, L.RHYTHM_LABELS, L.RHYTHM_LABELS, n_boot, seed)
            if baseline_id:
                _silhouette_change(rows, store, "ptbxl_display", weights_id, baseline_id, "ptbxl", ptb, Xp, Yp,
                                   L.RHYTHM_LABELS, seed)
            single_p = M.single_labelled_rhythm_mask(Yp, L.RHYTHM_LABELS)
            rhythm_p = np.where(single_p, M.rhythm_label_of(Yp, L.RHYTHM_LABELS), "")
            with rows.guard("cross_domain", "ptbxl_to_chapman_centroid"):
                # only labels that have a Chapman centroid (a tiny test split can lack one)
                have = np.isin(rhythm_p, list(centroids))
                for lab, d in M.cross_domain_distances(Xp[have], rhythm_p[have], centroids).items():
                    rows.add("cross_domain", "ptbxl_to_chapman_centroid", d, label=lab,
                             n=int((rhythm_p == lab).sum()))
            # the thesis's share: PTB-XL's own SR and SB centroids (21.62%), and the reverse (0.00%)
            own = M.label_centroids(Xp[single_p], rhythm_p[single_p]) if single_p.any() else {}
            for name, (a, b) in (("share_sr_closer_to_sb", ("SR", "SB")), ("share_sb_closer_to_sr", ("SB", "SR"))):
                with rows.guard("cross_domain", name):
                    rows.add("cross_domain", name, M.share_closer_to(Xp, rhythm_p, own, a, b),
                             n=int((rhythm_p == a).sum()), centroids="ptbxl")
            with rows.guard("cross_domain", "share_sr_closer_to_sb_chapman_centroids"):
                rows.add("cross_domain", "share_sr_closer_to_sb_chapman_centroids",
                         M.share_closer_to(Xp, rhythm_p, centroids, "SR", "SB"),
                         n=int((rhythm_p == "SR").sum()), centroids="chapman")
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
    sil, sil_label, ratio_per_fold = [], {}, {}
    for k in sorted(set(int(f) for f in folds)):
        m = folds == k
        n_groups = len(set(groups[m]))
        if not 2 <= n_groups < m.sum():
            # stored with its reason (a fold too small for silhouettes, e.g. the tiny demo's)
            reason = (f"fold {k} cannot be scored: {int(m.sum())} records in {n_groups} group(s); "
                      f"silhouettes need 2 to n_records-1 groups")
            rows.add("acdc", "silhouette", None, fold=k, note=reason, n=int(m.sum()))
            rows.add("acdc", "intra_inter_ratio", None, fold=k, note=reason, n=int(m.sum()))
            sil.append(np.nan)
            continue
        s = M.silhouette_overall(X[m], groups[m])
        sil.append(s)
        rows.add("acdc", "silhouette", s, fold=k, n=int(m.sum()))
        for lab, v in M.silhouette_per_label(X[m], groups[m]).items():
            rows.add("acdc", "silhouette", v, label=lab, fold=k, n=int((groups[m] == lab).sum()))
            sil_label.setdefault(lab, []).append(v)
        for lab, v in M.intra_inter_ratio(X[m], groups[m]).items():
            rows.add("acdc", "intra_inter_ratio", v, label=lab, fold=k, n=int((groups[m] == lab).sum()))
            ratio_per_fold.setdefault(lab, []).append(v)
    n_unscored = int(np.isnan(sil).sum()) if sil else 0
    summary = M.fold_summary(sil)
    if summary.n:
        rows.add("acdc", "silhouette", summary.mean, sd=summary.sd, n_folds=summary.n, n_folds_unscored=n_unscored)
    for name, per_label in (("silhouette", sil_label), ("intra_inter_ratio", ratio_per_fold)):
        for lab, vals in per_label.items():
            summary = M.fold_summary(vals)
            rows.add("acdc", name, summary.mean, label=lab, sd=summary.sd, n_folds=summary.n,
                     n_folds_unscored=n_unscored)
    try:
        bmi = view.records["bmi"].to_numpy(dtype=float)
        probe = M.demographic_probe(X, bmi=bmi, cv=5, seed=seed)
        rows.add("acdc", "probe_bmi_r2", probe["bmi"]["r2"], mae=probe["bmi"]["mae"])
    except ValueError as exc:
        rows.add("acdc", "probe_bmi_r2", None, note=str(exc))
    rows.save(store, ["acdc"], CMR_EMBEDDING_METRICS)
    return rows
