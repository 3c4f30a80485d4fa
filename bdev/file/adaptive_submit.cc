// The overlap memory of the adaptive depth-1 policy (adaptive_submit.h).
#include "pollux/bdev_file/adaptive_submit.h"

namespace pollux {

constinit thread_local uint32_t file_overlap_credit = 0;

}  // namespace pollux
