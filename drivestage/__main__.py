try:
    from drivestage.entry import main

    # (Inside the guard too: a Ctrl-C at main's first instruction, before its own try,
    # came out as a traceback through drivestage: the fresh-clone run at 04067de8.)
    main()
except KeyboardInterrupt:   # (a Ctrl-C as the entry point loads: as one a moment later)
    import sys

    sys.stderr.write("Interrupted.\n") if sys.stderr is not None else None
    sys.exit(130)
