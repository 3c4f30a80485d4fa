// Checking a call's params against its method's spec, and describing the spec for help.
#include "pollux/rpc/method_spec.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl_string_view.h"

namespace pollux::rpc {
namespace {

bool HasType(const Json& value, ParamType type) {
  switch (type) {
    case ParamType::kString:
      return value.is_string();
    case ParamType::kUnsigned:
      // The parser stores non-negative integers as unsigned and negative ones as signed.
      return value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
    case ParamType::kInteger:
      return value.is_number_integer() &&
             (!value.is_number_unsigned() ||
              value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
    case ParamType::kBoolean:
      return value.is_boolean();
    case ParamType::kObject:
      return value.is_object();
    case ParamType::kArray:
      return value.is_array();
    case ParamType::kAny:
      return true;
  }
  return false;
}

// As ParamReader words it: `parameter "block_size" must be an unsigned integer`.
absl::Status TypeError(std::string_view name, ParamType type, const Json& value) {
  if (type == ParamType::kInteger && value.is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter \"", AbslView(name), "\" is out of range"));
  }
  const bool vowel = type == ParamType::kUnsigned || type == ParamType::kInteger ||
                     type == ParamType::kObject || type == ParamType::kArray;
  return absl::InvalidArgumentError(absl::StrCat("parameter \"", AbslView(name), "\" must be ",
                                                 vowel ? "an " : "a ",
                                                 AbslView(ParamTypeName(type))));
}

const ParamSpec* FindParam(const MethodSpec& spec, std::string_view name) {
  for (const ParamSpec& param : spec.params) {
    if (param.name == name) return &param;
  }
  return nullptr;
}

// A declared default as JSON; specs are checked at registration (ValidateSpec), so a bad one
// here is a bug reported as such.
absl::StatusOr<Json> DefaultOf(const MethodSpec& spec, const ParamSpec& param) {
  Json value = Json::parse(param.default_value, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return absl::InternalError(
        absl::StrCat("the spec of ", spec.name, " gives parameter \"", param.name,
                     "\" a default that is not JSON: ", param.default_value));
  }
  return value;
}

}  // namespace

std::string_view ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kString:
      return "string";
    case ParamType::kUnsigned:
      return "unsigned integer";
    case ParamType::kInteger:
      return "integer";
    case ParamType::kBoolean:
      return "boolean";
    case ParamType::kObject:
      return "object";
    case ParamType::kArray:
      return "array";
    case ParamType::kAny:
      return "any";
  }
  return "?";
}

ParamSpec Required(std::string name, ParamType type, std::string description) {
  return ParamSpec{std::move(name), type, true, "", std::move(description), ParamUse::kUsed};
}

ParamSpec Optional(std::string name, ParamType type, std::string description,
                   std::string default_value) {
  return ParamSpec{std::move(name),        type,           false, std::move(default_value),
                   std::move(description), ParamUse::kUsed};
}

ParamSpec SpdkOnlyAtDefault(std::string name, ParamType type, std::string default_value,
                            std::string description) {
  return ParamSpec{std::move(name),
                   type,
                   false,
                   std::move(default_value),
                   std::move(description),
                   ParamUse::kSpdkOnlyAtDefault};
}

ParamSpec SpdkHint(std::string name, ParamType type, std::string description) {
  return ParamSpec{std::move(name), type, false, "", std::move(description), ParamUse::kSpdkHint};
}

absl::StatusOr<Json> CheckParams(const MethodSpec& spec, const Json& params,
                                 std::vector<std::string>* ignored) {
  if (!spec.declared) return params;
  if (!params.is_null() && !params.is_object()) {
    return absl::InvalidArgumentError("params must be an object");
  }
  Json checked = Json::object();
  if (params.is_object()) {
    for (const auto& [key, value] : params.items()) {
      const ParamSpec* param = FindParam(spec, key);
      if (param == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("unknown parameter \"", key, "\""));
      }
      if (value.is_null()) continue;  // optional parameters may be written as `"x": null`
      if (!HasType(value, param->type)) return TypeError(key, param->type, value);
      if (param->use == ParamUse::kSpdkOnlyAtDefault) {
        absl::StatusOr<Json> allowed = DefaultOf(spec, *param);
        if (!allowed.ok()) return allowed.status();
        if (value != *allowed) {
          return absl::InvalidArgumentError(absl::StrCat(
              "parameter \"", key, "\" is ", value.dump(), ", which pollux does not support (",
              param->description, "); only ", param->default_value, " is accepted"));
        }
      }
      if (param->use != ParamUse::kUsed) {
        if (ignored != nullptr) ignored->push_back(key);
        continue;
      }
      checked[key] = value;
    }
  }
  for (const ParamSpec& param : spec.params) {
    if (param.use != ParamUse::kUsed || checked.contains(param.name)) continue;
    if (param.required) {
      return absl::InvalidArgumentError(absl::StrCat("missing parameter \"", param.name, "\""));
    }
    if (param.default_value.empty()) continue;
    absl::StatusOr<Json> value = DefaultOf(spec, param);
    if (!value.ok()) return value.status();
    checked[param.name] = std::move(*value);
  }
  return checked;
}

Json DescribeMethod(const MethodSpec& spec) {
  Json params = Json::array();
  for (const ParamSpec& param : spec.params) {
    Json out = {{"name", param.name},
                {"type", ParamTypeName(param.type)},
                {"required", param.required},
                {"description", param.description}};
    if (!param.default_value.empty()) {
      out["default"] = Json::parse(param.default_value, nullptr, /*allow_exceptions=*/false);
    }
    if (param.use == ParamUse::kSpdkOnlyAtDefault) out["spdk"] = "accepted at its default only";
    if (param.use == ParamUse::kSpdkHint) out["spdk"] = "accepted and ignored";
    params.push_back(std::move(out));
  }
  Json out = {{"name", spec.name},
              {"component", spec.component},
              {"description", spec.description},
              {"params", std::move(params)}};
  if (!spec.declared) out["declared"] = false;
  return out;
}

}  // namespace pollux::rpc
