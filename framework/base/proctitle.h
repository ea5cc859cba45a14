/* SPDX-License-Identifier: MIT */
/*
 * proctitle.h - the names a process shows in ps and top: its kernel name
 * (PR_SET_NAME, 15 bytes, /proc/PID/comm) and, when the program handed over
 * the memory of its arguments, its command line (/proc/PID/cmdline), the
 * way setproctitle(3) does it.  Without that memory only the kernel name
 * changes.
 */
#ifndef CV_PROCTITLE_H
#define CV_PROCTITLE_H

/* Takes the memory of ARGV's strings, and of the environment strings that
 * follow them, for cv_title_set.  Every argv[i] and environ are pointed at
 * copies first, so the program reads its arguments and environment as
 * before.  0; -EALREADY when taken before; -EINVAL for an empty ARGV;
 * -ENOMEM (nothing is changed). */
int cv_title_take_area(int argc, char **argv);

/* Makes TITLE the command line, cut to the memory taken (nothing without
 * it). */
void cv_title_set(const char *title);

/* Puts back the command line the program started with. */
void cv_title_restore(void);

/* Sets the kernel name to PREFIX and LABEL cut to 15 bytes; a label ending
 * in "[N]" keeps that ending and loses letters of its name instead
 * ("cv:" and "transform_words[3]" make "cv:transform[3]"). */
void cv_title_set_name(const char *prefix, const char *label);

#endif
