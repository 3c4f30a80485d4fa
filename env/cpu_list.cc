#include "pollux/env/cpu_list.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pollux {
namespace {

constexpr int kMaxCpus = CPU_SETSIZE;

absl::StatusOr<int> ParseCpuNumber(absl::string_view text, absl::string_view whole) {
  text = absl::StripAsciiWhitespace(text);
  int value = -1;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0 ||
      value >= kMaxCpus) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid core \"", text, "\" in core list \"", whole, "\""));
  }
  return value;
}

absl::StatusOr<std::vector<int>> ParseCpuMask(absl::string_view hex, absl::string_view whole) {
  std::vector<int> cpus;
  if (hex.empty()) return absl::InvalidArgumentError(absl::StrCat("empty core mask \"", whole, "\""));
  int bit = 0;
  for (auto it = hex.rbegin(); it != hex.rend(); ++it, bit += 4) {
    int nibble;
    char c = *it;
    if (c >= '0' && c <= '9') nibble = c - '0';
    else if (c >= 'a' && c <= 'f') nibble = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') nibble = c - 'A' + 10;
    else return absl::InvalidArgumentError(absl::StrCat("invalid core mask \"", whole, "\""));
    for (int i = 0; i < 4; ++i) {
      if (nibble & (1 << i)) {
        if (bit + i >= kMaxCpus) {
          return absl::InvalidArgumentError(absl::StrCat("core mask \"", whole, "\" is too wide"));
        }
        cpus.push_back(bit + i);
      }
    }
  }
  std::sort(cpus.begin(), cpus.end());
  if (cpus.empty()) return absl::InvalidArgumentError(absl::StrCat("core mask \"", whole, "\" selects no core"));
  return cpus;
}

}  // namespace

absl::StatusOr<std::vector<int>> ParseCpuList(std::string_view input) {
  // Debian's abseil has its own string_view type: work in it here.
  absl::string_view whole(input.data(), input.size());
  absl::string_view text = absl::StripAsciiWhitespace(whole);
  if (absl::ConsumePrefix(&text, "0x") || absl::ConsumePrefix(&text, "0X")) {
    return ParseCpuMask(text, whole);
  }
  if (absl::ConsumePrefix(&text, "[") && !absl::ConsumeSuffix(&text, "]")) {
    return absl::InvalidArgumentError(absl::StrCat("unbalanced bracket in core list \"", whole, "\""));
  }
  if (text.empty()) return absl::InvalidArgumentError("empty core list");
  std::vector<int> cpus;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> range = absl::StrSplit(part, absl::MaxSplits('-', 1));
    auto first = ParseCpuNumber(range.first, whole);
    if (!first.ok()) return first.status();
    int last_value = *first;
    if (part.find('-') != absl::string_view::npos) {
      auto last = ParseCpuNumber(range.second, whole);
      if (!last.ok()) return last.status();
      last_value = *last;
      if (last_value < *first) {
        return absl::InvalidArgumentError(
            absl::StrCat("descending range \"", part, "\" in core list \"", whole, "\""));
      }
    }
    for (int cpu = *first; cpu <= last_value; ++cpu) cpus.push_back(cpu);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < n; ++i) cpus.push_back(i);
    return cpus;
  }
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  return cpus;
}

absl::Status CheckCpusAllowed(const std::vector<int>& cpus) {
  if (cpus.empty()) return absl::InvalidArgumentError("no core selected");
  std::vector<int> allowed = AllowedCpus();
  long configured = sysconf(_SC_NPROCESSORS_CONF);
  for (int cpu : cpus) {
    if (cpu >= configured) {
      return absl::InvalidArgumentError(absl::StrCat("core ", cpu, " does not exist (this machine has ",
                                                     configured, " cores: 0-", configured - 1, ")"));
    }
    if (!std::binary_search(allowed.begin(), allowed.end(), cpu)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "core ", cpu, " is not available to this process (allowed: ", FormatCpuList(allowed), ")"));
    }
  }
  return absl::OkStatus();
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    parts.push_back(j == i ? absl::StrCat(cpus[i]) : absl::StrCat(cpus[i], "-", cpus[j]));
    i = j + 1;
  }
  return absl::StrJoin(parts, ",");
}

absl::StatusOr<std::vector<int>> ParseCpuMaskParam(std::string_view input) {
  absl::string_view whole(input.data(), input.size());
  absl::string_view text = absl::StripAsciiWhitespace(whole);
  const bool all_hex = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
  if (all_hex) return ParseCpuMask(text, whole);
  return ParseCpuList(input);
}

}  // namespace pollux
