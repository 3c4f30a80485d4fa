#include "command_line.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pollux::top {

absl::StatusOr<TopOptions> ParseTopCommandLine(int argc, const char* const* argv,
                                               std::string default_socket) {
  TopOptions options;
  options.socket = std::move(default_socket);
  for (int i = 1; i < argc; ++i) {
    // absl::string_view, not std::: Debian's Abseil has its own, which absl::StrCat takes.
    absl::string_view arg = argv[i];
    auto value = [&]() -> absl::StatusOr<absl::string_view> {
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      return absl::string_view(argv[++i]);
    };
    if (arg == "-h" || arg == "--help") {
      options.help = true;
    } else if (arg == "--version") {
      options.version = true;
    } else if (arg == "--once") {
      options.once = true;
    } else if (arg == "-s") {
      absl::StatusOr<absl::string_view> socket = value();
      if (!socket.ok()) return socket.status();
      options.socket = std::string(*socket);
    } else if (arg == "-d") {
      absl::StatusOr<absl::string_view> text = value();
      if (!text.ok()) return text.status();
      if (!absl::SimpleAtod(*text, &options.delay_s) || !std::isfinite(options.delay_s) ||
          options.delay_s < kMinDelayS || options.delay_s > kMaxDelayS) {
        return absl::InvalidArgumentError(
            absl::StrFormat("-d needs a number of seconds from %g to %g, not \"%s\"", kMinDelayS,
                            kMaxDelayS, *text));
      }
    } else if (arg == "-v") {
      absl::StatusOr<absl::string_view> text = value();
      if (!text.ok()) return text.status();
      std::optional<ViewKind> view = ParseViewKind(std::string_view(text->data(), text->size()));
      if (!view) {
        return absl::InvalidArgumentError(absl::StrCat(
            "-v needs a view (reactors, threads, pollers, bdevs, virtio), not \"", *text, "\""));
      }
      options.view = *view;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown argument ", arg));
    }
  }
  return options;
}

std::string TopUsage(std::string_view program, std::string_view default_socket) {
  return absl::StrFormat(
      R"(Usage: %1$s [-s SOCKET] [-d SECONDS] [-v VIEW] [--once]

Shows a running pollux-tgt live, refreshed every SECONDS: its reactors, threads,
pollers, bdevs and virtio queues, with rates from the difference between two
samples. Reads the target's JSON-RPC socket only.

Options:
  -s SOCKET    the target's RPC socket (default: %2$s; the environment
               variable POLLUX_RPC_SOCKET overrides the default)
  -d SECONDS   seconds between two samples, fractions allowed (default: 1)
  -v VIEW      the view to show first: reactors, threads, pollers, bdevs or virtio
               (default: reactors)
  --once       print one snapshot of VIEW to stdout and exit: two samples SECONDS
               apart, no terminal needed (80 columns, or $COLUMNS)
  -h, --help   this text
  --version    pollux-top's version

Keys:
  1-5, Tab     reactors, threads, pollers, bdevs, virtio; Tab the next view
               (Shift-Tab the previous)
  s, S         sort by the next (previous) column
  r            reverse the order
  Up, Down, PgUp, PgDn, Home   scroll
  q            quit

When the target is gone, the screen says so and pollux-top keeps trying to
reconnect every SECONDS.

Exit status:
  0  quit with q, or --once printed its snapshot
  2  --once could not reach the target
  64 bad command line
)",
      program, default_socket);
}

}  // namespace pollux::top
