# The Debian packages (scripts/package.sh: cpack -G DEB), included when POLLUX_PACKAGE is on.
# Three packages, split by install component the way Debian splits a library:
#   libpollux<major.minor>  the shared libraries (component "libraries"; SONAME .so.<major.minor>)
#   pollux                  pollux-tgt, pollux-rpc, pollux-perf, pollux-top, example configs,
#                           docs ("runtime")
#   libpollux-dev           headers, namelinks, CMake package, pkg-config files ("dev")
# Dependencies on Debian's libraries come from dpkg-shlibdeps; the -dev package names the -dev
# packages whose headers pollux's public headers include.
set(soversion ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
set(lib_package libpollux${soversion})
# The changelog's date: the build's, or SOURCE_DATE_EPOCH's for a reproducible build.
string(TIMESTAMP CPACK_DEBIAN_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)

# Debian wants a copyright file in every package's doc folder.
foreach(pair "libraries=${lib_package}" "runtime=pollux" "dev=libpollux-dev")
  string(REPLACE "=" ";" pair "${pair}")
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package} COMPONENT ${component})
  # A native package's changelog, compressed as Debian's policy asks.
  set(changelog ${PROJECT_BINARY_DIR}/packaging/${package}/changelog.gz)
  set(CPACK_DEBIAN_CHANGELOG_PACKAGE ${package})
  configure_file(${PROJECT_SOURCE_DIR}/packaging/debian/changelog.in
                 ${PROJECT_BINARY_DIR}/packaging/${package}/changelog @ONLY)
  execute_process(COMMAND gzip -9n --force --keep ${PROJECT_BINARY_DIR}/packaging/${package}/changelog
                  COMMAND_ERROR_IS_FATAL ANY)
  install(FILES ${changelog} DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package}
          COMPONENT ${component})
endforeach()

# Manual pages, written by help2man from each program's --help and --version.
set(man_pages "")
foreach(pair "pollux-tgt=poll-mode storage target" "pollux-rpc=JSON-RPC client of pollux-tgt"
             "pollux-perf=block-device benchmark of pollux"
             "pollux-top=live terminal monitor of pollux-tgt")
  string(REPLACE "=" ";" pair "${pair}")
  list(GET pair 0 program)
  list(GET pair 1 summary)
  set(page ${PROJECT_BINARY_DIR}/packaging/man/${program}.1)
  add_custom_command(OUTPUT ${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/packaging/man
    COMMAND help2man --no-info --name "${summary}" --output ${page} $<TARGET_FILE:${program}>
    COMMAND gzip -9n --force ${page}
    DEPENDS ${program} VERBATIM)
  list(APPEND man_pages ${page}.gz)
endforeach()
add_custom_target(pollux_man_pages ALL DEPENDS ${man_pages})
install(FILES ${man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pollux)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "pollux developers <dev@pollux.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL libraries runtime dev)
set(CPACK_COMPONENT_RUNTIME_DEPENDS libraries)
set(CPACK_COMPONENT_DEV_DEPENDS libraries)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# pollux's programs link the libraries package's libraries: dpkg-shlibdeps finds them in that
# component's staging folder, beside the one it runs in (CPack's working directory).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ../libraries${CMAKE_INSTALL_FULL_LIBDIR})

set(CPACK_DEBIAN_LIBRARIES_PACKAGE_NAME ${lib_package})
set(CPACK_DEBIAN_LIBRARIES_PACKAGE_SECTION libs)
# ldconfig runs from a trigger (Debian's way), besides the postinst/postrm calls CPack writes.
set(CPACK_DEBIAN_LIBRARIES_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/debian/triggers)
set(CPACK_DEBIAN_LIBRARIES_DESCRIPTION "poll-mode storage framework (shared libraries)
A C++20 poll-mode storage framework in the spirit of SPDK: reactors
pinned to cores, lightweight threads with lockless mailboxes, a block-device
layer with malloc, null, passthru, error, delay and kernel I/O engine modules,
a vhost-user virtio-blk target and initiator, and JSON-RPC management.

This package holds the shared libraries that pollux's programs and bdev module
plugins link.")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME pollux)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "poll-mode storage target, RPC client and benchmark
A C++20 poll-mode storage framework in the spirit of SPDK.

This package holds pollux-tgt (the storage target, configured with a JSON file
in SPDK's format and managed over JSON-RPC), pollux-rpc (its client),
pollux-perf (the block-device benchmark), pollux-top (a live terminal
monitor of a target), example configurations and the documentation.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libpollux-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libdpdk-dev, libabsl-dev, nlohmann-json3-dev, liburing-dev, pkg-config")
set(CPACK_DEBIAN_DEV_DESCRIPTION "poll-mode storage framework (module SDK)
A C++20 poll-mode storage framework in the spirit of SPDK.

This package holds what a bdev module built outside pollux's tree needs: the
public headers, the CMake package (find_package(pollux)) and the pkg-config
files (pollux-bdev, ...). A module built as a plugin is loaded with
pollux-tgt --plugin PATH.")

include(CPack)
