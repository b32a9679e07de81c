try:
    from drivestage.entry import main
except KeyboardInterrupt:   # (a Ctrl-C as the entry point loads: as one a moment later)
    import sys

    sys.stderr.write("Interrupted.\n") if sys.stderr is not None else None
    sys.exit(130)

main()
