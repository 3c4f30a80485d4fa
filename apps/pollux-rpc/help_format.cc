#include "help_format.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace pollux::rpc {
namespace {

std::string StringOf(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Appends `text` word-wrapped to `width`, every line after the first indented by `indent`
// (the first continues where the caller's line is, at column `indent`).
void AppendWrapped(std::string& out, std::string_view text, size_t indent, size_t width) {
  const size_t room = width > indent + 8 ? width - indent : 8;
  size_t column = 0;
  for (absl::string_view word :
       absl::StrSplit(absl::string_view(text.data(), text.size()), ' ', absl::SkipEmpty())) {
    if (column > 0 && column + 1 + word.size() > room) {
      out += "\n";
      out.append(indent, ' ');
      column = 0;
    } else if (column > 0) {
      out += " ";
      ++column;
    }
    out.append(word.data(), word.size());
    column += word.size();
  }
  out += "\n";
}

constexpr size_t kMinDescriptionWidth = 24;

struct Row {
  std::string name, type, need, description;
};

// Rows in aligned columns: name, type, need, then the wrapped description.
void AppendRows(std::string& out, const std::vector<Row>& rows, size_t width) {
  size_t name_width = 0, type_width = 0, need_width = 0;
  for (const Row& row : rows) {
    name_width = std::max(name_width, row.name.size());
    type_width = std::max(type_width, row.type.size());
    need_width = std::max(need_width, row.need.size());
  }
  for (const Row& row : rows) {
    std::string line =
        absl::StrCat("  ", row.name, std::string(name_width - row.name.size(), ' '), "  ", row.type,
                     std::string(type_width - row.type.size(), ' '), "  ", row.need,
                     std::string(need_width - row.need.size(), ' '), "  ");
    // A narrow terminal: the description goes below, indented, rather than past the edge.
    if (line.size() + kMinDescriptionWidth > width) {
      while (!line.empty() && line.back() == ' ') line.pop_back();
      line += "\n      ";
      out += line;
      AppendWrapped(out, row.description, 6, width);
      continue;
    }
    out += line;
    AppendWrapped(out, row.description, line.size(), width);
  }
}

}  // namespace

std::string FormatMethodHelp(const Json& method, size_t width) {
  std::string out = StringOf(method, "name");
  if (std::string component = StringOf(method, "component"); !component.empty()) {
    absl::StrAppend(&out, " (", component, ")");
  }
  out += "\n  ";
  AppendWrapped(out, StringOf(method, "description"), 2, width);
  std::vector<Row> used, spdk;
  auto params = method.find("params");
  if (params != method.end() && params->is_array()) {
    for (const Json& param : *params) {
      if (!param.is_object()) continue;
      Row row{StringOf(param, "name"), StringOf(param, "type"), "optional",
              StringOf(param, "description")};
      auto default_value = param.find("default");
      const bool has_default = default_value != param.end();
      const bool required = param.value("required", false);
      const std::string spdk_use = StringOf(param, "spdk");
      if (required) row.need = "required";
      if (has_default) row.need = absl::StrCat("default ", default_value->dump());
      if (spdk_use.empty()) {
        used.push_back(std::move(row));
        continue;
      }
      row.need = has_default ? absl::StrCat("only ", default_value->dump()) : "ignored";
      spdk.push_back(std::move(row));
    }
  }
  if (used.empty()) {
    out += "\nNo parameters.\n";
  } else {
    out += "\nParameters (--name VALUE, or -j JSON):\n";
    AppendRows(out, used, width);
  }
  if (!spdk.empty()) {
    out += "\nSPDK's parameters, accepted and not used:\n";
    AppendRows(out, spdk, width);
  }
  return out;
}

std::string FormatMethodList(const Json& methods, size_t width) {
  std::map<std::string, std::vector<std::string>> by_component;
  if (methods.is_array()) {
    for (const Json& method : methods) {
      if (!method.is_object()) continue;
      std::string component = StringOf(method, "component");
      by_component[component.empty() ? "other" : component].push_back(StringOf(method, "name"));
    }
  }
  size_t component_width = 0;
  for (const auto& [component, names] : by_component) {
    component_width = std::max(component_width, component.size());
  }
  std::string out;
  for (auto& [component, names] : by_component) {
    std::sort(names.begin(), names.end());
    std::string line =
        absl::StrCat("  ", component, std::string(component_width - component.size(), ' '), "  ");
    out += line;
    AppendWrapped(out, absl::StrJoin(names, " "), line.size(), width);
  }
  return out;
}

}  // namespace pollux::rpc
