"""``python -m kafkaops.cli``: the same as the ``kafkaops`` console script."""

from kafkaops.cli import main

main()
