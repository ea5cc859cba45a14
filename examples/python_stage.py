#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""python_stage.py - a Conveyor stage written in Python, run by the exec
module with reply = per-item (see python-stage.ini).

The stage reads one item per line on standard input and writes exactly one
reply line for it on standard output, flushed at once:

    a line         the output item
    an empty line  drops the item
    ERROR: why     fails the item; the stage's on_error decides what then

Messages for people go to standard error: the host prints each line with
the stage's name.  Only the standard library is used.
"""
import math
import sys


class Processor:
    """Runs JOB on every item, as Python Conveyor's Processor(job) did.

    JOB takes the item (a str without its newline) and returns the output
    item, or None to drop it; an exception fails the item.
    """

    def __init__(self, job):
        self.job = job

    def run(self, stdin=sys.stdin, stdout=sys.stdout):
        for line in iter(stdin.readline, ""):
            item = line[:-1] if line.endswith("\n") else line
            try:
                out = self.job(item)
                reply = "" if out is None else str(out)
            except Exception as e:  # any failure fails this item only
                reply = "ERROR: %s" % e
            # One reply is one line: a newline inside would be two.
            stdout.write(reply.replace("\n", " ") + "\n")
            stdout.flush()


def hypotenuse(item):
    """'3 4' -> '5': the hypotenuse of a right triangle; '#...' is dropped."""
    if item.startswith("#") or not item.strip():
        return None
    a, b = (float(x) for x in item.split())
    if a <= 0 or b <= 0:
        raise ValueError("sides must be positive: %r" % item)
    return "%g" % math.hypot(a, b)


if __name__ == "__main__":
    Processor(hypotenuse).run()
