"""Reader for UK Biobank's resting 12-lead ECG (field 20205): GE CardioSoft `CardiologyXML` exports.

Files are named `<eid>_20205_<instance>_0.xml` and encoded ISO-8859-1 (the declaration says
so; a file without one is read as ISO-8859-1 too). The 10 s strip is `StripData`:
`SampleRate` (Hz), `NumberOfLeads`, `ChannelSampleCountTotal`, `Resolution` (µV per unit) and
one `WaveformData lead="I"` (etc.) of comma-separated integers per lead. Physical value in mV
= integer x Resolution / 1000. Parsed with the standard library's xml.etree.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from cardio_core import labels as L
from cardio_core.errors import RecordError

FS = 500
N_SAMPLES = 5000          # 10 s at 500 Hz
_LEAD_INDEX = {name.lower(): i for i, name in enumerate(L.LEADS)}
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*encoding=", re.IGNORECASE)


def _parse(path: Path) -> ET.Element:
    if not path.is_file():
        raise RecordError(path, "ECG XML file does not exist")
    data = path.read_bytes()
    try:
        if _DECLARATION.match(data[:200]):
            return ET.fromstring(data)
        return ET.fromstring(data.decode("iso-8859-1"))
    except ET.ParseError as exc:
        raise RecordError(path, f"malformed XML: {exc}") from None


def _number(path: Path, strip: ET.Element, tag: str, kind=float) -> float:
    el = strip.find(tag)
    if el is None or not (el.text or "").strip():
        raise RecordError(path, f"StripData has no {tag}")
    try:
        value = kind(el.text.strip())
    except ValueError:
        raise RecordError(path, f"StripData {tag} is not a number: {el.text.strip()!r}") from None
    return value


def read_record(path: str | Path) -> tuple[np.ndarray, int]:
    """(signal, fs): the 10 s strip as (12, 5000) float32 in mV, leads in `labels.LEADS` order, fs = 500.

    Raises RecordError naming the file for a malformed XML, a missing StripData, missing leads
    (listed), a sampling rate other than 500 Hz, a Resolution that is not positive, or a lead
    whose number of samples differs from ChannelSampleCountTotal or is under 10 s.
    """
    path = Path(path)
    root = _parse(path)
    strip = root if root.tag == "StripData" else root.find(".//StripData")
    if strip is None:
        raise RecordError(path, f"no StripData element (root is <{root.tag}>); not a CardioSoft resting ECG")
    fs = _number(path, strip, "SampleRate")
    if fs != FS:
        raise RecordError(path, f"sampling rate {fs:g} Hz is not supported; {FS} Hz required")
    resolution = _number(path, strip, "Resolution")
    if not resolution > 0:
        raise RecordError(path, f"Resolution {resolution:g} µV per unit is not positive")
    declared = strip.find("ChannelSampleCountTotal")
    n_declared = None
    if declared is not None and (declared.text or "").strip():
        n_declared = int(_number(path, strip, "ChannelSampleCountTotal", int))

    found: dict[int, np.ndarray] = {}
    for wave in strip.findall("WaveformData"):
        name = (wave.get("lead") or "").strip()
        idx = _LEAD_INDEX.get(name.lower())
        if idx is None:
            continue   # CardioSoft writes only the 12 standard leads; anything else is not ours
        if idx in found:
            raise RecordError(path, f"lead {name} appears twice in StripData")
        text = re.sub(r"\s+", "", wave.text or "")
        try:
            found[idx] = np.array([int(v) for v in text.split(",") if v != ""], dtype=np.int64)
        except ValueError:
            raise RecordError(path, f"lead {name}: WaveformData holds something other than "
                                    "comma-separated integers") from None
    missing = [L.LEADS[i] for i in range(len(L.LEADS)) if i not in found]
    if missing:
        raise RecordError(path, f"missing leads {', '.join(missing)} in StripData "
                                f"(found {len(found)} of 12)")
    counts = {L.LEADS[i]: found[i].size for i in range(len(L.LEADS))}
    expected = n_declared if n_declared is not None else max(counts.values())
    wrong = {k: v for k, v in counts.items() if v != expected}
    if wrong:
        shown = ", ".join(f"{k} {v}" for k, v in wrong.items())
        raise RecordError(path, f"wrong number of samples: {shown} (expected {expected} per lead"
                                f"{' as ChannelSampleCountTotal says' if n_declared is not None else ''})")
    if expected < N_SAMPLES:
        raise RecordError(path, f"wrong number of samples: {expected} per lead is {expected / FS:.1f} s; "
                                f"10 s ({N_SAMPLES} samples) required")
    units = np.stack([found[i] for i in range(len(L.LEADS))])
    signal = (units * (resolution / 1000.0)).astype(np.float32)
    return signal, FS
