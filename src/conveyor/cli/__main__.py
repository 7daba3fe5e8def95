"""``python -m conveyor.cli`` is the ``conveyor`` command."""

from conveyor.cli.main import main

main()
