from overparam.cli import main

main()
