from camu_lightning.main import main

main()
