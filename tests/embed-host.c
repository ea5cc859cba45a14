/* SPDX-License-Identifier: MIT */
/*
 * embed-host.c - a program that embeds Conveyor through <conveyor/host.h>
 * and does not hand over its arguments' memory: the end-to-end tests check
 * that its forked processes still get their short names, and that its
 * command line is left alone.  Usage: embed-host PIPELINE.ini
 */
#include <stdio.h>

#include <conveyor/host.h>

int main(int argc, char **argv)
{
    conveyor_pipeline *pl;
    char err[2048];
    if (argc != 2) {
        fprintf(stderr, "usage: embed-host PIPELINE.ini\n");
        return CONVEYOR_EXIT_CONFIG;
    }
    int rc = conveyor_pipeline_open(argv[1], &pl, err, sizeof err);
    if (rc != CONVEYOR_EXIT_OK) {
        fprintf(stderr, "embed-host: %s\n", err);
        return rc;
    }
    rc = conveyor_pipeline_run(pl);
    conveyor_pipeline_close(pl);
    return rc;
}
