"""Read models of the pages and the report: each function takes a Store and plain, hashable arguments and
returns a DataFrame (or a dict of them), so the app can cache it with st.cache_data.

Nothing here trains, fits or projects anything: it only reads what the pipeline wrote. All
SQL is parameterised. One module per concern: workspace (Overview), weights (pickers,
lineage), points (projection points, filters, colours), selection, metrics, records.
"""
from cardio_core.queries.attention import (attention_records, cmr_map, cmr_map_records, heads_view, patch_samples,
                                           record_attention, source_label)
from cardio_core.queries.metrics import (PROBE_NAMES, acdc_folds, best_checkpoint, best_checkpoint_of,
                                         centroid_tables, continuation_order, label_baseline, metrics,
                                         per_class_table, prevalence_vs_f1, probe_trend, runs_of, scope_size,
                                         silhouette_comparison, thesis_side_by_side)
from cardio_core.queries.points import (AGE_BANDS, COLOUR_BY, age_bands, colour_values, filter_points, has_class,
                                        labels_present, projection_method, projection_points)
from cardio_core.queries.records import identifiers, load_record_signal, record_info, redact_text
from cardio_core.queries.selection import (MIN_SUMMARY_RECORDS, deidentify, points_in_box, points_in_polygon,
                                           review_demographics, selection_mask, selection_summary,
                                           selection_table)
from cardio_core.queries.weights import (SELECTION_METRIC, available_views, baseline_for, default_run, list_weights,
                                         run_checkpoints, runs_overview, weights_with_view)
from cardio_core.queries.workspace import demo_job_active, next_steps, workspace_summary

__all__ = [
    "attention_records", "cmr_map", "cmr_map_records", "heads_view", "patch_samples", "record_attention", "source_label",
    "PROBE_NAMES", "acdc_folds", "best_checkpoint", "best_checkpoint_of", "centroid_tables", "continuation_order",
    "label_baseline", "metrics", "per_class_table", "prevalence_vs_f1", "probe_trend", "runs_of", "scope_size",
    "silhouette_comparison",
    "thesis_side_by_side",
    "AGE_BANDS", "COLOUR_BY", "age_bands", "colour_values", "filter_points", "has_class", "labels_present",
    "projection_method", "projection_points",
    "identifiers", "load_record_signal", "record_info", "redact_text",
    "MIN_SUMMARY_RECORDS", "deidentify", "review_demographics", "points_in_box", "points_in_polygon",
    "selection_mask", "selection_summary", "selection_table",
    "SELECTION_METRIC", "available_views", "baseline_for", "default_run", "list_weights", "run_checkpoints",
    "runs_overview", "weights_with_view",
    "demo_job_active", "next_steps", "workspace_summary",
]
