// Compiles test_pch.h once (test/CMakeLists.txt); the test programs reuse its precompiled form.
