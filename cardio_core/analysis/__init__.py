"""What the pipeline computes from weights: embeddings, projections (UMAP), metrics of the embedding spaces."""
