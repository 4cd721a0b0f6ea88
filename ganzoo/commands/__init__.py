"""Commands that register themselves through the ``ganzoo_register_commands`` hook, as a plugin's would.

Each module defines ``register_commands(app)``; :mod:`ganzoo.builtin` calls them. Modules here import only
typer and rich at the top, so ``ganzoo --help`` stays fast.
"""
