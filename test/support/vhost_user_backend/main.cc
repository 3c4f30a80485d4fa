// pollux-test-vhost-backend: the test back-end as a process of its own, for integration tests.
// Prints "ready" on stdout once the socket listens; runs until SIGTERM or SIGINT, then stops
// (removing the socket) and exits 0.
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "vhost_user_test_backend.h"

namespace {

using pollux::testing::VhostUserTestBackend;
using pollux::testing::VhostUserTestBackendOptions;

constexpr char kUsage[] =
    "usage: pollux-test-vhost-backend --socket PATH [options]\n"
    "  --num-blocks N            disk size in blocks (16384)\n"
    "  --block-size N            512 or 4096 (512)\n"
    "  --num-queues N            1..8 (1)\n"
    "  --queue-size N            largest queue size accepted, a power of two (256)\n"
    "  --packed | --no-packed    offer VIRTIO_F_RING_PACKED (no)\n"
    "  --event-idx | --no-event-idx   offer VIRTIO_RING_F_EVENT_IDX (yes)\n"
    "  --indirect | --no-indirect     offer VIRTIO_RING_F_INDIRECT_DESC (yes)\n"
    "  --write-cache | --no-write-cache  offer CONFIG_WCE, wce=1 (yes)\n"
    "  --read-only               offer VIRTIO_BLK_F_RO\n"
    "  --seg-max N               (126)\n"
    "  --size-max N              bytes (1048576)\n"
    "  --max-discard-sectors N --max-discard-seg N\n"
    "  --max-write-zeroes-sectors N --max-write-zeroes-seg N\n"
    "  --serial S                GET_ID answer (pollux-vhost-test)\n"
    "  --delay-us N              complete each request N microseconds after receiving it (0)\n"
    "  --fault NAME              none, used-id-out-of-range, used-len-too-long, used-idx-jump,\n"
    "                            wrong-reply-type, bad-reply-size, close-during-handshake,\n"
    "                            close-mid-io, hang\n"
    "  --fault-after N           events that go right before the fault fires (0)\n";

template <typename T>
bool ParseNumber(std::string_view text, T* out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Fills `options` from argv ("--flag value" or "--flag=value"); false with a message on stderr.
bool ParseArgs(int argc, char** argv, VhostUserTestBackendOptions* o) {
  using Setter = std::function<bool(std::string_view)>;
  auto number = [](auto* field) {
    return Setter([field](std::string_view v) { return ParseNumber(v, field); });
  };
  auto text = [](std::string* field) {
    return Setter([field](std::string_view v) {
      *field = std::string(v);
      return true;
    });
  };
  const std::map<std::string_view, Setter> with_value = {
      {"--socket", text(&o->socket_path)},
      {"--num-blocks", number(&o->num_blocks)},
      {"--block-size", number(&o->block_size)},
      {"--num-queues", number(&o->num_queues)},
      {"--queue-size", number(&o->queue_size_max)},
      {"--seg-max", number(&o->seg_max)},
      {"--size-max", number(&o->size_max)},
      {"--max-discard-sectors", number(&o->max_discard_sectors)},
      {"--max-discard-seg", number(&o->max_discard_seg)},
      {"--max-write-zeroes-sectors", number(&o->max_write_zeroes_sectors)},
      {"--max-write-zeroes-seg", number(&o->max_write_zeroes_seg)},
      {"--serial", text(&o->serial)},
      {"--delay-us", number(&o->completion_delay_us)},
      {"--fault-after", number(&o->fault_after)},
      {"--fault",
       [o](std::string_view v) {
         auto fault = pollux::testing::ParseVhostUserTestFault(v);
         if (fault) o->fault = *fault;
         return fault.has_value();
       }},
  };
  const std::map<std::string_view, std::pair<bool*, bool>> switches = {
      {"--packed", {&o->offer_packed_ring, true}},
      {"--no-packed", {&o->offer_packed_ring, false}},
      {"--event-idx", {&o->offer_event_idx, true}},
      {"--no-event-idx", {&o->offer_event_idx, false}},
      {"--indirect", {&o->offer_indirect, true}},
      {"--no-indirect", {&o->offer_indirect, false}},
      {"--write-cache", {&o->write_cache, true}},
      {"--no-write-cache", {&o->write_cache, false}},
      {"--read-only", {&o->read_only, true}},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (auto it = switches.find(arg); it != switches.end()) {
      *it->second.first = it->second.second;
      continue;
    }
    std::string_view name = arg;
    std::string_view value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    const auto it = with_value.find(name);
    if (it == with_value.end()) {
      std::fprintf(stderr, "vhost-test-backend: unknown argument \"%s\"\n%s", argv[i], kUsage);
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "vhost-test-backend: %s needs a value\n", argv[i]);
        return false;
      }
      value = argv[++i];
    }
    if (!it->second(value)) {
      std::fprintf(stderr, "vhost-test-backend: bad value \"%.*s\" for %.*s\n",
                   static_cast<int>(value.size()), value.data(), static_cast<int>(name.size()),
                   name.data());
      return false;
    }
  }
  if (o->socket_path.empty()) {
    std::fprintf(stderr, "vhost-test-backend: --socket is required\n%s", kUsage);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  VhostUserTestBackendOptions options;
  if (!ParseArgs(argc, argv, &options)) return 2;

  // Block the stop signals before any thread starts, so every thread inherits the mask and
  // sigwait() below is the only place they arrive.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  VhostUserTestBackend backend(options);
  if (absl::Status status = backend.Start(); !status.ok()) {
    std::fprintf(stderr, "vhost-test-backend: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);

  int signo = 0;
  sigwait(&stop_signals, &signo);
  backend.Stop();
  const auto& c = backend.counters();
  std::fprintf(stderr,
               "vhost-test-backend: %s: %llu connections, %llu messages, %llu requests, "
               "%llu kicks, %llu interrupts\n",
               strsignal(signo), static_cast<unsigned long long>(c.connections.load()),
               static_cast<unsigned long long>(c.messages.load()),
               static_cast<unsigned long long>(c.requests_completed.load()),
               static_cast<unsigned long long>(c.kicks.load()),
               static_cast<unsigned long long>(c.interrupts.load()));
  return 0;
}
