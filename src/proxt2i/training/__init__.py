"""Training: losses and (t, lam) draws as pure functions; the loop, checkpoints and EMA."""
