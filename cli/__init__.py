"""The command line of DESIGN.md's CLI contract: one module per subcommand, each with its arguments and its run.

``main.py`` stays the entry point; it builds the parser from these modules and dispatches.
"""
