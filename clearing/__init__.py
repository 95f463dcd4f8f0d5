"""The clearing centre's back office: a city's day of batches checked and cleared (docs/settlement.md).

Imports ``cardlib`` only (the batch format, TAC checking, the key store); the
work runs on Dask (``clearing.engine``), imported when a job starts.
"""
