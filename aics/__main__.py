from aics.cli import main

main()
