"""The 20-class label space of the Chapman task and the PTB-XL rhythm mapping.

Source: the Cha et al. table that the released checkpoints were trained with
(see method.md §1 and data_formats.md §2). Codes that are not in this table are
ignored; a record with no mapped code is excluded from the task.
"""
from __future__ import annotations

from types import MappingProxyType

# class -> (group, integration code, source SNOMED codes that map to it)
_CLASS_TABLE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "AFIB": ("Rhythm", "164889003", ("164889003", "164890007")),
    "CAVB": ("Rhythm", "27885002", ("27885002",)),
    "GSVT": ("Rhythm", "427084000", ("427084000", "713422000", "426761007", "233897008", "195101003")),
    "SB": ("Rhythm", "426177001", ("426177001",)),
    "SR": ("Rhythm", "426783006", ("426783006", "427393009")),
    "1AVB": ("Duration", "270492004", ("164947007", "270492004")),
    "APB": ("Duration", "284470004", ("251173003", "284470004", "63593006", "251170000")),
    "CLBBB": ("Duration", "164909002", ("733534002", "164909002")),
    "CRBBB": ("Duration", "713427006", ("713427006",)),
    "VPB": ("Duration", "427172004", ("427172004", "11157007", "17338001", "13640000")),
    "LAD": ("Amplitude", "39732003", ("39732003",)),
    "LAFB": ("Amplitude", "445118002", ("445118002",)),
    "LQV": ("Amplitude", "251146004", ("251146004",)),
    "LVH": ("Amplitude", "55827005", ("164873001", "55827005")),
    "RAD": ("Amplitude", "47665007", ("47665007",)),
    "RVH": ("Amplitude", "89792004", ("89792004",)),
    "PACE": ("Morphology", "10370003", ("10370003",)),
    "QWA": ("Morphology", "164917005", ("164917005",)),
    "STTA": ("Morphology", "55930002", ("429622005", "164931005", "164930006", "428750005", "55930002", "164934002", "59931005")),
    "WPW": ("Morphology", "74390002", ("74390002",)),
}

# Label index order used by the published pipeline: sklearn's MultiLabelBinarizer
# sorts the integration codes as strings. Our class vector follows that order so
# heads trained elsewhere line up column for column.
CLASSES: tuple[str, ...] = tuple(
    sorted(_CLASS_TABLE, key=lambda c: _CLASS_TABLE[c][1])
)
NUM_CLASSES = len(CLASSES)
CLASS_INDEX = MappingProxyType({c: i for i, c in enumerate(CLASSES)})
CLASS_GROUP = MappingProxyType({c: v[0] for c, v in _CLASS_TABLE.items()})
GROUPS: tuple[str, ...] = ("Rhythm", "Duration", "Amplitude", "Morphology")
INTEGRATION_CODE = MappingProxyType({c: v[1] for c, v in _CLASS_TABLE.items()})
SNOMED_TO_CLASS = MappingProxyType(
    {code: c for c, v in _CLASS_TABLE.items() for code in v[2]}
)

# Labels evaluated as "rhythm" (PACE counts although its group is Morphology;
# CAVB is too rare to evaluate).
RHYTHM_LABELS: tuple[str, ...] = ("AFIB", "GSVT", "PACE", "SB", "SR")



def rhythm_of(classes) -> str:
    """A record's rhythm label from its classes: the one rhythm label it has, 'other' (none) or 'mixed' (several)."""
    rhythms = [c for c in classes if c in RHYTHM_LABELS]
    return rhythms[0] if len(rhythms) == 1 else ("other" if not rhythms else "mixed")


# PTB-XL rhythm statements -> Chapman rhythm labels. BIGU/TRIGU have no counterpart.
PTBXL_RHYTHM_MAP = MappingProxyType({
    "AFIB": "AFIB", "AFLT": "AFIB",
    "SR": "SR", "SARRH": "SR",
    "SBRAD": "SB",
    "PACE": "PACE",
    "STACH": "GSVT", "SVARR": "GSVT", "SVTAC": "GSVT", "PSVT": "GSVT",
})

# ACDC diagnostic groups, in a fixed order for the 5-class head.
ACDC_GROUPS: tuple[str, ...] = ("DCM", "HCM", "MINF", "NOR", "RV")

# The 12 standard leads in Chapman's spelling; matching is case-insensitive
# because PTB-XL writes AVR/AVL/AVF.
LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
LEAD_GROUPS: tuple[tuple[int, ...], ...] = ((0, 1, 2), (3, 4, 5), (6, 7, 8, 9, 10, 11))


def map_snomed_codes(codes) -> tuple[list[str], list[str]]:
    """Map SNOMED codes to classes. Returns (sorted unique classes, unmapped codes)."""
    classes, unmapped = set(), []
    for code in codes:
        code = str(code).strip()
        if not code:
            continue
        cls = SNOMED_TO_CLASS.get(code)
        if cls is None:
            unmapped.append(code)
        else:
            classes.add(cls)
    return sorted(classes, key=CLASS_INDEX.__getitem__), unmapped


def bmi_category(bmi: float | None) -> str | None:
    """WHO BMI category as used by the thesis (method.md §1)."""
    if bmi is None or bmi != bmi:
        return None
    if bmi < 18.5:
        return "underweight"
    if bmi < 25:
        return "normal"
    if bmi < 30:
        return "overweight"
    return "obese"

# CMR phenotypes of a paired ECG + CMR cohort (method.md §8: the LV and RV groups whose
# Pearson r the MMCL paper reports). Volumes in mL, ejection fractions in %, LVCO in L/min,
# LVM in g. The manifest of a paired cohort has one column per name.
CMR_PHENOTYPES: tuple[str, ...] = ("LVEDV", "LVESV", "LVSV", "LVEF", "LVCO", "LVM",
                                   "RVEDV", "RVESV", "RVSV", "RVEF")
PHENOTYPE_GROUPS = MappingProxyType({"LV": CMR_PHENOTYPES[:6], "RV": CMR_PHENOTYPES[6:]})
