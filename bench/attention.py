"""Attention-view benchmark: opening a record's "where the model looks" view, cached and computed on demand.

Issue 13's goals, on CPU: at most 1 s when the record's maps are cached, at most 3 s when they are computed
on demand. Measured side by side in one run on a small demo Chapman with a fine-tuned-shaped ECG ViT
(attention pool, 384-d, 3 blocks) saved as a checkpoint file:
- cached: the page's own reads and figure (queries.record_attention, the preprocessed record,
  heads_view, ecg_attention_figure) and the figure's JSON, i.e. what one rerun of the view does;
- on demand, in process: reading the weights file, one record's forward pass with the attention recomputed,
  the store write (compute_attention), beside a plain forward_features of the same record;
- on demand, as the app does it: an `attention` job submitted to the local runner, from submit to succeeded
  (a fresh worker process: Python, torch and the store start every time).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def _best(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def build(root: Path):
    import torch

    from cardio_core.catalog import register_weights
    from cardio_core.config import Workspace
    from cardio_core.data.ingest import ingest_dataset
    from cardio_core.demo.generate import generate_demo_datasets
    from cardio_core.models.ecg_vit import EcgViT
    from cardio_core.models.weights import save_checkpoint
    from cardio_core.store import Store

    ws = Workspace(root / "ws").ensure()
    store = Store(ws.db_path)
    generate_demo_datasets(root / "demo", size={"chapman": 40, "ptbxl": 10, "acdc": 5}, seed=0, workers=1)
    ingest_dataset(store, ws, "chapman", root / "demo" / "chapman", seed=0, workers=1)
    torch.manual_seed(0)
    path = save_checkpoint(ws.weights_dir / "bench_attention.pth", EcgViT(num_classes=20),
                           meta={"head_trained": True})
    wid = register_weights(store, weights_id="bench-attention", modality="ecg", name="bench", kind="checkpoint",
                           path=str(path))
    records = [r for (r,) in store.query("SELECT record_id FROM records WHERE dataset_id = 'chapman' AND NOT "
                                         "excluded ORDER BY record_id")]
    return ws, store, wid, records


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench attention")
    parser.add_argument("--repeat", type=int, default=5)
    args, _ = parser.parse_known_args(argv)

    import torch

    from app.ecg_paper import ecg_attention_figure
    from cardio_core import queries
    from cardio_core.analysis.attention import compute_attention
    from cardio_core.catalog import open_weights
    from cardio_core.data.dataset_view import load_view
    from jobs.runner import LocalRunner
    from jobs.spec import JobSpec

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory(prefix="bench-attention-") as tmp:
        ws, store, wid, records = build(Path(tmp))
        cached, fresh = records[0], records[1:]
        compute_attention(store, wid, "chapman", [cached])
        info = queries.record_info(store, "chapman", cached)

        def open_cached():
            maps = queries.record_attention(store, wid, "chapman", cached)
            signal, fs = queries.load_record_signal(store, info, "preprocessed", [ws.root])
            grid = queries.heads_view(maps["pool"])
            fig = ecg_attention_figure(signal[:, :2500], grid, fs)
            return fig.to_json()

        open_cached()   # plotly's first figure imports its validators
        cached_best, cached_median = _best(open_cached, args.repeat)

        todo = iter(fresh)
        compute_best, compute_median = _best(lambda: compute_attention(store, wid, "chapman", [next(todo)]),
                                             args.repeat)
        model = open_weights(store, wid).model.eval()
        view = load_view(store, "chapman", where="r.record_id = ?", params=[cached])
        x = torch.from_numpy(view.arrays[0][None, None, :, :2500].copy())

        def plain():
            with torch.inference_mode():
                model.forward_features(x)
        plain()
        plain_best, plain_median = _best(plain, args.repeat)

        runner = LocalRunner(ws, store)
        job_times = []
        for record in list(todo)[:3]:
            t = time.perf_counter()
            job = runner.submit(JobSpec(kind="attention", weights=wid, dataset="chapman", device="cpu",
                                        params={"record_ids": [record]}))
            status = runner.wait(job, timeout=300)
            job_times.append(time.perf_counter() - t)
            if status != "succeeded":
                raise RuntimeError(f"attention job {job} {status}: {runner.show(job).get('error')}")

    print(f"cached view (read maps + record, figure, JSON): best {cached_best * 1000:.0f} ms, "
          f"median {cached_median * 1000:.0f} ms (goal 1 s)")
    print(f"computed in process (load weights, forward with attention, store): best {compute_best:.2f} s, "
          f"median {compute_median:.2f} s (goal 3 s)")
    print(f"  beside a plain forward_features of the same record: best {plain_best * 1000:.0f} ms, "
          f"median {plain_median * 1000:.0f} ms")
    print(f"computed by an attention job (submit -> succeeded, fresh worker process): "
          f"{', '.join(f'{t:.2f}' for t in job_times)} s (median {statistics.median(job_times):.2f} s)")


if __name__ == "__main__":
    main()
