"""``python -m ganzoo`` (also what ``torchrun -m ganzoo`` runs)."""

from ganzoo.cli import main

if __name__ == "__main__":
    main()
