from yieldmc.io.cli import main

main()
