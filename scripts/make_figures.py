"""Regenerate the figures in figures/ (`make figures`). Pass names to make only some of them.

Without names every registered figure is written, and PNGs in figures/ that no registered figure produces
are deleted, so the folder holds exactly the figures the lessons and the README use.
"""

import sys

from yolox_np.figures import FIGURES, REPO_FIGURES, save_figure


def main(names):
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        print(f"unknown figure(s): {', '.join(unknown)}; figures are: {', '.join(sorted(FIGURES))}", file=sys.stderr)
        return 2
    for name in names or sorted(FIGURES):
        print(save_figure(name, REPO_FIGURES))
    if not names:
        for stale in sorted(REPO_FIGURES.glob("*.png")):
            if stale.stem not in FIGURES:
                stale.unlink()
                print(f"removed {stale} (no figure of that name)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
