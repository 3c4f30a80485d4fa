// A shared object with no pollux ABI stamp: an ordinary library, not a pollux module.
extern "C" int not_a_pollux_module() { return 42; }
