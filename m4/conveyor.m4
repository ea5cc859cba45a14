# SPDX-License-Identifier: MIT
# m4/conveyor.m4 - configure macros of Conveyor's own.  (libtool's macros
# are copied next to this file by autoreconf and are not kept in git.)

# CONVEYOR_CHECK_LDFLAG(FLAG, VARIABLE)
# ------------------------------------
# Appends FLAG to VARIABLE when the C compiler links a program with it.
AC_DEFUN([CONVEYOR_CHECK_LDFLAG],
[AS_VAR_PUSHDEF([conveyor_cv], [conveyor_cv_ldflag_$1])dnl
AC_CACHE_CHECK([whether the linker accepts $1], [conveyor_cv],
  [conveyor_save_LDFLAGS=$LDFLAGS
   LDFLAGS="$LDFLAGS $1"
   AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
     [AS_VAR_SET([conveyor_cv], [yes])], [AS_VAR_SET([conveyor_cv], [no])])
   LDFLAGS=$conveyor_save_LDFLAGS])
AS_VAR_IF([conveyor_cv], [yes], [$2="$$2 $1"])
AS_VAR_POPDEF([conveyor_cv])dnl
])

# CONVEYOR_ABI_FROM_HEADER
# ------------------------
# Reads CONVEYOR_ABI_MAJOR and CONVEYOR_ABI_MINOR out of the SDK header, so
# that conveyor.pc and the manual pages can never state another ABI than
# the one plugins are built with.
AC_DEFUN([CONVEYOR_ABI_FROM_HEADER],
[AC_MSG_CHECKING([the plugin ABI of sdk/conveyor/plugin.h])
CONVEYOR_ABI_MAJOR=`sed -n 's/^#define CONVEYOR_ABI_MAJOR \(@<:@0-9@:>@@<:@0-9@:>@*\)$/\1/p' "$srcdir/sdk/conveyor/plugin.h"`
CONVEYOR_ABI_MINOR=`sed -n 's/^#define CONVEYOR_ABI_MINOR \(@<:@0-9@:>@@<:@0-9@:>@*\)$/\1/p' "$srcdir/sdk/conveyor/plugin.h"`
AS_IF([test -z "$CONVEYOR_ABI_MAJOR" || test -z "$CONVEYOR_ABI_MINOR"],
  [AC_MSG_ERROR([cannot read CONVEYOR_ABI_MAJOR/MINOR from $srcdir/sdk/conveyor/plugin.h])])
AC_MSG_RESULT([$CONVEYOR_ABI_MAJOR.$CONVEYOR_ABI_MINOR])
AC_SUBST([CONVEYOR_ABI_MAJOR])
AC_SUBST([CONVEYOR_ABI_MINOR])
])
