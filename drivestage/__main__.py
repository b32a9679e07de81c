from drivestage.entry import main

main()
