"""Regenerate every figure in figures/ (`make figures`). Pass names to make only some of them."""

import sys

from yolox_np.figures import FIGURES, REPO_FIGURES, save_figure


def main(names):
    for name in names or sorted(FIGURES):
        print(save_figure(name, REPO_FIGURES))


if __name__ == "__main__":
    main(sys.argv[1:])
