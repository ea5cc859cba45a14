# SPDX-License-Identifier: MIT
"""test_conveyor_embed - the Python binding end to end: open/run/close,
push/pull/flush, a second batch on the same processes, timeouts, a failing
stage with conveyor-host's message, and nothing left behind.

Run by tests/python-binding.sh (make check) with CONVEYOR_LIBRARY and
CONVEYOR_PLUGIN_PATH pointing into the build tree."""

import os
import selectors
import tempfile
import threading
import time
import unittest

from conveyor_embed import END, ConveyorError, Pipeline

CHAIN = """\
[pipeline]
shared_memory = 64K
[up]
plugin = text:upper
[label]
plugin = text:prefix
text = "<"
"""


def write_ini(text):
    fd, path = tempfile.mkstemp(suffix=".ini", dir=os.environ.get("TMPDIR"))
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def segments_of(pid):
    return [n for n in os.listdir("/dev/shm") if n.startswith("conveyor.%d." % pid)]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid):
    for _ in range(1000):
        if not alive(pid):
            return True
        time.sleep(0.01)
    return False


class PipelineTest(unittest.TestCase):
    def setUp(self):
        self.ini = write_ini(CHAIN)

    def tearDown(self):
        os.unlink(self.ini)

    def test_run_batches_on_the_same_processes(self):
        with Pipeline(self.ini) as pl:
            host = pl.host_pid
            self.assertEqual(pl.run([b"a", b"bc", b""]), [b"<A", b"<BC", b"<"])
            items = [str(i).encode() for i in range(100000)]
            self.assertEqual(pl.run(items), [b"<" + i for i in items])
            self.assertEqual(pl.pushed, 100003)
            self.assertEqual(pl.host_pid, host)
            self.assertEqual(len(segments_of(os.getpid())), 1)
        self.assertEqual(pl.status, 0)
        self.assertTrue(wait_gone(host))
        self.assertEqual(segments_of(os.getpid()), [])

    def test_push_pull_flush(self):
        pl = Pipeline(self.ini).open()
        with self.assertRaises(TimeoutError):
            pl.pull(timeout=0)
        pl.push(b"x")
        pl.push(b"y\x00z")
        pl.flush()
        self.assertEqual(pl.pull(timeout=0, with_seq=True), (b"<X", 1))
        self.assertEqual(pl.pull(timeout=0, with_seq=True), (b"<Y\x00Z", 2))
        with self.assertRaises(TimeoutError):
            pl.pull(timeout=0.05)
        pl.push(b"w")
        self.assertEqual(pl.pull(timeout=10), b"<W")
        self.assertEqual(pl.close(), 0)
        self.assertEqual(pl.status, 0)

    def test_fileno_with_selectors(self):
        with Pipeline(self.ini) as pl:
            sel = selectors.DefaultSelector()
            sel.register(pl, selectors.EVENT_READ)
            with self.assertRaises(TimeoutError):
                pl.pull(timeout=0)
            pl.push(b"q")
            got = None
            while got is None:
                self.assertTrue(sel.select(timeout=10), "readable within 10 s")
                try:
                    got = pl.pull(timeout=0)
                except TimeoutError:
                    pass
            self.assertEqual(got, b"<Q")
            sel.close()

    def test_two_threads(self):
        with Pipeline(self.ini) as pl:
            n = 20000

            def pusher():
                for i in range(n):
                    pl.push(b"%d" % i)

            t = threading.Thread(target=pusher)
            t.start()
            got = [pl.pull(timeout=30) for _ in range(n)]
            t.join()
            self.assertEqual(got, [b"<%d" % i for i in range(n)])

    def test_a_failing_stage(self):
        ini = write_ini("[f]\nplugin = testplug:fail\nat = 2\n")
        try:
            pl = Pipeline(ini).open()
            with self.assertRaises(ConveyorError) as cm:
                pl.run([b"1", b"2", b"3"])
            self.assertEqual(str(cm.exception),
                             "f: error: failing item 2 as asked: '2'\n"
                             "f: error: stage 'f' failed item 2 (process returned -1)\n"
                             "error: the pipeline is stopped: stage 'f' failed")
            with self.assertRaises(ConveyorError) as cm:
                pl.close()
            self.assertEqual(cm.exception.status, 1)
        finally:
            os.unlink(ini)

    def test_bad_configuration(self):
        ini = write_ini("[a]\nplugin = text:nosuchstage\n")
        try:
            with self.assertRaises(ConveyorError) as cm:
                Pipeline(ini).open()
            self.assertIn("nosuchstage", str(cm.exception))
            self.assertIn(cm.exception.status, (2, 3))
        finally:
            os.unlink(ini)

    def test_stop_and_end(self):
        pl = Pipeline(self.ini).open()
        pl.push(b"a")
        self.assertEqual(pl.stop(), 143)
        with self.assertRaises(ValueError):
            pl.push(b"b")


if __name__ == "__main__":
    unittest.main()
