"""``python -m specstore``: the specstore command."""

from specstore.cli import main

main()
