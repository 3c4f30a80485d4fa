#include "command_line.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pollux::rpc {

Json ParseParamValue(std::string_view text) {
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || value.is_string()) return Json(std::string(text));
  return value;
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv,
                                             std::string default_socket) {
  CommandLine line;
  line.socket = std::move(default_socket);
  Json json_params;   // from -j
  Json named_params;  // from --name value; these win over -j
  auto value_of = [&](int& i, absl::string_view option) -> absl::StatusOr<absl::string_view> {
    if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(option, " needs a value"));
    return absl::string_view(argv[++i]);
  };
  for (int i = 1; i < argc; ++i) {
    // absl::string_view, not std::: Debian's Abseil has its own, which absl::StrCat takes.
    absl::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      line.help = true;
    } else if (arg == "--version" && line.method.empty()) {
      // Before METHOD it is pollux-rpc's own; after it, a parameter named "version".
      line.version = true;
    } else if (arg == "-s") {
      absl::StatusOr<absl::string_view> value = value_of(i, arg);
      if (!value.ok()) return value.status();
      line.socket = std::string(*value);
    } else if (arg == "-t") {
      absl::StatusOr<absl::string_view> value = value_of(i, arg);
      if (!value.ok()) return value.status();
      if (!absl::SimpleAtod(*value, &line.timeout_s) || !std::isfinite(line.timeout_s) ||
          line.timeout_s < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("-t needs a number of seconds (0: no timeout), not \"", *value, "\""));
      }
    } else if (arg == "-r") {
      absl::StatusOr<absl::string_view> value = value_of(i, arg);
      if (!value.ok()) return value.status();
      if (!absl::SimpleAtoi(*value, &line.conn_retries) || line.conn_retries < 0 ||
          line.conn_retries > kMaxConnRetries) {
        return absl::InvalidArgumentError(absl::StrCat("-r needs a number of retries from 0 to ",
                                                       kMaxConnRetries, ", not \"", *value, "\""));
      }
    } else if (arg == "-j") {
      absl::StatusOr<absl::string_view> value = value_of(i, arg);
      if (!value.ok()) return value.status();
      json_params = Json::parse(value->begin(), value->end(), nullptr, /*allow_exceptions=*/false);
      if (!json_params.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("-j needs a JSON object, not \"", *value, "\""));
      }
    } else if (arg.size() > 2 && arg.substr(0, 2) == "--") {
      // --some-name value, or --some-name=value: params {"some_name": value}
      absl::string_view name = arg.substr(2);
      absl::string_view text;
      if (auto eq = name.find('='); eq != absl::string_view::npos) {
        text = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else {
        absl::StatusOr<absl::string_view> value = value_of(i, arg);
        if (!value.ok()) return value.status();
        text = *value;
      }
      if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("bad option ", arg));
      std::string key(name);
      std::replace(key.begin(), key.end(), '-', '_');
      named_params[key] = ParseParamValue(std::string_view(text.data(), text.size()));
    } else if (arg.size() > 1 && arg[0] == '-') {
      return absl::InvalidArgumentError(absl::StrCat("unknown option ", arg));
    } else if (line.method.empty()) {
      line.method = std::string(arg);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg, "\" (parameters are --name value)"));
    }
  }
  if (!json_params.is_null() || !named_params.is_null()) {
    line.params = json_params.is_null() ? Json::object() : std::move(json_params);
    if (!named_params.is_null()) line.params.update(named_params);
  }
  if (line.method.empty() && !line.params.is_null()) {
    return absl::InvalidArgumentError("parameters given without a METHOD");
  }
  return line;
}

std::string Usage(std::string_view program, std::string_view default_socket) {
  return absl::StrFormat(
      R"(Usage: %1$s [-s SOCKET] [-t TIMEOUT_S] [-r RETRIES] METHOD [--name VALUE ...] [-j JSON]
       %1$s [-s SOCKET] [-t TIMEOUT_S] [-r RETRIES]

Calls one JSON-RPC method of a running pollux-tgt and prints its result as JSON.
Without METHOD, lists the methods the target offers (rpc_get_methods), one per line.

Options:
  -s SOCKET      the target's RPC socket (default: %2$s; the environment
                 variable POLLUX_RPC_SOCKET overrides the default)
  -t TIMEOUT_S   seconds to wait for the reply, fractions allowed; 0 waits forever
                 (default: 60)
  -r RETRIES     retry connecting this many times, 0.2 s apart, while the socket is
                 not there yet or refuses (a target starting); default 0
  -j JSON        the params object, e.g. -j '{"name": "Malloc0", "num_blocks": 2048}'
  --name VALUE   one parameter; dashes in the name become underscores, so
                 --block-size 4096 gives {"block_size": 4096}. VALUE is taken as JSON
                 when it is a JSON number, true, false, null, array or object, and as a
                 string otherwise (--name Malloc0); to pass "123" as a string, use -j.
                 --name=VALUE works too. These win over the same keys in -j.
  -h, --help     this text, then the target's methods by component; after METHOD,
                 the method's description and every parameter (type, default,
                 required), as the target checks them
  --version      pollux-rpc's version (before METHOD; after it, --version is a parameter)

Exit status:
  0  the method answered a result (printed on stdout)
  1  the method answered an error (its code and message are printed on stderr)
  2  the target could not be reached, or closed the connection
  3  no reply within TIMEOUT_S
  64 bad command line
)",
      program, default_socket);
}

}  // namespace pollux::rpc
