#include "pollux/env/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "dpdk_log.h"
#include "pollux/env/cpu_list.h"
#include "pollux/env/log.h"
#include "stale_runtime_files.h"

namespace pollux {
namespace {

std::atomic<bool> g_eal_initialised{false};

// EAL prints its reasons for failing to its log stream, and its fatal alerts straight to
// stderr. Capturing both during rte_eal_init lets us return the reason in the status, as one
// line, instead of scattering it over stderr. Only the control thread exists at that point.
class EalOutputCapture {
 public:
  EalOutputCapture() {
    log_stream_ = open_memstream(&log_buffer_, &log_size_);
    if (log_stream_ != nullptr) rte_openlog_stream(log_stream_);
    std::fflush(stderr);
    stderr_copy_ = memfd_create("pollux-eal-stderr", MFD_CLOEXEC);
    saved_stderr_ = dup(STDERR_FILENO);
    if (stderr_copy_ >= 0 && saved_stderr_ >= 0) dup2(stderr_copy_, STDERR_FILENO);
  }
  ~EalOutputCapture() {
    Restore();
    rte_openlog_stream(nullptr);
    if (log_stream_ != nullptr) fclose(log_stream_);
    free(log_buffer_);
    if (stderr_copy_ >= 0) close(stderr_copy_);
  }
  EalOutputCapture(const EalOutputCapture&) = delete;
  EalOutputCapture& operator=(const EalOutputCapture&) = delete;

  // Captured lines, trimmed, without "EAL: FATAL:" repeats of logged lines, joined by "; ".
  std::string Text() {
    Restore();
    std::string text;
    if (log_stream_ != nullptr) {
      fflush(log_stream_);
      text.assign(log_buffer_, log_size_);
    }
    if (stderr_copy_ >= 0) {
      char chunk[4096];
      ssize_t n;
      lseek(stderr_copy_, 0, SEEK_SET);
      while ((n = read(stderr_copy_, chunk, sizeof(chunk))) > 0) text.append(chunk, n);
    }
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (absl::ConsumePrefix(&line, "EAL: FATAL: ")) line = absl::StripAsciiWhitespace(line);
      absl::ConsumePrefix(&line, "EAL: ");
      if (line.empty() || std::find(lines.begin(), lines.end(), line) != lines.end()) continue;
      lines.emplace_back(line);
    }
    return absl::StrJoin(lines, "; ");
  }

 private:
  void Restore() {
    if (saved_stderr_ < 0) return;
    std::fflush(stderr);
    dup2(saved_stderr_, STDERR_FILENO);
    close(saved_stderr_);
    saved_stderr_ = -1;
  }

  FILE* log_stream_ = nullptr;
  char* log_buffer_ = nullptr;
  size_t log_size_ = 0;
  int stderr_copy_ = -1;
  int saved_stderr_ = -1;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> BuildEalArgs(const EalOptions& options,
                                                      std::vector<int>* cpus_out) {
  std::vector<int> cpus = options.cpus.empty() ? AllowedCpus() : options.cpus;
  if (absl::Status s = CheckCpusAllowed(cpus); !s.ok()) return s;
  // Two reactor lcores pinned to one core would halve both and defeat the one-reactor-per-core
  // layout; a core listed twice is a typo in the caller's list.
  std::vector<int> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  if (auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
    return absl::InvalidArgumentError(absl::StrCat("core ", *dup, " is listed twice"));
  }
  if (options.memory_mb < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory size ", options.memory_mb, " MiB is too small (at least 16 MiB)"));
  }
  std::string prefix =
      options.file_prefix.empty() ? absl::StrCat("pollux_", getpid()) : options.file_prefix;

  // lcore 0: the control thread, free to run on any selected core. lcores 1..N: reactors.
  std::vector<std::string> lcores = {absl::StrCat("0@(", FormatCpuList(cpus), ")")};
  for (size_t i = 0; i < cpus.size(); ++i) lcores.push_back(absl::StrCat(i + 1, "@", cpus[i]));

  std::vector<std::string> args = {"pollux",
                                   absl::StrCat("--lcores=", absl::StrJoin(lcores, ",")),
                                   "--main-lcore=0",
                                   absl::StrCat("--file-prefix=", prefix),
                                   "-m",
                                   absl::StrCat(options.memory_mb),
                                   "--no-pci",
                                   "--no-telemetry"};
  if (options.hugepages) {
    // In-memory: hugepages without files in hugetlbfs, and no shared config to collide on.
    args.push_back("--in-memory");
  } else {
    // --in-memory conflicts with --no-huge in DPDK 22.11, so name both halves of it.
    args.push_back("--no-huge");
    args.push_back("--no-shconf");
  }
  args.push_back(options.quiet ? "--log-level=lib.eal:error" : "--log-level=lib.eal:info");
  if (cpus_out != nullptr) *cpus_out = cpus;
  return args;
}

absl::StatusOr<std::unique_ptr<EalSession>> InitEal(const EalOptions& options) {
  std::vector<int> cpus;
  auto args = BuildEalArgs(options, &cpus);
  if (!args.ok()) return args.status();
  if (g_eal_initialised.exchange(true)) {
    return absl::FailedPreconditionError("the DPDK environment is already initialised in this process");
  }

  // A process killed with SIGKILL could not remove its runtime folder: the next one does.
  RemoveStaleRuntimeDirs(DpdkRuntimeBase());

  std::vector<char*> argv;
  for (std::string& arg : *args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::string eal_messages;
  int rc;
  {
    EalOutputCapture capture;
    rc = rte_eal_init(static_cast<int>(argv.size() - 1), argv.data());
    eal_messages = capture.Text();
  }
  if (rc < 0) {
    int err = rte_errno;
    g_eal_initialised.store(false);
    return absl::InternalError(absl::StrCat(
        "DPDK environment initialisation failed (", rte_strerror(err), ")",
        eal_messages.empty() ? "" : ": ", eal_messages,
        options.hugepages ? " [hugepages were requested: are any reserved?]" : ""));
  }
  if (!eal_messages.empty()) PX_LOG(kInfo, "env", "EAL: %s", eal_messages);

  auto session = std::unique_ptr<EalSession>(new EalSession());
  // From here DPDK's lines carry pollux's prefix (the capture above gave DPDK its default
  // stream back).
  session->log_forwarder_ = DpdkLogForwarder::Install();
  session->eal_args_ = std::move(*args);
  session->file_prefix_ = session->eal_args_[3].substr(strlen("--file-prefix="));
  session->runtime_dir_ = rte_eal_get_runtime_dir();
  for (size_t i = 0; i < cpus.size(); ++i) {
    session->reactor_lcores_.push_back({static_cast<unsigned>(i + 1), cpus[i]});
  }
  return session;
}

EalSession::~EalSession() {
  rte_eal_cleanup();
  // EAL leaves its runtime directory behind; with one prefix per process they would pile up.
  std::error_code ignored;
  if (!runtime_dir_.empty()) std::filesystem::remove_all(runtime_dir_, ignored);
}

}  // namespace pollux
