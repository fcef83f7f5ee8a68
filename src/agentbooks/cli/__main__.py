"""``python -m agentbooks.cli`` runs the CLI (as the ``agentbooks`` script does)."""

from . import main

main()
