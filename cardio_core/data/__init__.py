"""Reading, writing, preprocessing, splitting and ingesting the datasets."""
