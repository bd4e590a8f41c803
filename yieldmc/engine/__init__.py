"""Pure numerical core: the problem, the schema, quantities, variation, model, streaming blocks, statistics, alignment (no xarray, zarr or Hydra)."""
