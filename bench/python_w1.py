# SPDX-License-Identifier: MIT
"""python_w1.py - W1 for the Python Conveyor (parallel-conveyor), the
library this project succeeds: three identity Processors, the lines of
stdin as items, the results written to stdout one per line.

bench/run runs it only when `python3 -c 'import conveyor'` works, on a
fiftieth of W1's lines (the Python library moves about 4e4 items/s here).
Written against the API of the library's documentation (Pipeline,
Processor, Pipeline.run(list)); not run here: pip cannot reach PyPI.
"""
import sys

from conveyor.pipeline import Pipeline
from conveyor.stages import Processor


def identity(item):
    return item


def main():
    items = sys.stdin.read().splitlines()
    pl = Pipeline()
    for _ in range(3):
        pl.add(Processor(identity))
    out = pl.run(items)
    if out is None:
        sys.exit("python_w1.py: Pipeline.run returned nothing to check")
    sys.stdout.write("".join(str(x) + "\n" for x in out))


if __name__ == "__main__":
    main()
