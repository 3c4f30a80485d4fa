# Install rules, included when POLLUX_INSTALL is on: the programs, example configs and docs, and
# the module SDK that an out-of-tree module builds against, with
#   find_package(pollux CONFIG REQUIRED)        (<libdir>/cmake/pollux) or
#   pkg-config --cflags --libs pollux-bdev      (<libdir>/pkgconfig/pollux-<component>.pc).
# Each component installs its library and headers itself (pollux_component); this file adds
# pollux::bdev_modules, the CMake package and the pkg-config files.
include(CMakePackageConfigHelpers)

# The pkg-config module behind one of a component's public link dependencies, or "" when the
# dependency needs none on the consumer's side (threads come with the compiler driver).
function(pollux_pkg_config_name dep out)
  set(name "")
  if(dep MATCHES "^pollux::(.+)$")
    string(REPLACE "_" "-" name "pollux-${CMAKE_MATCH_1}")
  elseif(dep MATCHES "^absl::(.+)$")
    set(name "absl_${CMAKE_MATCH_1}")
  elseif(dep MATCHES "^PkgConfig::(.+)$")
    set(name "${${CMAKE_MATCH_1}_MODULE_NAME}")
  elseif(dep MATCHES "^nlohmann_json::")
    set(name "nlohmann_json")
  endif()
  set(${out} "${name}" PARENT_SCOPE)
endfunction()

# <libdir>/pkgconfig/pollux-<name>.pc for component `name`. Only the public dependencies are
# required: the shared library carries its private ones itself. The prefix is found from the
# file's own place, so an install moved elsewhere (a DESTDIR, a temporary prefix) still works.
function(pollux_write_pkg_config name public_deps)
  set(requires "")
  foreach(dep IN LISTS public_deps)
    pollux_pkg_config_name("${dep}" module)
    if(module)
      list(APPEND requires "${module}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES requires)
  list(JOIN requires ", " requires)
  string(REPLACE "_" "-" pc_name "pollux-${name}")
  file(RELATIVE_PATH to_prefix "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  # A component links its own library. pollux-bdev-modules links every module, which a program
  # links only for what their static constructors register: kept even under --as-needed (one
  # flag before them all; pkg-config merges repeated flags across files, so not one per file).
  set(libs "")
  if(TARGET pollux_${name}_lib)
    set(libs "-L\${libdir} -lpollux_${name}")
  elseif(name STREQUAL "bdev_modules")
    set(libs "-L\${libdir} -Wl,--no-as-needed")
    foreach(dep IN LISTS public_deps)
      if(dep MATCHES "^pollux::(.+)$")
        string(APPEND libs " -lpollux_${CMAKE_MATCH_1}")
      endif()
    endforeach()
  endif()
  file(WRITE ${PROJECT_BINARY_DIR}/pkgconfig/${pc_name}.pc
"prefix=\${pcfiledir}/${to_prefix}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}

Name: ${pc_name}
Description: pollux ${name} (C++20 poll-mode storage framework)
Version: ${PROJECT_VERSION}
Requires: ${requires}
Cflags: -std=c++20 -I\${includedir}
Libs: ${libs}
")
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/${pc_name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endfunction()

function(pollux_install_package)
  foreach(program pollux-tgt pollux-rpc pollux-perf pollux-top)
    if(TARGET ${program})
      install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
    endif()
  endforeach()
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/etc/ DESTINATION ${CMAKE_INSTALL_DATADIR}/pollux/etc
          COMPONENT runtime FILES_MATCHING PATTERN "*.json")
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
          COMPONENT runtime)
  install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR}
          COMPONENT runtime)

  set_target_properties(pollux_bdev_modules PROPERTIES EXPORT_NAME bdev_modules)
  install(TARGETS pollux_bdev_modules EXPORT polluxTargets)

  set(cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/pollux)
  install(EXPORT polluxTargets NAMESPACE pollux:: DESTINATION ${cmake_dir} COMPONENT dev)

  # The pkg-config packages behind the components' PkgConfig::<prefix> targets, as
  # "<prefix>=<module>", which polluxConfig.cmake looks up again on the consumer's machine.
  get_property(prefixes GLOBAL PROPERTY POLLUX_PKG_CONFIG_PREFIXES)
  list(REMOVE_DUPLICATES prefixes)
  set(POLLUX_PKG_CONFIG_DEPS "")
  foreach(prefix IN LISTS prefixes)
    if(NOT ${prefix}_MODULE_NAME)
      message(FATAL_ERROR "PkgConfig::${prefix}: no pkg_check_modules(${prefix} ...) found it")
    endif()
    list(APPEND POLLUX_PKG_CONFIG_DEPS "${prefix}=${${prefix}_MODULE_NAME}")
  endforeach()

  # One pkg-config file per component, and pollux-bdev-modules for every module of the tree.
  get_property(components GLOBAL PROPERTY POLLUX_INSTALLED_COMPONENTS)
  foreach(name IN LISTS components)
    get_target_property(public_deps pollux_${name}_lib INTERFACE_LINK_LIBRARIES)
    set(public_pollux_deps "")
    foreach(dep IN LISTS public_deps)
      if(NOT dep MATCHES "^\\$<")
        list(APPEND public_pollux_deps "${dep}")
      endif()
    endforeach()
    pollux_write_pkg_config(${name} "${public_pollux_deps}")
  endforeach()
  get_target_property(modules pollux_bdev_modules INTERFACE_LINK_LIBRARIES)
  pollux_write_pkg_config(bdev_modules "${modules}")

  configure_package_config_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/polluxConfig.cmake.in
    ${PROJECT_BINARY_DIR}/polluxConfig.cmake INSTALL_DESTINATION ${cmake_dir})
  # Modules compile against pollux's headers and link its libraries: before 1.0 a minor
  # version may change either (the libraries' SONAME carries major.minor).
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/polluxConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/polluxConfig.cmake
                ${PROJECT_BINARY_DIR}/polluxConfigVersion.cmake
                ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/PolluxComponent.cmake
          DESTINATION ${cmake_dir} COMPONENT dev)
endfunction()

pollux_install_package()
