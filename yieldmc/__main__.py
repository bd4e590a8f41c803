from yieldmc.cli import main

main()
