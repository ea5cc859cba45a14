/* SPDX-License-Identifier: MIT */
/*
 * host_api.h - what the files of api/ share: an opened pipeline's plan
 * and loaded stages, for the embedding calls (embed_api.c).
 */
#ifndef CV_HOST_API_H
#define CV_HOST_API_H

#include <conveyor/host.h>
#include "load/plan.h"

const cv_plan *cv_host_plan(const conveyor_pipeline *pl);
const conveyor_stage *const *cv_host_stages(const conveyor_pipeline *pl);

#endif
