"""A session's start after another process: what earlier processes left is
reconciled with the broker (``startup_reconcile``), dead sessions are closed
(``crash_recovery``), and the day is resumed into the kernel (``engine_restore``)."""
