#include "guest_output.h"

#include <cstdio>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace pollux::testing {

std::map<std::string, std::string> ParseResults(const std::string& output) {
  std::map<std::string, std::string> results;
  std::istringstream in(output);
  constexpr std::string_view kPrefix = "RESULT ";
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(kPrefix)) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    results[line.substr(kPrefix.size(), eq - kPrefix.size())] = line.substr(eq + 1);
  }
  return results;
}

uint64_t FioResult::read_bytes() const {
  uint64_t total = 0;
  for (const FioJobResult& job : jobs) total += job.read_bytes;
  return total;
}

uint64_t FioResult::write_bytes() const {
  uint64_t total = 0;
  for (const FioJobResult& job : jobs) total += job.write_bytes;
  return total;
}

int FioResult::error() const {
  for (const FioJobResult& job : jobs) {
    if (job.error != 0) return job.error;
  }
  return 0;
}

std::string FioResult::Describe() const {
  std::string text = absl::StrCat("fio exit code ", exit_code, "\n");
  for (const FioJobResult& job : jobs) {
    absl::StrAppendFormat(&text,
                          "  job %s: error %d, read %u bytes (%.0f IOPS), write %u bytes "
                          "(%.0f IOPS)\n",
                          job.name, job.error, job.read_bytes, job.read_iops, job.write_bytes,
                          job.write_iops);
  }
  if (!log.empty()) absl::StrAppend(&text, "--- fio output ---\n", log);
  return text;
}

absl::StatusOr<FioResult> ParseFio(const std::string& output, const std::string& name) {
  const std::string begin = "@@FIO-BEGIN " + name + " rc=";
  const std::string log_marker = "@@FIO-LOG " + name + "@@\n";
  const std::string end_marker = "@@FIO-END " + name + "@@";
  const size_t b = output.find(begin);
  const size_t l = b == std::string::npos ? b : output.find(log_marker, b);
  const size_t e = l == std::string::npos ? l : output.find(end_marker, l);
  if (e == std::string::npos) {
    return absl::NotFoundError(absl::StrCat("no complete fio section '", name, "' in the output"));
  }
  FioResult result;
  std::sscanf(output.c_str() + b + begin.size(), "%d", &result.exit_code);
  const size_t json_start = output.find('\n', b) + 1;
  const std::string json_text = output.substr(json_start, l - json_start);
  result.log = output.substr(l + log_marker.size(), e - l - log_marker.size());
  const nlohmann::json json =
      nlohmann::json::parse(json_text.substr(std::min(json_text.find('{'), json_text.size())),
                            nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.contains("jobs")) {
    return absl::DataLossError(absl::StrCat("fio '", name, "' (exit code ", result.exit_code,
                                            ") printed no JSON with jobs:\n", json_text,
                                            "\n--- fio output ---\n", result.log));
  }
  for (const nlohmann::json& job : json["jobs"]) {
    const nlohmann::json read = job.value("read", nlohmann::json::object());
    const nlohmann::json write = job.value("write", nlohmann::json::object());
    result.jobs.push_back({.name = job.value("jobname", ""),
                           .error = job.value("error", 0),
                           .read_bytes = read.value("io_bytes", uint64_t{0}),
                           .write_bytes = write.value("io_bytes", uint64_t{0}),
                           .read_iops = read.value("iops", 0.0),
                           .write_iops = write.value("iops", 0.0)});
  }
  return result;
}

}  // namespace pollux::testing
