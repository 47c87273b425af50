"""The thesis's published numbers (method.md §6), shown beside this workspace's numbers; never tested against."""
from __future__ import annotations

THESIS = {
    "silhouette_chapman": (0.039, 0.210),
    "silhouette_ptbxl": (-0.004, 0.074),
    "silhouette_chapman_per_label": {"AFIB": (0.028, 0.179), "GSVT": (0.030, 0.142), "PACE": (0.086, 0.096),
                                     "SB": (0.068, 0.276), "SR": (0.010, 0.195)},
    "f1_chapman": {"AFIB": 0.91, "GSVT": 0.88, "PACE": 0.72, "SB": 0.94, "SR": 0.84},
    "macro_f1_chapman": 0.50,
    "acdc_silhouette": ((-0.117, 0.110), (0.055, 0.106)),
    "acdc_accuracy": (0.63, 0.046),
    # PTB-XL records closer to the other label's PTB-XL centroid than to their own (method.md §5), fine-tuned
    "share_sr_closer_to_sb": 0.2162,
    "share_sb_closer_to_sr": 0.0,
}
