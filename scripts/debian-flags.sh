# shellcheck shell=bash
# Sourced by scripts/build.sh (the release build) and scripts/package.sh: Debian's build and
# hardening flags (dpkg-buildflags, what dpkg-buildpackage gives a package) and ccache. Both
# builds compile with the same flags, so the package build, in a directory beside the release
# one, takes every object from the cache instead of compiling pollux a second time.
# Needs $root (the source tree); sets the array debian_cmake_args.
export DEB_BUILD_MAINT_OPTIONS="hardening=+all"
# In the source tree, so that -ffile-prefix-map maps it to "." whoever calls.
cflags=$(cd "$root" && dpkg-buildflags --get CFLAGS)
cxxflags=$(cd "$root" && dpkg-buildflags --get CXXFLAGS)
cppflags=$(cd "$root" && dpkg-buildflags --get CPPFLAGS)
ldflags=$(cd "$root" && dpkg-buildflags --get LDFLAGS)
# base_dir: paths under the source tree are hashed relative to the build directory, so two
# build directories at the same depth share results; hash_dir=false: the build directory
# itself, written into the debug information, does not count either; depend mode: the
# compiler's own -MD output names the headers, so a miss costs no extra preprocessor run. Test
# programs skip ccache (test/CMakeLists.txt): the package build never compiles them.
launcher="env;CCACHE_BASEDIR=$root;CCACHE_NOHASHDIR=true;CCACHE_DEPEND=true;ccache"
debian_cmake_args=(
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
  -DCMAKE_C_FLAGS="$cppflags $cflags" -DCMAKE_CXX_FLAGS="$cppflags $cxxflags"
  -DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags"
  -DCMAKE_MODULE_LINKER_FLAGS="$ldflags"
  -DCMAKE_C_COMPILER_LAUNCHER="$launcher" -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"
)
unset cflags cxxflags cppflags ldflags launcher
