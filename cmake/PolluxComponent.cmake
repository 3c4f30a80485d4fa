# pollux_component(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
#
# One component = one static library `pollux_<name>_objs` with its public headers in
# <name>/include, exposed as the interface target `pollux::<name>`. The interface links the
# archive whole: components register RPC methods, subsystems and modules from static
# constructors, and a plain static link would drop those object files.
function(pollux_component name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(pollux_${name}_objs STATIC ${ARG_SOURCES})
  target_include_directories(pollux_${name}_objs PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>)
  target_link_libraries(pollux_${name}_objs PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  # The public headers are C++20: whoever links a component (an out-of-tree module too) gets it.
  target_compile_features(pollux_${name}_objs PUBLIC cxx_std_20)
  add_library(pollux_${name} INTERFACE)
  target_link_libraries(pollux_${name} INTERFACE
    "$<LINK_LIBRARY:WHOLE_ARCHIVE,pollux_${name}_objs>" ${ARG_PUBLIC_DEPS})
  target_compile_features(pollux_${name} INTERFACE cxx_std_20)
  add_library(pollux::${name} ALIAS pollux_${name})
endfunction()
