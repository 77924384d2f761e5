"""`python -m conclave.cli`: the `conclave` command."""

from conclave.cli import main

main()
