// SubsystemRegistry: registration and order.
#include "pollux/rpc/subsystem.h"

#include <gtest/gtest.h>

namespace pollux::rpc {
namespace {

Subsystem Make(std::string name, int order) {
  Subsystem s;
  s.name = std::move(name);
  s.order = order;
  return s;
}

TEST(SubsystemRegistry, OrderedByOrderThenName) {
  SubsystemRegistry registry;
  ASSERT_TRUE(registry.Register(Make("vhost_blk", 30)).ok());
  ASSERT_TRUE(registry.Register(Make("framework", 0)).ok());
  ASSERT_TRUE(registry.Register(Make("bdev", 20)).ok());
  ASSERT_TRUE(registry.Register(Make("accel", 20)).ok());
  std::vector<std::string> names;
  for (Subsystem* s : registry.Ordered()) names.push_back(s->name);
  EXPECT_EQ(names, (std::vector<std::string>{"framework", "accel", "bdev", "vhost_blk"}));
}

TEST(SubsystemRegistry, FindAndDuplicates) {
  SubsystemRegistry registry;
  ASSERT_TRUE(registry.Register(Make("bdev", 20)).ok());
  Subsystem* bdev = registry.Find("bdev");
  ASSERT_NE(bdev, nullptr);
  EXPECT_EQ(bdev->order, 20);
  EXPECT_EQ(registry.Find("nvmf"), nullptr);
  absl::Status again = registry.Register(Make("bdev", 1));
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(again.message(), "subsystem \"bdev\" is already registered");
  EXPECT_EQ(registry.Register(Make("", 1)).code(), absl::StatusCode::kInvalidArgument);
  // Pointers stay valid as more subsystems register.
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(registry.Register(Make("s" + std::to_string(i), i)).ok());
  EXPECT_EQ(registry.Find("bdev"), bdev);
}

Subsystem MakeTestSubsystem() { return Make("rpc_subsystem_test", 1000); }
POLLUX_SUBSYSTEM(rpc_subsystem_test, MakeTestSubsystem);

TEST(SubsystemRegistry, MacroRegistersInGlobal) {
  EXPECT_EQ(&SubsystemRegistry::Global(), &SubsystemRegistry::Global());
  Subsystem* s = SubsystemRegistry::Global().Find("rpc_subsystem_test");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->order, 1000);
}

}  // namespace
}  // namespace pollux::rpc
