// Config files: loading with positioned syntax errors, shape checks that name the bad entry,
// replay as a sequence of RPC calls in subsystem order, and save_config's writer.
#include "pollux/rpc/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl_string_view.h"
#include "pollux/env/log.h"
#include "spdk_sections.h"

namespace pollux::rpc {
namespace {

// "[json.exception.parse_error.101] parse error at line 1, column 7: syntax error while parsing
// object - unexpected end of input; expected '}'" -> "syntax error: unexpected end of input;
// expected '}'". The position is dropped: the caller computes its own from the byte offset.
std::string ParseErrorReason(const Json::parse_error& e) {
  std::string_view what = e.what();
  if (auto colon = what.find(": "); colon != std::string_view::npos) {
    what.remove_prefix(colon + 2);
  }
  constexpr std::string_view kSyntax = "syntax error while parsing ";
  if (what.substr(0, kSyntax.size()) == kSyntax) {
    if (auto dash = what.find(" - "); dash != std::string_view::npos) {
      return absl::StrCat("syntax error: ", AbslView(what.substr(dash + 3)));
    }
  }
  return std::string(what);
}

// Line and column (both from 1) of the byte at `offset` in `text`.
std::pair<size_t, size_t> LineAndColumn(std::string_view text, size_t offset) {
  offset = std::min(offset, text.size());
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, offset - line_start + 1};
}

// The inverse of RpcReply::FromStatus, so that a replay error keeps its kind.
absl::StatusCode StatusCodeOf(int rpc_code) {
  switch (rpc_code) {
    case kInvalidParams:
      return absl::StatusCode::kInvalidArgument;
    case kMethodNotFound:
    case -19:
      return absl::StatusCode::kNotFound;
    case -17:
      return absl::StatusCode::kAlreadyExists;
    case -1:
      return absl::StatusCode::kFailedPrecondition;
    case -12:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kInternal;
  }
}

// "known: framework, bdev, ..." for errors about subsystems.
std::string KnownSubsystems(SubsystemRegistry& subsystems) {
  std::vector<absl::string_view> known;
  for (const Subsystem* s : subsystems.Ordered()) known.push_back(s->name);
  return absl::StrCat("known: ", known.empty() ? "none" : absl::StrJoin(known, ", "));
}

absl::Status ShapeError(std::string_view source, std::string_view where, std::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(AbslView(source), ": ", AbslView(where), AbslView(problem)));
}

// One RPC call of a config, with where it came from.
struct ReplayCall {
  std::string subsystem;
  size_t entry;  // index in the subsystem's "config" array
  std::string method;
  Json params;
};

// The state of one replay. The calls run one after the other; a call that answers before
// Call() returns is followed by the next in the same loop, not by recursion, so a long config
// of synchronous methods does not grow the stack.
class Replay : public std::enable_shared_from_this<Replay> {
 public:
  Replay(std::vector<ReplayCall> calls, std::string source, MethodRegistry& methods,
         StatusCallback done)
      : calls_(std::move(calls)),
        source_(std::move(source)),
        methods_(methods),
        done_(std::move(done)) {}

  void Run() {
    while (next_ < calls_.size()) {
      const ReplayCall& call = calls_[next_];
      answered_in_loop_ = false;
      in_loop_ = true;
      methods_.Call(call.method, call.params, [self = shared_from_this()](RpcReply reply) {
        self->OnReply(std::move(reply));
      });
      in_loop_ = false;
      if (finished_) return;
      if (!answered_in_loop_) return;  // OnReply resumes the loop when the answer comes
    }
    Finish(absl::OkStatus());
  }

 private:
  void OnReply(RpcReply reply) {
    if (finished_) return;
    if (!reply.ok) {
      const ReplayCall& call = calls_[next_];
      Finish(absl::Status(StatusCodeOf(reply.code),
                          absl::StrCat(source_, ": subsystem \"", call.subsystem, "\", entry ",
                                       call.entry, ", method \"", call.method,
                                       "\": ", reply.message, " (code ", reply.code, ")")));
      return;
    }
    ++next_;
    if (in_loop_) {
      answered_in_loop_ = true;
    } else {
      Run();
    }
  }

  void Finish(absl::Status status) {
    finished_ = true;
    StatusCallback done = std::move(done_);
    done(std::move(status));
  }

  std::vector<ReplayCall> calls_;
  std::string source_;
  MethodRegistry& methods_;
  StatusCallback done_;
  size_t next_ = 0;
  bool in_loop_ = false;
  bool answered_in_loop_ = false;
  bool finished_ = false;
};

// One warning line for each part of a valid config that is not replayed at all: top-level
// keys other than "subsystems", and sections of subsystems pollux lacks (ValidateConfig let
// through only those that just set options). ReplayConfig warns of the option methods it
// skips inside the subsystems pollux has.
void WarnOfSkippedSections(const Json& config, std::string_view source,
                           SubsystemRegistry& subsystems) {
  for (const auto& [key, value] : config.items()) {
    if (key != "subsystems") {
      PX_LOG(kWarning, "config", "%s: ignoring unknown top-level key \"%s\"", source, key);
    }
  }
  for (const Json& group : config.at("subsystems")) {
    const std::string& subsystem = group.at("subsystem").get_ref<const std::string&>();
    if (subsystems.Find(subsystem) != nullptr) continue;
    auto entries = group.find("config");
    std::vector<std::string> names;
    if (entries != group.end() && !entries->is_null()) {
      for (const Json& entry : *entries) names.push_back(entry.at("method").get<std::string>());
    }
    PX_LOG(kWarning, "config", "%s: skipping subsystem \"%s\": pollux does not have it, %s",
           source, subsystem,
           names.empty() ? "and its section is empty"
                         : absl::StrCat("and its section only sets options (",
                                        absl::StrJoin(names, ", "), ")"));
  }
}

}  // namespace

absl::StatusOr<Json> LoadConfigFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": ", std::strerror(error)));
  }
  std::string text;
  char chunk[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n > 0) {
      text.append(chunk, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      int error = errno;
      ::close(fd);
      return absl::Status(absl::ErrnoToStatusCode(error),
                          absl::StrCat(path, ": ", std::strerror(error)));
    }
  }
  ::close(fd);
  absl::StatusOr<Json> config = ParseConfig(text, path);
  if (!config.ok()) return config;
  absl::Status shape = ValidateConfig(*config, path, SubsystemRegistry::Global());
  if (!shape.ok()) return shape;
  return config;
}

absl::StatusOr<Json> ParseConfig(std::string_view text, std::string_view source) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // e.byte counts from 1 and points at the byte the parser stopped on (one past the end for
    // an unexpected end of input).
    auto [line, column] = LineAndColumn(text, e.byte == 0 ? 0 : e.byte - 1);
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ":", line, ":", column, ": ", ParseErrorReason(e)));
  } catch (const Json::exception& e) {
    // out_of_range: a number beyond a double ("1e999999"); nlohmann gives no position.
    std::string_view what = e.what();
    if (auto bracket = what.find("] "); bracket != std::string_view::npos) {
      what.remove_prefix(bracket + 2);
    }
    return absl::InvalidArgumentError(absl::StrCat(AbslView(source), ": ", AbslView(what)));
  }
}

absl::Status ValidateConfig(const Json& config, std::string_view source,
                            SubsystemRegistry& subsystems) {
  if (!config.is_object()) {
    return ShapeError(source, "", "the config must be an object with a \"subsystems\" array");
  }
  auto list = config.find("subsystems");
  if (list == config.end() || !list->is_array()) {
    return ShapeError(source, "", "\"subsystems\" must be an array");
  }
  // Other top-level keys are ignored, as SPDK does (ReplayConfig warns of each).
  std::vector<std::string_view> seen;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& group = (*list)[i];
    const std::string where = absl::StrCat("subsystems[", i, "]");
    if (!group.is_object()) return ShapeError(source, where, " must be an object");
    auto name = group.find("subsystem");
    if (name == group.end() || !name->is_string()) {
      return ShapeError(source, where, ": \"subsystem\" must be a string");
    }
    const std::string& subsystem = name->get_ref<const std::string&>();
    const bool known = subsystems.Find(subsystem) != nullptr;
    if (std::find(seen.begin(), seen.end(), subsystem) != seen.end()) {
      return ShapeError(source, where,
                        absl::StrCat(": subsystem \"", subsystem, "\" is listed twice"));
    }
    seen.push_back(subsystem);
    for (const auto& [key, value] : group.items()) {
      if (key != "subsystem" && key != "config") {
        return ShapeError(source, where, absl::StrCat(": unknown key \"", key, "\""));
      }
    }
    auto entries = group.find("config");
    if (entries == group.end() || entries->is_null()) continue;
    if (!entries->is_array()) return ShapeError(source, where, ": \"config\" must be an array");
    for (size_t j = 0; j < entries->size(); ++j) {
      const Json& entry = (*entries)[j];
      const std::string entry_where = absl::StrCat(where, ".config[", j, "]");
      if (!entry.is_object()) return ShapeError(source, entry_where, " must be an object");
      auto method = entry.find("method");
      if (method == entry.end() || !method->is_string()) {
        return ShapeError(source, entry_where, ": \"method\" must be a string");
      }
      auto params = entry.find("params");
      if (params != entry.end() && !params->is_null() && !params->is_object()) {
        return ShapeError(source, entry_where, ": \"params\" must be an object");
      }
      for (const auto& [key, value] : entry.items()) {
        if (key != "method" && key != "params") {
          return ShapeError(source, entry_where, absl::StrCat(": unknown key \"", key, "\""));
        }
      }
      // A subsystem pollux lacks (an SPDK config's iobuf, sock, nvmf...) is skipped only if
      // its section just sets options: anything else would be lost.
      const std::string& method_name = method->get_ref<const std::string&>();
      if (!known && !SetsOptionsOnly(method_name)) {
        return ShapeError(source, entry_where,
                          absl::StrCat(": method \"", method_name, "\" needs subsystem \"",
                                       subsystem, "\", which pollux does not have (",
                                       KnownSubsystems(subsystems),
                                       "); only a section that just sets options is skipped"));
      }
    }
  }
  return absl::OkStatus();
}

void ReplayConfig(const Json& config, std::string source, MethodRegistry& methods,
                  SubsystemRegistry& subsystems, StatusCallback done) {
  if (absl::Status shape = ValidateConfig(config, source, subsystems); !shape.ok()) {
    done(std::move(shape));
    return;
  }
  WarnOfSkippedSections(config, source, subsystems);
  // Flatten the calls in subsystem order, whatever order the file lists the subsystems in.
  std::vector<ReplayCall> calls;
  const Json& list = config.at("subsystems");
  for (const Subsystem* subsystem : subsystems.Ordered()) {
    for (const Json& group : list) {
      if (group.at("subsystem") != subsystem->name) continue;
      auto entries = group.find("config");
      if (entries == group.end() || entries->is_null()) break;
      for (size_t j = 0; j < entries->size(); ++j) {
        const Json& entry = (*entries)[j];
        std::string method = entry.at("method").get<std::string>();
        if (!methods.Has(method)) {
          if (SetsOptionsOnly(method)) {
            PX_LOG(kWarning, "config",
                   "%s: skipping method \"%s\" of subsystem \"%s\": it sets options of a "
                   "component pollux does not have",
                   source, method, subsystem->name);
            continue;
          }
          // Refused before anything runs: the target must not start half configured.
          done(absl::NotFoundError(absl::StrCat(source, ": subsystem \"", subsystem->name,
                                                "\", entry ", j, ", method \"", method,
                                                "\": unknown method \"", method, "\" (code ",
                                                kMethodNotFound, ")")));
          return;
        }
        auto params = entry.find("params");
        calls.push_back(ReplayCall{subsystem->name, j, std::move(method),
                                   params == entry.end() ? Json() : *params});
      }
      break;
    }
  }
  auto replay =
      std::make_shared<Replay>(std::move(calls), std::move(source), methods, std::move(done));
  replay->Run();
}

Json SaveConfig(SubsystemRegistry& subsystems) {
  Json list = Json::array();
  for (Subsystem* subsystem : subsystems.Ordered()) {
    Json entries = Json::array();
    if (subsystem->write_config) subsystem->write_config(entries);
    list.push_back({{"subsystem", subsystem->name}, {"config", std::move(entries)}});
  }
  return {{"subsystems", std::move(list)}};
}

}  // namespace pollux::rpc
