"""``robusttrain train`` as a script, for ``accelerate launch recipes/train.py`` and clones of the repository.

The loop lives in the library (:mod:`robusttrain.training`); options come from YAML files (``-c``, layered) and
flags. Example:
    python recipes/train.py -c configs/erm.yaml -c configs/callbacks/default.yaml --epochs 2 --output-dir outputs/run
"""

import sys

from robusttrain.training import main

if __name__ == "__main__":
    sys.exit(main(prog="recipes/train.py"))
