// The guest tests' host-side pieces that need no guest: reading a workload's output, the cpio
// archive that carries the workload, failure messages and finding the image.
#include "guest_output.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "child_process.h"
#include "guest_disk.h"
#include "guest_vm.h"
#include "guest_workloads.h"

namespace pollux::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr char kFioJson[] = R"({
  "fio version" : "fio-3.33",
  "jobs" : [
    {"jobname" : "w", "error" : 0,
     "read" : {"io_bytes" : 16777216, "iops" : 745.5},
     "write" : {"io_bytes" : 16777216, "iops" : 1985.25}},
    {"jobname" : "w", "error" : 84,
     "read" : {"io_bytes" : 4096, "iops" : 1.0},
     "write" : {"io_bytes" : 0, "iops" : 0.0}}
  ]
})";

TEST(GuestOutputTest, ResultLinesBecomeKeysAndValues) {
  const std::map<std::string, std::string> results = ParseResults(
      "noise\nRESULT sha.a=0123\nRESULT empty=\n RESULT indented=1\nRESULT sha.a=4567\n"
      "RESULT no-equals\n");
  EXPECT_EQ(results, (std::map<std::string, std::string>{{"sha.a", "4567"}, {"empty", ""}}));
}

TEST(GuestOutputTest, FioSectionGivesJobsAndLog) {
  const std::string output = std::string(
                                 "before\n@@FIO-BEGIN other rc=0@@\n{}\n@@FIO-LOG other@@\n"
                                 "@@FIO-END other@@\n@@FIO-BEGIN w rc=1@@\n") +
                             kFioJson + "\n@@FIO-LOG w@@\nverify: bad header\n@@FIO-END w@@\n";
  absl::StatusOr<FioResult> fio = ParseFio(output, "w");
  ASSERT_TRUE(fio.ok()) << fio.status();
  EXPECT_EQ(fio->exit_code, 1);
  ASSERT_EQ(fio->jobs.size(), 2u);
  EXPECT_EQ(fio->jobs[0].write_bytes, 16777216u);
  EXPECT_DOUBLE_EQ(fio->jobs[0].read_iops, 745.5);
  EXPECT_EQ(fio->read_bytes(), 16777216u + 4096);
  EXPECT_EQ(fio->write_bytes(), 16777216u);
  EXPECT_EQ(fio->error(), 84);
  EXPECT_EQ(fio->log, "verify: bad header\n");
  EXPECT_NE(fio->Describe().find("error 84"), std::string::npos) << fio->Describe();
}

TEST(GuestOutputTest, FioSectionMissingOrWithoutJsonIsAnError) {
  EXPECT_EQ(ParseFio("@@FIO-BEGIN w rc=0@@\n{}\n", "w").status().code(),
            absl::StatusCode::kNotFound);
  absl::StatusOr<FioResult> fio =
      ParseFio("@@FIO-BEGIN w rc=1@@\n@@FIO-LOG w@@\nfio: bad option\n@@FIO-END w@@\n", "w");
  ASSERT_FALSE(fio.ok());
  EXPECT_NE(fio.status().message().find("fio: bad option"), std::string::npos) << fio.status();
}

TEST(GuestOutputTest, DeviceReportReadsRingQueuesAndInterrupts) {
  const DeviceReport report = ParseDeviceReport(ParseResults(
      "RESULT device.packed_ring=1\nRESULT device.hw_queues=2\nRESULT device.read_only=0\n"
      "RESULT device.irq.0=750\nRESULT device.irq.1=627\n"));
  EXPECT_TRUE(report.packed_ring);
  EXPECT_EQ(report.hw_queues, 2);
  EXPECT_FALSE(report.read_only);
  EXPECT_EQ(report.queue_interrupts, (std::map<int, uint64_t>{{0, 750}, {1, 627}}));
}

TEST(GuestOutputTest, NewcArchiveUnpacksWithCpio) {
  TmpfsDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string odd_size = RandomBytes(4099, 1);  // padding after data of every length
  const std::string archive =
      NewcArchive({{.path = "/workload.sh", .data = "echo hi\n", .mode = 0755},
                   {.path = "/data/deep/odd.bin", .data = odd_size},
                   {.path = "/data/x", .data = ""}});
  EXPECT_EQ(archive.size() % 4, 0u);
  std::ofstream(dir.File("a.cpio"), std::ios::binary).write(archive.data(), archive.size());
  ASSERT_EQ(mkdir(dir.File("out").c_str(), 0755), 0);
  ChildProcess cpio;
  ASSERT_TRUE(cpio.Start(
      {"/bin/sh", "-c", "cd " + dir.File("out") + " && cpio -idm --quiet < " + dir.File("a.cpio")},
      dir.File("cpio.log")));
  ASSERT_EQ(cpio.Wait(std::chrono::seconds(30)), 0) << ReadFile(dir.File("cpio.log"));
  EXPECT_EQ(ReadFile(dir.File("out/workload.sh")), "echo hi\n");
  EXPECT_EQ(ReadFile(dir.File("out/data/deep/odd.bin")), odd_size);
  EXPECT_EQ(ReadFile(dir.File("out/data/x")), "");
  struct stat st;
  ASSERT_EQ(stat(dir.File("out/workload.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST(GuestOutputTest, DescribeQuotesTheLastLinesOfOutputAndConsole) {
  GuestRun run;
  run.timed_out = true;
  for (int i = 1; i <= 100; ++i) run.console += "line " + std::to_string(i) + "\n";
  run.qemu_log = "qemu-system-x86_64: vhost-user-blk: socket closed\n";
  std::string text = run.Describe(5);
  EXPECT_NE(text.find("QEMU was killed"), std::string::npos) << text;
  EXPECT_EQ(text.find("workload output"), std::string::npos) << text;
  EXPECT_NE(text.find("line 96\n"), std::string::npos) << text;
  EXPECT_NE(text.find("line 100\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("line 95\n"), std::string::npos) << text;
  EXPECT_NE(text.find("socket closed"), std::string::npos) << text;

  run.timed_out = false;
  run.finished = true;
  run.workload_status = 1;
  run.output = "RESULT a=1\nFAIL: fio verify\n";
  text = run.Describe(5);
  EXPECT_NE(text.find("exited with status 1"), std::string::npos) << text;
  EXPECT_NE(text.find("workload output, last 2 lines ---\nRESULT a=1\nFAIL: fio verify\n"),
            std::string::npos)
      << text;
}

TEST(GuestOutputTest, MissingImageNamesTheCommandThatBuildsIt) {
  ASSERT_EQ(setenv("POLLUX_GUEST_IMAGE", "/nonexistent/guest-image", 1), 0);
  absl::StatusOr<GuestImage> image = GuestImage::Find();
  unsetenv("POLLUX_GUEST_IMAGE");
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("/nonexistent/guest-image/vmlinux"), std::string::npos)
      << image.status();
  EXPECT_NE(image.status().message().find("scripts/guest-image.sh --link"), std::string::npos)
      << image.status();
}

TEST(GuestOutputTest, RandomBytesAreReproducible) {
  EXPECT_EQ(RandomBytes(1001, 7), RandomBytes(1001, 7));
  EXPECT_NE(RandomBytes(1001, 7), RandomBytes(1001, 8));
  EXPECT_EQ(RandomBytes(1001, 7).size(), 1001u);
}

}  // namespace
}  // namespace pollux::testing
