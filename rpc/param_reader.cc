// ParamReader: typed access to a method's "params" object with errors that name the parameter.
#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl_string_view.h"
#include "call_spec.h"
#include "pollux/rpc/json_rpc.h"
#include "pollux/rpc/method_spec.h"

namespace pollux::rpc {
namespace {

// Converters: the value, or std::nullopt with `*error` set to a message naming the parameter.

std::optional<std::string> AsString(const Json& value, std::string_view name, std::string* error) {
  if (value.is_string()) return value.get<std::string>();
  *error = absl::StrCat("parameter \"", AbslView(name), "\" must be a string");
  return std::nullopt;
}

std::optional<uint64_t> AsUint(const Json& value, std::string_view name, std::string* error) {
  // The parser stores non-negative integers as unsigned and negative ones as signed.
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  *error = absl::StrCat("parameter \"", AbslView(name), "\" must be an unsigned integer");
  return std::nullopt;
}

std::optional<int64_t> AsInt(const Json& value, std::string_view name, std::string* error) {
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(value.get<uint64_t>());
    }
    *error = absl::StrCat("parameter \"", AbslView(name), "\" is out of range");
    return std::nullopt;
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  *error = absl::StrCat("parameter \"", AbslView(name), "\" must be an integer");
  return std::nullopt;
}

std::optional<bool> AsBool(const Json& value, std::string_view name, std::string* error) {
  if (value.is_boolean()) return value.get<bool>();
  *error = absl::StrCat("parameter \"", AbslView(name), "\" must be a boolean");
  return std::nullopt;
}

// Applies a converter to a parameter that Find() returned (null when absent).
template <typename T>
std::optional<T> Convert(const Json* value, std::string_view name,
                         std::optional<T> (*as)(const Json&, std::string_view, std::string*),
                         std::string* error) {
  if (value == nullptr) return std::nullopt;
  return as(*value, name, error);
}

}  // namespace

ParamReader::ParamReader(const Json& params)
    : params_(params), spec_(internal::SpecOfCallInProgress()) {
  if (!params_.is_null() && !params_.is_object()) Fail("params must be an object");
}

void ParamReader::CheckAgainstSpec(std::string_view name, bool required, ParamType type) {
  if (spec_ == nullptr || !spec_->declared) return;
  const ParamSpec* param = nullptr;
  for (const ParamSpec& p : spec_->params) {
    if (p.name == name) param = &p;
  }
  std::string_view problem;
  if (param == nullptr) {
    problem = "which its spec does not declare";
  } else if (type == ParamType::kAny
                 ? (param->type != ParamType::kObject && param->type != ParamType::kArray &&
                    param->type != ParamType::kAny)
                 : param->type != type) {
    problem = "as another type than its spec declares";
  } else if (required && !param->required && param->default_value.empty()) {
    problem = "as required, which its spec makes optional";
  }
  if (problem.empty()) return;
  // A bug of the method, not of the caller: reported first, as an internal error.
  if (status_.ok() || status_.code() != absl::StatusCode::kInternal) {
    status_ = absl::InternalError(
        absl::StrCat(spec_->name, " reads parameter \"", AbslView(name), "\" ", AbslView(problem)));
  }
}

const Json* ParamReader::Find(std::string_view name, bool required, ParamType type) {
  CheckAgainstSpec(name, required, type);
  used_.emplace_back(name);
  // An explicit null counts as absent: optional parameters may be written as `"x": null`.
  const Json* value = nullptr;
  if (params_.is_object()) {
    auto it = params_.find(name);
    if (it != params_.end() && !it->is_null()) value = &*it;
  }
  // Params that are not an object at all were reported by the constructor.
  if (value == nullptr && required && (params_.is_null() || params_.is_object())) {
    Fail(absl::StrCat("missing parameter \"", AbslView(name), "\""));
  }
  return value;
}

void ParamReader::Fail(std::string message) {
  if (status_.ok()) status_ = absl::InvalidArgumentError(std::move(message));
}

// The getters record the first error in the reader and then return a neutral value: the method
// must check Finish() before it uses any of them.

std::string ParamReader::String(std::string_view name) {
  std::string error;
  std::optional<std::string> value =
      Convert(Find(name, true, ParamType::kString), name, AsString, &error);
  if (!error.empty()) Fail(std::move(error));
  return value.value_or(std::string());
}

std::optional<std::string> ParamReader::OptionalString(std::string_view name) {
  std::string error;
  std::optional<std::string> value =
      Convert(Find(name, false, ParamType::kString), name, AsString, &error);
  if (!error.empty()) Fail(std::move(error));
  return value;
}

uint64_t ParamReader::Uint(std::string_view name) {
  std::string error;
  std::optional<uint64_t> value =
      Convert(Find(name, true, ParamType::kUnsigned), name, AsUint, &error);
  if (!error.empty()) Fail(std::move(error));
  return value.value_or(0);
}

std::optional<uint64_t> ParamReader::OptionalUint(std::string_view name) {
  std::string error;
  std::optional<uint64_t> value =
      Convert(Find(name, false, ParamType::kUnsigned), name, AsUint, &error);
  if (!error.empty()) Fail(std::move(error));
  return value;
}

int64_t ParamReader::Int(std::string_view name) {
  std::string error;
  std::optional<int64_t> value =
      Convert(Find(name, true, ParamType::kInteger), name, AsInt, &error);
  if (!error.empty()) Fail(std::move(error));
  return value.value_or(0);
}

std::optional<int64_t> ParamReader::OptionalInt(std::string_view name) {
  std::string error;
  std::optional<int64_t> value =
      Convert(Find(name, false, ParamType::kInteger), name, AsInt, &error);
  if (!error.empty()) Fail(std::move(error));
  return value;
}

bool ParamReader::Bool(std::string_view name) {
  std::string error;
  std::optional<bool> value = Convert(Find(name, true, ParamType::kBoolean), name, AsBool, &error);
  if (!error.empty()) Fail(std::move(error));
  return value.value_or(false);
}

std::optional<bool> ParamReader::OptionalBool(std::string_view name) {
  std::string error;
  std::optional<bool> value = Convert(Find(name, false, ParamType::kBoolean), name, AsBool, &error);
  if (!error.empty()) Fail(std::move(error));
  return value;
}

std::optional<Json> ParamReader::OptionalValue(std::string_view name) {
  const Json* value = Find(name, false, ParamType::kAny);
  if (value == nullptr) return std::nullopt;
  return *value;
}

absl::Status ParamReader::Finish() {
  if (!status_.ok()) return status_;
  // With a spec, the registry refused unknown names already, and filled in defaults a handler
  // may leave unread.
  if (!params_.is_object() || (spec_ != nullptr && spec_->declared)) return absl::OkStatus();
  for (const auto& [key, value] : params_.items()) {
    if (std::find(used_.begin(), used_.end(), key) == used_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown parameter \"", key, "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace pollux::rpc
