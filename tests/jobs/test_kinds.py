"""jobs.kinds: the one table of job kinds, and the spec checks that read it."""
import pytest

from jobs.kinds import KINDS, JobKind, KindError, get_kind
from jobs.spec import JobSpec, SpecError


def test_every_kind_resolves_to_a_callable():
    for kind in KINDS.values():
        assert callable(kind.resolve()), kind.name


def test_unknown_or_broken_kinds_are_refused_by_name():
    with pytest.raises(KindError, match="unknown job kind 'nope'"):
        get_kind("nope")
    with pytest.raises(KindError, match="cannot load no_such_module_xyz:fn"):
        JobKind("broken", "no_such_module_xyz:fn", "a kind whose module is gone").resolve()
    with pytest.raises(SpecError, match="kind: must be one of"):
        JobSpec(kind="nope")


def test_a_ptbxl_finetune_is_refused_with_a_clear_message():
    # PTB-XL is the unseen cohort: embedded and projected, never fine-tuned on (it has no 20-class targets)
    with pytest.raises(SpecError, match="dataset: finetune ECG jobs use chapman; ptbxl is not one of them"):
        JobSpec(kind="finetune", modality="ecg", dataset="ptbxl", epochs=1)
    JobSpec(kind="pretrain", modality="ecg", dataset="ptbxl", epochs=1)   # pre-training may use it
    with pytest.raises(SpecError, match="there are no pretrain CMR jobs"):
        JobSpec(kind="pretrain", modality="cmr", dataset="acdc", epochs=1)


def test_importing_jobs_does_not_import_torch():
    import subprocess
    import sys
    code = "import sys, jobs, cardio_cli.jobs, jobs.slurm; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
