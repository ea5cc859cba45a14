/* SPDX-License-Identifier: MIT */
/*
 * top.h - conveyor-host --top: a running pipeline's live metrics, redrawn
 * every second like top(1), or once as text or JSON.
 */
#ifndef CV_CLI_TOP_H
#define CV_CLI_TOP_H

/* PID: the host's, or 0 for the only pipeline running.  ONCE: one snapshot;
 * JSON: as JSON.  Returns the exit status: 0 shown (a pipeline that ended
 * while watched included), 1 no such pipeline or its host was killed, 2
 * several run and none was named (they are listed). */
int cv_top(long pid, int once, int json);

#endif
