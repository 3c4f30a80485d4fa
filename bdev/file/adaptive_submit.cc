// The per-thread load the adaptive depth-1 policy reads (adaptive_submit.h).
#include "pollux/bdev_file/adaptive_submit.h"

namespace pollux {

constinit thread_local FileThreadLoad file_thread_load{};

}  // namespace pollux
