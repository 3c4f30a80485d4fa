#include "guest_workloads.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "guest_output.h"

namespace pollux::testing {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;

// Boots a guest; a recorded failure (with the console's tail) unless the workload exited 0.
std::optional<GuestRun> BootOk(GuestDisk& disk, const std::string& what, const std::string& body,
                               const std::vector<GuestFile>& files = {},
                               const GuestVmOptions& vm = {}) {
  absl::StatusOr<GuestRun> run = disk.Boot(WorkloadScript(body), files, vm);
  if (!run.ok()) {
    ADD_FAILURE() << what << ": could not boot the guest: " << run.status();
    return std::nullopt;
  }
  if (!run->ok()) {
    ADD_FAILURE() << what << " against " << disk.launcher().name() << ": " << disk.Explain(*run);
    return std::nullopt;
  }
  return *run;
}

::testing::AssertionResult StartTarget(GuestDisk& disk) {
  absl::Status status = disk.StartTarget();
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "starting " << disk.launcher().name() << ": " << status;
}

::testing::AssertionResult WriteBacking(GuestDisk& disk, uint64_t offset, const std::string& data) {
  absl::Status status = disk.WriteBacking(offset, data);
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status;
}

// The backing file holds `expected` at `offset` (read on the host, after the guest is gone).
void ExpectBacking(const GuestDisk& disk, uint64_t offset, const std::string& expected,
                   const std::string& what) {
  absl::StatusOr<std::string> data = disk.ReadBacking(offset, expected.size());
  ASSERT_TRUE(data.ok()) << data.status();
  if (*data == expected) return;
  size_t i = 0;
  while (i < expected.size() && (*data)[i] == expected[i]) ++i;
  ADD_FAILURE() << "backing file, " << what << " [" << offset << ", " << offset + expected.size()
                << "): first differing byte at " << offset + i << " (0x" << std::hex
                << (static_cast<unsigned>((*data)[i]) & 0xff) << " instead of 0x"
                << (static_cast<unsigned>(expected[i]) & 0xff) << ")";
}

std::string Substitute(std::string text, const std::map<std::string, uint64_t>& values) {
  for (const auto& [name, value] : values) {
    text = absl::StrReplaceAll(text, {{"@" + name + "@", std::to_string(value)}});
  }
  return text;
}

}  // namespace

std::string FioArgs(const FioVerifySpec& spec) {
  std::string args = absl::StrCat(
      "--name=", spec.name, " --filename=$DISK --rw=randwrite --ioengine=libaio --direct=1",
      " --iodepth=", spec.iodepth, " --size=", spec.bytes_per_job,
      spec.block_sizes.find('/') == std::string::npos ? " --bs=" : " --bssplit=", spec.block_sizes,
      " --verify=crc32c --verify_fatal=1");
  if (spec.jobs > 1) {
    absl::StrAppend(&args, " --numjobs=", spec.jobs, " --offset_increment=", spec.bytes_per_job,
                    " --cpus_allowed=0-", spec.jobs - 1, " --cpus_allowed_policy=split");
  }
  return args;
}

std::string WorkloadPrelude() {
  return R"SH(set -u
DISK=/dev/vda
FIO=/usr/bin/fio
# -f: util-linux refuses a device that holds a file system signature otherwise.
BLKDISCARD="/usr/sbin/blkdiscard -f"
MKFS_EXT4=/usr/sbin/mkfs.ext4
E2FSCK=/usr/sbin/e2fsck
fail() { echo "FAIL: $*"; exit 1; }
# must WHAT COMMAND...: runs COMMAND; if it fails, prints its output and fails with WHAT.
must() {
  what=$1
  shift
  "$@" >/tmp/must.log 2>&1 || { rc=$?; cat /tmp/must.log; fail "$what: exit $rc"; }
}
# result KEY VALUE: a line the host reads (ParseResults).
result() { echo "RESULT $1=$2"; }
# run_fio NAME ARGS...: fio with JSON output, printed between markers for the host (ParseFio);
# returns fio's exit status.
run_fio() {
  name=$1
  shift
  $FIO --eta=never --output-format=json --output=/tmp/fio-$name.json "$@" >/tmp/fio-$name.log 2>&1
  rc=$?
  echo "@@FIO-BEGIN $name rc=$rc@@"
  cat /tmp/fio-$name.json 2>/dev/null
  echo "@@FIO-LOG $name@@"
  cat /tmp/fio-$name.log
  echo "@@FIO-END $name@@"
  return $rc
}
# disk_sha OFFSET LENGTH: SHA-256 of the disk's bytes, read with O_DIRECT (no page cache).
disk_sha() {
  dd if=$DISK bs=65536 iflag=direct,skip_bytes,count_bytes skip=$1 count=$2 2>/dev/null |
    sha256sum | cut -d' ' -f1
}
# cached_sha OFFSET LENGTH: the same through the page cache.
cached_sha() {
  dd if=$DISK bs=65536 iflag=skip_bytes,count_bytes skip=$1 count=$2 2>/dev/null |
    sha256sum | cut -d' ' -f1
}
zero_sha() { head -c $1 /dev/zero | sha256sum | cut -d' ' -f1; }
file_sha() { sha256sum "$1" | cut -d' ' -f1; }
# device_report: what the driver negotiated and how many interrupts each request queue took.
device_report() {
  result device.packed_ring "$(cut -c35 /sys/block/vda/device/features)"
  result device.hw_queues "$(ls /sys/block/vda/mq | wc -l)"
  result device.read_only "$(cat /sys/block/vda/ro)"
  dev=$(basename "$(readlink /sys/block/vda/device)")
  awk -v prefix="$dev-req." 'index($NF, prefix) == 1 {
    n = 0
    for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i
    print "RESULT device.irq." substr($NF, length(prefix) + 1) "=" n
  }' /proc/interrupts
}
)SH";
}

std::string WorkloadScript(const std::string& body) { return WorkloadPrelude() + body; }

std::string RandomBytes(size_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(length, '\0');
  for (size_t i = 0; i < length; i += 8) {
    const uint64_t word = rng();
    for (size_t j = 0; j < 8 && i + j < length; ++j)
      data[i + j] = static_cast<char>(word >> (8 * j));
  }
  return data;
}

DeviceReport ParseDeviceReport(const std::map<std::string, std::string>& results) {
  DeviceReport report;
  auto value = [&](const std::string& key) {
    auto it = results.find(key);
    return it == results.end() ? std::string() : it->second;
  };
  report.packed_ring = value("device.packed_ring") == "1";
  report.hw_queues = std::atoi(value("device.hw_queues").c_str());
  report.read_only = value("device.read_only") == "1";
  constexpr std::string_view kIrq = "device.irq.";
  for (const auto& [key, count] : results) {
    if (key.starts_with(kIrq)) {
      report.queue_interrupts[std::atoi(key.c_str() + kIrq.size())] =
          std::strtoull(count.c_str(), nullptr, 10);
    }
  }
  return report;
}

void RunFioVerify(GuestDisk& disk, const FioVerifySpec& spec, const GuestVmOptions& vm,
                  DeviceReport* device) {
  ASSERT_LE(spec.bytes_per_job * spec.jobs, disk.options().size_bytes);
  ASSERT_TRUE(StartTarget(disk));
  const std::string body =
      absl::StrCat("run_fio ", spec.name, " ", FioArgs(spec), " || fail \"fio verify ", spec.name,
                   "\"\n", "device_report\n");
  std::optional<GuestRun> run = BootOk(disk, "fio verify " + spec.name, body, {}, vm);
  if (!run) return;
  absl::StatusOr<FioResult> fio = ParseFio(run->output, spec.name);
  ASSERT_TRUE(fio.ok()) << fio.status() << "\n" << disk.Explain(*run);
  const uint64_t total = spec.bytes_per_job * spec.jobs;
  EXPECT_EQ(fio->exit_code, 0) << fio->Describe();
  EXPECT_EQ(fio->error(), 0) << fio->Describe();
  ASSERT_EQ(fio->jobs.size(), static_cast<size_t>(spec.jobs)) << fio->Describe();
  EXPECT_EQ(fio->write_bytes(), total) << "fio wrote less than asked\n" << fio->Describe();
  EXPECT_EQ(fio->read_bytes(), total) << "the verify pass read less than was written\n"
                                      << fio->Describe();
  if (device != nullptr) *device = ParseDeviceReport(ParseResults(run->output));
}

void RunDdChecksums(GuestDisk& disk) {
  // 512-byte aligned (O_DIRECT needs the logical block size), not 4 KiB aligned: the buffered
  // write is a read-modify-write of the pages at both ends.
  const uint64_t direct_at = 3 * MiB + 1536;
  const uint64_t buffered_at = 9 * MiB + 20 * KiB + 512;
  const std::string pattern = RandomBytes(1 * MiB + 4608, 0x5eed0dd);
  ASSERT_TRUE(StartTarget(disk));
  const std::string body =
      Substitute(R"SH(
want=$(file_sha /data/pattern.bin)
len=@LEN@
result sha.pattern $want
dd if=/data/pattern.bin of=$DISK bs=65536 oflag=direct,seek_bytes seek=@DIRECT@ 2>/tmp/dd.log ||
  { cat /tmp/dd.log; fail "dd oflag=direct at @DIRECT@"; }
dd if=/data/pattern.bin of=$DISK bs=65536 oflag=seek_bytes seek=@BUFFERED@ conv=notrunc,fsync \
  2>/tmp/dd.log || { cat /tmp/dd.log; fail "buffered dd at @BUFFERED@"; }
result sha.direct_write.direct_read $(disk_sha @DIRECT@ $len)
result sha.buffered_write.direct_read $(disk_sha @BUFFERED@ $len)
# Empty the page cache so the buffered reads go to the device.
echo 3 >/proc/sys/vm/drop_caches
result sha.direct_write.cached_read $(cached_sha @DIRECT@ $len)
result sha.buffered_write.cached_read $(cached_sha @BUFFERED@ $len)
)SH",
                 {{"LEN", pattern.size()}, {"DIRECT", direct_at}, {"BUFFERED", buffered_at}});
  std::optional<GuestRun> run =
      BootOk(disk, "dd checksums", body, {{.path = "/data/pattern.bin", .data = pattern}});
  if (!run) return;
  std::map<std::string, std::string> results = ParseResults(run->output);
  const std::string want = results["sha.pattern"];
  ASSERT_EQ(want.size(), 64u) << "no SHA-256 of the pattern in the output\n" << run->output;
  for (const char* key : {"sha.direct_write.direct_read", "sha.buffered_write.direct_read",
                          "sha.direct_write.cached_read", "sha.buffered_write.cached_read"}) {
    EXPECT_EQ(results[key], want) << key << ": what was read back is not what was written\n"
                                  << run->output;
  }
  // What the target stored, once it has stopped.
  disk.StopTarget();
  ExpectBacking(disk, direct_at, pattern, "O_DIRECT write");
  ExpectBacking(disk, buffered_at, pattern, "buffered write");
  const std::string zeros(4 * KiB, '\0');
  ExpectBacking(disk, direct_at - zeros.size(), zeros, "before the O_DIRECT write");
  ExpectBacking(disk, direct_at + pattern.size(), zeros, "after the O_DIRECT write");
  ExpectBacking(disk, buffered_at - zeros.size(), zeros, "before the buffered write");
  ExpectBacking(disk, buffered_at + pattern.size(), zeros, "after the buffered write");
}

void RunExt4(GuestDisk& disk) {
  const std::vector<GuestFile> files = {
      {.path = "/data/a.bin", .data = RandomBytes(1 * MiB, 0xa)},
      {.path = "/data/b.bin", .data = RandomBytes(257 * KiB + 3, 0xb)},
      {.path = "/data/c.txt", .data = "pollux guest test\n"},
  };
  ASSERT_TRUE(StartTarget(disk));
  const std::string first = R"SH(
must "mkfs.ext4" $MKFS_EXT4 -q -F $DISK
mount -t ext4 $DISK /mnt || fail "mount after mkfs"
mkdir -p /mnt/data /mnt/deep/a/b/c || fail "mkdir"
cp /data/* /mnt/data/ || fail "copy /data"
cp /data/c.txt /mnt/deep/a/b/c/ || fail "copy into /mnt/deep"
head -c 6291456 /dev/urandom >/mnt/data/big.bin || fail "write big.bin"
(cd /mnt && find . -type f | sort | xargs sha256sum) >/tmp/sums
umount /mnt || fail "umount"
must "e2fsck -fn, first pass" $E2FSCK -fn $DISK
must "e2fsck -fn, second pass" $E2FSCK -fn $DISK
mount -t ext4 $DISK /mnt || fail "remount"
must "checksums after remount" sh -c 'cd /mnt && sha256sum -c /tmp/sums'
for f in a.bin b.bin c.txt; do
  cmp /data/$f /mnt/data/$f || fail "/mnt/data/$f differs from /data/$f"
done
umount /mnt || fail "umount after the check"
result files $(wc -l </tmp/sums)
echo "@@SUMS-BEGIN@@"
cat /tmp/sums
echo "@@SUMS-END@@"
)SH";
  std::optional<GuestRun> run = BootOk(disk, "ext4, first boot", first, files);
  if (!run) return;
  const size_t begin = run->output.find("@@SUMS-BEGIN@@\n");
  const size_t end = run->output.find("@@SUMS-END@@");
  ASSERT_TRUE(begin != std::string::npos && end != std::string::npos) << run->output;
  const std::string sums = run->output.substr(begin + 15, end - begin - 15);
  const std::string files_written = ParseResults(run->output)["files"];
  EXPECT_EQ(files_written, "5") << "expected a.bin, b.bin, c.txt, big.bin and deep/a/b/c/c.txt\n"
                                << sums;

  // A second boot: the file system and the files as the target kept them.
  const std::string second = R"SH(
must "e2fsck -fn" $E2FSCK -fn $DISK
mount -t ext4 -o ro $DISK /mnt || fail "mount"
must "checksums after reboot" sh -c 'cd /mnt && sha256sum -c /expected.sums'
result checked $(grep -c ': OK$' /tmp/must.log)
umount /mnt
)SH";
  run = BootOk(disk, "ext4, second boot", second, {{.path = "/expected.sums", .data = sums}});
  if (!run) return;
  EXPECT_EQ(ParseResults(run->output)["checked"], files_written) << run->output;
}

void RunDiscardAndWriteZeroes(GuestDisk& disk) {
  ASSERT_GE(disk.options().size_bytes, 32 * MiB);
  // Host data over the first 24 MiB; the ranges start and end off MiB and off 4 KiB.
  const uint64_t filled = 24 * MiB;
  const uint64_t zero_at = 2 * MiB + 12 * KiB + 512, zero_len = 3 * MiB + 21 * KiB;
  const uint64_t discard_at = 8 * MiB + 36 * KiB + 1536, discard_len = 6 * MiB + 8 * KiB + 512;
  const std::string pattern = RandomBytes(filled, 0xd15c);
  ASSERT_TRUE(WriteBacking(disk, 0, pattern));
  ASSERT_TRUE(StartTarget(disk));

  // `command` on a range, and the 64 KiB on either side of it read before and after (guest
  // side); then `checks`, where @ZAT@ and @ZLEN@ are the write-zeroes range.
  const std::string on_range = R"SH(
left=$(disk_sha $((@AT@ - 65536)) 65536)
right=$(disk_sha $((@AT@ + @LEN@)) 65536)
@COMMAND@ -o @AT@ -l @LEN@ $DISK || fail "@COMMAND@ -o @AT@ -l @LEN@"
[ "$(disk_sha $((@AT@ - 65536)) 65536)" = "$left" ] ||
  fail "the 64 KiB before @AT@ changed"
[ "$(disk_sha $((@AT@ + @LEN@)) 65536)" = "$right" ] ||
  fail "the 64 KiB after @AT@ + @LEN@ changed"
)SH";
  auto range_script = [&](const std::string& command, uint64_t at, uint64_t len,
                          const std::string& checks) {
    const std::string script = absl::StrReplaceAll(on_range + checks, {{"@COMMAND@", command}});
    return Substitute(script, {{"AT", at}, {"LEN", len}, {"ZAT", zero_at}, {"ZLEN", zero_len}});
  };
  const std::string zeroout = range_script("$BLKDISCARD -z", zero_at, zero_len, R"SH(
[ "$(disk_sha @ZAT@ @ZLEN@)" = "$(zero_sha @ZLEN@)" ] ||
  fail "the write-zeroes range does not read as zeros"
)SH");
  // The backing file: the host's data but for the zeroed range and, once discarded, the
  // discarded range (whose contents are the target's choice).
  auto expect_backing = [&](bool discarded) {
    const uint64_t end = discarded ? discard_at : filled;
    ExpectBacking(disk, 0, pattern.substr(0, zero_at), "before the write-zeroes range");
    ExpectBacking(disk, zero_at, std::string(zero_len, '\0'), "the write-zeroes range");
    ExpectBacking(disk, zero_at + zero_len,
                  pattern.substr(zero_at + zero_len, end - zero_at - zero_len),
                  "after the write-zeroes range");
    if (discarded) {
      ExpectBacking(disk, discard_at + discard_len, pattern.substr(discard_at + discard_len),
                    "after the discarded range");
    }
  };
  std::optional<GuestRun> run = BootOk(disk, "write-zeroes", zeroout);
  if (!run) return;
  expect_backing(false);
  absl::StatusOr<uint64_t> before = disk.AllocatedBytes();
  ASSERT_TRUE(before.ok()) << before.status();

  const std::string discard = range_script("$BLKDISCARD", discard_at, discard_len, R"SH(
[ "$(disk_sha @ZAT@ @ZLEN@)" = "$(zero_sha @ZLEN@)" ] ||
  fail "the write-zeroes range no longer reads as zeros"
# What a discarded range reads as is up to the device: reported, not checked.
zeros=0
[ "$(disk_sha @AT@ @LEN@)" = "$(zero_sha @LEN@)" ] && zeros=1
result discarded_reads_zero $zeros
)SH");
  run = BootOk(disk, "discard", discard);
  if (!run) return;
  disk.StopTarget();
  absl::StatusOr<uint64_t> after = disk.AllocatedBytes();
  ASSERT_TRUE(after.ok()) << after.status();
  // Whole 4 KiB pages inside the range are freed; the two partial pages at its ends are not.
  EXPECT_LE(*after + discard_len - 8 * KiB, *before)
      << "the backing file's allocation did not shrink by the discarded " << discard_len
      << " bytes: " << *before << " bytes allocated before the discard, " << *after << " after";
  expect_backing(true);
}

void RunReadOnly(GuestDisk& disk) {
  ASSERT_TRUE(disk.options().read_only) << "RunReadOnly needs a disk created read-only";
  const std::string pattern = RandomBytes(1 * MiB, 0x0ead);
  ASSERT_TRUE(WriteBacking(disk, 0, pattern));
  ASSERT_TRUE(StartTarget(disk));
  const std::string body = R"SH(
device_report
[ "$(cat /sys/block/vda/ro)" = 1 ] || fail "/sys/block/vda/ro is $(cat /sys/block/vda/ro), not 1"
[ "$(disk_sha 0 1048576)" = "$(file_sha /data/pattern.bin)" ] ||
  fail "the disk does not read back the host's data"
if dd if=/data/pattern.bin of=$DISK bs=65536 seek=32 oflag=direct 2>/tmp/dd.log; then
  fail "a write to the read-only disk succeeded"
fi
result write_error "$(tail -n 1 /tmp/dd.log)"
if $BLKDISCARD -o 0 -l 65536 $DISK 2>/tmp/discard.log; then
  fail "a discard on the read-only disk succeeded"
fi
if $BLKDISCARD -z -o 0 -l 65536 $DISK 2>>/tmp/discard.log; then
  fail "a write-zeroes on the read-only disk succeeded"
fi
)SH";
  std::optional<GuestRun> run =
      BootOk(disk, "read-only export", body, {{.path = "/data/pattern.bin", .data = pattern}});
  if (!run) return;
  std::map<std::string, std::string> results = ParseResults(run->output);
  EXPECT_TRUE(ParseDeviceReport(results).read_only) << run->output;
  EXPECT_FALSE(results["write_error"].empty()) << "dd printed no error\n" << run->output;
  disk.StopTarget();
  ExpectBacking(disk, 0, pattern, "the read-only disk's data");
  ExpectBacking(disk, pattern.size(), std::string(3 * MiB, '\0'), "after the host's data");
}

void RunVerifyNegativeControl(GuestDisk& disk) {
  const FioVerifySpec spec = {.name = "control", .bytes_per_job = 8 * MiB};
  ASSERT_TRUE(StartTarget(disk));
  std::optional<GuestRun> run = BootOk(
      disk, "negative control, write boot",
      absl::StrCat("run_fio write ", FioArgs(spec), " --do_verify=0 || fail \"fio write\"\n"));
  if (!run) return;

  // The same job with --verify_only reads back what the first boot wrote.
  const std::string verify_body =
      absl::StrCat("run_fio verify ", FioArgs(spec), " --verify_only\nresult fio_status $?\n");
  run = BootOk(disk, "negative control, verify boot", verify_body);
  if (!run) return;
  absl::StatusOr<FioResult> fio = ParseFio(run->output, "verify");
  ASSERT_TRUE(fio.ok()) << fio.status();
  ASSERT_EQ(fio->exit_code, 0) << "the verify of untouched data failed\n" << fio->Describe();
  ASSERT_EQ(fio->read_bytes(), spec.bytes_per_job) << fio->Describe();

  // Behind the guest's back: 64 KiB in the middle of the written range.
  disk.StopTarget();
  ASSERT_TRUE(WriteBacking(disk, 4 * MiB + 12 * KiB, RandomBytes(64 * KiB, 0xbad)));
  ASSERT_TRUE(StartTarget(disk));
  run = BootOk(disk, "negative control, verify after the host's overwrite", verify_body);
  if (!run) return;
  fio = ParseFio(run->output, "verify");
  ASSERT_TRUE(fio.ok()) << fio.status();
  EXPECT_NE(fio->exit_code, 0) << "fio's verify did not notice 64 KiB overwritten on the host\n"
                               << fio->Describe();
  EXPECT_NE(fio->error(), 0) << fio->Describe();
  EXPECT_NE(fio->log.find("verify"), std::string::npos)
      << "fio's output does not mention the verify failure\n"
      << fio->Describe();
}

}  // namespace pollux::testing
