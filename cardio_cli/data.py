"""`cardio setup | status | demo-data | ingest | problems`: the workspace's datasets."""
from __future__ import annotations

import argparse
from pathlib import Path

from cardio_core.config import Workspace
from cardio_core.vocabulary import DATASETS, INGEST_SOURCES, PAIRED_COHORT, PAIRED_DATASETS

from cardio_cli.common import open_store, progress_bar


def cmd_demo_data(args, ws: Workspace) -> int:
    from cardio_core.demo.generate import generate_demo_datasets
    out = Path(args.out) if args.out else ws.ensure().demo_dir
    info = generate_demo_datasets(out, size=args.size, seed=args.seed, progress=True)
    print(f"demo datasets written to {out}")
    for k, v in info.items():
        print(f"  {k}: {v}")
    return 0


def cmd_ingest(args, ws: Workspace) -> int:
    from cardio_core.data.ingest import ingest_dataset
    store = open_store(ws)
    if args.dataset == PAIRED_COHORT:
        return _ingest_paired(args, ws, store)
    res = ingest_dataset(store, ws, args.dataset, args.path, is_demo=args.demo, seed=args.seed,
                         workers=args.workers, progress=progress_bar(f"ingest {args.dataset}"))
    print(f"{args.dataset}: {res.n_files} files, {res.n_ok} usable records, {res.n_excluded} excluded, "
          f"{res.n_problems} problems ({res.n_skipped_chunks} chunks already done)")
    _print_problems(store, args.dataset, limit=args.show_problems)
    return 0


def _ingest_paired(args, ws: Workspace, store) -> int:
    from cardio_core.data.ingest_paired import ingest_paired
    res = ingest_paired(store, ws, args.path, is_demo=args.demo, seed=args.seed, workers=args.workers,
                        progress=progress_bar("ingest paired cohort"))
    split = ", ".join(f"{k} {v}" for k, v in res.splits.items())
    print(f"paired: {res.n_rows} manifest rows, {res.n_ok} usable subjects ({split}), {res.n_rejected} rows "
          f"rejected, {res.n_excluded} subjects excluded, {res.n_problems} problems "
          f"({res.n_skipped_chunks} chunks already done)")
    _print_problems(store, PAIRED_COHORT, limit=args.show_problems)
    return 0


def _print_problems(store, dataset_id=None, limit=20) -> None:
    sql = "SELECT file, problem, stage FROM problems"
    params = []
    if dataset_id:
        # the paired cohort's problems: its manifest's and those of its two datasets' files
        sql += " WHERE list_contains(?, dataset_id)"
        params.append([dataset_id, *PAIRED_DATASETS.values()] if dataset_id == PAIRED_COHORT else [dataset_id])
    rows = store.query(sql + " ORDER BY problem_id", params)
    for file, problem, stage in rows[:limit]:
        print(f"  [{stage}] {file}: {problem}")
    if len(rows) > limit:
        print(f"  ... and {len(rows) - limit} more (cardio problems --dataset {dataset_id or ''})")


def cmd_problems(args, ws: Workspace) -> int:
    _print_problems(open_store(ws), args.dataset, limit=args.limit)
    return 0


def cmd_setup(args, ws: Workspace) -> int:
    from cardio_core.pipeline.setup import prepare_workspace
    prepare_workspace(ws, size=args.size, progress_bar=progress_bar)
    return cmd_status(args, ws)


def cmd_status(args, ws: Workspace) -> int:
    store = open_store(ws)
    print(f"workspace: {ws.root}")
    df = store.query_df("SELECT dataset_id, modality, is_demo, n_files, n_records, source_dir FROM datasets "
                        "ORDER BY dataset_id")
    if df.empty:
        print("no datasets ingested yet (cardio setup, or cardio ingest DATASET PATH)")
    else:
        print(df.to_string(index=False))
    splits = store.query_df("SELECT dataset_id, coalesce(split, '-') AS split, count(*) AS n FROM records "
                            "WHERE NOT excluded GROUP BY ALL ORDER BY ALL")
    if not splits.empty:
        print(splits.to_string(index=False))
    runs = store.query_df("SELECT r.run_id, r.modality, r.recipe, count(c.weights_id) AS checkpoints "
                          "FROM runs r LEFT JOIN checkpoints c ON c.run_id = r.run_id AND c.fold IS NULL "
                          "GROUP BY ALL ORDER BY min(r.created_at)")
    if not runs.empty:
        print("runs:")
        print(runs.to_string(index=False))
    for table in ("weights", "checkpoints", "jobs", "embeddings", "projections", "metrics", "problems"):
        print(f"{table}: {store.scalar(f'SELECT count(*) FROM {table}')}")
    return 0


def cmd_store_snapshot(args, ws: Workspace) -> int:
    from cardio_core.store import Store
    out = Store(ws.db_path).snapshot(Path(args.out).expanduser())
    print(f"{out}: a consistent copy of the store; open it with `duckdb {out} -readonly` "
          "(it blocks nothing while the app and jobs run)")
    return 0


def register(sub) -> None:
    s = sub.add_parser("store", help="the store: a snapshot copy to read with duckdb while the app runs")
    store_sub = s.add_subparsers(dest="store_command", required=True)
    t = store_sub.add_parser("snapshot", help="copy the store consistently (under the readers' lock) to OUT")
    t.add_argument("out", help="the copy's file, e.g. /tmp/cardio-snapshot.duckdb")
    t.set_defaults(func=cmd_store_snapshot)

    s = sub.add_parser("setup", help="prepare the workspace: demo data (if no real dataset is configured) + ingest")
    s.add_argument("--size", default="default",
                   help="demo size: tiny | default | full (Chapman- and PTB-XL-sized: 45,152 + 21,799 records)")
    s.set_defaults(func=cmd_setup)

    s = sub.add_parser("status", help="what the workspace holds")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("demo-data", help="write synthetic Chapman-, PTB-XL-, ACDC-format datasets and a paired cohort")
    s.add_argument("--size", default="default", help="tiny | default")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="output folder (default: <workspace>/data/raw/demo)")
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("ingest", help="read, preprocess and store a dataset folder (or a paired ECG + CMR cohort)")
    s.add_argument("dataset", choices=INGEST_SOURCES,
                   help="chapman | ptbxl | acdc, or paired: a folder with manifest.csv (README: paired cohorts)")
    s.add_argument("path", help="the dataset's root folder")
    s.add_argument("--seed", type=int, default=0, help="seed of the splits and the PTB-XL draw")
    s.add_argument("--workers", type=int, default=None, help="worker processes (default: 2)")
    s.add_argument("--demo", action="store_true", help=argparse.SUPPRESS)
    s.add_argument("--show-problems", type=int, default=20, help="how many problems to print")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("problems", help="list the per-record problems found so far")
    s.add_argument("--dataset")
    s.add_argument("--limit", type=int, default=100)
    s.set_defaults(func=cmd_problems)

