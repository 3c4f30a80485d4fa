# pollux_component(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [NO_INSTALL])
#
# One component = one shared library `libpollux_<name>.so` (target pollux_<name>_lib) with its
# public headers in <name>/include, linked through the interface target `pollux::<name>`.
# Shared, so that a plugin loaded by pollux-tgt (pollux_add_plugin) and the target use one copy
# of the layer: one bdev registry, one RPC method table. Components register RPC methods,
# subsystems and modules from static constructors, which run when the library loads.
#
# Inside pollux's tree the library carries a SONAME with pollux's major.minor: before 1.0 a
# minor version may change the ABI. With POLLUX_INSTALL on, the component joins the installed
# SDK (library, headers, exported target, pkg-config file: cmake/PolluxInstall.cmake). The
# installed SDK ships this file too, so an out-of-tree project can use pollux_component() and
# pollux_add_plugin() after find_package(pollux).
include(GNUInstallDirs)

# $<LINK_LIBRARY:POLLUX_NO_AS_NEEDED,lib>: links `lib` even when --as-needed is on.
set(CMAKE_LINK_LIBRARY_USING_POLLUX_NO_AS_NEEDED
    "LINKER:--push-state,--no-as-needed" "<LINK_ITEM>" "LINKER:--pop-state")
set(CMAKE_LINK_LIBRARY_USING_POLLUX_NO_AS_NEEDED_SUPPORTED TRUE)

function(pollux_component name)
  cmake_parse_arguments(ARG "NO_INSTALL" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(pollux_${name}_lib SHARED ${ARG_SOURCES})
  set_target_properties(pollux_${name}_lib PROPERTIES OUTPUT_NAME pollux_${name})
  target_include_directories(pollux_${name}_lib PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(pollux_${name}_lib PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  # The public headers are C++20: whoever links a component (an out-of-tree module too) gets it.
  target_compile_features(pollux_${name}_lib PUBLIC cxx_std_20)
  if(PROJECT_NAME STREQUAL "pollux")
    set_target_properties(pollux_${name}_lib PROPERTIES
      VERSION ${pollux_VERSION}
      SOVERSION ${pollux_VERSION_MAJOR}.${pollux_VERSION_MINOR})
  endif()
  # What others link: the library, kept on the link line even when nothing references it. A
  # program links a module only for what its static constructors register, and DPDK's link
  # flags turn --as-needed on, which would drop it. CMake (3.25) does not rename targets inside
  # $<LINK_LIBRARY:...> when it exports them, so the installed interface names its library's
  # exported name itself.
  add_library(pollux_${name} INTERFACE)
  target_link_libraries(pollux_${name} INTERFACE
    "$<BUILD_INTERFACE:$<LINK_LIBRARY:POLLUX_NO_AS_NEEDED,pollux_${name}_lib>>"
    "$<INSTALL_INTERFACE:$<LINK_LIBRARY:POLLUX_NO_AS_NEEDED,pollux::${name}_lib>>"
    ${ARG_PUBLIC_DEPS})
  target_compile_features(pollux_${name} INTERFACE cxx_std_20)
  add_library(pollux::${name} ALIAS pollux_${name})
  if(POLLUX_INSTALL AND NOT ARG_NO_INSTALL)
    pollux_install_component(${name} "${ARG_PUBLIC_DEPS};${ARG_PRIVATE_DEPS}")
  endif()
endfunction()

# pollux_add_plugin(NAME SOURCES ... [DEPS ...])
#
# A bdev module built as a plugin: `pollux_<NAME>.so`, which `pollux-tgt --plugin PATH` loads
# at start-up. It links pollux::bdev (and DEPS) without copying it: the target's copy serves.
# The module's POLLUX_BDEV_MODULE stamps the file with the pollux version it was built against
# (an ELF note the target reads before it runs any of the plugin's code).
function(pollux_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE pollux::bdev ${ARG_DEPS})
  set_target_properties(${name} PROPERTIES PREFIX "" OUTPUT_NAME pollux_${name})
endfunction()

# Installs component `name` (see above); `deps` are its link dependencies, scanned for the
# pkg-config targets (PkgConfig::<prefix>) that the installed package must find again.
function(pollux_install_component name deps)
  set_target_properties(pollux_${name}_lib PROPERTIES EXPORT_NAME ${name}_lib)
  set_target_properties(pollux_${name} PROPERTIES EXPORT_NAME ${name})
  # An installed sanitizer build hands its flags on: code linked with its libraries must be
  # built and linked with the same runtime (the build tree sets them for every target).
  if(POLLUX_SANITIZE)
    target_compile_options(pollux_${name} INTERFACE
      "$<INSTALL_INTERFACE:${POLLUX_SANITIZE_COMPILE_OPTIONS}>")
    target_link_options(pollux_${name} INTERFACE
      "$<INSTALL_INTERFACE:${POLLUX_SANITIZE_LINK_OPTIONS}>")
  endif()
  install(TARGETS pollux_${name}_lib pollux_${name} EXPORT polluxTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT libraries
      NAMELINK_COMPONENT dev)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
    install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
  endif()
  foreach(dep IN LISTS deps)
    if(dep MATCHES "^PkgConfig::(.+)$")
      set_property(GLOBAL APPEND PROPERTY POLLUX_PKG_CONFIG_PREFIXES ${CMAKE_MATCH_1})
    endif()
  endforeach()
  set_property(GLOBAL APPEND PROPERTY POLLUX_INSTALLED_COMPONENTS ${name})
endfunction()
