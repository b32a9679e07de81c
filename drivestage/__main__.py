from drivestage.cli import main

main()
