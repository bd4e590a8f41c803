"""The edge: configuration (Hydra), the command, the store (zarr), the result Dataset (xarray), plots, progress."""
