#include "test_bdev.h"

namespace pollux::testing {
POLLUX_BDEV_MODULE(TestBdevModule);
}  // namespace pollux::testing
