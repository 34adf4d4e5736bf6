"""Research: parameter sweeps and walk-forward checks over backtests, run on Ray."""
