# SPDX-License-Identifier: MIT
# docs/local.mk - the manual pages and the guides (included from Makefile.am).
#
# Each page is a roff source docs/NAME.in holding @VERSION@ and @bindir@-style
# placeholders, made into the page at make time rather than by configure: a
# configure substitution would leave @libdir@ as ${exec_prefix}/lib, while
# the Makefile's variables are fully expanded (and a `make prefix=...`
# override is honoured).  The pages are made in the build tree, so VPATH
# builds and distcheck work.
man_pages = docs/conveyor-host.1 docs/pipeline.ini.5 docs/conveyor-plugin.3 \
	docs/conveyor-embed.3
man_MANS += $(man_pages)
EXTRA_DIST += $(man_pages:=.in)
CLEANFILES += $(man_pages)
dist_doc_DATA += docs/pipeline-ini.md docs/design-notes.md docs/scaling-out.md docs/packaging.md
dist_sdkdoc_DATA = docs/plugin-guide.md

man_sed = sed \
	-e 's|@VERSION[@]|$(PACKAGE_VERSION)|g' \
	-e 's|@ABI_MAJOR[@]|$(CONVEYOR_ABI_MAJOR)|g' \
	-e 's|@ABI_MINOR[@]|$(CONVEYOR_ABI_MINOR)|g' \
	-e 's|@bindir[@]|$(bindir)|g' \
	-e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	-e 's|@pkglibdir[@]|$(pkglibdir)|g' \
	-e 's|@includedir[@]|$(includedir)|g' \
	-e 's|@pkgconfigdir[@]|$(pkgconfigdir)|g' \
	-e 's|@docdir[@]|$(docdir)|g' \
	-e 's|@sdkdocdir[@]|$(sdkdocdir)|g'

$(man_pages): Makefile
	$(AM_V_GEN)$(MKDIR_P) docs && \
	$(man_sed) $(srcdir)/$@.in >$@.tmp && mv $@.tmp $@
docs/conveyor-host.1: $(srcdir)/docs/conveyor-host.1.in
docs/pipeline.ini.5: $(srcdir)/docs/pipeline.ini.5.in
docs/conveyor-plugin.3: $(srcdir)/docs/conveyor-plugin.3.in
docs/conveyor-embed.3: $(srcdir)/docs/conveyor-embed.3.in

# A page per function of the SDK's headers, "man conveyor_emit", holding
# only a .so request for the page that describes it.  The names are read
# from the headers (every CONVEYOR_API declaration), so a function added
# there gets its page without a list to keep here.
man_link_headers = $(srcdir)/sdk/conveyor/plugin.h $(srcdir)/sdk/conveyor/host.h
man_api_names = sed -n 's/^CONVEYOR_API[^(]*[ *]\(conveyor_[a-z0-9_]*\)(.*/\1/p'

docs/man3.stamp: $(man_link_headers) Makefile
	$(AM_V_GEN)rm -rf docs/man3 && $(MKDIR_P) docs/man3 && \
	for f in `$(man_api_names) $(srcdir)/sdk/conveyor/plugin.h`; do \
	  echo '.so man3/conveyor-plugin.3' >docs/man3/$$f.3 || exit 1; \
	done && \
	for f in `$(man_api_names) $(srcdir)/sdk/conveyor/host.h`; do \
	  echo '.so man3/conveyor-embed.3' >docs/man3/$$f.3 || exit 1; \
	done && \
	touch $@

all-local: docs/man3.stamp

install-data-local: docs/man3.stamp
	$(MKDIR_P) '$(DESTDIR)$(man3dir)'
	$(INSTALL_DATA) docs/man3/*.3 '$(DESTDIR)$(man3dir)'

uninstall-local:
	for f in `cat $(man_link_headers) | $(man_api_names)`; do \
	  rm -f '$(DESTDIR)$(man3dir)'/$$f.3; \
	done

clean-local: clean-man-links
clean-man-links:
	rm -rf docs/man3 docs/man3.stamp
.PHONY: clean-man-links
