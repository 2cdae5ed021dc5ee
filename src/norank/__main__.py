from norank.cli import main

main()
