from aitrapp.cli import main

main()
