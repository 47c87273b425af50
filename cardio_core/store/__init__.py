from cardio_core.store.store import Store, StoreBusy, StoreReadOnly, StoreWriteFailed, open_store, to_json

__all__ = ["Store", "StoreBusy", "StoreReadOnly", "StoreWriteFailed", "open_store", "to_json"]
