"""The machinery a researcher should not need to touch: the fast route, the callbacks,
checkpoints, loggers, the Trainer, and Lightning's internals (fenced in one module)."""
