from cardio_core.store.store import Store, StoreBusy, open_store, to_json

__all__ = ["Store", "StoreBusy", "open_store", "to_json"]
