import pytest

from cardio_core.training.estimate import LONG_RUN_S, estimate_training


def test_estimate_is_records_times_epochs_over_throughput():
    est = estimate_training("ecg", n_train=1200, epochs=10, measured_samples_per_s=20.0)
    assert est.seconds == pytest.approx(600.0) and "measured" in est.source and not est.long
    cpu = estimate_training("ecg", n_train=31_000, epochs=200)          # the thesis recipe on 2 CPU cores
    assert cpu.long and cpu.seconds > LONG_RUN_S and "h" in cpu.text()
    assert estimate_training("ecg", n_train=31_000, epochs=200, cuda=True).seconds < cpu.seconds
    assert estimate_training("cmr", n_train=80, epochs=2, folds=5).seconds == pytest.approx(80 * 2 * 5 / 3.0)
    with pytest.raises(ValueError):
        estimate_training("eeg", n_train=1, epochs=1)
