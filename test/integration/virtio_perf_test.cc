// pollux-perf through the vhost-user initiator, as a user runs it: -w verify from 512 B to
// 128 KiB against qemu-storage-daemon (split rings, 1 and 2 queues) and against the project's
// test back-end run as its own process (packed and split rings).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "process.h"
#include "qsd_process.h"
#include "virtio_initiator_config.h"

namespace pollux::testing {
namespace {

// The test back-end as a process of its own.
std::unique_ptr<SocketServerProcess> StartBackend(const std::string& socket,
                                                  std::vector<std::string> args) {
  args.insert(args.begin(), {POLLUX_TEST_VHOST_BACKEND_PATH, "--socket", socket});
  return std::make_unique<SocketServerProcess>(std::move(args), socket);
}

RunResult Verify(const TempDir& dir, const std::string& config, const std::string& size,
                 const std::string& cpus) {
  return RunProgram({POLLUX_PERF_PATH, "-c", dir.Write("virtio.json", config), "-q", "16", "-o",
                     size, "-w", "verify", "-t", "1", "-m", cpus},
                    std::chrono::seconds(60));
}

TEST(VirtioPerfTest, VerifyThroughQemuStorageDaemon) {
  TempDir dir;
  const std::string image = "/dev/shm/pollux-virtio-perf-" + std::to_string(getpid()) + ".img";
  ASSERT_EQ(RunProgram({"/usr/bin/truncate", "-s", "128M", image}).exit_code, 0);
  for (int queues : {1, 2}) {
    QsdProcess qsd(dir.File("qsd.sock"), image, queues);
    ASSERT_TRUE(qsd.ready()) << qsd.error();
    for (const char* size : {"512", "4k", "128k"}) {
      SCOPED_TRACE(::testing::Message() << queues << " queue(s), " << size);
      RunResult r = Verify(dir, VirtioInitiatorConfig(dir.File("qsd.sock"), queues, false), size,
                           queues == 1 ? "0" : "0-1");
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
      EXPECT_NE(r.out.find("VirtioBlk0"), std::string::npos) << r.out;
    }
  }
  unlink(image.c_str());
}

TEST(VirtioPerfTest, VerifyThroughTheTestBackEndOnPackedAndSplitRings) {
  TempDir dir;
  for (bool packed : {true, false}) {
    auto backend = StartBackend(dir.File("b.sock"),
                                {"--num-blocks", "65536", "--num-queues", "2", "--packed"});
    ASSERT_TRUE(backend->ready()) << backend->error();
    for (const char* size : {"512", "128k"}) {
      SCOPED_TRACE(::testing::Message() << (packed ? "packed" : "split") << ", " << size);
      RunResult r = Verify(dir, VirtioInitiatorConfig(dir.File("b.sock"), 2, packed), size, "0-1");
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    }
  }
}

TEST(VirtioPerfTest, AMissingBackEndIsAClearError) {
  TempDir dir;
  RunResult r = Verify(dir, VirtioInitiatorConfig(dir.File("none.sock"), 1, false), "4k", "0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pollux::testing
