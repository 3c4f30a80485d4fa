// Examining new bdevs: every module's ExamineConfig, then ExamineDisk, and the count of
// examinations still under way that WaitForBdevExamine (bdev_wait_for_examine) waits on: SPDK's
// bdev_examine and its modules' action_in_progress. Private; the registry calls it.
#pragma once

#include "pollux/bdev/bdev.h"

namespace pollux {

// Lets every module examine `bdev`, just registered: ExamineConfig of each, then ExamineDisk of
// each (only the claimer's when ExamineConfig claimed it). Stops asking once the bdev is being
// removed. On the registering thread.
void ExamineNewBdev(Bdev& bdev);

}  // namespace pollux
