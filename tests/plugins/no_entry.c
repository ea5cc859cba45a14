/* SPDX-License-Identifier: MIT */
/*
 * no_entry.c - a shared object that loads fine but is not a Conveyor
 * module: it exports a function and no conveyor_module_v1.  The host must
 * say that the symbol is missing from this file.
 */
int no_entry_answer(void);

int no_entry_answer(void)
{
    return 42;
}
