# pollux_component(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
#
# One component = one static library `pollux_<name>_objs` with its public headers in
# <name>/include, exposed as the interface target `pollux::<name>`. The interface links the
# archive whole: components register RPC methods, subsystems and modules from static
# constructors, and a plain static link would drop those object files.
#
# With POLLUX_INSTALL on (pollux built as the top-level project), the component also joins the
# installed module SDK: archive, headers and both targets, exported as pollux::<name>_objs and
# pollux::<name> (cmake/PolluxInstall.cmake). The installed SDK ships this file too, so an
# out-of-tree module can use pollux_component() after find_package(pollux).
include(GNUInstallDirs)

function(pollux_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(pollux_${name}_objs STATIC ${ARG_SOURCES})
  target_include_directories(pollux_${name}_objs PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(pollux_${name}_objs PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  # The public headers are C++20: whoever links a component (an out-of-tree module too) gets it.
  target_compile_features(pollux_${name}_objs PUBLIC cxx_std_20)
  add_library(pollux_${name} INTERFACE)
  # CMake (3.25) does not rename targets inside $<LINK_LIBRARY:...> when it exports them, so
  # the installed interface names its archive's exported name itself.
  target_link_libraries(pollux_${name} INTERFACE
    "$<BUILD_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,pollux_${name}_objs>>"
    "$<INSTALL_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,pollux::${name}_objs>>"
    ${ARG_PUBLIC_DEPS})
  target_compile_features(pollux_${name} INTERFACE cxx_std_20)
  add_library(pollux::${name} ALIAS pollux_${name})
  if(POLLUX_INSTALL)
    pollux_install_component(${name} "${ARG_PUBLIC_DEPS};${ARG_PRIVATE_DEPS}")
  endif()
endfunction()

# Installs component `name` (see above); `deps` are its link dependencies, scanned for the
# pkg-config targets (PkgConfig::<prefix>) that the installed package must find again.
function(pollux_install_component name deps)
  set_target_properties(pollux_${name}_objs PROPERTIES EXPORT_NAME ${name}_objs)
  set_target_properties(pollux_${name} PROPERTIES EXPORT_NAME ${name})
  # An installed sanitizer build hands its flags on: code linked with its archives must be
  # built and linked with the same runtime (the build tree sets them for every target).
  if(POLLUX_SANITIZE)
    target_compile_options(pollux_${name} INTERFACE
      "$<INSTALL_INTERFACE:${POLLUX_SANITIZE_COMPILE_OPTIONS}>")
    target_link_options(pollux_${name} INTERFACE
      "$<INSTALL_INTERFACE:${POLLUX_SANITIZE_LINK_OPTIONS}>")
  endif()
  install(TARGETS pollux_${name}_objs pollux_${name} EXPORT polluxTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
  foreach(dep IN LISTS deps)
    if(dep MATCHES "^PkgConfig::(.+)$")
      set_property(GLOBAL APPEND PROPERTY POLLUX_PKG_CONFIG_PREFIXES ${CMAKE_MATCH_1})
    endif()
  endforeach()
endfunction()
