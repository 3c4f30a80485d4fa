// What a JSON-RPC method is and takes, declared once beside its handler. The registry checks every
// call's params against it before the handler runs (types, required, unknown names, SPDK's
// parameters pollux does not use), fills in the declared defaults, and answers
// rpc_get_method_help from it, which `pollux-rpc METHOD --help` prints: one source of truth, as
// SPDK's spdk_json_object_decoder tables are for its decoding.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "pollux/rpc/json_rpc.h"

namespace pollux::rpc {

// What pollux does with a parameter. SPDK's configs carry parameters of features pollux lacks;
// they are accepted where ignoring them cannot change the data, and refused where it would.
enum class ParamUse {
  kUsed,
  // SPDK's, for a feature pollux does not have (metadata, protection information, NUMA): accepted
  // and ignored, with a warning, only at its default_value; any other value is refused.
  kSpdkOnlyAtDefault,
  // SPDK's hint that does not change the data (preferred write sizes, ...): any value is
  // accepted and ignored, with a warning.
  kSpdkHint,
};

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kString;
  bool required = false;
  // JSON text of the value an absent parameter takes (the handler sees it as given); empty when
  // absence means something else, which the description then says.
  std::string default_value;
  std::string description;
  ParamUse use = ParamUse::kUsed;
};

// The ways to declare a parameter (a ParamSpec's fields in the order they read best):
ParamSpec Required(std::string name, ParamType type, std::string description);
// `default_value` is JSON text ("512", "\"auto\"", "false"); empty when there is none.
ParamSpec Optional(std::string name, ParamType type, std::string description,
                   std::string default_value = "");
ParamSpec SpdkOnlyAtDefault(std::string name, ParamType type, std::string default_value,
                            std::string description);
ParamSpec SpdkHint(std::string name, ParamType type, std::string description);

struct MethodSpec {
  MethodSpec() = default;
  MethodSpec(std::string name, std::string component, std::string description,
             std::vector<ParamSpec> params = {})
      : name(std::move(name)),
        component(std::move(component)),
        description(std::move(description)),
        params(std::move(params)) {}
  // A method registered by name alone (tests): its params are passed on unchecked.
  static MethodSpec Undeclared(std::string name) {
    MethodSpec spec(std::move(name), "", "");
    spec.declared = false;
    return spec;
  }

  std::string name;
  // The component that provides it (bdev_malloc, reactor, vhost, ...): `pollux-rpc --help`
  // lists methods by component.
  std::string component;
  std::string description;
  std::vector<ParamSpec> params;
  bool declared = true;
};

// "string", "unsigned integer", ...: as help and the errors spell it.
std::string_view ParamTypeName(ParamType type);

// Checks `params` (null or an object) against `spec`: every name declared, every value of its
// type (a null value counts as absent), every required one present, every SPDK-only one at its
// default. Returns the params the handler sees: SPDK's ignored ones removed, absent ones with a
// default filled in; `ignored` (if not null) receives the names removed. Errors are
// kInvalidArgument with messages that name the parameter.
absl::StatusOr<Json> CheckParams(const MethodSpec& spec, const Json& params,
                                 std::vector<std::string>* ignored = nullptr);

// The spec as rpc_get_method_help answers it: {"name", "component", "description", "params":
// [{"name", "type", "required", "default"?, "description", "spdk"?}]}.
Json DescribeMethod(const MethodSpec& spec);

}  // namespace pollux::rpc
