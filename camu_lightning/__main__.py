from camu_lightning.cli import main

main()
