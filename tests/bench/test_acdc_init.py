import pytest


def test_bench_acdc_init_takes_a_workspace_path_and_says_what_it_needs(tmp_path):
    """--workspace as a plain string (it once crashed with str / str); a workspace without an MMCL run is
    refused with the step to take."""
    from bench.acdc_init import main
    with pytest.raises(RuntimeError, match="no MMCL image encoder in this workspace"):
        main(["--workspace", str(tmp_path / "ws"), "--epochs", "1"])
