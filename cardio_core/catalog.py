"""The weights catalogue: every loadable encoder the workspace knows, with lineage.

Rows live in the `weights` table. Files dropped into <workspace>/weights/ are found by
`scan_weights_dir` and registered as kind 'released' after a trial load that checks the
layout (problems go to the problems table with the file named, and the scan goes on).
Fine-tuned checkpoints are registered by the training job as kind 'checkpoint' with
their parent; the random-init baseline is kind 'random' and has no file.

`open_weights` is the one way from a weights id to a model: it reads the file once into a
models.weights.WeightsFile and builds a LoadedEncoder (model, load report, metadata).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from cardio_core.config import Workspace
from cardio_core.errors import CardioError
from cardio_core.store import Store, to_json
from cardio_core.vocabulary import MODALITIES, WEIGHT_SUFFIXES


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "weights"


WEIGHT_KINDS = ("released", "pretrained", "random", "checkpoint")


def write_weights_row(con, *, weights_id: str, modality: str, name: str, kind: str, path: str | None = None,
                      sha256: str | None = None, parent_weights_id: str | None = None,
                      load_report: dict | None = None) -> str:
    """Insert (or replace) a weights row inside the caller's write transaction `con`."""
    if kind not in WEIGHT_KINDS:
        raise ValueError(f"kind must be {'|'.join(WEIGHT_KINDS)}, got {kind!r}")
    if modality not in MODALITIES:
        raise ValueError(f"modality must be {'|'.join(MODALITIES)}, got {modality!r}")
    con.execute("DELETE FROM weights WHERE weights_id = ?", [weights_id])
    con.execute("INSERT INTO weights (weights_id, modality, name, kind, path, sha256, parent_weights_id, "
                "load_report) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [weights_id, modality, name, kind, path, sha256, parent_weights_id,
                 to_json(load_report) if load_report is not None else None])
    return weights_id


def register_weights(store: Store, **row) -> str:
    """Register loadable weights (see write_weights_row for the fields), in a transaction of its own."""
    with store.write() as con:
        return write_weights_row(con, **row)


def get_weights(store: Store, weights_id: str) -> dict:
    rows = store.query_df("SELECT * FROM weights WHERE weights_id = ?", [weights_id])
    if rows.empty:
        raise CardioError(f"unknown weights {weights_id!r}; see `cardio weights list`")
    row = rows.iloc[0].to_dict()
    if row.get("load_report"):
        row["load_report"] = json.loads(row["load_report"])
    return row


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve(strict=True).is_relative_to(folder.resolve())
    except OSError:  # a dangling link, a loop
        return False


def weights_files(ws: Workspace) -> list[Path]:
    """The files in <workspace>/weights/ that the catalogue would try to register: regular files, and links
    only where they resolve inside weights/ (a link to elsewhere is refused: see outside_links)."""
    if not ws.weights_dir.is_dir():
        return []
    return sorted(p for p in ws.weights_dir.iterdir()
                  if p.suffix in WEIGHT_SUFFIXES and p.is_file() and _inside(p, ws.weights_dir))


def outside_links(ws: Workspace) -> list[Path]:
    """Entries of weights/ with a weights suffix that are links resolving outside weights/ (or nowhere)."""
    if not ws.weights_dir.is_dir():
        return []
    return sorted(p for p in ws.weights_dir.iterdir()
                  if p.suffix in WEIGHT_SUFFIXES and p.is_symlink() and not _inside(p, ws.weights_dir))


def open_weights(store: Store, weights_id: str, *, seed: int = 0):
    """Build the model of registered weights with its weights loaded: a models.weights.LoadedEncoder.

    The random baseline is the same network every time (seeded); any other kind reads its file once.
    """
    import torch
    from cardio_core.models.registry import DEFAULT_MODEL, create_model
    from cardio_core.models.weights import LoadedEncoder, WeightsFile
    w = get_weights(store, weights_id)
    if w["kind"] == "random":
        torch.manual_seed(seed)
        return LoadedEncoder(model=create_model(DEFAULT_MODEL[w["modality"]]), report=None, source=None)
    if not w.get("path"):
        raise CardioError(f"weights {weights_id} have no file to load")
    source = WeightsFile.read(w["path"])
    if source.modality != w["modality"]:
        raise CardioError(f"{w['path']}: holds {source.modality.upper()} weights, registered as {w['modality'].upper()}")
    return source.build()


def default_parent(store: Store, modality: str) -> str:
    """The newest released or pre-trained weights of a modality, else the random baseline."""
    row = store.query("SELECT weights_id FROM weights WHERE modality = ? AND kind IN ('released', 'pretrained') "
                      "ORDER BY kind = 'released' DESC, created_at DESC LIMIT 1", [modality])
    return row[0][0] if row else ensure_random_weights(store, modality)


def default_mmcl_parent(store: Store, modality: str, *, register_random: bool = True) -> str:
    """Where contrastive pre-training starts when the spec names nothing: the ECG encoder from MDM (the released
    signal_encoder_mdm, else the newest MDM pre-training), the CMR encoder from SimCLR (the released
    image_encoder_simclr); else random weights (registered on first use unless `register_random` is False)."""
    stage = "mdm" if modality == "ecg" else "simclr"
    row = store.query("SELECT weights_id FROM weights WHERE modality = ? AND stage = ? ORDER BY created_at DESC "
                      "LIMIT 1", [modality, stage])
    if not row and modality == "ecg":
        row = store.query("SELECT weights_id FROM weights WHERE modality = 'ecg' AND kind = 'pretrained' "
                          "AND weights_id LIKE '%-mdm' ORDER BY created_at DESC LIMIT 1")
    if row:
        return row[0][0]
    return ensure_random_weights(store, modality) if register_random else f"random-{modality}"


def resolve_weights(store: Store, ws: Workspace, name: str | None, modality: str) -> str:
    """A weights id for `name`: a registered id, or a file name in <workspace>/weights/ (registered on
    first use); None -> default_parent. Raises CardioError naming what was looked for."""
    if not name:
        return default_parent(store, modality)
    if not store.scalar("SELECT count(*) FROM weights WHERE weights_id = ?", [name]):
        scan_weights_dir(store, ws)
        row = store.query("SELECT weights_id FROM weights WHERE path = ?", [str(ws.weights_dir / name)])
        if not row:
            raise CardioError(f"weights {name!r}: not a registered weights id nor a loadable file in "
                              f"{ws.weights_dir} (see `cardio problems`)")
        name = row[0][0]
    found = get_weights(store, name)["modality"]
    if found != modality:
        raise CardioError(f"weights {name!r} are {found.upper()} weights; this job needs {modality.upper()} weights")
    return name


def ensure_random_weights(store: Store, modality: str) -> str:
    """The randomly initialised baseline (seeded at instantiation time)."""
    wid = f"random-{modality}"
    if store.scalar("SELECT count(*) FROM weights WHERE weights_id = ?", [wid]) == 0:
        register_weights(store, weights_id=wid, modality=modality, name=f"random init ({modality.upper()})",
                         kind="random")
    return wid


def scan_weights_dir(store: Store, ws: Workspace) -> list[str]:
    """Register every new weights file in <workspace>/weights/. Returns the registered ids."""
    from cardio_core.models.weights import inspect_checkpoint  # torch is imported only when scanning
    ws.weights_dir.mkdir(parents=True, exist_ok=True)
    known = {r[0]: r[1] for r in store.query("SELECT path, sha256 FROM weights WHERE path IS NOT NULL")}
    registered = []
    seen_problems = {r[0] for r in store.query("SELECT file FROM problems WHERE stage = 'weights'")}
    for link in outside_links(ws):
        if str(link) not in seen_problems:
            store.record_problem(str(link), "a link that resolves outside weights/; refused", "weights")
    for path in weights_files(ws):
        digest = sha256_file(path)
        if known.get(str(path)) == digest:
            continue
        try:
            info = inspect_checkpoint(path)
        except CardioError as exc:
            store.record_problem(str(path), str(exc).removeprefix(f"{path}: "), "weights")
            continue
        wid = f"{slug(path.stem)}-{digest[:8]}"
        register_weights(store, weights_id=wid, modality=info["modality"], name=path.name,
                         kind="released" if info["layout"].startswith("released") else "pretrained",
                         path=str(path), sha256=digest, load_report=info)
        registered.append(wid)
    link_released_family(store)
    return registered


# The six files the MMCL authors released (method.md §8), by file stem: modality, stage, and the stem of the
# file each continues from. MMCL trained the ECG encoder on from MDM and the image encoder on from SimCLR;
# "without MDM" started the ECG encoder from random weights (its image encoder, as in MMCL, from SimCLR).
RELEASED_FAMILY = "mmcl-released"
RELEASED_STAGES: dict[str, tuple[str, str, str | None]] = {
    "signal_encoder_mdm": ("ecg", "mdm", None),
    "signal_encoder_mmcl": ("ecg", "mmcl", "signal_encoder_mdm"),
    "signal_encoder_mmcl_wo_mdm": ("ecg", "mmcl_wo_mdm", None),
    "image_encoder_simclr": ("cmr", "simclr", None),
    "image_encoder_mmcl": ("cmr", "mmcl", "image_encoder_simclr"),
    "image_encoder_mmcl_wo_mdm": ("cmr", "mmcl_wo_mdm", "image_encoder_simclr"),
}
# The encoder pairs of the released family: trained together, projectors not published.
RELEASED_PAIRS = {"mmcl": ("signal_encoder_mmcl", "image_encoder_mmcl"),
                  "mmcl_wo_mdm": ("signal_encoder_mmcl_wo_mdm", "image_encoder_mmcl_wo_mdm")}


def link_released_family(store: Store) -> dict[str, str]:
    """Mark the registered released MMCL files as one family: stage, lineage (MDM -> MMCL, SimCLR -> MMCL) and
    the MMCL encoder pairs. Files are recognised by name; a file whose modality contradicts its name is left
    alone and reported. Returns stem -> weights id of the family members found."""
    rows = store.query("SELECT weights_id, modality, path FROM weights WHERE kind = 'released' AND path IS NOT NULL "
                       "ORDER BY created_at")
    members: dict[str, str] = {}
    for wid, modality, path in rows:
        stem = Path(path).stem
        if stem in RELEASED_STAGES:
            if RELEASED_STAGES[stem][0] != modality:
                problem = (f"named like the released {RELEASED_STAGES[stem][0].upper()} file {stem} but holds "
                           f"{modality.upper()} weights; not linked to its family")
                if not store.scalar("SELECT count(*) FROM problems WHERE file = ? AND problem = ?", [path, problem]):
                    store.record_problem(path, problem, "weights")
                continue
            members[stem] = wid  # the newest file of a name wins
    if not members:
        return members
    with store.write() as con:
        for stem, wid in members.items():
            _, stage, parent_stem = RELEASED_STAGES[stem]
            con.execute("UPDATE weights SET family = ?, stage = ?, parent_weights_id = ? WHERE weights_id = ?",
                        [RELEASED_FAMILY, stage, members.get(parent_stem) if parent_stem else None, wid])
        for stage, (ecg_stem, cmr_stem) in RELEASED_PAIRS.items():
            if ecg_stem in members and cmr_stem in members:
                pair_id = f"{RELEASED_FAMILY}-{stage}"
                con.execute("DELETE FROM encoder_pairs WHERE pair_id = ?", [pair_id])
                con.execute("INSERT INTO encoder_pairs (pair_id, ecg_weights_id, cmr_weights_id, family, stage) "
                            "VALUES (?, ?, ?, ?, ?)", [pair_id, members[ecg_stem], members[cmr_stem],
                                                       RELEASED_FAMILY, stage])
    return members
