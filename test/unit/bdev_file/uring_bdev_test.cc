// What is particular to the uring engine (the conformance suite covers the rest): the probe,
// and the ring setup flags this kernel takes (the best set on Linux 6.1 and later).
#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <cstdio>
#include <string>

#include "bdev_test_env.h"
#include "file_test_util.h"
#include "pollux/bdev_uring/bdev_uring.h"

namespace pollux::testing {
namespace {

using UringBdevTest = BdevTest;

bool KernelAtLeast(int major, int minor) {
  utsname name{};
  int kmajor = 0, kminor = 0;
  if (uname(&name) != 0 || std::sscanf(name.release, "%d.%d", &kmajor, &kminor) != 2) return false;
  return kmajor > major || (kmajor == major && kminor >= minor);
}

TEST_F(UringBdevTest, ProbeAndSetupFlags) {
  absl::Status probe = CallOn(app_thread(), [] { return ProbeUring(); });
  if (!probe.ok()) GTEST_SKIP() << "io_uring does not work here: " << probe;
  std::string flags = CallOn(app_thread(), [] { return UringSetupFlagNames(); });
  if (KernelAtLeast(6, 1)) {
    EXPECT_EQ(flags, "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG");
  }

  TempDir dir;
  std::string path = dir.File("u.img");
  MakeFile(path, 1024 * 1024, 0);
  ASSERT_TRUE(CallRpc("bdev_uring_create", {{"name", "U0"}, {"filename", path}}).ok());
  absl::StatusOr<rpc::Json> bdevs = CallRpc("bdev_get_bdevs", {{"name", "U0"}});
  ASSERT_TRUE(bdevs.ok());
  const rpc::Json& info = (*bdevs)[0];
  EXPECT_EQ(info["product_name"], "URING bdev");
  EXPECT_EQ(info["driver_specific"]["uring"]["setup_flags"], flags);
  EXPECT_TRUE(CallRpc("bdev_uring_delete", {{"name", "U0"}}).ok());
  absl::StatusOr<rpc::Json> again = CallRpc("bdev_uring_delete", {{"name", "U0"}});
  EXPECT_FALSE(again.ok());
}

}  // namespace
}  // namespace pollux::testing
