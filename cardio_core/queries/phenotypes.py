"""Read models of the Phenotypes page: which ECG encoders have a phenotype probe, their Pearson r per phenotype
and group in the layout of the paper's Table IV (the demographics-only baseline beside them, the published
numbers in a table of their own), and the test predictions behind each scatter."""
from __future__ import annotations

import json

import pandas as pd

from cardio_core.metrics.phenotypes import PHENOTYPE_GROUPS, PUBLISHED_GROUP_R, regression_line
from cardio_core.queries.weights import list_weights
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL, PHENOTYPE_SCOPE

DEMOGRAPHICS_DISPLAY = "demographics only"  # age, sex, height and weight (said next to the table)
FINETUNED_READOUT = "finetuned_regression"  # analysis.phenotypes.analyse_phenotype_head's `model`
READOUTS = {"ridge": "ridge probe", FINETUNED_READOUT: "fine-tuned on the phenotypes (its own head)"}


def _extra(raw) -> dict:
    if raw is None or (isinstance(raw, float) and pd.isna(raw)):
        return {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def probed_weights(store) -> pd.DataFrame:
    """ECG weights with a scored phenotype probe, in the weights pickers' order, with their display names and
    the LV / RV group r (for the picker's default: the best LV r)."""
    scored = store.query_df("SELECT weights_id, label, value FROM metrics WHERE scope = ? AND name = "
                            "'phenotype_group_r' AND value IS NOT NULL AND weights_id <> ?",
                            [PHENOTYPE_SCOPE, DEMOGRAPHICS_MODEL])
    if scored.empty:
        return pd.DataFrame(columns=["weights_id", "display", "readout", "LV", "RV"])
    groups = scored.pivot_table(index="weights_id", columns="label", values="value", aggfunc="first")
    weights = list_weights(store, "ecg")
    out = weights[weights["weights_id"].isin(groups.index)][["weights_id", "display", "kind", "run_id", "epoch"]]
    # how each was read out: a ridge probe on its frozen embedding, or its own head (fine-tuned on phenotypes)
    readout = dict(store.query("SELECT weights_id, any_value(json_extract_string(extra, '$.model')) FROM metrics "
                               "WHERE scope = ? AND name = 'phenotype_r' GROUP BY weights_id", [PHENOTYPE_SCOPE]))
    out = out.assign(readout=[READOUTS.get(readout.get(w), "ridge probe") for w in out["weights_id"]])
    out["display"] = [d + (" · own head" if r == READOUTS[FINETUNED_READOUT] else "")
                      for d, r in zip(out["display"], out["readout"])]
    return out.join(groups, on="weights_id").reset_index(drop=True)


def phenotype_note(store, model_id: str) -> str:
    """Why a model has no phenotype scores ('' when it has them or was never probed)."""
    raw = store.scalar("SELECT extra FROM metrics WHERE weights_id = ? AND scope = ? AND value IS NULL LIMIT 1",
                       [model_id, PHENOTYPE_SCOPE])
    return str(_extra(raw).get("note", "")) if raw is not None else ""


def _scores(store, model_ids) -> pd.DataFrame:
    return store.query_df("SELECT weights_id, name, label, value, ci_low, ci_high, extra FROM metrics "
                          "WHERE scope = ? AND list_contains(?, weights_id) AND value IS NOT NULL",
                          [PHENOTYPE_SCOPE, list(model_ids)])


def table_iv(store, weights_ids, displays: dict[str, str] | None = None) -> pd.DataFrame:
    """Pearson r on the paired test subjects, one row per group mean and phenotype in the paper's order (LV mean,
    its members, RV mean, its members), two columns per model (r, its 95 % bootstrap interval), the
    demographics-only baseline last; plus the number of test subjects."""
    displays = dict(displays or {})
    displays.setdefault(DEMOGRAPHICS_MODEL, DEMOGRAPHICS_DISPLAY)
    models = [*dict.fromkeys(weights_ids), DEMOGRAPHICS_MODEL]
    df = _scores(store, models)
    rows = []
    for group, members in PHENOTYPE_GROUPS.items():
        rows.append(("phenotype_group_r", group, f"{group} (mean)"))
        rows += [("phenotype_r", m, m) for m in members]
    table = pd.DataFrame({"phenotype": [r[2] for r in rows]})
    n_test = None
    for model in models:
        part = df[df["weights_id"] == model].set_index(["name", "label"])
        if part.empty:
            continue
        name = displays.get(model, model)
        values, intervals = [], []
        for metric, label, _ in rows:
            if (metric, label) in part.index:
                m = part.loc[(metric, label)]
                values.append(float(m["value"]))
                intervals.append(f"{m['ci_low']:.2f} – {m['ci_high']:.2f}" if pd.notna(m["ci_low"]) else "")
                n_test = n_test or _extra(m["extra"]).get("n")
            else:
                values.append(float("nan"))
                intervals.append("")
        table[f"{name} r"] = values
        table[f"{name} 95% CI"] = intervals
    table.attrs["n_test"] = n_test
    return table


def published_table_iv() -> pd.DataFrame:
    """The paper's group means (method.md §8; UK Biobank, 6,007 test subjects), one row per model."""
    return pd.DataFrame([{"model (published)": name, **{f"{g} r": v[g] for g in PHENOTYPE_GROUPS}}
                         for name, v in PUBLISHED_GROUP_R.items()])


def phenotype_scatter(store, model_id: str, phenotype: str) -> dict:
    """The test predictions of one model for one phenotype, with the stored r (and interval) and the
    least-squares line of predicted on observed: ``{"points": DataFrame(subject_id, observed, predicted),
    "r", "ci_low", "ci_high", "line"}``."""
    pts = store.query_df("SELECT subject_id, observed, predicted FROM phenotype_predictions WHERE model_id = ? "
                         "AND name = ? ORDER BY subject_id", [model_id, phenotype])
    row = store.query("SELECT value, ci_low, ci_high FROM metrics WHERE weights_id = ? AND scope = ? AND "
                      "name = 'phenotype_r' AND label = ?", [model_id, PHENOTYPE_SCOPE, phenotype])
    r, low, high = row[0] if row else (float("nan"),) * 3
    return {"points": pts, "r": r, "ci_low": low, "ci_high": high,
            "line": regression_line(pts["observed"], pts["predicted"])}
