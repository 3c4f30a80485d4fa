# Install rules, included when POLLUX_INSTALL is on: the programs, and the module SDK that an
# out-of-tree module builds against with find_package(pollux CONFIG REQUIRED). Each component
# installs its archive and headers itself (pollux_component); this file adds
# pollux::bdev_modules and the CMake package in <libdir>/cmake/pollux.
include(CMakePackageConfigHelpers)

function(pollux_install_package)
  foreach(program pollux-tgt pollux-rpc pollux-perf)
    if(TARGET ${program})
      install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
    endif()
  endforeach()

  set_target_properties(pollux_bdev_modules PROPERTIES EXPORT_NAME bdev_modules)
  install(TARGETS pollux_bdev_modules EXPORT polluxTargets)

  set(cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/pollux)
  install(EXPORT polluxTargets NAMESPACE pollux:: DESTINATION ${cmake_dir})

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

  configure_package_config_file(${CMAKE_CURRENT_FUNCTION_LIST_DIR}/polluxConfig.cmake.in
    ${PROJECT_BINARY_DIR}/polluxConfig.cmake INSTALL_DESTINATION ${cmake_dir})
  # Modules compile against pollux's headers and link its archives: before 1.0 a minor
  # version may change either.
  write_basic_package_version_file(${PROJECT_BINARY_DIR}/polluxConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  install(FILES ${PROJECT_BINARY_DIR}/polluxConfig.cmake
                ${PROJECT_BINARY_DIR}/polluxConfigVersion.cmake
                ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/PolluxComponent.cmake
          DESTINATION ${cmake_dir})
endfunction()

pollux_install_package()
