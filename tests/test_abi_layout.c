/* SPDX-License-Identifier: MIT */
/*
 * test_abi_layout.c - pins the plugin ABI: the size and offset of every
 * field of every public struct, and the values of the public constants, as
 * literal numbers for x86_64.  A change to the SDK headers that moves,
 * resizes or renumbers any of them fails here, so a break of compiled
 * modules cannot pass unnoticed; growing a struct at its end adds lines
 * here and changes only its size.
 *
 * conveyor/host.h declares no struct (conveyor_pipeline is opaque): its
 * part of the pin is the exit statuses.
 */
#include <criterion/criterion.h>
#include <stddef.h>

#include <conveyor/host.h>
#include <conveyor/plugin.h>

/* Checks a field's offset and size; cr_expect, so that one run reports
 * every field that moved. */
#define PIN_FIELD(type, field, off, size)                                     \
    do {                                                                      \
        cr_expect_eq(offsetof(type, field), (size_t)(off),                    \
                     "offsetof(%s, %s) is %zu, pinned at %d", #type, #field,  \
                     offsetof(type, field), (off));                           \
        cr_expect_eq(sizeof(((type *)0)->field), (size_t)(size),              \
                     "sizeof %s.%s is %zu, pinned at %d", #type, #field,      \
                     sizeof(((type *)0)->field), (size));                     \
    } while (0)

#define PIN_SIZE(type, size, align)                                           \
    do {                                                                      \
        cr_expect_eq(sizeof(type), (size_t)(size), "sizeof(%s) is %zu, pinned at %d", \
                     #type, sizeof(type), (size));                            \
        cr_expect_eq(_Alignof(type), (size_t)(align),                         \
                     "_Alignof(%s) is %zu, pinned at %d", #type, _Alignof(type), (align)); \
    } while (0)

#if defined(__x86_64__) && defined(__LP64__)
#define PINNED_ABI 1
#else
#define PINNED_ABI 0
#endif

Test(abi_layout, param_spec)
{
#if PINNED_ABI
    PIN_SIZE(conveyor_param_spec, 32, 8);
    PIN_FIELD(conveyor_param_spec, name, 0, 8);
    PIN_FIELD(conveyor_param_spec, summary, 8, 8);
    /* ABI 1.2, read by the module's param_size (1.0 specs were 16 bytes). */
    PIN_FIELD(conveyor_param_spec, default_value, 16, 8);
    PIN_FIELD(conveyor_param_spec, flags, 24, 4);
#else
    cr_skip_test("the layout is pinned for x86_64 (LP64) only");
#endif
}

Test(abi_layout, stage)
{
#if PINNED_ABI
    PIN_SIZE(conveyor_stage, 72, 8);
    PIN_FIELD(conveyor_stage, name, 0, 8);
    PIN_FIELD(conveyor_stage, summary, 8, 8);
    PIN_FIELD(conveyor_stage, init, 16, 8);
    PIN_FIELD(conveyor_stage, process, 24, 8);
    PIN_FIELD(conveyor_stage, fini, 32, 8);
    PIN_FIELD(conveyor_stage, params, 40, 8);
    /* ABI 1.2, read by the module's stage_size (1.0 stages were 48 bytes). */
    PIN_FIELD(conveyor_stage, produce, 48, 8);
    PIN_FIELD(conveyor_stage, check, 56, 8);
    PIN_FIELD(conveyor_stage, flush, 64, 8);
#else
    cr_skip_test("the layout is pinned for x86_64 (LP64) only");
#endif
}

Test(abi_layout, module)
{
#if PINNED_ABI
    PIN_SIZE(conveyor_module, 40, 8);
    PIN_FIELD(conveyor_module, abi_major, 0, 2);
    PIN_FIELD(conveyor_module, abi_minor, 2, 2);
    PIN_FIELD(conveyor_module, size, 4, 4);
    PIN_FIELD(conveyor_module, name, 8, 8);
    PIN_FIELD(conveyor_module, version, 16, 8);
    PIN_FIELD(conveyor_module, stages, 24, 8);
    /* ABI 1.2; 1.0 and 1.1 descriptors were 32 bytes, ending before it. */
    PIN_FIELD(conveyor_module, stage_size, 32, 4);
    PIN_FIELD(conveyor_module, param_size, 36, 4);
#else
    cr_skip_test("the layout is pinned for x86_64 (LP64) only");
#endif
}

/* The constants do not depend on the machine. */
Test(abi_layout, versions_and_constants)
{
    cr_expect_eq(CONVEYOR_ABI_MAJOR, 1);
    cr_expect_eq(CONVEYOR_ABI_MINOR, 2);

    cr_expect_eq(CONVEYOR_EXIT_OK, 0);
    cr_expect_eq(CONVEYOR_EXIT_FAILED, 1);
    cr_expect_eq(CONVEYOR_EXIT_CONFIG, 2);
    cr_expect_eq(CONVEYOR_EXIT_PLUGIN, 3);

    cr_expect_eq(CONVEYOR_LOG_ERROR, 0);
    cr_expect_eq(CONVEYOR_LOG_WARNING, 1);
    cr_expect_eq(CONVEYOR_LOG_INFO, 2);
    cr_expect_eq(CONVEYOR_LOG_DEBUG, 3);

    cr_expect_eq(CONVEYOR_LOCK_RECOVERED, 1);
    cr_expect_eq(CONVEYOR_LOCKS, 64);
    cr_expect_eq(CONVEYOR_MORE, 0);
    cr_expect_eq(CONVEYOR_END, 1);
    cr_expect_eq(CONVEYOR_PARAM_REQUIRED, 1u);
}

/* What CONVEYOR_MODULE() stamps: this header's version and sizes. */
static const conveyor_stage no_stages[] = { { .name = NULL } };
CONVEYOR_MODULE("layout", "1.0", no_stages);

Test(abi_layout, module_macro_stamps_version_and_sizes)
{
    cr_expect_eq(conveyor_module_v1.abi_major, CONVEYOR_ABI_MAJOR);
    cr_expect_eq(conveyor_module_v1.abi_minor, CONVEYOR_ABI_MINOR);
    cr_expect_eq(conveyor_module_v1.size, sizeof(conveyor_module));
    cr_expect_eq(conveyor_module_v1.stage_size, sizeof(conveyor_stage));
    cr_expect_eq(conveyor_module_v1.param_size, sizeof(conveyor_param_spec));
    cr_expect_eq(conveyor_module_v1.stages, no_stages);
    cr_expect_str_eq(conveyor_module_v1.name, "layout");
    cr_expect_str_eq(conveyor_module_v1.version, "1.0");
}
