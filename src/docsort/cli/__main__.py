from docsort.cli import main

main()
