"""Small utilities every layer uses: atomic files, signals, the terminal, config files, Lightning internals, logging."""
