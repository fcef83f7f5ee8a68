"""The agentbooks benchmark suite: ``python -m bench [--quick]``. See bench/README.md."""
