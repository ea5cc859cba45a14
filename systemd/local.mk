# SPDX-License-Identifier: MIT
# systemd/local.mk - the unit template conveyor@.service (included from
# Makefile.am).  Made at make time, so that its paths are the installation
# folders fully expanded, as a unit file needs them.
EXTRA_DIST += systemd/conveyor@.service.in
CLEANFILES += systemd/conveyor@.service
AM_DISTCHECK_CONFIGURE_FLAGS = --with-systemdsystemunitdir='$${dc_install_base}/lib/systemd/system'

if HAVE_SYSTEMD_UNITDIR
systemdsystemunit_DATA = systemd/conveyor@.service
else
noinst_DATA = systemd/conveyor@.service
endif

systemd/conveyor@.service: $(srcdir)/systemd/conveyor@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	    $(srcdir)/systemd/conveyor@.service.in >$@.tmp && mv $@.tmp $@
